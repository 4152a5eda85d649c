"""Shared fixtures. Tests run on PostgreSQL only; the suite refuses to start on anything else."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from inventory.models import Role
from inventory.tenancy.scope import tenant_scope
from inventory.tenancy.tokens import api_token_create
from tests.factories import MembershipFactory, OrganizationFactory, StoreFactory


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            f"Tests must run on PostgreSQL, not {engine}. Set DATABASE_URL=postgres://... "
            "or start a server on 127.0.0.1:5432."
        )


@pytest.fixture(autouse=True)
def _no_scope_leaks():
    """Tests build state freely; each API call enters its own scope as in production."""
    with scopes_disabled():
        yield


@pytest.fixture
def org(db):
    return OrganizationFactory(slug="acme", name="Acme Cannabis")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(slug="rival", name="Rival Retail")


@pytest.fixture
def store(org):
    return StoreFactory(org=org, code="S1")


@pytest.fixture
def other_store(other_org):
    return StoreFactory(org=other_org, code="R1")


@pytest.fixture
def member(org):
    """Make a member of ``org`` with a role: ``member("manager")``."""

    def make(role: str = Role.ADMIN, *, organisation=None, stores=()):
        return MembershipFactory(org=organisation or org, role=role, stores=stores)

    return make


@pytest.fixture
def client_for(org, member):
    """An API client authenticated with a token of a new member with ``role``."""

    def make(role: str = Role.ADMIN, *, organisation=None, stores=()) -> APIClient:
        organisation = organisation or org
        membership = member(role, organisation=organisation, stores=stores)
        _, key = api_token_create(org=organisation, user=membership.user, name="test device")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        client.user = membership.user
        client.membership = membership
        return client

    return make


@pytest.fixture
def admin_client(client_for):
    return client_for(Role.ADMIN)


@pytest.fixture
def in_org():
    """Enter an organisation's scope inside a test that has left ``scopes_disabled``."""
    return tenant_scope


def pytest_report_header(config):
    return f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
