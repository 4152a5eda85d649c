"""Stock reads and reports: stock list, batches, summary, KPIs, ledger (cursor + CSV), COGS.

Numbers are checked against stock built through the real write path; every endpoint is also
checked for role access, other organisations' ids and rows, store-limited members, bad query
parameters and a query count that does not grow with the number of rows.
"""

from __future__ import annotations

import csv
import datetime
import io
import zoneinfo
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.isotime import iso
from inventory.models import Organization, RefType, Role, StockLedger
from inventory.sales import services as sales
from inventory.stock import documents
from tests.factories import ProductFactory, StoreFactory, make_gtin
from tests.stock_helpers import loc, receive, ref, sell

D = Decimal
ROLES = [Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN]


def day(n: int) -> datetime.date:
    """A date ``n`` days from the stores' local today (the test stores keep UTC)."""
    return timezone.now().date() + datetime.timedelta(days=n)


def receive_many(org, store, products, quantity=1, *, location="SF", cost=1, occurred_at=None):
    """One receipt with a line per product: many ledger rows for one write-path call."""
    lines = [
        documents.ReceiptLineInput(product, loc(store, location), D(quantity), unit_cost=D(cost))
        for product in products
    ]
    document, _ = documents.receipt_record(
        org=org, store=store, lines=lines, client_ref=ref("many"), occurred_at=occurred_at
    )
    return document


def by_key(rows, *keys):
    return {tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]: row for row in rows}


@pytest.fixture
def world(org, store):
    """Two stores of ``org`` with stock; an expired, an expiring and a negative unallocated lot.

    S1: GUM  — EXP (expired, 4 @ 2, SF), SOON (expires in 10 days, 6 @ 3, SF),
               LATER (90 days, 5 @ 4, BR): on hand 15, sellable 6, expired 4, value 46.
        TEA  — received 2 @ 5 then sold 5 in ``record`` mode: a -3 unallocated quant.
        LOW  — 3 on hand, reorder point 5.
    S2: GUM  — 30 without expiry @ 1: above reorder point + reorder qty (10 + 5).
    """
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode="record")
    org.refresh_from_db()
    store2 = StoreFactory(org=org, code="S2")
    gum = ProductFactory(
        org=org,
        sku="GUM-1",
        name="Sour Gummies",
        classification="Soft Chews",
        tracks_expiry=False,  # some of its lots carry no date (S2)
        reorder_point=D(10),
        reorder_qty=D(5),
    )
    tea = ProductFactory(
        org=org,
        sku="TEA-1",
        name="Calm Tea",
        classification="Beverages",
        barcodes=[{"code": make_gtin(4242), "kind": "gtin"}],
    )
    low = ProductFactory(
        org=org,
        sku="LOW-1",
        name="Lonely Flower",
        classification="Dried Flower",
        reorder_point=D(5),
    )
    receive(org, store, gum, 4, lot="EXP", expiry=day(-3), cost=2)
    receive(org, store, gum, 6, lot="SOON", expiry=day(10), cost=3)
    receive(org, store, gum, 5, lot="LATER", expiry=day(90), cost=4, location="BR")
    receive(org, store, tea, 2, lot="T1", cost=5)
    sell(org, store, (tea, 5))
    receive(org, store, low, 3, cost=10)
    receive(org, store2, gum, 30, lot="S2LOT", cost=1)
    return {"org": org, "s1": store, "s2": store2, "gum": gum, "tea": tea, "low": low}


@pytest.fixture
def rival(other_org, other_store):
    """Another organisation with stock of its own: its rows must never show."""
    product = ProductFactory(org=other_org, sku="GUM-1", name="Rival Gummies")
    receive(other_org, other_store, product, 99, lot="RIVAL", expiry=day(5), cost=7)
    sell(other_org, other_store, (product, 1))
    return {"org": other_org, "store": other_store, "product": product}


# --- GET /stock/ --------------------------------------------------------------------------------


def test_stock_list_numbers_per_product_and_store(world, admin_client):
    response = admin_client.get("/api/v1/stock/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 4
    rows = by_key(body["results"], "sku", "store_code")
    gum = rows[("GUM-1", "S1")]
    assert gum == {
        "product": world["gum"].pk,
        "sku": "GUM-1",
        "name": "Sour Gummies",
        "brand": "Test Brand",
        "category": "Edibles",
        "subcategory": "Soft Chews",
        "unit": "each",
        "store": world["s1"].pk,
        "store_code": "S1",
        "on_hand": "15.0000",
        "sellable": "6.0000",
        "expired": "4.0000",
        "value": "46.0000",
        "reorder_point": "10.0000",
        "reorder_qty": "5.0000",
        "status": "normal",
        "expiring_soon": "6.0000",
    }
    tea = rows[("TEA-1", "S1")]
    # 2 sold from the lot, 3 booked to the unallocated batch at the last cost (5)
    assert (tea["on_hand"], tea["sellable"], tea["value"], tea["status"]) == (
        "-3.0000",
        "0.0000",
        "-15.0000",
        "normal",
    )
    assert rows[("LOW-1", "S1")]["status"] == "low"
    s2 = rows[("GUM-1", "S2")]
    assert (s2["on_hand"], s2["sellable"], s2["expired"], s2["expiring_soon"], s2["status"]) == (
        "30.0000",
        "30.0000",
        "0.0000",
        "0.0000",
        "high",
    )
    assert [r["sku"] for r in body["results"]] == ["GUM-1", "GUM-1", "LOW-1", "TEA-1"]


def test_stock_list_expiring_within_moves_the_window(world, admin_client):
    rows = by_key(
        admin_client.get("/api/v1/stock?expiring_within=100").json()["results"], "sku", "store_code"
    )
    assert rows[("GUM-1", "S1")]["expiring_soon"] == "11.0000"
    rows = by_key(
        admin_client.get("/api/v1/stock?expiring_within=5").json()["results"], "sku", "store_code"
    )
    assert rows[("GUM-1", "S1")]["expiring_soon"] == "0.0000"


def test_stock_list_lot_expiring_today_is_sellable_not_expired(org, store, admin_client):
    product = ProductFactory(org=org, sku="TODAY")
    receive(org, store, product, 2, lot="T", expiry=day(0))
    row = admin_client.get("/api/v1/stock/").json()["results"][0]
    assert (row["sellable"], row["expired"], row["expiring_soon"]) == ("2.0000", "0.0000", "2.0000")


def local_today(tz: str) -> datetime.date:
    return timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(tz)).date()


def test_stock_list_expiry_follows_each_stores_time_zone(org, admin_client):
    # given two stores 25 hours apart: they are never on the same date
    east = StoreFactory(org=org, code="EAST", time_zone="Pacific/Kiritimati")  # UTC+14
    west = StoreFactory(org=org, code="WEST", time_zone="Pacific/Pago_Pago")  # UTC-11
    product = ProductFactory(org=org, sku="LOT")
    # and one lot expiring on the west's today, held in both
    expiry = local_today("Pacific/Pago_Pago")
    assert local_today("Pacific/Kiritimati") > expiry
    receive(org, east, product, 1, lot="L", expiry=expiry)
    receive(org, west, product, 2, lot="L", expiry=expiry)
    # then it is expired in the east only, in one read over both stores
    rows = by_key(admin_client.get("/api/v1/stock/").json()["results"], "store_code")
    assert (rows["EAST"]["expired"], rows["EAST"]["sellable"]) == ("1.0000", "0.0000")
    assert (rows["WEST"]["expired"], rows["WEST"]["sellable"]) == ("0.0000", "2.0000")
    assert rows["WEST"]["expiring_soon"] == "2.0000"
    kpis = admin_client.get("/api/v1/stock/kpis").json()
    assert (kpis["expired_units"]["each"], kpis["expiring_soon_count"]) == ("1.0000", 1)
    east_only = admin_client.get(f"/api/v1/stock/{product.pk}/batches?store={east.pk}").json()
    west_only = admin_client.get(f"/api/v1/stock/{product.pk}/batches?store={west.pk}").json()
    assert east_only["results"][0]["expiry_status"] == "expired"
    assert west_only["results"][0]["expiry_status"] == "expiring"


@pytest.mark.parametrize(
    "query,expected",
    [
        ("store={s2}", {("GUM-1", "S2")}),
        ("category=edibles", {("GUM-1", "S1"), ("GUM-1", "S2")}),
        ("subcategory=Dried%20Flower", {("LOW-1", "S1")}),
        ("category=Edibles&store={s1}", {("GUM-1", "S1")}),
        ("status=low", {("LOW-1", "S1")}),
        ("status=high", {("GUM-1", "S2")}),
        ("status=normal", {("GUM-1", "S1"), ("TEA-1", "S1")}),
        ("expiring=true", {("GUM-1", "S1")}),
        ("expiring=false", {("GUM-1", "S2"), ("TEA-1", "S1"), ("LOW-1", "S1")}),
        ("search=gumm", {("GUM-1", "S1"), ("GUM-1", "S2")}),
        ("search=tea-1", {("TEA-1", "S1")}),
        ("search=" + make_gtin(4242)[3:9], {("TEA-1", "S1")}),
        ("search=nothing-like-it", set()),
    ],
)
def test_stock_list_filters(world, admin_client, query, expected):
    query = query.format(s1=world["s1"].pk, s2=world["s2"].pk)
    response = admin_client.get(f"/api/v1/stock/?{query}")
    assert response.status_code == 200, response.content
    assert {(r["sku"], r["store_code"]) for r in response.json()["results"]} == expected


def test_stock_list_location_filter_counts_only_that_location(world, admin_client):
    back_room = loc(world["s1"], "BR")
    body = admin_client.get(f"/api/v1/stock?location={back_room.pk}").json()
    assert [(r["sku"], r["on_hand"], r["sellable"], r["value"]) for r in body["results"]] == [
        ("GUM-1", "5.0000", "0.0000", "20.0000")
    ]


def test_stock_list_is_paginated(world, admin_client):
    first = admin_client.get("/api/v1/stock?page_size=3").json()
    second = admin_client.get("/api/v1/stock?page_size=3&page=2").json()
    assert first["count"] == 4 and len(first["results"]) == 3 and first["next"]
    assert len(second["results"]) == 1 and second["next"] is None
    seen = {(r["sku"], r["store"]) for r in first["results"] + second["results"]}
    assert len(seen) == 4


# --- GET /stock/{product}/batches ---------------------------------------------------------------


def test_stock_batches_per_location_with_expiry_status(world, admin_client):
    gum, s1 = world["gum"], world["s1"]
    response = admin_client.get(f"/api/v1/stock/{gum.pk}/batches?store={s1.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["product"], body["sku"], body["store"]) == (gum.pk, "GUM-1", s1.pk)
    batches = body["results"]
    assert [(b["lot_code"], b["total"], b["expiry_status"]) for b in batches] == [
        ("EXP", "4.0000", "expired"),
        ("SOON", "6.0000", "expiring"),
        ("LATER", "5.0000", "ok"),
    ]
    later = batches[2]
    back_room = loc(s1, "BR")
    assert later["locations"] == [
        {
            "location": back_room.pk,
            "store": s1.pk,
            "code": "BR",
            "name": "Back Room",
            "quantity": "5.0000",
        }
    ]
    assert later["unit_cost"] == "4.0000" and later["expiry_date"] == day(90).isoformat()
    assert later["received_at"] and later["unallocated"] is False


def test_stock_batches_across_stores_and_window(world, admin_client):
    gum = world["gum"]
    body = admin_client.get(f"/api/v1/stock/{gum.pk}/batches/?expiring_within=120").json()
    statuses = {b["lot_code"]: b["expiry_status"] for b in body["results"]}
    assert statuses == {"EXP": "expired", "SOON": "expiring", "LATER": "expiring", "S2LOT": "none"}
    assert body["results"][-1]["lot_code"] == "S2LOT"  # no expiry: last


def test_stock_batches_shows_the_unallocated_batch(world, admin_client):
    body = admin_client.get(f"/api/v1/stock/{world['tea'].pk}/batches").json()
    assert [
        (b["lot_code"], b["unallocated"], b["total"], b["expiry_status"]) for b in body["results"]
    ] == [("", True, "-3.0000", "none")]


def test_stock_batches_spans_locations_of_one_lot(org, store, admin_client):
    product = ProductFactory(org=org, sku="SPLIT")
    receive(org, store, product, 2, lot="L", location="SF")
    receive(org, store, product, 3, lot="L", location="BR")
    body = admin_client.get(f"/api/v1/stock/{product.pk}/batches").json()
    (batch,) = body["results"]
    assert batch["total"] == "5.0000"
    assert [(x["code"], x["quantity"]) for x in batch["locations"]] == [
        ("SF", "2.0000"),
        ("BR", "3.0000"),
    ]


# --- GET /stock/summary and /stock/kpis ---------------------------------------------------------


def test_stock_summary_per_product_with_store_breakdown(world, admin_client):
    response = admin_client.get("/api/v1/stock/summary")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 3
    rows = by_key(body["results"], "sku")
    gum = rows["GUM-1"]
    assert (gum["on_hand"], gum["value"]) == ("45.0000", "76.0000")
    assert gum["stores"] == [
        {
            "store": world["s1"].pk,
            "code": "S1",
            "on_hand": "15.0000",
            "sellable": "6.0000",
            "value": "46.0000",
        },
        {
            "store": world["s2"].pk,
            "code": "S2",
            "on_hand": "30.0000",
            "sellable": "30.0000",
            "value": "30.0000",
        },
    ]
    assert rows["TEA-1"]["on_hand"] == "-3.0000"
    assert (gum["category"], gum["subcategory"], gum["unit"]) == ("Edibles", "Soft Chews", "each")


@pytest.mark.parametrize(
    "query,expected",
    [
        ("category=Edibles", ["GUM-1"]),
        ("subcategory=beverages", ["TEA-1"]),
        ("search=lonely", ["LOW-1"]),
        ("store={s2}", ["GUM-1"]),
        ("page_size=2&page=2", ["TEA-1"]),
    ],
)
def test_stock_summary_filters_and_pages(world, admin_client, query, expected):
    query = query.format(s2=world["s2"].pk)
    body = admin_client.get(f"/api/v1/stock/summary/?{query}").json()
    assert [r["sku"] for r in body["results"]] == expected


def test_stock_summary_with_store_shows_only_that_store(world, admin_client):
    body = admin_client.get(f"/api/v1/stock/summary?store={world['s2'].pk}").json()
    assert [s["code"] for s in body["results"][0]["stores"]] == ["S2"]
    assert body["results"][0]["on_hand"] == "30.0000"


def each(quantity: str) -> dict:
    """KPI quantities per unit of measure, with only pieces held."""
    return {"each": quantity, "g": "0.0000", "ml": "0.0000"}


def test_stock_kpis(world, admin_client):
    response = admin_client.get("/api/v1/stock/kpis")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "store": None,
        "expiring_within": 30,
        "skus": 3,
        "units": each("45.0000"),  # 15 + 30 + 3 - 3
        "value": "91.0000",  # 46 + 30 + 30 - 15
        "low_stock_count": 1,
        "expiring_soon_count": 1,
        "expired_units": each("4.0000"),
    }
    one = admin_client.get(f"/api/v1/stock/kpis/?store={world['s2'].pk}&expiring_within=100")
    assert one.json() == {
        "store": world["s2"].pk,
        "expiring_within": 100,
        "skus": 1,
        "units": each("30.0000"),
        "value": "30.0000",
        "low_stock_count": 0,
        "expiring_soon_count": 0,
        "expired_units": each("0.0000"),
    }
    wide = admin_client.get("/api/v1/stock/kpis?expiring_within=100").json()
    assert wide["expiring_soon_count"] == 2  # SOON and LATER


def test_stock_kpis_keep_pieces_grams_and_millilitres_apart(org, store, admin_client):
    flower = ProductFactory(org=org, sku="GRAMS", unit="g")
    oil = ProductFactory(org=org, sku="ML", unit="ml")
    pens = ProductFactory(org=org, sku="PENS", unit="each")
    receive(org, store, flower, "3.5")
    receive(org, store, oil, 30)
    receive(org, store, pens, 2)
    kpis = admin_client.get("/api/v1/stock/kpis").json()
    assert kpis["units"] == {"each": "2.0000", "g": "3.5000", "ml": "30.0000"}
    assert kpis["skus"] == 3


def test_stock_kpis_of_an_empty_org(org, store, admin_client):
    assert admin_client.get("/api/v1/stock/kpis").json() == {
        "store": None,
        "expiring_within": 30,
        "skus": 0,
        "units": each("0.0000"),
        "value": "0.0000",
        "low_stock_count": 0,
        "expiring_soon_count": 0,
        "expired_units": each("0.0000"),
    }


# --- GET /ledger/ -------------------------------------------------------------------------------


def test_ledger_rows_carry_sku_and_lot(world, admin_client):
    response = admin_client.get("/api/v1/ledger/")
    assert response.status_code == 200, response.content
    body = response.json()
    ids = [r["id"] for r in body["results"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == StockLedger.objects.filter(org=world["org"]).count()
    first = StockLedger.objects.filter(org=world["org"], batch__lot_code="LATER").get()
    row = next(r for r in body["results"] if r["id"] == first.pk)
    assert row == {
        "id": first.pk,
        "occurred_at": iso(first.occurred_at),
        "created_at": iso(first.created_at),
        "store": world["s1"].pk,
        "location": loc(world["s1"], "BR").pk,
        "product": world["gum"].pk,
        "sku": "GUM-1",
        "batch": first.batch_id,
        "lot_code": "LATER",
        "qty_delta": "5.0000",
        "unit_cost": "4.0000",
        "ref_type": "RECEIPT",
        "ref_id": first.ref_id,
        "ref_line": 1,
        "source": "api",
        "source_ref": "",
        "reason": "",
        "user": None,
    }


def test_ledger_filters(world, admin_client, client_for):
    org, s1, gum, tea = world["org"], world["s1"], world["gum"], world["tea"]
    manager = client_for(Role.MANAGER)
    moment = datetime.datetime(2026, 1, 15, 12, tzinfo=datetime.UTC)
    sale = sales.sale_record(
        org=org,
        store=s1,
        lines=[sales.SaleLineInput(gum, D(1))],
        client_ref=ref("s"),
        occurred_at=moment,
        source_ref="COVA-77",
        actor=manager.user,
    )[0]
    sold = StockLedger.objects.get(ref_type=RefType.SALE, ref_id=sale.pk)
    soon = sold.batch_id

    def ids(query):
        response = admin_client.get(f"/api/v1/ledger?{query}")
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    everything = StockLedger.objects.filter(org=org)
    assert ids(f"store={world['s2'].pk}") == set(
        everything.filter(store=world["s2"]).values_list("id", flat=True)
    )
    assert ids(f"product={tea.pk}") == set(
        everything.filter(product=tea).values_list("id", flat=True)
    )
    assert ids(f"location={loc(s1, 'BR').pk}") == set(
        everything.filter(location=loc(s1, "BR")).values_list("id", flat=True)
    )
    assert ids(f"batch={soon}") == set(
        everything.filter(batch_id=soon).values_list("id", flat=True)
    )
    assert ids(f"ref_type=SALE&ref_id={sale.pk}") == {sold.pk}
    assert ids(f"ref_id={sale.pk}&ref_type=SALE&product={gum.pk}") == {sold.pk}
    assert ids("source_ref=COVA-77") == {sold.pk}
    assert ids(f"user={manager.user.pk}") == {sold.pk}
    assert ids("occurred_from=2026-01-15T12:00:00Z&occurred_to=2026-01-15T12:00:01Z") == {sold.pk}
    assert ids("occurred_to=2026-01-15T12:00:00Z") == set()  # "to" is exclusive
    assert ids("ref_type=VOID") == set()


def test_ledger_cursor_pagination_walks_every_row_once(org, store, admin_client):
    products = [ProductFactory(org=org) for _ in range(25)]
    receive_many(org, store, products)
    expected = set(StockLedger.objects.filter(org=org).values_list("id", flat=True))
    seen, url, pages = [], "/api/v1/ledger/?page_size=10", 0
    while url:
        body = admin_client.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3 and len(seen) == 25 and set(seen) == expected
    assert seen == sorted(seen, reverse=True)
    assert "count" not in body  # keyset pagination never counts


def test_ledger_page_size_is_capped(org, store, admin_client):
    receive_many(org, store, [ProductFactory(org=org) for _ in range(3)])
    assert len(admin_client.get("/api/v1/ledger?page_size=2").json()["results"]) == 2
    assert len(admin_client.get("/api/v1/ledger?page_size=100000").json()["results"]) == 3


def read_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_ledger_csv_streams_every_matching_row(org, store, admin_client):
    products = [ProductFactory(org=org, unit="g") for _ in range(130)]  # more than a page
    receive_many(org, store, products, quantity="1.5", cost="2.25")
    response = admin_client.get("/api/v1/ledger/?format=csv")
    rows = read_csv(response)
    assert "attachment" in response["Content-Disposition"]
    assert list(rows[0]) == [
        "id",
        "occurred_at",
        "created_at",
        "store",
        "location",
        "product",
        "sku",
        "batch",
        "lot_code",
        "qty_delta",
        "unit_cost",
        "ref_type",
        "ref_id",
        "ref_line",
        "source",
        "source_ref",
        "reason",
        "user",
    ]
    assert len(rows) == 130
    assert {int(r["id"]) for r in rows} == set(
        StockLedger.objects.filter(org=org).values_list("id", flat=True)
    )
    assert {r["sku"] for r in rows} == {p.sku for p in products}
    assert {(r["qty_delta"], r["unit_cost"], r["ref_type"], r["user"]) for r in rows} == {
        ("1.5000", "2.2500", "RECEIPT", "")
    }


def test_ledger_csv_chunks_join_into_the_same_rows(org, store):
    from inventory.api.reports.views import ledger_csv_chunks
    from inventory.reports import selectors as reads

    receive_many(org, store, [ProductFactory(org=org) for _ in range(15)])
    rows = reads.ledger_list(scope=reads.stock_scope(org=org))
    small = list(ledger_csv_chunks(rows, rows_per_chunk=4))
    assert len(small) == 4  # 4 + 4 + 4 + 3 rows (the header rides with the first)
    assert "".join(small) == "".join(ledger_csv_chunks(rows))
    assert len(list(csv.reader(io.StringIO("".join(small))))) == 16


def test_ledger_csv_by_accept_header_and_filters(world, admin_client):
    response = admin_client.get(f"/api/v1/ledger?product={world['tea'].pk}", HTTP_ACCEPT="text/csv")
    rows = read_csv(response)
    assert {r["sku"] for r in rows} == {"TEA-1"}
    assert sorted(r["ref_type"] for r in rows) == ["RECEIPT", "SALE", "SALE"]
    assert {r["lot_code"] for r in rows} == {"T1", ""}


def test_ledger_csv_errors_answer_json(world, admin_client):
    response = admin_client.get("/api/v1/ledger?format=csv&product=abc")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["fields"] == {"product": ["A valid integer is required."]}
    assert APIClient().get("/api/v1/ledger?format=csv").status_code == 401


# --- GET /reports/cogs --------------------------------------------------------------------------


def test_cogs_by_product_and_lot_with_refunds_and_voids(org, store, admin_client):
    gum = ProductFactory(org=org, sku="GUM", name="Gum", tracks_expiry=True)
    tea = ProductFactory(org=org, sku="TEA", name="Tea")
    receive(org, store, gum, 2, lot="A", expiry=day(5), cost=1)
    receive(org, store, gum, 10, lot="B", expiry=day(9), cost=2)
    receive(org, store, tea, 10, lot="T", cost="0.5")
    at = datetime.datetime(2026, 3, 10, 15, tzinfo=datetime.UTC)
    sale = sell(org, store, (gum, 5), (tea, 4), occurred_at=at)  # gum: A 2 @1 + B 3 @2
    sales.sale_refund(
        org=org,
        sale=sale,
        lines=[sales.RefundLineInput(1, D(1))],
        client_ref=ref("r"),
        occurred_at=at,
    )  # one gum of lot B back
    voided = sell(org, store, (tea, 2), occurred_at=at)
    sales.sale_void(org=org, sale=voided)  # posted now: outside March, nets out later
    sell(org, store, (tea, 1), occurred_at=at - datetime.timedelta(days=30))  # before the period
    response = admin_client.get(
        f"/api/v1/reports/cogs?store={store.pk}&from=2026-03-01&to=2026-03-31"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    # gum: 2*1 + 3*2 - 1*2 = 6 for 4 units; tea: 4*0.5 + 2*0.5 = 3 for 6 units
    assert body["totals"] == {"quantity": "10.0000", "cost": "9.0000"}
    assert body["by_product"] == [
        {"product": gum.pk, "sku": "GUM", "name": "Gum", "quantity": "4.0000", "cost": "6.0000"},
        {"product": tea.pk, "sku": "TEA", "name": "Tea", "quantity": "6.0000", "cost": "3.0000"},
    ]
    assert [(r["sku"], r["lot_code"], r["quantity"], r["cost"]) for r in body["by_lot"]] == [
        ("GUM", "B", "2.0000", "4.0000"),
        ("TEA", "T", "6.0000", "3.0000"),
        ("GUM", "A", "2.0000", "2.0000"),
    ]
    assert body["by_lot"][0]["expiry_date"] == day(9).isoformat()
    assert (body["from"], body["to"], body["store"]) == ("2026-03-01", "2026-03-31", store.pk)
    # the void happened today: in a period that includes today it cancels the voided sale
    today = timezone.now().date()
    whole = admin_client.get(f"/api/v1/reports/cogs?from=2026-01-01&to={today}").json()
    assert by_key(whole["by_product"], "sku")["TEA"]["quantity"] == "5.0000"  # 4 + 2 - 2 + 1


def test_cogs_days_are_store_local(org, admin_client):
    west = StoreFactory(org=org, code="YVR", time_zone="America/Vancouver")
    product = ProductFactory(org=org, sku="P")
    receive(org, west, product, 5, cost=3)
    # 05:00 UTC on March 2 is still March 1 in Vancouver (UTC-8)
    sell(org, west, (product, 1), occurred_at=datetime.datetime(2026, 3, 2, 5, tzinfo=datetime.UTC))
    march1 = admin_client.get("/api/v1/reports/cogs?from=2026-03-01&to=2026-03-01").json()
    march2 = admin_client.get("/api/v1/reports/cogs?from=2026-03-02&to=2026-03-02").json()
    assert march1["totals"] == {"quantity": "1.0000", "cost": "3.0000"}
    assert march2["totals"] == {"quantity": "0.0000", "cost": "0.0000"}
    assert march2["by_product"] == [] and march2["by_lot"] == []


@pytest.mark.parametrize(
    "query,field",
    [
        ("to=2026-01-01", "from"),
        ("from=2026-01-01", "to"),
        ("from=2026-13-01&to=2026-12-01", "from"),
        ("from=2026-02-01&to=2026-01-31", "to"),
        ("from=2025-01-01&to=2026-01-02", "to"),
        ("from=2026-01-01&to=2026-01-02&store=x", "store"),
    ],
)
def test_cogs_refuses_bad_periods(org, store, admin_client, query, field):
    response = admin_client.get(f"/api/v1/reports/cogs?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]


def test_cogs_accepts_a_leap_year_of_366_days(org, store, admin_client):
    response = admin_client.get("/api/v1/reports/cogs?from=2028-01-01&to=2028-12-31")
    assert response.status_code == 200, response.content


# --- query counts -------------------------------------------------------------------------------

READ_URLS = [
    "/api/v1/stock/",
    "/api/v1/stock/summary",
    "/api/v1/stock/kpis",
    "/api/v1/stock/{product}/batches",
    "/api/v1/ledger/",
    "/api/v1/ledger/?format=csv",
    "/api/v1/reports/cogs?from=2020-01-01&to=2020-12-31",
]


def stock_for(org, stores, n: int, first_product=None):
    """n products with two lots each in every store, each also sold once."""
    products = [first_product] if first_product else []
    products += [ProductFactory(org=org, reorder_point=D(1)) for _ in range(n - len(products))]
    for store in stores:
        receive_many(org, store, products, quantity=3, location="SF")
        receive_many(org, store, products, quantity=2, location="BR", cost=2)
        for product in products:
            sell(
                org,
                store,
                (product, 1),
                occurred_at=datetime.datetime(2020, 6, 1, tzinfo=datetime.UTC),
            )
    return products


@pytest.mark.parametrize("url", READ_URLS)
def test_read_query_count_does_not_grow_with_rows(
    url, org, store, admin_client, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    store2 = StoreFactory(org=org, code="S2")
    (first,) = stock_for(org, [store, store2], 1)
    url = url.format(product=first.pk)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url)
            if response.streaming:
                b"".join(response.streaming_content)
        assert response.status_code == 200, getattr(response, "content", b"")
        return len(queries)

    count()  # warm up: the token's last-used time is written once
    few = count()
    stock_for(org, [store, store2], 40)
    with django_assert_num_queries(few):
        response = admin_client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    assert few <= 8


# --- access: roles, anonymous, other organisations, store-limited members -----------------------

ENDPOINTS = [
    "/api/v1/stock/",
    "/api/v1/stock",
    "/api/v1/stock/summary/",
    "/api/v1/stock/summary",
    "/api/v1/stock/kpis/",
    "/api/v1/stock/kpis",
    "/api/v1/stock/{product}/batches/",
    "/api/v1/stock/{product}/batches",
    "/api/v1/ledger/",
    "/api/v1/ledger",
    "/api/v1/reports/cogs/?from=2026-01-01&to=2026-01-31",
    "/api/v1/reports/cogs?from=2026-01-01&to=2026-01-31",
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", ENDPOINTS)
def test_read_endpoints_answer_every_role(world, client_for, role, url):
    response = client_for(role).get(url.format(product=world["gum"].pk))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("url", ENDPOINTS)
def test_read_endpoints_refuse_anonymous_callers(world, url):
    response = APIClient().get(url.format(product=world["gum"].pk))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("url", ENDPOINTS)
def test_read_endpoints_another_orgs_store_answers_404(world, rival, admin_client, url):
    sep = "&" if "?" in url else "?"
    response = admin_client.get(
        url.format(product=world["gum"].pk) + f"{sep}store={rival['store'].pk}"
    )
    assert response.status_code == 404, response.content
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}


@pytest.mark.parametrize("product", ["rival", "missing"])
def test_stock_batches_of_another_orgs_or_a_missing_product_is_404(
    world, rival, admin_client, product
):
    product_id = rival["product"].pk if product == "rival" else 987654
    response = admin_client.get(f"/api/v1/stock/{product_id}/batches")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}


def test_stock_list_another_orgs_location_answers_404(world, rival, admin_client):
    response = admin_client.get(f"/api/v1/stock?location={loc(rival['store'], 'SF').pk}")
    assert response.status_code == 404


def test_other_orgs_rows_never_appear(world, rival, admin_client):
    mine = set()
    for url in ["/api/v1/stock/", "/api/v1/stock/summary"]:
        rows = admin_client.get(url).json()["results"]
        mine |= {r["product"] for r in rows}
        assert rival["product"].pk not in {r["product"] for r in rows}
    ledger = admin_client.get("/api/v1/ledger?page_size=1000").json()["results"]
    assert {r["store"] for r in ledger} == {world["s1"].pk, world["s2"].pk}
    assert read_csv(admin_client.get("/api/v1/ledger?format=csv")) and not [
        r
        for r in read_csv(admin_client.get("/api/v1/ledger?format=csv"))
        if r["lot_code"] == "RIVAL"
    ]
    # another org's product id as a ledger filter simply matches nothing of mine
    assert admin_client.get(f"/api/v1/ledger?product={rival['product'].pk}").json()["results"] == []
    today = timezone.now().date()
    cogs = admin_client.get(f"/api/v1/reports/cogs?from={today}&to={today}").json()
    assert {r["product"] for r in cogs["by_product"]} == {world["tea"].pk}
    kpis = admin_client.get("/api/v1/stock/kpis").json()
    assert kpis["skus"] == 3 and kpis["units"]["each"] == "45.0000"


def test_store_limited_member_sees_only_their_store(world, client_for):
    s1, s2 = world["s1"], world["s2"]
    client = client_for(Role.VIEWER, stores=[s2])
    rows = client.get("/api/v1/stock/").json()["results"]
    assert {(r["sku"], r["store"]) for r in rows} == {("GUM-1", s2.pk)}
    summary = client.get("/api/v1/stock/summary").json()["results"]
    assert [(r["sku"], [s["store"] for s in r["stores"]]) for r in summary] == [("GUM-1", [s2.pk])]
    batches = client.get(f"/api/v1/stock/{world['gum'].pk}/batches").json()["results"]
    assert [b["lot_code"] for b in batches] == ["S2LOT"]
    assert client.get(f"/api/v1/stock/{world['tea'].pk}/batches").json()["results"] == []
    ledger = client.get("/api/v1/ledger").json()["results"]
    assert {r["store"] for r in ledger} == {s2.pk}
    assert {r["store"] for r in read_csv(client.get("/api/v1/ledger?format=csv"))} == {str(s2.pk)}
    kpis = client.get("/api/v1/stock/kpis").json()
    assert (kpis["skus"], kpis["units"]["each"]) == (1, "30.0000")
    today = timezone.now().date()
    cogs = client.get(f"/api/v1/reports/cogs?from={today}&to={today}").json()
    assert cogs["by_product"] == []  # the TEA sale was in S1
    # naming the forbidden store, or one of its locations, is a 404
    for url in [
        f"/api/v1/stock?store={s1.pk}",
        f"/api/v1/ledger?store={s1.pk}",
        f"/api/v1/stock/kpis?store={s1.pk}",
        f"/api/v1/stock/summary?store={s1.pk}",
        f"/api/v1/stock/{world['gum'].pk}/batches?store={s1.pk}",
        f"/api/v1/reports/cogs?from={today}&to={today}&store={s1.pk}",
        f"/api/v1/stock?location={loc(s1, 'SF').pk}",
    ]:
        assert client.get(url).status_code == 404, url


# --- bad parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,field",
    [
        ("/api/v1/stock?store=abc", "store"),
        ("/api/v1/stock?store=1.5", "store"),
        ("/api/v1/stock?store=-3", "store"),
        ("/api/v1/stock?location=x", "location"),
        ("/api/v1/stock?status=empty", "status"),
        ("/api/v1/stock?expiring=maybe", "expiring"),
        ("/api/v1/stock?expiring_within=-1", "expiring_within"),
        ("/api/v1/stock?expiring_within=soon", "expiring_within"),
        ("/api/v1/stock/summary?store=abc", "store"),
        ("/api/v1/stock/kpis?expiring_within=-5", "expiring_within"),
        ("/api/v1/stock/{product}/batches?expiring_within=-1", "expiring_within"),
        ("/api/v1/stock/{product}/batches?store=S1", "store"),
        ("/api/v1/ledger?product=abc", "product"),
        ("/api/v1/ledger?batch=1e3", "batch"),
        ("/api/v1/ledger?location=0", "location"),
        ("/api/v1/ledger?user=me", "user"),
        ("/api/v1/ledger?ref_id=x&ref_type=SALE", "ref_id"),
        ("/api/v1/ledger?ref_id=12", "ref_id"),
        ("/api/v1/ledger?ref_type=THEFT", "ref_type"),
        ("/api/v1/ledger?occurred_from=yesterday", "occurred_from"),
        ("/api/v1/ledger?occurred_to=2026-02-30T00:00:00Z", "occurred_to"),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(world, admin_client, url, field):
    response = admin_client.get(url.format(product=world["gum"].pk))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["fields"]) == [field]
