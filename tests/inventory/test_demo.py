"""``manage.py seed_demo``: the demo organisations, catalog, people and device tokens."""

from __future__ import annotations

import io
import re
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from inventory.barcodes import is_valid_gtin
from inventory.management.commands.seed_demo import DEMO_PASSWORD, PLATFORM_ADMIN_EMAIL
from inventory.models import (
    ApiToken,
    ClassificationMapping,
    Location,
    LocationKind,
    Membership,
    MembershipStore,
    Organization,
    Product,
    ProductBarcode,
    Role,
    Store,
)
from tests.factories import ProductFactory

DEMO_SLUGS = {"northern-lights", "fresh-corner"}
TOKEN_ROW = re.compile(
    r"^(northern-lights|fresh-corner)\s+(Tablet 1|Cova POS)\s+\S+@\S+\s+(\S+)$", re.MULTILINE
)


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def demo_org(slug: str) -> Organization:
    return Organization.objects.get(slug=slug)


def snapshot() -> dict:
    """Everything the demo owns, by primary key and content, to compare two states."""
    orgs = Organization.objects.filter(slug__in=DEMO_SLUGS)
    return {
        "orgs": sorted(orgs.values_list("pk", "slug", "name", "time_zone")),
        "stores": sorted(Store.objects.filter(org__in=orgs).values_list("pk", "code", "name")),
        "locations": sorted(
            Location.objects.filter(org__in=orgs).values_list("pk", "code", "kind", "sellable")
        ),
        "products": sorted(
            Product.objects.filter(org__in=orgs).values_list("pk", "sku", "name", "default_price")
        ),
        "barcodes": sorted(ProductBarcode.objects.filter(org__in=orgs).values_list("pk", "code")),
        "memberships": sorted(
            Membership.objects.filter(org__in=orgs).values_list("pk", "user__email", "role")
        ),
        "tokens": sorted(ApiToken.objects.filter(org__in=orgs).values_list("pk", "key_digest")),
        "users": sorted(get_user_model().objects.values_list("pk", "email", "password")),
    }


@pytest.mark.django_db
def test_seed_demo_creates_two_orgs_with_their_settings():
    seed("--reset")

    assert set(Organization.objects.values_list("slug", flat=True)) == DEMO_SLUGS
    nl, fc = demo_org("northern-lights"), demo_org("fresh-corner")
    assert nl.name == "Northern Lights Cannabis Co." and nl.time_zone == "America/Toronto"
    assert nl.negative_stock_mode == "block" and nl.discrepancy_enforcement == "warn"
    assert nl.escalation_threshold == 500
    assert nl.tolerance_bands["Flower"] == {"units": "0", "percent": "1.5"}
    assert "default" in nl.tolerance_bands
    assert fc.name == "Fresh Corner Grocery & Pharmacy" and fc.time_zone == "America/Vancouver"
    assert fc.negative_stock_mode == "warn"


@pytest.mark.django_db
def test_seed_demo_creates_three_stores_with_their_rooms():
    seed("--reset")

    stores = {s.code: s for s in Store.objects.select_related("org")}
    assert set(stores) == {"NL-TOR", "NL-OTT", "FC-VAN"}
    assert stores["NL-TOR"].name == "Queen West" and stores["NL-TOR"].cova_location_id
    assert stores["NL-OTT"].name == "ByWard Market"
    assert stores["NL-OTT"].time_zone == "America/Toronto"
    assert stores["FC-VAN"].org.slug == "fresh-corner"
    assert stores["FC-VAN"].time_zone == "America/Vancouver"

    rooms = {
        code: {loc.code: loc for loc in Location.objects.filter(store=store)}
        for code, store in stores.items()
    }
    assert set(rooms["NL-TOR"]) == {"SF", "BR", "VLT", "QRN", "RCV"}
    assert set(rooms["NL-OTT"]) == {"SF", "BR", "VLT", "QRN"}
    assert set(rooms["FC-VAN"]) == {"SF", "BR", "COOL", "RX"}
    for code in ("NL-TOR", "NL-OTT"):
        vault, quarantine = rooms[code]["VLT"], rooms[code]["QRN"]
        assert vault.kind == LocationKind.VAULT and not vault.sellable
        assert quarantine.kind == LocationKind.QUARANTINE and not quarantine.sellable
    assert rooms["NL-TOR"]["RCV"].kind == LocationKind.RECEIVING
    assert rooms["FC-VAN"]["COOL"].sellable and not rooms["FC-VAN"]["RX"].sellable
    sellable = {(loc.store.code, loc.code) for loc in Location.objects.filter(sellable=True)}
    assert sellable == {("NL-TOR", "SF"), ("NL-OTT", "SF"), ("FC-VAN", "SF"), ("FC-VAN", "COOL")}


@pytest.mark.django_db
def test_seed_demo_creates_about_300_products_in_the_domain_mix():
    seed("--reset")

    nl, fc = demo_org("northern-lights"), demo_org("fresh-corner")
    assert 280 <= Product.objects.count() <= 320
    cannabis = Counter(Product.objects.filter(org=nl).values_list("category", flat=True))
    total = sum(cannabis.values())
    assert 200 <= total <= 240
    assert cannabis["Flower"] / total == pytest.approx(0.25, abs=0.02)
    assert cannabis["Pre-Rolls"] / total == pytest.approx(0.20, abs=0.02)
    assert cannabis["Vapes"] / total == pytest.approx(0.15, abs=0.02)
    assert cannabis["Seeds"] >= 1
    grocery = Counter(Product.objects.filter(org=fc).values_list("category", flat=True))
    assert set(grocery) == {"Dairy", "Bakery", "Produce", "OTC Medicine", "Beverages"}
    # Every classification came through the organisation's map.
    assert not Product.objects.filter(category="").exists()
    assert ClassificationMapping.objects.filter(org=fc, category="OTC Medicine").exists()


@pytest.mark.django_db
def test_seed_demo_products_have_realistic_fields():
    seed("--reset")

    products = list(Product.objects.select_related("org"))
    assert len({(p.org_id, p.name) for p in products}) == len(products)
    for p in products:
        assert p.brand and p.name.startswith(p.brand)
        assert p.reorder_point is not None and p.reorder_qty
        assert 0.60 * float(p.default_price) - 0.01 <= float(p.default_cost)
        assert float(p.default_cost) <= 0.75 * float(p.default_price) + 0.01
        if p.org.slug == "northern-lights":
            assert 8 <= p.default_price <= 60
            assert re.fullmatch(r"CNB-\d{8}|\d{6}", p.sku)
        else:
            assert 1 <= p.default_price <= 25
    assert Product.objects.filter(unit="g").exists()
    assert all(Product.objects.filter(category="Edibles").values_list("tracks_expiry", flat=True))
    assert all(Product.objects.filter(category="Dairy").values_list("tracks_expiry", flat=True))
    assert not any(Product.objects.filter(category="Flower").values_list("tracks_expiry",
                                                                          flat=True))


@pytest.mark.django_db
def test_seed_demo_gtins_are_valid_and_unique_per_org():
    seed("--reset")

    for slug in DEMO_SLUGS:
        org = demo_org(slug)
        gtins = list(ProductBarcode.objects.filter(org=org, kind="gtin"))
        assert gtins
        assert all(is_valid_gtin(b.code) and len(b.code) in (12, 13) for b in gtins)
        assert len({b.gtin14 for b in gtins}) == len(gtins)
        per_product = Counter(b.product_id for b in gtins)
        assert set(per_product.values()) == {1}
        assert len(per_product) == Product.objects.filter(org=org).count()
        assert ProductBarcode.objects.filter(org=org, kind="supplier").exists()


@pytest.mark.django_db
def test_seed_demo_creates_every_role_per_org():
    seed("--reset")

    for slug in DEMO_SLUGS:
        roles = set(Membership.objects.filter(org__slug=slug).values_list("role", flat=True))
        assert roles == {r.value for r in Role}
        assert Membership.objects.filter(
            org__slug=slug, role=Role.ADMIN, user__email=f"admin@{slug}.example"
        ).exists()
    limited = Membership.objects.get(user__email="operator.ottawa@northern-lights.example")
    assert limited.role == Role.OPERATOR
    assert list(
        MembershipStore.objects.filter(membership=limited).values_list("store__code", flat=True)
    ) == ["NL-OTT"]


@pytest.mark.django_db
def test_seed_demo_users_share_the_demo_password():
    seed("--reset")

    users = get_user_model().objects.filter(memberships__org__slug__in=DEMO_SLUGS)
    # four roles, an Ottawa-only operator and the POS member; four roles and the POS member
    assert users.count() == 11
    assert all(u.check_password(DEMO_PASSWORD) for u in users)
    root = get_user_model().objects.get(email=PLATFORM_ADMIN_EMAIL)
    assert root.is_staff and root.is_superuser and root.check_password(DEMO_PASSWORD)


@pytest.mark.django_db
def test_seed_demo_tokens_authenticate_for_their_org():
    out = seed("--reset")

    tokens = TOKEN_ROW.findall(out)
    assert sorted((org, device) for org, device, _ in tokens) == sorted(
        (org, device) for org in DEMO_SLUGS for device in ("Tablet 1", "Cova POS")
    )
    for slug, device, key in tokens:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = client.get("/api/v1/me")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["organization"] == slug
        assert body["role"] == Role.OPERATOR
        assert body["token"] == device


@pytest.mark.django_db
def test_seed_demo_prints_logins_and_urls():
    out = seed("--reset")

    for email in ("admin@northern-lights.example", "operator.ottawa@northern-lights.example",
                  "viewer@fresh-corner.example", PLATFORM_ADMIN_EMAIL):
        assert email in out
    assert DEMO_PASSWORD in out
    for url in ("http://127.0.0.1:8000/admin/", "http://127.0.0.1:8000/api/docs/",
                "http://127.0.0.1:8000/api/v1/"):
        assert url in out


@pytest.mark.django_db
def test_seed_demo_reset_rebuilds_the_same_catalog():
    seed("--reset")
    first = sorted(Product.objects.values_list("org__slug", "sku", "name", "default_price"))
    first_codes = sorted(ProductBarcode.objects.values_list("code", flat=True))
    first_token_ids = set(ApiToken.objects.values_list("pk", flat=True))

    seed("--reset")

    assert sorted(
        Product.objects.values_list("org__slug", "sku", "name", "default_price")
    ) == first
    assert sorted(ProductBarcode.objects.values_list("code", flat=True)) == first_codes
    assert Organization.objects.count() == 2
    assert get_user_model().objects.filter(email=PLATFORM_ADMIN_EMAIL).count() == 1
    assert not first_token_ids & set(ApiToken.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_seed_demo_other_seed_gives_another_catalog():
    seed("--reset")
    default = set(Product.objects.values_list("sku", flat=True))

    seed("--reset", "--seed", "7")

    assert set(Product.objects.values_list("sku", flat=True)) != default


@pytest.mark.django_db
def test_seed_demo_without_reset_changes_nothing_when_data_exists():
    seed("--reset")
    before = snapshot()

    out = seed()

    assert "exists already" in out
    assert "admin@northern-lights.example" in out
    assert not TOKEN_ROW.search(out)
    assert snapshot() == before


@pytest.mark.django_db
def test_seed_demo_reset_leaves_other_orgs_alone(org, store, member):
    other = member(Role.ADMIN)
    product = ProductFactory(org=org)

    seed("--reset")
    seed("--reset")

    assert Organization.objects.filter(pk=org.pk).exists()
    assert Store.objects.filter(pk=store.pk).exists()
    assert Product.objects.filter(pk=product.pk).exists()
    assert Membership.objects.filter(pk=other.pk).exists()
