"""A membership limited to some stores sees only those stores' records in the admin too."""

from __future__ import annotations

import pytest
from django.test import Client

from counts.services import sessions as count_sessions
from inventory.models import (
    Role,
    Sale,
    StockDocument,
    StockLedger,
    StockQuant,
    Store,
)
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import receive, sell

PASSWORD = "store limits 123!"


def signed_in(membership) -> Client:
    membership.user.set_password(PASSWORD)
    membership.user.save()
    client = Client()
    assert client.login(username=membership.user.username, password=PASSWORD)
    return client


@pytest.fixture
def two_stores(org, store):
    other = StoreFactory(org=org, code="S2")
    mine = ProductFactory(org=org, sku="MINE")
    theirs = ProductFactory(org=org, sku="THEIRS")
    receive(org, store, mine, 5)
    receive(org, other, theirs, 5)
    sell(org, store, (mine, 1), client_ref="sale-mine")
    sell(org, other, (theirs, 1), client_ref="sale-theirs")
    manager = MembershipFactory(org=org, role=Role.MANAGER).user
    count_sessions.session_create(
        org=org, store=store, scope="FULL_STORE", actor=manager, notes="count-mine"
    )
    count_sessions.session_create(
        org=org, store=other, scope="FULL_STORE", actor=manager, notes="count-theirs"
    )
    return {"mine": store, "theirs": other}


PAGES = [
    ("inventory", "stockledger", StockLedger),
    ("inventory", "stockquant", StockQuant),
    ("inventory", "sale", Sale),
    ("inventory", "stockdocument", StockDocument),
    ("inventory", "store", Store),
    ("counts", "countsession", None),
]


@pytest.mark.parametrize("app,model,cls", PAGES)
def test_a_store_limited_manager_sees_only_their_store_in_the_admin(
    org, two_stores, app, model, cls
):
    limited = MembershipFactory(org=org, role=Role.MANAGER, stores=[two_stores["mine"]])
    client = signed_in(limited)
    from counts.models import CountSession

    cls = cls or CountSession
    response = client.get(f"/admin/{app}/{model}/")
    assert response.status_code == 200
    listed = {int(pk) for pk in response.context["cl"].result_list.values_list("pk", flat=True)}
    field = "pk" if cls is Store else "store_id"
    theirs = set(
        cls.objects.filter(**{field: two_stores["theirs"].pk}).values_list("pk", flat=True)
    )
    mine = set(cls.objects.filter(**{field: two_stores["mine"].pk}).values_list("pk", flat=True))
    assert theirs and mine
    assert listed == mine
    other = next(iter(theirs))
    change = client.get(f"/admin/{app}/{model}/{other}/change/")
    assert change.status_code == 302  # "does not exist", as for a missing id


def test_an_unlimited_manager_sees_both_stores(org, two_stores):
    client = signed_in(MembershipFactory(org=org, role=Role.MANAGER))
    listed = client.get("/admin/inventory/sale/").context["cl"].result_list
    assert {sale.client_ref for sale in listed} == {"sale-mine", "sale-theirs"}


def test_a_limited_admin_cannot_pick_another_store_for_a_new_location(org, two_stores):
    limited = MembershipFactory(org=org, role=Role.ADMIN, stores=[two_stores["mine"]])
    client = signed_in(limited)
    form = client.get("/admin/inventory/location/add/").context["adminform"].form
    assert set(form.fields["store"].queryset) == {two_stores["mine"]}


@pytest.mark.parametrize("model", ["membership", "apitoken"])
def test_people_and_tokens_are_for_admins_in_the_admin_as_in_the_api(org, model):
    manager = signed_in(MembershipFactory(org=org, role=Role.MANAGER))
    assert manager.get(f"/admin/inventory/{model}/").status_code == 403
    admin = signed_in(MembershipFactory(org=org, role=Role.ADMIN))
    assert admin.get(f"/admin/inventory/{model}/").status_code == 200
