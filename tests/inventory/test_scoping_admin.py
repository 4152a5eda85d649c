"""The tenant scope: unscoped queries fail loudly; the admin shows one organisation at a time."""

from __future__ import annotations

import pytest
from django.test import Client
from django_scopes import ScopeError, scope

from inventory.models import Membership, Product, Role, Store
from inventory.tenancy.capabilities import Action, capability_table_markdown, role_can
from inventory.tenancy.scope import tenant_scope
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

PASSWORD = "correct horse battery"


@pytest.mark.parametrize(
    "query",
    [
        lambda: list(Product.objects.all()),
        lambda: Product.objects.count(),
        lambda: Product.objects.filter(sku="x").exists(),
        lambda: Store.objects.get(pk=1),
        lambda: list(Membership.objects.values_list("id")),
    ],
)
def test_unscoped_query_raises_instead_of_reading_every_tenant(query, org):
    with scope():  # scoping on, no organisation named
        with pytest.raises(ScopeError):
            query()


def test_scoped_query_sees_only_that_organisation(org, other_org):
    mine = ProductFactory(org=org)
    ProductFactory(org=other_org)
    with scope(), tenant_scope(org):
        assert list(Product.objects.all()) == [mine]
        assert Product.objects.filter(pk__gt=0).count() == 1


def test_tenant_scope_refuses_an_unsaved_organisation():
    from inventory.models import Organization

    with pytest.raises(ValueError):
        with tenant_scope(Organization(slug="x")):
            pass


def test_readme_prints_the_capability_matrix_from_code():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert capability_table_markdown() in readme


def test_capability_matrix_follows_the_role_order():
    for action in Action:
        allowed = [role_can(r, action) for r in Role]
        assert allowed == sorted(allowed), action  # once allowed, every higher role is too
    assert role_can(Role.OPERATOR, Action.SALE_RECORD)
    assert not role_can(Role.OPERATOR, Action.SALE_REVERSE)
    assert not role_can(Role.MANAGER, Action.APPROVE_ABOVE_THRESHOLD)


def admin_client(membership) -> Client:
    membership.user.set_password(PASSWORD)
    membership.user.save()
    client = Client()
    response = client.post(
        "/admin/login/",
        {"username": membership.user.username, "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture
def two_catalogs(org, other_org):
    ProductFactory(org=org, sku="MINE-1", name="Mine one")
    ProductFactory(org=other_org, sku="THEIRS-1", name="Theirs one")


def test_admin_shows_a_manager_only_their_organisation(org, two_catalogs):
    client = admin_client(MembershipFactory(org=org, role=Role.MANAGER))
    page = client.get("/admin/inventory/product/").content.decode()
    assert "MINE-1" in page and "THEIRS-1" not in page


def test_admin_hides_another_orgs_object(org, other_org, two_catalogs):
    client = admin_client(MembershipFactory(org=org, role=Role.ADMIN))
    theirs = Product.objects.get(sku="THEIRS-1")
    response = client.get(f"/admin/inventory/product/{theirs.pk}/change/")
    assert response.status_code == 302  # "does not exist" redirect, same as a missing id
    assert "Theirs one" not in client.get(response.url).content.decode()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_admin_refuses_operators_and_viewers(org, role):
    membership = MembershipFactory(org=org, role=role)
    membership.user.set_password(PASSWORD)
    membership.user.save()
    client = Client()
    response = client.post(
        "/admin/login/", {"username": membership.user.username, "password": PASSWORD}
    )
    assert response.status_code == 200  # the form again, with an error
    assert client.get("/admin/inventory/product/").status_code == 302


def test_admin_manager_may_view_but_not_change_stores(org, store):
    client = admin_client(MembershipFactory(org=org, role=Role.MANAGER))
    assert client.get("/admin/inventory/store/").status_code == 200
    response = client.post(
        f"/admin/inventory/store/{store.pk}/change/",
        {"code": "HACK", "name": "x", "time_zone": "UTC"},
    )
    assert response.status_code == 403
    store.refresh_from_db()
    assert store.code == "S1"


def test_admin_new_rows_belong_to_the_session_organisation(org, other_org):
    client = admin_client(MembershipFactory(org=org, role=Role.MANAGER))
    response = client.post(
        "/admin/inventory/classificationmapping/add/",
        {"classification": "Rosin", "category": "Extracts", "subcategory": "Rosin"},
    )
    assert response.status_code == 302
    from inventory.models import ClassificationMapping

    assert ClassificationMapping.objects.get(classification="Rosin").org == org


def test_admin_person_in_two_orgs_switches_between_them(org, other_org, two_catalogs):
    membership = MembershipFactory(org=org, role=Role.MANAGER)
    MembershipFactory(org=other_org, role=Role.ADMIN, user=membership.user)
    client = admin_client(membership)
    first = client.get("/admin/inventory/product/").content.decode()
    assert "MINE-1" in first and "THEIRS-1" not in first
    client.get("/admin/org/rival/")
    second = client.get("/admin/inventory/product/").content.decode()
    assert "THEIRS-1" in second and "MINE-1" not in second


def test_admin_cannot_switch_into_an_org_without_membership(org, other_org, two_catalogs):
    client = admin_client(MembershipFactory(org=org, role=Role.ADMIN))
    client.get("/admin/org/rival/")
    page = client.get("/admin/inventory/product/").content.decode()
    assert "MINE-1" in page and "THEIRS-1" not in page


def test_superuser_sees_every_organisation(org, other_org, two_catalogs):
    user = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(user)
    page = client.get("/admin/inventory/product/").content.decode()
    assert "MINE-1" in page and "THEIRS-1" in page


def test_admin_token_is_issued_with_the_key_shown_once(org):
    admin = MembershipFactory(org=org, role=Role.ADMIN)
    other = MembershipFactory(org=org, role=Role.OPERATOR)
    client = admin_client(admin)
    response = client.post(
        "/admin/inventory/apitoken/add/", {"user": other.user.pk, "name": "Tablet 9"}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "copy it now" in page
    from inventory.models import ApiToken

    token = ApiToken.objects.get(name="Tablet 9")
    assert (token.org, token.user) == (org, other.user)


def test_store_factory_gives_a_new_store_its_default_rooms(org):
    store = StoreFactory(org=org, code="NEW")
    rooms = {(loc.code, loc.kind, loc.sellable) for loc in store.locations.all()}
    assert rooms == {("SF", "sales_floor", True), ("BR", "back_room", False)}


def test_admin_shows_ledger_and_quants_read_only(org, store):
    from inventory.models import StockLedger, StockQuant
    from tests.stock_helpers import receive

    product = ProductFactory(org=org)
    receive(org, store, product, 3, lot="L1")
    client = admin_client(MembershipFactory(org=org, role=Role.ADMIN))
    row = StockLedger.objects.get()
    quant = StockQuant.objects.get()
    assert client.get("/admin/inventory/stockledger/").status_code == 200
    assert client.get(f"/admin/inventory/stockledger/{row.pk}/change/").status_code == 200
    assert (
        client.post(
            f"/admin/inventory/stockledger/{row.pk}/change/", {"qty_delta": "99"}
        ).status_code
        == 403
    )
    assert client.get("/admin/inventory/stockledger/add/").status_code == 403
    assert (
        client.post(f"/admin/inventory/stockquant/{quant.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    quant.refresh_from_db()
    assert quant.quantity == 3
