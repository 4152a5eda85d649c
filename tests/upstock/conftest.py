"""Shared fixtures of the upstock tests: a store in Toronto (a sales floor SF and a back room
BR, as every new store has), people, a settable clock, and helpers that build stock and sales
through the real services."""

from __future__ import annotations

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import Role
from inventory.tenancy.scope import membership_context
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import loc
from upstock.services import runs

TORONTO = zoneinfo.ZoneInfo("America/Toronto")
D = Decimal


def local(*args) -> datetime.datetime:
    """A Toronto wall-clock time (``fold=1`` picks the second 01:30 of a fall-back night)."""
    return datetime.datetime(*args, tzinfo=TORONTO)


class Clock:
    """``timezone.now`` for the code under test: the write path stamps ledger rows'
    ``created_at`` with it, so a test places a sale at a chosen instant."""

    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def set(self, moment: datetime.datetime) -> datetime.datetime:
        self.now = moment
        return moment


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(local(2026, 6, 10, 12, 0))
    monkeypatch.setattr(timezone, "now", fake)
    return fake


@pytest.fixture
def store(org):
    return StoreFactory(org=org, code="S1", time_zone="America/Toronto")


@pytest.fixture
def floor(store):
    return loc(store, "SF")


@pytest.fixture
def back(store):
    return loc(store, "BR")


@pytest.fixture
def manager_membership(org):
    return MembershipFactory(org=org, role=Role.MANAGER)


@pytest.fixture
def manager(manager_membership):
    return manager_membership.user


@pytest.fixture
def operator_membership(org):
    return MembershipFactory(org=org, role=Role.OPERATOR)


@pytest.fixture
def operator(operator_membership):
    return operator_membership.user


@pytest.fixture
def operator_tenant(operator_membership):
    return membership_context(operator_membership)


@pytest.fixture
def product(org):
    def make(**fields):
        fields.setdefault("category", "Flower")
        return ProductFactory(org=org, **fields)

    return make


@pytest.fixture
def new_run(org, store, floor, manager):
    def make(now=None, **kwargs):
        kwargs.setdefault("actor", manager)
        return runs.run_create(org=org, store=store, location=floor, now=now, **kwargs)

    return make
