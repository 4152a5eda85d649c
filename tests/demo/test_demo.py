"""``manage.py seed_demo``: the demo organisations, catalog, people and device tokens."""

from __future__ import annotations

import datetime
import io
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import zoneinfo
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from discrepancies.models import Discrepancy, Severity, Status, VariancePolicy
from inventory.catalog.barcodes import is_valid_gtin
from inventory.demo.catalog import DEMO_PASSWORD, PLATFORM_ADMIN_EMAIL
from inventory.demo.stock import SHELF_LIFE
from inventory.models import (
    ApiToken,
    AuditAction,
    AuditEvent,
    Batch,
    ClassificationMapping,
    DocumentKind,
    LedgerPurge,
    Location,
    LocationKind,
    Membership,
    MembershipStore,
    Organization,
    Product,
    ProductBarcode,
    RefType,
    Refund,
    Role,
    Sale,
    SaleLine,
    SaleStatus,
    StockDocument,
    StockHold,
    StockLedger,
    StockQuant,
    Store,
)
from inventory.stock import documents
from tests.factories import ProductFactory
from tests.stock_helpers import assert_invariants, loc, receive, ref, sell

D = Decimal
DEMO_CORRECTIONS = "demo-correction"
METRC = re.compile(r"1A4[A-Z0-9]{21}")

DEMO_SLUGS = {"northern-lights", "fresh-corner"}
TOKEN_ROW = re.compile(
    r"^(northern-lights|fresh-corner)\s+(Tablet 1|Cova POS)\s+\S+@\S+\s+(\S+)$", re.MULTILINE
)


def policies(org: Organization) -> dict:
    return {
        p.category: (p.units, p.percent, p.value) for p in VariancePolicy.objects.filter(org=org)
    }


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
    seed("--reset", "--no-stock")

    assert set(Organization.objects.values_list("slug", flat=True)) == DEMO_SLUGS
    nl, fc = demo_org("northern-lights"), demo_org("fresh-corner")
    assert nl.name == "Northern Lights Cannabis Co." and nl.time_zone == "America/Toronto"
    assert nl.negative_stock_mode == "block" and nl.discrepancy_enforcement == "warn"
    assert nl.escalation_threshold == 500
    # one variance policy per category ("" = the default), saved through the policy service
    assert policies(nl) == {
        "": (D("1"), D("2"), None),
        "Flower": (D("0"), D("1.5"), D("150")),
        "Pre-Rolls": (D("0"), D("1"), None),
    }
    assert policies(fc) == {
        "": (D("1"), D("3"), None),
        "Produce": (D("2"), D("5"), D("40")),
        "OTC Medicine": (D("0"), D("0"), None),
    }
    saved = AuditEvent.objects.filter(org=nl, action=AuditAction.VARIANCE_POLICY_SAVED)
    assert saved.count() == 3
    assert set(saved.values_list("actor__email", flat=True)) == {"admin@northern-lights.example"}
    assert fc.name == "Fresh Corner Grocery & Pharmacy" and fc.time_zone == "America/Vancouver"
    assert fc.negative_stock_mode == "warn"


@pytest.mark.django_db
def test_seed_demo_creates_three_stores_with_their_rooms():
    seed("--reset", "--no-stock")

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
    seed("--reset", "--no-stock")

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
    seed("--reset", "--no-stock")

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
    assert not any(
        Product.objects.filter(category="Flower").values_list("tracks_expiry", flat=True)
    )


@pytest.mark.django_db
def test_seed_demo_gtins_are_valid_and_unique_per_org():
    seed("--reset", "--no-stock")

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
    seed("--reset", "--no-stock")

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
    seed("--reset", "--no-stock")

    users = get_user_model().objects.filter(memberships__org__slug__in=DEMO_SLUGS)
    # four roles, an Ottawa-only operator and the POS member; four roles and the POS member
    assert users.count() == 11
    assert all(u.check_password(DEMO_PASSWORD) for u in users)
    root = get_user_model().objects.get(email=PLATFORM_ADMIN_EMAIL)
    assert root.is_staff and root.is_superuser and root.check_password(DEMO_PASSWORD)


@pytest.mark.django_db
def test_seed_demo_tokens_authenticate_for_their_org():
    out = seed("--reset", "--no-stock")

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
    out = seed("--reset", "--no-stock")

    for email in (
        "admin@northern-lights.example",
        "operator.ottawa@northern-lights.example",
        "viewer@fresh-corner.example",
        PLATFORM_ADMIN_EMAIL,
    ):
        assert email in out
    assert DEMO_PASSWORD in out
    for url in (
        "http://127.0.0.1:8000/admin/",
        "http://127.0.0.1:8000/api/docs/",
        "http://127.0.0.1:8000/api/v1/",
    ):
        assert url in out


@pytest.mark.django_db
def test_seed_demo_reset_rebuilds_the_same_catalog():
    seed("--reset", "--no-stock")
    first = sorted(Product.objects.values_list("org__slug", "sku", "name", "default_price"))
    first_codes = sorted(ProductBarcode.objects.values_list("code", flat=True))
    first_token_ids = set(ApiToken.objects.values_list("pk", flat=True))

    seed("--reset", "--no-stock")

    assert sorted(Product.objects.values_list("org__slug", "sku", "name", "default_price")) == first
    assert sorted(ProductBarcode.objects.values_list("code", flat=True)) == first_codes
    assert Organization.objects.count() == 2
    assert get_user_model().objects.filter(email=PLATFORM_ADMIN_EMAIL).count() == 1
    assert not first_token_ids & set(ApiToken.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_seed_demo_other_seed_gives_another_catalog():
    seed("--reset", "--no-stock")
    default = set(Product.objects.values_list("sku", flat=True))

    seed("--reset", "--no-stock", "--seed", "7")

    assert set(Product.objects.values_list("sku", flat=True)) != default


@pytest.mark.django_db
def test_seed_demo_without_reset_changes_nothing_when_data_exists():
    seed("--reset", "--no-stock")
    before = snapshot()

    out = seed()

    assert "exists already" in out
    assert "admin@northern-lights.example" in out
    assert not TOKEN_ROW.search(out)
    assert snapshot() == before


@pytest.mark.django_db
def test_seed_demo_reset_leaves_other_orgs_alone(org, store, member):
    # given another organisation with a member, a product and a ledger of its own
    other = member(Role.ADMIN)
    product = ProductFactory(org=org)
    receive(org, store, product, 10, lot="THEIRS", cost=3)
    sell(org, store, (product, 4))
    ledger = list(StockLedger.objects.filter(org=org).values().order_by("id"))

    # when the demo, with stock, is built and reset over it
    seed("--reset", "--days", "2")
    seed("--reset", "--days", "2")

    # then the other organisation is exactly as it was, its ledger still append-only
    assert Organization.objects.filter(pk=org.pk).exists()
    assert Store.objects.filter(pk=store.pk).exists()
    assert Product.objects.filter(pk=product.pk).exists()
    assert Membership.objects.filter(pk=other.pk).exists()
    assert list(StockLedger.objects.filter(org=org).values().order_by("id")) == ledger
    assert not LedgerPurge.objects.exists()
    with pytest.raises(DatabaseError), transaction.atomic():
        StockLedger.objects.filter(org=org).delete()
    assert_invariants()


# --- Stock --------------------------------------------------------------------------------------


def local_today(store: Store) -> datetime.date:
    return timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(store.time_zone)).date()


def stock_totals() -> dict:
    """What the demo's stock adds up to, free of primary keys, to compare two builds."""
    orgs = Organization.objects.filter(slug__in=DEMO_SLUGS)
    ledger = StockLedger.objects.filter(org__in=orgs)
    return {
        "ledger": sorted(
            (s, r, str(q))
            for s, r, q in ledger.values_list("store__code", "ref_type")
            .annotate(total=Sum("qty_delta"))
            .order_by()
        ),
        "rows": ledger.count(),
        "quants": sorted(
            (s, loc, sku, lot, str(q))
            for s, loc, sku, lot, q in StockQuant.objects.filter(
                org__in=orgs, quantity__gt=0
            ).values_list(
                "store__code", "location__code", "product__sku", "batch__lot_code", "quantity"
            )
        ),
        "sales": sorted(
            Sale.objects.filter(org__in=orgs).values_list(
                "client_ref", "source_ref", "status", "occurred_at"
            )
        ),
        "refunds": Refund.objects.filter(org__in=orgs).count(),
        "batches": sorted(
            Batch.objects.filter(org__in=orgs).values_list(
                "product__sku", "lot_code", "expiry_date", "unit_cost"
            )
        ),
        "discrepancies": sorted(
            Discrepancy.objects.filter(org__in=orgs).values_list(
                "store__code",
                "location__code",
                "product__sku",
                "source",
                "kind",
                "status",
                "severity",
                "variance",
                "value",
                "document_type",  # (source_ref names the count by its id: not compared)
                "decided_by__email",
            )
        ),
    }


@pytest.mark.django_db
def test_seed_demo_builds_stock_and_30_days_of_sales():
    """The one test that builds the full demo (~30 days): every property of the stock at once."""
    out = seed("--reset")

    assert_invariants()
    stores = {s.code: s for s in Store.objects.filter(org__slug__in=DEMO_SLUGS)}
    assert set(stores) == {"NL-TOR", "NL-OTT", "FC-VAN"}
    # never sold without stock: attempts that would be short were not rung up
    assert not Batch.objects.filter(unallocated_store__isnull=False).exists()
    for code, store in stores.items():
        check_store_stock(store, cannabis=code.startswith("NL"))
    # the command says what it built
    assert "Stock (store-local today):" in out
    for code in stores:
        assert re.search(rf"^  {code}\s+on hand [\d,]+.* sales .* expired", out, re.M)


def check_store_stock(store: Store, *, cannabis: bool) -> None:
    today = local_today(store)
    quants = StockQuant.objects.filter(store=store, quantity__gt=0)
    rooms = set(quants.values_list("location__code", flat=True))
    assert {"SF", "VLT" if cannabis else "BR"} <= rooms, rooms
    in_reserve = quants.filter(location__sellable=False).aggregate(n=Sum("quantity"))["n"]
    on_floor = quants.filter(location__sellable=True).aggregate(n=Sum("quantity"))["n"]
    assert in_reserve > 0 and on_floor > 0
    if cannabis:  # most of it in the vault and back room
        assert in_reserve > on_floor

    # lots: some expired (a few), some expiring within two weeks
    expired = quants.filter(batch__expiry_date__lt=today)
    expired_lots = expired.values("batch").distinct().count()
    assert 1 <= expired_lots <= 5, expired_lots
    assert quants.filter(
        batch__expiry_date__gte=today, batch__expiry_date__lte=today + datetime.timedelta(days=14)
    ).exists()
    batches = Batch.objects.filter(org=store.org, quants__store=store).distinct()
    assert batches.exclude(lot_code="").exists()
    if cannabis:
        assert any(METRC.fullmatch(b.lot_code) for b in batches)
    for batch in batches.select_related("product"):
        product = batch.product
        # within 5% of the default cost (and half a cent of rounding)
        assert abs(batch.unit_cost - product.default_cost) <= (
            product.default_cost * D("0.05") + D("0.005")
        )
        assert (batch.expiry_date is not None) == product.tracks_expiry
    # expiry by category, from the receipt date (the planted near-dated lots aside)
    lives = defaultdict(list)
    for batch in batches.filter(expiry_date__isnull=False).select_related("product"):
        received = timezone.localtime(batch.received_at, zoneinfo.ZoneInfo(store.time_zone))
        lives[batch.product.category].append((batch.expiry_date - received.date()).days)
    for category, (low, high) in SHELF_LIFE.items():
        if category in lives:
            inside = [d for d in lives[category] if low <= d <= high]
            assert len(inside) >= len(lives[category]) - 5, (category, lives[category])

    # receipts: cannabis twice a week (plus the opening delivery), grocery every day
    receipts = StockDocument.objects.filter(store=store, kind=DocumentKind.RECEIPT)
    days = {
        timezone.localtime(r.occurred_at, zoneinfo.ZoneInfo(store.time_zone)).date()
        for r in receipts
    }
    assert min(days) == today - datetime.timedelta(days=35)
    if cannabis:
        assert {d.weekday() for d in days - {min(days)}} == {1, 4}
        assert 8 <= len(days) <= 12
    else:
        assert len(days) >= 30
    assert max(len(r.result["rows"]) for r in receipts) >= 20  # many lines per document
    # upstock: one move document per evening, vault/back room to the floor
    moves = StockDocument.objects.filter(store=store, kind=DocumentKind.MOVE)
    assert moves.count() >= 25
    move_rows = StockLedger.objects.filter(store=store, ref_type=RefType.MOVE_IN)
    assert set(move_rows.values_list("location__sellable", flat=True)) == {True}

    # 30 days of sales, shaped like docs/domain.md says
    sales = Sale.objects.filter(store=store)
    tz = zoneinfo.ZoneInfo(store.time_zone)
    local = [timezone.localtime(t, tz) for t in sales.values_list("occurred_at", flat=True)]
    per_day = Counter(t.date() for t in local)
    assert set(per_day) == {today - datetime.timedelta(days=n) for n in range(1, 31)}
    assert 35 <= sum(per_day.values()) / 30 <= 65
    by_weekday = defaultdict(list)
    for day, n in per_day.items():
        by_weekday[day.weekday()].append(n)
    mean = {wd: sum(ns) / len(ns) for wd, ns in by_weekday.items()}
    assert mean[4] > mean[0] * 1.2  # Friday well above Monday
    by_hour = Counter(t.hour for t in local)
    if cannabis:  # peaks 15-17 h and 18-20 h
        assert by_hour[16] > by_hour[11] and by_hour[19] > by_hour[12]
    lines = Counter(SaleLine.objects.filter(sale__store=store).values_list("sale", flat=True))
    if cannabis:
        assert 1.6 <= sum(lines.values()) / len(lines) <= 2.0
        assert sum(1 for n in lines.values() if n == 1) / len(lines) > 0.5
    # popularity is skewed: the top tenth of the products sells more than the bottom half
    sold = sorted(
        (
            -q
            for q in StockLedger.objects.filter(store=store, ref_type=RefType.SALE)
            .values("product")
            .annotate(q=Sum("qty_delta"))
            .values_list("q", flat=True)
        ),
        reverse=True,
    )
    assert sum(sold[: len(sold) // 10]) > sum(sold[len(sold) // 2 :])
    # a few voids and refunds (cannabis returns held in quarantine)
    assert sales.filter(status=SaleStatus.VOIDED).count() == 2
    refunds = Refund.objects.filter(sale__store=store)
    assert 2 <= refunds.count() <= 30
    if cannabis:
        assert set(refunds.values_list("location__code", flat=True)) == {"QRN"}

    # shrink of 0.3-1% booked as theft and damage; one expired lot written off
    units_sold = -StockLedger.objects.filter(
        store=store, ref_type=RefType.SALE, product__unit="each"
    ).aggregate(n=Sum("qty_delta"))["n"]
    # (the discrepancies' demo corrections are its own: see the discrepancy tests below)
    shrink = StockLedger.objects.filter(store=store, ref_type=RefType.ADJUSTMENT).exclude(
        source_ref__startswith=DEMO_CORRECTIONS
    )
    assert set(shrink.values_list("reason", flat=True)) == {"theft", "damage"}
    assert not shrink.filter(qty_delta__gt=0).exists()
    ratio = -shrink.aggregate(n=Sum("qty_delta"))["n"] / units_sold
    assert D("0.003") <= ratio <= D("0.01"), ratio
    write_offs = StockDocument.objects.filter(store=store, kind=DocumentKind.WRITE_OFF).exclude(
        source_ref__startswith=DEMO_CORRECTIONS
    )
    assert [w.write_off_type for w in write_offs] == ["expiry"]
    written_off = StockLedger.objects.filter(store=store, ref_type=RefType.EXPIRY)
    assert written_off.values("batch").distinct().count() == 1
    lot = written_off.first().batch
    assert lot.expiry_date < today
    assert not StockQuant.objects.filter(batch=lot, store=store, quantity__gt=0).exists()


@pytest.mark.django_db
def test_seed_demo_reset_with_stock_rebuilds_the_same_totals():
    seed("--reset", "--days", "4")
    first = stock_totals()
    assert first["rows"] and first["sales"] and first["quants"]

    seed("--reset", "--days", "4")

    assert stock_totals() == first
    assert Organization.objects.filter(slug__in=DEMO_SLUGS).count() == 2
    assert not LedgerPurge.objects.exists()
    assert_invariants()


@pytest.mark.django_db
def test_seed_demo_other_seed_gives_other_stock():
    seed("--reset", "--days", "2")
    default = stock_totals()

    seed("--reset", "--days", "2", "--seed", "7")

    assert stock_totals()["ledger"] != default["ledger"]
    assert_invariants()


@pytest.mark.django_db
def test_seed_demo_no_stock_builds_no_stock():
    out = seed("--reset", "--no-stock")

    assert not StockLedger.objects.exists() and not Sale.objects.exists()
    assert "Stock (store-local today)" not in out


@pytest.mark.django_db
def test_receipt_may_split_one_lot_across_rooms(org, store):
    """The demo's deliveries split a package between the sales floor and the back room."""
    product = ProductFactory(org=org, sku="SPLIT")
    lines = [
        documents.ReceiptLineInput(product, loc(store, "BR"), D(8), lot_code="L1"),
        documents.ReceiptLineInput(product, loc(store, "SF"), D(2), lot_code="L1"),
    ]

    documents.receipt_record(org=org, store=store, lines=lines, client_ref=ref("rcv"))

    batch = Batch.objects.get(product=product)
    assert {q.location.code: q.quantity for q in StockQuant.objects.filter(batch=batch)} == {
        "BR": 8,
        "SF": 2,
    }
    assert_invariants()


def run_manage(*args: str, database: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SQLITE_PATH": str(database),
        "DATABASE_URL": "",
        "CELERY_BROKER_URL": "",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
    }
    return subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_seed_demo_with_stock_resets_on_sqlite(tmp_path):
    """The demo runs on SQLite: its reset must get past the ledger's SQLite trigger too."""
    database = tmp_path / "demo.sqlite3"
    migrated = run_manage("migrate", "--noinput", "-v0", database=database)
    assert migrated.returncode == 0, migrated.stderr

    for _ in range(2):  # the second reset purges a ledger the trigger guards
        built = run_manage("seed_demo", "--reset", "--days", "2", database=database)
        assert built.returncode == 0, built.stderr[-3000:]
        assert "Stock (store-local today):" in built.stdout

    # The hand-written statements of the write path keep the ledger equal to the quants on
    # SQLite too, and write datetimes as the ORM does (naive UTC), never with an offset.
    checked = run_manage("reconcile_inventory", database=database)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM inventory_stockledger").fetchone()[0] > 0
        assert db.execute("SELECT COUNT(*) FROM inventory_ledgerpurge").fetchone()[0] == 0
        for table, column in (
            ("inventory_stockledger", "occurred_at"),
            ("inventory_stockledger", "created_at"),
            ("inventory_sale", "occurred_at"),
            ("inventory_stockquant", "updated_at"),
            ("inventory_batch", "received_at"),
        ):
            offsets = db.execute(
                f"SELECT COUNT(*) FROM {table}"  # noqa: S608
                f" WHERE {column} LIKE '%+%' OR {column} LIKE '%T%'"
            ).fetchone()
            assert offsets[0] == 0, (table, column)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM inventory_stockledger")
        # the discrepancies queue is built there too, in every state
        statuses = {row[0] for row in db.execute("SELECT status FROM discrepancies_discrepancy")}
        assert statuses == set(Status.values), statuses
        # and retention's INSERT … SELECT works there: close them long ago, archive them
        closed = db.execute(
            "UPDATE discrepancies_discrepancy SET decided_at = '2020-01-02 03:04:05',"
            " adjusted_at = CASE WHEN adjusted_at IS NULL THEN NULL"
            " ELSE '2020-01-02 03:04:05' END WHERE status IN ('REJECTED', 'ADJUSTED')"
        ).rowcount
        db.commit()
    archived = run_manage("archive_discrepancies", "--older-than-days", "30", database=database)
    assert archived.returncode == 0, archived.stderr[-3000:]
    assert "northern-lights: archived" in archived.stdout
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM discrepancies_archiveddiscrepancy").fetchone() == (
            closed,
        )
        left = {row[0] for row in db.execute("SELECT status FROM discrepancies_discrepancy")}
        assert left == {"NEW", "UNDER_REVIEW", "APPROVED"}
        offsets = db.execute(
            "SELECT COUNT(*) FROM discrepancies_archiveddiscrepancy"
            " WHERE archived_at LIKE '%+%' OR archived_at LIKE '%T%'"
        ).fetchone()
        assert offsets == (0,)


@pytest.mark.django_db
def test_seed_demo_has_a_closed_full_count_and_an_open_zone_count():
    from counts.models import CountSession, VarianceRow

    seed("--reset", "--days", "4")
    closed = CountSession.objects.get(scope="FULL_STORE")
    assert closed.status == "closed"
    assert VarianceRow.objects.filter(session=closed).exclude(variance=0).exists()
    assert not VarianceRow.objects.filter(session=closed, status="pending").exists()
    zone = CountSession.objects.get(scope="ZONE", status="in_progress")
    assert zone.blind
    assert zone.passes.get().lines.exists()
    assert_invariants()


# --- never on a live deployment ------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_refuses_under_production_settings(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="refuses to run under production settings"):
        seed("--reset", "--no-stock")

    assert not Organization.objects.filter(slug__in=DEMO_SLUGS).exists()
    assert not get_user_model().objects.filter(email=PLATFORM_ADMIN_EMAIL).exists()


@pytest.mark.slow
def test_seed_demo_exits_non_zero_with_the_image_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        # Nothing listens there: the command must refuse before it touches any database.
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",
        "CACHE_URL": "redis://127.0.0.1:1/0",
        "METRICS_TOKEN": secrets.token_urlsafe(32),
    }

    result = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "seed_demo", "--reset"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "refuses to run under production settings" in result.stderr


# --- discrepancies --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_shows_discrepancies_in_every_state(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the e-mails go once it commits
        out = seed("--reset", "--days", "4")

    nl = demo_org("northern-lights")
    rows = Discrepancy.objects.filter(org=nl)
    assert set(rows.values_list("status", flat=True)) == set(Status.values)
    # from its counts and from ad-hoc corrections, both with decided and open ones
    for source in ("CYCLE_COUNT", "AD_HOC"):
        states = set(rows.filter(source=source).values_list("status", flat=True))
        assert {Status.NEW, Status.REJECTED, Status.ADJUSTED} <= states, (source, states)
    assert rows.filter(source="CYCLE_COUNT", status=Status.UNDER_REVIEW).exists()
    assert rows.filter(source="CYCLE_COUNT", status=Status.APPROVED, corrective=True).exists()
    # an open HIGH/CRITICAL one holds its product at its store
    serious = rows.filter(status=Status.NEW, severity__in=(Severity.HIGH, Severity.CRITICAL))
    assert serious.exists()
    for d in serious:
        assert StockHold.objects.filter(store=d.store, product=d.product).exists()
    # decided by the admin, never by the manager who reconciled the count or asked
    decided = rows.exclude(decided_by=None)
    assert set(decided.values_list("decided_by__email", flat=True)) == {
        "admin@northern-lights.example"
    }
    assert not decided.filter(decided_by=F("created_by")).exists()
    assert set(rows.exclude(created_by=None).values_list("created_by__email", flat=True)) == {
        "manager@northern-lights.example"
    }
    # every ADJUSTED one names the ledger rows that posted its correction
    for d in rows.filter(status=Status.ADJUSTED):
        posted = StockLedger.objects.filter(
            org=nl, ref_type=d.ledger_ref_type, ref_id=d.ledger_ref_id, ref_line=d.ledger_ref_line
        ).aggregate(n=Sum("qty_delta"))["n"]
        assert posted == d.posted_quantity != 0, d
    # the store's managers and the org's admins were told of the serious ones, once each
    told = sorted(m.to[0] for m in mail.outbox if "[northern-lights]" in m.subject)
    assert told == ["admin@northern-lights.example", "manager@northern-lights.example"]
    assert not serious.filter(notified_at=None).exists()
    # and the summary says where the queue stands
    assert re.search(
        r"^  northern-lights\s+\d+ new, \d+ under_review, \d+ approved, \d+ rejected, "
        r"\d+ adjusted; [1-9]\d* open HIGH/CRITICAL \(held\)$",
        out,
        re.M,
    )
    assert_invariants()


# --- upstock --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_shows_last_nights_completed_run_and_tonights_pending_one():
    from upstock.models import Baseline, LineStatus, RunStatus, UpstockLine, UpstockRun

    out = seed("--reset", "--days", "4")

    floors = Location.objects.filter(
        org__slug__in=DEMO_SLUGS, kind=LocationKind.SALES_FLOOR, sellable=True, is_active=True
    ).select_related("store")
    assert floors
    for floor in floors:
        store = floor.store
        tz = zoneinfo.ZoneInfo(store.time_zone)
        today = timezone.localtime(timezone.now(), tz).date()
        runs = list(UpstockRun.objects.filter(location=floor).order_by("created_at"))
        assert [run.status for run in runs] == [RunStatus.COMPLETED, RunStatus.IN_PROGRESS]
        last_night, tonight = runs
        # computed at yesterday's closing on the store's clock, worked, completed
        closing = last_night.window_end.astimezone(tz)
        assert closing.date() == today - datetime.timedelta(days=1)
        assert closing.time() == store.closing_time
        worked = set(UpstockLine.objects.filter(run=last_night).values_list("status", flat=True))
        assert LineStatus.PENDING not in worked and LineStatus.DONE in worked
        assert last_night.completed_at is not None
        # tonight's continues where last night's ended, waiting for the closing staff
        assert tonight.window_start == last_night.window_end
        assert UpstockLine.objects.filter(run=tonight, status=LineStatus.PENDING).exists()
        assert Baseline.objects.filter(location=floor).exists()
    assert re.search(r"^Upstock runs", out, re.M)
    assert re.search(r"#\d+ in progress \(\d+ lines\), #\d+ completed", out)
    assert_invariants()
