"""Google sign-in rules: no open sign-up, links to invited people, e-mail domain limits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from allauth.core.exceptions import ImmediateHttpResponse
from django.conf import settings
from django.test import Client, RequestFactory

from inventory.models import Organization, Role
from inventory.tenancy.adapters import (
    ClosedAccountAdapter,
    InvitedOnlySocialAdapter,
    email_domain_allowed,
)
from tests.factories import MembershipFactory, UserFactory


def test_sign_up_is_closed(db):
    assert ClosedAccountAdapter().is_open_for_signup(RequestFactory().get("/")) is False
    assert InvitedOnlySocialAdapter().is_open_for_signup(RequestFactory().get("/"), None) is False
    page = Client().get("/accounts/signup/")
    assert "closed" in page.content.decode().lower()


def test_google_login_links_to_existing_users_by_verified_email():
    assert settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION is True
    assert settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT is True
    assert "allauth.socialaccount.providers.google" in settings.INSTALLED_APPS


def test_google_provider_reads_client_id_from_the_environment():
    app = settings.SOCIALACCOUNT_PROVIDERS["google"]["APP"]
    assert set(app) >= {"client_id", "secret"}


@pytest.mark.parametrize(
    "domains,email,allowed",
    [
        ([], "a@anything.example", True),
        (["acme.example"], "a@acme.example", True),
        (["acme.example"], "a@ACME.example", True),
        (["acme.example"], "a@gmail.com", False),
    ],
)
def test_email_domain_restriction(org, domains, email, allowed):
    Organization.objects.filter(pk=org.pk).update(allowed_email_domains=domains)
    membership = MembershipFactory(org=org, role=Role.VIEWER)
    assert email_domain_allowed(membership.user, email) is allowed


def test_google_login_from_a_foreign_domain_is_refused(org):
    Organization.objects.filter(pk=org.pk).update(allowed_email_domains=["acme.example"])
    membership = MembershipFactory(org=org, role=Role.MANAGER)
    login = SimpleNamespace(
        user=membership.user,
        email_addresses=[SimpleNamespace(email="someone@gmail.com", verified=True)],
    )
    with pytest.raises(ImmediateHttpResponse):
        InvitedOnlySocialAdapter().pre_social_login(RequestFactory().get("/"), login)


def test_google_login_from_an_allowed_domain_passes(org):
    Organization.objects.filter(pk=org.pk).update(allowed_email_domains=["acme.example"])
    membership = MembershipFactory(org=org, role=Role.MANAGER)
    login = SimpleNamespace(
        user=membership.user,
        email_addresses=[SimpleNamespace(email="boss@acme.example", verified=True)],
    )
    InvitedOnlySocialAdapter().pre_social_login(RequestFactory().get("/"), login)


def test_unknown_person_has_no_way_in(db):
    user = UserFactory()  # no membership anywhere
    client = Client()
    client.force_login(user)
    assert client.get("/api/v1/me").status_code == 403
