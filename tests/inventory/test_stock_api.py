"""Stock writes over HTTP: sales, voids, refunds, receipts, moves, adjustments, write-offs.

Everything goes through the real API on PostgreSQL, so these tests pin what a POS or a tablet
sees: the numbers in the answers, the stable error codes and fields, the roles, the tenant walls,
idempotent replays, and that a refused request leaves the database exactly as it was.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.catalog.barcodes import gtin_check_digit
from inventory.models import (
    Batch,
    LocationKind,
    Organization,
    RefType,
    Refund,
    Role,
    Sale,
    SaleLine,
    ShortfallOutcome,
    StockDocument,
    StockLedger,
    StockQuant,
    StockShortfall,
)
from inventory.tenancy.services import location_create
from tests.factories import ProductFactory, StoreFactory, VariancePolicyFactory, make_gtin
from tests.stock_helpers import assert_invariants, days, loc, on_hand, receive, ref, sell

D = Decimal
ROLES = [Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN]

SALES = "/api/v1/sales"
RECEIPTS = "/api/v1/stock/receipts"
MOVES = "/api/v1/stock/moves"
ADJUSTMENTS = "/api/v1/stock/adjustments"
WRITE_OFFS = "/api/v1/stock/write-offs"

# A UPC-A (GTIN-12) as printed on the gummies; scanners may send it as GTIN-13 or GTIN-14.
UPC = "71234567890" + str(gtin_check_digit("71234567890"))
BAD_UPC = UPC[:-1] + str((int(UPC[-1]) + 1) % 10)
THEIR_GTIN = make_gtin(555)


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def gum(org):
    """Counted in units, with expiring lots."""
    return ProductFactory(
        org=org,
        sku="GUM",
        name="Gummies",
        unit="each",
        tracks_expiry=True,
        default_cost=D("1.00"),
        barcodes=[{"code": UPC, "kind": "gtin"}],
    )


@pytest.fixture
def flower(org):
    """Sold by the gram, no expiry."""
    return ProductFactory(
        org=org, sku="FLW", name="Flower", unit="g", tracks_expiry=False, default_cost=D("4.00")
    )


@pytest.fixture
def sf(store):
    return loc(store, "SF")


@pytest.fixture
def br(store):
    return loc(store, "BR")


@pytest.fixture
def manager(client_for):
    return client_for(Role.MANAGER)


@pytest.fixture
def operator(client_for):
    return client_for(Role.OPERATOR)


@pytest.fixture
def generous_policy(org):
    """Corrections of any size within policy (adjustments and write-offs post at once, as these
    tests of the write path need), except what the 20% store-drop rule keeps for approval."""
    return VariancePolicyFactory(org=org, units=1000, percent=100)


@pytest.fixture
def world(org, other_org, store, gum, flower):
    """Our store with stock and one sale of 2 gummies; a second store; a rival org likewise."""
    store2 = StoreFactory(org=org, code="S2")
    receive(org, store, gum, 10, lot="A", expiry=days(30), cost="2")
    receive(org, store, gum, 10, location="BR", lot="B", expiry=days(60), cost="2")
    receive(org, store, flower, 50, cost="4")
    sale = sell(org, store, (gum, 2))
    their_store = StoreFactory(org=other_org, code="R1")
    their_product = ProductFactory(
        org=other_org, sku="RIVAL-1", barcodes=[{"code": THEIR_GTIN, "kind": "gtin"}]
    )
    receive(other_org, their_store, their_product, 5, lot="R")
    their_sale = sell(other_org, their_store, (their_product, 1))
    return SimpleNamespace(
        org=org,
        store=store,
        store2=store2,
        sf=loc(store, "SF"),
        br=loc(store, "BR"),
        sf2=loc(store2, "SF"),
        br2=loc(store2, "BR"),
        gum=gum,
        flower=flower,
        sale=sale,
        their_store=their_store,
        their_product=their_product,
        their_sale=their_sale,
        their_sf=loc(their_store, "SF"),
        their_br=loc(their_store, "BR"),
    )


def post(client, path, body):
    return client.post(path, body, format="json")


def state() -> dict:
    """Every stock row there is (all orgs), to prove a refused request wrote nothing."""
    out = {
        model.__name__: model.objects.count()
        for model in (StockLedger, Sale, SaleLine, Refund, StockDocument, Batch, StockShortfall)
    }
    out["quants"] = sorted(StockQuant.objects.values_list("id", "quantity"))
    out["sales"] = sorted(Sale.objects.values_list("id", "status"))
    return out


def consumed(line: dict) -> list[tuple]:
    return [(c["lot_code"], c["location"], c["quantity"], c["unit_cost"]) for c in line["consumed"]]


def quantity_of(batch_id, location) -> Decimal:
    quant = StockQuant.objects.filter(batch_id=batch_id, location=location).first()
    return quant.quantity if quant else D("0")


def batch(product, lot: str) -> Batch:
    return Batch.objects.get(product=product, lot_code=lot)


def ledger_of(ref_type, ref_id) -> list[tuple]:
    rows = StockLedger.objects.filter(ref_type=ref_type, ref_id=ref_id).order_by("id")
    return [(r.batch.lot_code, r.location_id, r.qty_delta) for r in rows]


# Request bodies: a valid base per kind, overridden per test. A value may be a function of the
# world (ids exist only at run time); DROP removes a key.
DROP = object()


def _base(kind: str, w) -> tuple[dict, dict]:
    if kind == "sale":
        return {"product": w.gum.pk, "quantity": "1"}, {"store": w.store.pk}
    if kind == "receipt":
        return (
            {"product": w.flower.pk, "location": w.sf.pk, "quantity": "5", "unit_cost": "3"},
            {"store": w.store.pk},
        )
    if kind == "move":
        return (
            {
                "product": w.gum.pk,
                "from_location": w.sf.pk,
                "to_location": w.br.pk,
                "quantity": "1",
            },
            {"store": w.store.pk},
        )
    if kind == "adjustment":
        return (
            {"product": w.gum.pk, "location": w.sf.pk, "quantity": "1"},
            {"store": w.store.pk, "reason": "count correction"},
        )
    if kind == "write_off":
        return (
            {"product": w.gum.pk, "location": w.sf.pk, "quantity": "1"},
            {"store": w.store.pk, "type": "damage", "reason": "dropped"},
        )
    if kind == "refund":
        return {"line": 1, "quantity": "1"}, {}
    raise AssertionError(kind)


def _merge(base: dict, over: dict, w) -> dict:
    merged = {k: (v(w) if callable(v) else v) for k, v in {**base, **over}.items()}
    return {k: v for k, v in merged.items() if v is not DROP}


def build(kind: str, w, line: dict | None = None, top: dict | None = None) -> dict:
    base_line, base_top = _base(kind, w)
    body = {"client_ref": ref(kind), **base_top, "lines": [_merge(base_line, line or {}, w)]}
    return _merge(body, top or {}, w)


def path_of(kind: str, w) -> str:
    if kind == "refund":
        return f"{SALES}/{w.sale.pk}/refunds"
    return {
        "sale": SALES,
        "receipt": RECEIPTS,
        "move": MOVES,
        "adjustment": ADJUSTMENTS,
        "write_off": WRITE_OFFS,
    }[kind]


KINDS = ["sale", "receipt", "move", "adjustment", "write_off", "refund"]
DOCUMENT_KINDS = ["sale", "receipt", "move", "adjustment", "write_off"]


# --- sales: happy paths -----------------------------------------------------------------------


def test_sale_by_product_id_lists_consumed_lots_and_cogs(org, store, gum, sf, operator):
    receive(org, store, gum, 3, lot="A", expiry=days(10), cost="2.50")
    receive(org, store, gum, 5, lot="B", expiry=days(30), cost="3")
    response = post(
        operator,
        SALES,
        {
            "store": store.pk,
            "client_ref": "pos-1",
            "lines": [{"product": gum.pk, "quantity": "4", "unit_price": "9.99"}],
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    line = body["lines"][0]
    assert (line["line"], line["product"], line["sku"], line["quantity"], line["unit_price"]) == (
        1,
        gum.pk,
        "GUM",
        "4.0000",
        "9.9900",
    )
    assert consumed(line) == [("A", sf.pk, "3.0000", "2.5000"), ("B", sf.pk, "1.0000", "3.0000")]
    assert [c["expiry_date"] for c in line["consumed"]] == [
        days(10).isoformat(),
        days(30).isoformat(),
    ]
    assert line["cost"] == "10.5000"  # 3 × 2.50 + 1 × 3
    assert body["cogs"] == "10.5000"
    assert (body["status"], body["warnings"], body["client_ref"]) == ("completed", [], "pos-1")
    assert ledger_of(RefType.SALE, body["id"]) == [("A", sf.pk, D("-3")), ("B", sf.pk, D("-1"))]
    assert on_hand(gum) == 4
    assert_invariants()


@pytest.mark.parametrize(
    "ident",
    [
        {"sku": "GUM"},
        {"sku": " GUM "},
        {"barcode": UPC},  # GTIN-12 as stored
        {"barcode": "0" + UPC},  # the same item scanned as GTIN-13 (EAN)
        {"barcode": "00" + UPC},  # ... and as GTIN-14
        {"barcode": f"(01)00{UPC}(10)A"},  # GS1 human-readable element string
        {"barcode": f"0100{UPC}10A"},  # GS1 as the scanner sends it
    ],
    ids=["sku", "sku-padded", "gtin12", "gtin13", "gtin14", "gs1-hri", "gs1-raw"],
)
def test_sale_by_sku_or_barcode_finds_the_product(ident, org, store, gum, sf, operator):
    receive(org, store, gum, 5, lot="A", expiry=days(10), cost="2")
    response = post(
        operator,
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{**ident, "quantity": "2"}]},
    )
    assert response.status_code == 201, response.content
    line = response.json()["lines"][0]
    assert line["product"] == gum.pk
    assert consumed(line) == [("A", sf.pk, "2.0000", "2.0000")]
    assert response.json()["cogs"] == "4.0000"


def test_sale_of_a_gram_product_accepts_fractions(org, store, flower, sf, operator):
    receive(org, store, flower, 10, cost="4")
    response = post(
        operator,
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{"sku": "FLW", "quantity": "1.5"}]},
    )
    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["quantity"] == "1.5000"
    assert response.json()["cogs"] == "6.0000"
    assert on_hand(flower) == D("8.5")


def test_sale_line_naming_a_sellable_location_consumes_only_there(org, store, gum, sf, operator):
    counter = location_create(
        org=org,
        store=store,
        code="SF2",
        name="Counter 2",
        kind=LocationKind.SALES_FLOOR,
        sellable=True,
        sort_order=5,
    )
    receive(org, store, gum, 5, lot="SOON", expiry=days(5), cost="1")
    receive(org, store, gum, 5, location="SF2", lot="LATER", expiry=days(50), cost="2")
    response = post(
        operator,
        SALES,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [{"product": gum.pk, "quantity": "2", "location": counter.pk}],
        },
    )
    assert response.status_code == 201, response.content
    assert consumed(response.json()["lines"][0]) == [("LATER", counter.pk, "2.0000", "2.0000")]
    # without a location the same sale would take the earliest expiry, on the sales floor
    response = post(
        operator,
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{"product": gum.pk, "quantity": "2"}]},
    )
    assert consumed(response.json()["lines"][0]) == [("SOON", sf.pk, "2.0000", "1.0000")]
    assert on_hand(gum, sf) == 3 and on_hand(gum, counter) == 3


def test_sale_of_500_lines_is_accepted(org, store, flower, sf, operator):
    receive(org, store, flower, 500, cost="1")
    response = post(
        operator,
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{"sku": "FLW", "quantity": "1"}] * 500},
    )
    assert response.status_code == 201, response.content
    assert len(response.json()["lines"]) == 500
    assert response.json()["cogs"] == "500.0000"
    assert on_hand(flower) == 0
    assert_invariants()


def test_sale_in_the_past_sells_a_lot_that_has_expired_since(org, store, gum, sf, operator):
    """Expiry is judged on the store-local date of the sale's occurred_at, not today's."""
    receive(org, store, gum, 2, lot="GONE", expiry=days(-1), cost="1")
    then = (timezone.now() - datetime.timedelta(days=3)).isoformat()
    response = post(
        operator,
        SALES,
        {
            "store": store.pk,
            "client_ref": ref(),
            "occurred_at": then,
            "lines": [{"product": gum.pk, "quantity": "1"}],
        },
    )
    assert response.status_code == 201, response.content
    assert consumed(response.json()["lines"][0]) == [("GONE", sf.pk, "1.0000", "1.0000")]
    now = post(
        operator,
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{"product": gum.pk, "quantity": "1"}]},
    )
    assert now.status_code == 409


def test_sale_of_an_archived_product_is_refused(world, operator):
    world.flower.is_active = False
    world.flower.save(update_fields=["is_active"])
    before = state()
    response = post(
        operator,
        SALES,
        {"store": world.store.pk, "client_ref": ref(), "lines": [{"sku": "FLW", "quantity": "1"}]},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "inactive_product"
    assert list(response.json()["fields"]) == ["lines.0.sku"]
    assert state() == before


def test_sales_are_listed_and_shown_to_a_viewer(world, client_for):
    viewer = client_for(Role.VIEWER)
    page = viewer.get(SALES)
    assert page.status_code == 200
    assert [s["id"] for s in page.json()["results"]] == [world.sale.pk]  # not the rival's
    detail = viewer.get(f"{SALES}/{world.sale.pk}")
    assert detail.status_code == 200
    body = detail.json()
    assert (body["id"], body["status"], body["voided_at"], body["refunds"]) == (
        world.sale.pk,
        "completed",
        None,
        [],
    )
    assert consumed(body["lines"][0]) == [("A", world.sf.pk, "2.0000", "2.0000")]


# --- void and refunds -------------------------------------------------------------------------


@pytest.fixture
def sold(org, store, gum, sf, operator):
    """A sale of 4 gummies: 3 from lot A (cost 2.50) then 1 from lot B (cost 3)."""
    receive(org, store, gum, 3, lot="A", expiry=days(10), cost="2.50")
    receive(org, store, gum, 5, lot="B", expiry=days(30), cost="3")
    response = post(
        operator,
        SALES,
        {
            "store": store.pk,
            "client_ref": "pos-sold",
            "lines": [{"product": gum.pk, "quantity": "4"}],
        },
    )
    assert response.status_code == 201
    return Sale.objects.get(pk=response.json()["id"])


def test_void_restores_every_batch_and_voiding_twice_posts_nothing(sold, gum, sf, manager):
    response = post(manager, f"{SALES}/{sold.pk}/void", {"reason": "customer changed mind"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "voided" and body["voided_at"]
    assert quantity_of(batch(gum, "A"), sf) == 3 and quantity_of(batch(gum, "B"), sf) == 5
    assert sorted(ledger_of(RefType.VOID, sold.pk)) == [("A", sf.pk, D("3")), ("B", sf.pk, D("1"))]
    rows = StockLedger.objects.count()
    again = post(manager, f"{SALES}/{sold.pk}/void", {})
    assert again.status_code == 200
    assert again.json()["status"] == "voided"
    assert StockLedger.objects.count() == rows
    assert manager.get(f"{SALES}/{sold.pk}").json()["status"] == "voided"
    voided = manager.get(f"{SALES}?status=voided").json()["results"]
    assert [s["id"] for s in voided] == [sold.pk]
    assert manager.get(f"{SALES}?status=completed").json()["results"] == []
    assert_invariants()


def test_void_with_a_business_time_dates_its_rows_then(sold, manager):
    when = sold.occurred_at + datetime.timedelta(minutes=1)  # a POS clock a little fast
    response = post(manager, f"{SALES}/{sold.pk}/void", {"occurred_at": when.isoformat()})
    assert response.status_code == 200, response.content
    rows = StockLedger.objects.filter(ref_type=RefType.VOID, ref_id=sold.pk)
    assert {r.occurred_at for r in rows} == {when}
    sold.refresh_from_db()
    assert sold.voided_at is not None and sold.voided_at != when  # the time it was recorded


@pytest.mark.parametrize("kind", ["void", "refunds"])
def test_void_or_refund_dated_before_the_sale_is_refused(kind, sold, manager):
    before = state()
    early = (sold.occurred_at - datetime.timedelta(minutes=1)).isoformat()
    body = {"occurred_at": early}
    if kind == "refunds":
        body |= {"client_ref": "rf-early", "lines": [{"line": 1, "quantity": "1"}]}
    response = post(manager, f"{SALES}/{sold.pk}/{kind}", body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "before_sale"
    assert list(response.json()["fields"]) == ["occurred_at"]
    assert state() == before


def test_partial_refund_returns_latest_consumed_lot_first(sold, gum, sf, manager):
    response = post(
        manager,
        f"{SALES}/{sold.pk}/refunds",
        {"client_ref": "rf-1", "reason": "unopened", "lines": [{"line": 1, "quantity": "2"}]},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["sale"], body["location"], body["client_ref"]) == (sold.pk, None, "rf-1")
    b, a = batch(gum, "B"), batch(gum, "A")
    assert [
        (r["line"], r["batch"], r["location"], r["quantity"], r["unit_cost"]) for r in body["lines"]
    ] == [(1, b.pk, sf.pk, "1.0000", "3.0000"), (1, a.pk, sf.pk, "1.0000", "2.5000")]
    assert quantity_of(a, sf) == 1 and quantity_of(b, sf) == 5
    detail = manager.get(f"{SALES}/{sold.pk}").json()
    assert [r["id"] for r in detail["refunds"]] == [body["id"]]
    # what is left (2 of lot A) can still be refunded, not more
    refused = post(
        manager,
        f"{SALES}/{sold.pk}/refunds",
        {"client_ref": "rf-2", "lines": [{"line": 1, "quantity": "3"}]},
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "refund_exceeds_sold"
    assert "lines.0.quantity" in refused.json()["fields"]
    assert (
        post(
            manager,
            f"{SALES}/{sold.pk}/refunds",
            {"client_ref": "rf-3", "lines": [{"line": 1, "quantity": "2"}]},
        ).status_code
        == 201
    )
    assert quantity_of(a, sf) == 3
    assert_invariants()


def test_refund_into_another_location_puts_stock_there(org, store, sold, gum, sf, manager):
    quarantine = location_create(
        org=org,
        store=store,
        code="QA",
        name="Quarantine",
        kind=LocationKind.QUARANTINE,
        sellable=False,
        sort_order=90,
    )
    response = post(
        manager,
        f"{SALES}/{sold.pk}/refunds",
        {
            "client_ref": ref(),
            "location": quarantine.pk,
            "reason": "damaged return",
            "lines": [{"line": 1, "quantity": "1"}],
        },
    )
    assert response.status_code == 201, response.content
    b = batch(gum, "B")
    assert [(r["batch"], r["location"], r["quantity"]) for r in response.json()["lines"]] == [
        (b.pk, quarantine.pk, "1.0000")
    ]
    assert quantity_of(b, quarantine) == 1
    assert on_hand(gum, sf) == 4  # the floor is unchanged
    # a later void puts back only what is still out, where it was taken from
    post(manager, f"{SALES}/{sold.pk}/void", {})
    assert on_hand(gum, sf) == 7 and on_hand(gum, quarantine) == 1
    assert_invariants()


def test_refund_of_a_voided_sale_is_a_conflict_and_writes_nothing(sold, manager):
    post(manager, f"{SALES}/{sold.pk}/void", {})
    before = state()
    response = post(
        manager,
        f"{SALES}/{sold.pk}/refunds",
        {"client_ref": ref(), "lines": [{"line": 1, "quantity": "1"}]},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "sale_voided"
    assert state() == before


def test_two_refund_lines_for_one_sale_line_may_not_exceed_it_together(sold, manager):
    before = state()
    response = post(
        manager,
        f"{SALES}/{sold.pk}/refunds",
        {
            "client_ref": ref(),
            "lines": [{"line": 1, "quantity": "3"}, {"line": 1, "quantity": "2"}],
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "refund_exceeds_sold"
    assert list(response.json()["fields"]) == ["lines.1.quantity"]
    assert state() == before


# --- stock documents: happy paths -------------------------------------------------------------


def test_receipt_creates_lots_with_expiry_and_cost(store, gum, flower, sf, br, manager):
    response = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": "po-17",
            "reason": "PO 17",
            "lines": [
                {
                    "product": gum.pk,
                    "location": sf.pk,
                    "quantity": "12",
                    "lot_code": "L-1",
                    "expiry_date": days(90).isoformat(),
                    "unit_cost": "1.25",
                },
                {"sku": "FLW", "location": br.pk, "quantity": "28.5", "unit_cost": "4"},
            ],
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["store"], body["reason"], body["client_ref"]) == (
        "receipt",
        store.pk,
        "PO 17",
        "po-17",
    )
    lot = batch(gum, "L-1")
    assert (lot.expiry_date, lot.unit_cost) == (days(90), D("1.25"))
    loose = Batch.objects.get(product=flower)
    assert [
        (
            r["line"],
            r["ref_type"],
            r["product"],
            r["location"],
            r["batch"],
            r["quantity"],
            r["unit_cost"],
        )
        for r in body["rows"]
    ] == [
        (1, "RECEIPT", gum.pk, sf.pk, lot.pk, "12.0000", "1.2500"),
        (2, "RECEIPT", flower.pk, br.pk, loose.pk, "28.5000", "4.0000"),
    ]
    assert quantity_of(lot, sf) == 12 and quantity_of(loose, br) == D("28.5")
    assert StockDocument.objects.get(pk=body["id"]).kind == "receipt"
    assert_invariants()


def test_receipt_into_an_existing_lot_adds_to_that_batch(org, store, gum, sf, manager):
    receive(org, store, gum, 10, lot="L-1", expiry=days(90), cost="2")
    response = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {
                    "product": gum.pk,
                    "location": sf.pk,
                    "quantity": "5",
                    "lot_code": "L-1",
                    "expiry_date": days(90).isoformat(),
                    "unit_cost": "2",
                }
            ],
        },
    )
    assert response.status_code == 201, response.content
    lot = batch(gum, "L-1")
    assert Batch.objects.filter(product=gum).count() == 1
    assert response.json()["rows"][0]["batch"] == lot.pk
    assert quantity_of(lot, sf) == 15
    assert_invariants()


def test_receipt_naming_a_known_lot_with_another_expiry_is_refused_and_writes_nothing(
    org, store, gum, sf, br, manager
):
    receive(org, store, gum, 10, lot="L-1", expiry=days(90), cost="2")
    before = state()
    response = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {
                    "product": gum.pk,
                    "location": br.pk,
                    "quantity": "2",
                    "lot_code": "L-2",
                    "expiry_date": days(30).isoformat(),
                    "unit_cost": "2",
                },
                {
                    "product": gum.pk,
                    "location": sf.pk,
                    "quantity": "5",
                    "lot_code": "L-1",
                    "expiry_date": days(60).isoformat(),
                    "unit_cost": "2",
                },
            ],
        },
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "lot_expiry_mismatch"
    assert list(body["fields"]) == ["lines.1.expiry_date"]
    assert days(90).isoformat() in body["fields"]["lines.1.expiry_date"][0]
    assert state() == before
    assert batch(gum, "L-1").expiry_date == days(90)


def test_receipt_without_expiry_into_a_known_lot_keeps_its_date(org, store, flower, sf, manager):
    receive(org, store, flower, 10, lot="F-1", expiry=days(40), cost="2")
    response = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {"product": flower.pk, "location": sf.pk, "quantity": "5", "lot_code": "F-1"}
            ],
        },
    )
    assert response.status_code == 201, response.content
    assert batch(flower, "F-1").expiry_date == days(40)
    assert quantity_of(batch(flower, "F-1"), sf) == 15


def test_a_lot_received_without_expiry_takes_the_date_a_later_receipt_gives(
    org, store, flower, sf, manager
):
    receive(org, store, flower, 10, lot="F-2", cost="2")
    response = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {
                    "product": flower.pk,
                    "location": sf.pk,
                    "quantity": "1",
                    "lot_code": "F-2",
                    "expiry_date": days(20).isoformat(),
                }
            ],
        },
    )
    assert response.status_code == 201, response.content
    assert batch(flower, "F-2").expiry_date == days(20)
    assert Batch.objects.filter(product=flower).count() == 1


def test_positive_adjustment_naming_a_known_lot_with_another_expiry_is_refused(
    org, store, gum, sf, manager
):
    receive(org, store, gum, 4, lot="L-7", expiry=days(10), cost="2")
    before = state()
    response = post(
        manager,
        ADJUSTMENTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "reason": "found a box",
            "lines": [
                {
                    "product": gum.pk,
                    "location": sf.pk,
                    "quantity": "3",
                    "lot_code": "L-7",
                    "expiry_date": days(11).isoformat(),
                }
            ],
        },
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "lot_expiry_mismatch"
    assert list(response.json()["fields"]) == ["lines.0.expiry_date"]
    assert state() == before


def test_receipt_of_an_already_expired_lot_is_allowed_but_never_sells(
    store, gum, sf, manager, operator
):
    response = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {
                    "product": gum.pk,
                    "location": sf.pk,
                    "quantity": "3",
                    "lot_code": "OLD",
                    "expiry_date": days(-2).isoformat(),
                    "unit_cost": "1",
                }
            ],
        },
    )
    assert response.status_code == 201, response.content
    refused = post(
        operator,
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{"product": gum.pk, "quantity": "1"}]},
    )
    assert refused.status_code == 409
    assert refused.json()["lines"][0]["expired"] == "3.0000"


def test_receipt_of_one_lot_into_two_rooms_in_one_document(store, flower, sf, br, manager):
    manager.raise_request_exception = False
    response = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {"product": flower.pk, "location": sf.pk, "quantity": "1", "lot_code": "L-9"},
                {"product": flower.pk, "location": br.pk, "quantity": "2", "lot_code": "L-9"},
            ],
        },
    )
    assert response.status_code == 201, response.content
    lot = batch(flower, "L-9")
    assert (quantity_of(lot, sf), quantity_of(lot, br)) == (1, 2)


def test_move_takes_earliest_expiry_first(org, store, gum, sf, br, manager):
    receive(org, store, gum, 3, lot="A", expiry=days(10), cost="2")
    receive(org, store, gum, 5, lot="B", expiry=days(30), cost="3")
    response = post(
        manager,
        MOVES,
        {
            "store": store.pk,
            "client_ref": ref(),
            "reason": "restock",
            "lines": [
                {"product": gum.pk, "from_location": sf.pk, "to_location": br.pk, "quantity": "4"}
            ],
        },
    )
    assert response.status_code == 201, response.content
    a, b = batch(gum, "A"), batch(gum, "B")
    assert [
        (r["ref_type"], r["location"], r["batch"], r["quantity"], r["unit_cost"])
        for r in response.json()["rows"]
    ] == [
        ("MOVE_OUT", sf.pk, a.pk, "-3.0000", "2.0000"),
        ("MOVE_IN", br.pk, a.pk, "3.0000", "2.0000"),
        ("MOVE_OUT", sf.pk, b.pk, "-1.0000", "3.0000"),
        ("MOVE_IN", br.pk, b.pk, "1.0000", "3.0000"),
    ]
    assert (quantity_of(a, sf), quantity_of(a, br), quantity_of(b, sf), quantity_of(b, br)) == (
        0,
        3,
        4,
        1,
    )
    assert_invariants()


def test_move_of_a_named_lot_takes_only_that_lot(org, store, gum, sf, br, manager):
    receive(org, store, gum, 3, lot="A", expiry=days(10), cost="2")
    receive(org, store, gum, 5, lot="B", expiry=days(30), cost="3")
    response = post(
        manager,
        MOVES,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {
                    "sku": "GUM",
                    "from_location": sf.pk,
                    "to_location": br.pk,
                    "quantity": "2",
                    "lot_code": "B",
                }
            ],
        },
    )
    assert response.status_code == 201, response.content
    b = batch(gum, "B")
    assert {r["batch"] for r in response.json()["rows"]} == {b.pk}
    assert (quantity_of(b, sf), quantity_of(b, br), on_hand(gum, sf)) == (3, 2, 6)
    assert_invariants()


def test_positive_adjustment_without_lot_goes_to_newest_batch_at_that_location(
    org, store, gum, sf, br, manager, generous_policy
):
    now = timezone.now()
    receive(
        org,
        store,
        gum,
        2,
        lot="OLD",
        expiry=days(10),
        cost="1",
        occurred_at=now - datetime.timedelta(days=3),
    )
    receive(
        org,
        store,
        gum,
        2,
        lot="NEW",
        expiry=days(40),
        cost="2",
        occurred_at=now - datetime.timedelta(days=2),
    )
    # newer still, but in the back room: not a candidate for the sales floor
    receive(
        org,
        store,
        gum,
        2,
        location="BR",
        lot="BACK",
        expiry=days(50),
        cost="3",
        occurred_at=now - datetime.timedelta(days=1),
    )
    response = post(
        manager,
        ADJUSTMENTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "reason": "found behind the till",
            "lines": [{"product": gum.pk, "location": sf.pk, "quantity": "3"}],
        },
    )
    assert response.status_code == 201, response.content
    new = batch(gum, "NEW")
    assert [
        (r["ref_type"], r["batch"], r["quantity"], r["unit_cost"], r["reason"])
        for r in response.json()["rows"]
    ] == [("ADJUSTMENT", new.pk, "3.0000", "2.0000", "found behind the till")]
    assert quantity_of(new, sf) == 5
    assert_invariants()


def test_positive_adjustment_where_the_product_never_was_makes_a_batch_at_last_cost(
    org, store, flower, sf, br, manager, generous_policy
):
    receive(org, store, flower, 10, cost="3.40")  # default cost is 4.00: last known is 3.40
    batches = Batch.objects.filter(product=flower).count()
    response = post(
        manager,
        ADJUSTMENTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "reason": "found in the back room",
            "lines": [{"product": flower.pk, "location": br.pk, "quantity": "2.5"}],
        },
    )
    assert response.status_code == 201, response.content
    assert Batch.objects.filter(product=flower).count() == batches + 1
    row = response.json()["rows"][0]
    created = Batch.objects.get(pk=row["batch"])
    assert (created.unit_cost, row["unit_cost"], row["location"]) == (D("3.40"), "3.4000", br.pk)
    assert quantity_of(created, br) == D("2.5")
    assert_invariants()


def test_positive_adjustment_starting_a_lot_of_an_expiring_product_needs_its_expiry(
    org, store, gum, flower, sf, manager, generous_policy
):
    receive(org, store, gum, 2, lot="KNOWN", expiry=days(15), cost="2")

    def adjust(*lines):
        return post(
            manager,
            ADJUSTMENTS,
            {"store": store.pk, "client_ref": ref(), "reason": "found a box", "lines": list(lines)},
        )

    before = state()
    refused = adjust(
        {"product": gum.pk, "location": sf.pk, "quantity": "3", "lot_code": "NEW"},
        {"product": gum.pk, "location": sf.pk, "quantity": "1", "lot_code": "KNOWN"},
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["code"] == "expiry_required"
    assert list(refused.json()["fields"]) == ["lines.0.expiry_date"]
    assert state() == before
    # a known lot has its date; a new one with a date is fine; flower does not track expiry
    ok = adjust(
        {"product": gum.pk, "location": sf.pk, "quantity": "1", "lot_code": "KNOWN"},
        {
            "product": gum.pk,
            "location": sf.pk,
            "quantity": "3",
            "lot_code": "NEW",
            "expiry_date": days(60).isoformat(),
        },
        {"product": flower.pk, "location": sf.pk, "quantity": "2", "lot_code": "F-NEW"},
    )
    assert ok.status_code == 201, ok.content
    assert batch(gum, "NEW").expiry_date == days(60)
    assert batch(gum, "KNOWN").expiry_date == days(15)
    assert batch(flower, "F-NEW").expiry_date is None
    assert_invariants()


def test_negative_adjustment_takes_earliest_expiry_first_with_its_reason(
    org, store, gum, sf, manager, generous_policy
):
    receive(org, store, gum, 3, lot="A", expiry=days(10), cost="2")
    receive(org, store, gum, 5, lot="B", expiry=days(30), cost="3")
    # the back room's stock keeps the store's drop under 20%: the correction posts at once
    receive(org, store, gum, 20, location="BR", lot="C", expiry=days(5), cost="3")
    response = post(
        manager,
        ADJUSTMENTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "reason": "count: missing",
            "lines": [{"product": gum.pk, "location": sf.pk, "quantity": "-4"}],
        },
    )
    assert response.status_code == 201, response.content
    assert sorted(ledger_of(RefType.ADJUSTMENT, response.json()["id"])) == [
        ("A", sf.pk, D("-3")),
        ("B", sf.pk, D("-1")),
    ]
    assert {r["reason"] for r in response.json()["rows"]} == {"count: missing"}
    assert on_hand(gum, sf) == 4
    assert_invariants()


@pytest.mark.parametrize(
    "kind,ref_type",
    [("damage", RefType.DAMAGE), ("waste", RefType.WASTE), ("expiry", RefType.EXPIRY)],
)
def test_write_off_posts_its_type(kind, ref_type, org, store, gum, sf, manager, generous_policy):
    receive(org, store, gum, 5, lot="A", expiry=days(10), cost="2")
    # the back room's stock keeps the store's drop under 20%: the write-off posts at once
    receive(org, store, gum, 20, location="BR", lot="C", expiry=days(20), cost="2")
    response = post(
        manager,
        WRITE_OFFS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "type": kind,
            "reason": "dropped a box",
            "lines": [{"product": gum.pk, "location": sf.pk, "quantity": "2"}],
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["type"], body["reason"]) == ("write_off", kind, "dropped a box")
    assert [(r["ref_type"], r["quantity"], r["unit_cost"]) for r in body["rows"]] == [
        (ref_type, "-2.0000", "2.0000")
    ]
    assert on_hand(gum, sf) == 3
    assert_invariants()


def test_write_off_of_an_expired_lot(org, store, gum, sf, manager):
    receive(org, store, gum, 4, lot="OLD", expiry=days(-3), cost="2")
    receive(org, store, gum, 4, lot="NEW", expiry=days(20), cost="2")
    response = post(
        manager,
        WRITE_OFFS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "type": "expiry",
            "reason": "expired",
            "lines": [{"product": gum.pk, "location": sf.pk, "quantity": "4", "lot_code": "OLD"}],
        },
    )
    assert response.status_code == 201, response.content
    assert quantity_of(batch(gum, "OLD"), sf) == 0
    assert quantity_of(batch(gum, "NEW"), sf) == 4
    assert_invariants()


def test_every_route_answers_with_and_without_trailing_slash(world, manager):
    for kind in ("sale", "receipt"):
        for suffix in ("", "/"):
            response = post(manager, path_of(kind, world) + suffix, build(kind, world))
            assert response.status_code == 201, (kind, suffix, response.content)


# --- idempotency ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_replay_returns_the_first_body_and_posts_nothing(kind, world, manager):
    body = build(kind, world)
    first = post(manager, path_of(kind, world), body)
    assert first.status_code == 201, first.content
    before = state()
    replay = post(manager, path_of(kind, world), body)
    assert replay.status_code == 200, replay.content
    assert replay.json() == first.json()
    assert state() == before


@pytest.mark.parametrize("kind", KINDS)
def test_same_client_ref_with_another_request_is_a_conflict(kind, world, manager):
    body = build(kind, world)
    assert post(manager, path_of(kind, world), body).status_code == 201
    before = state()
    other = {**body, "lines": [{**body["lines"][0], "quantity": "2"}]}
    response = post(manager, path_of(kind, world), other)
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "idempotency_conflict"
    assert "client_ref" in response.json()["fields"]
    assert state() == before


def test_retry_after_a_refused_sale_goes_through_once_stock_arrives(org, store, gum, operator):
    """A refusal creates no sale, so the device's retry with the same key is a new attempt."""
    body = {
        "store": store.pk,
        "client_ref": "pos-retry",
        "lines": [{"product": gum.pk, "quantity": "2"}],
    }
    assert post(operator, SALES, body).status_code == 409
    receive(org, store, gum, 5, lot="A", expiry=days(10), cost="2")
    first = post(operator, SALES, body)
    assert first.status_code == 201, first.content
    replay = post(operator, SALES, body)
    assert (replay.status_code, replay.json()) == (200, first.json())
    assert on_hand(gum) == 3


def test_replay_of_a_sale_named_by_barcode_matches_the_same_sale_by_id(world, operator):
    """The key fingerprints what was sold, not how the POS spelled it."""
    first = post(
        operator,
        SALES,
        {
            "store": world.store.pk,
            "client_ref": "same",
            "lines": [{"barcode": UPC, "quantity": "1"}],
        },
    )
    assert first.status_code == 201
    replay = post(
        operator,
        SALES,
        {
            "store": world.store.pk,
            "client_ref": "same",
            "lines": [{"product": world.gum.pk, "quantity": "1.0"}],
        },
    )
    assert replay.status_code == 200
    assert replay.json() == first.json()


# --- roles ------------------------------------------------------------------------------------

# (method, path, body kind or None, least role, success status)
ENDPOINTS = [
    ("get", lambda w: SALES, None, Role.VIEWER, 200),
    ("get", lambda w: f"{SALES}/{w.sale.pk}", None, Role.VIEWER, 200),
    ("post", lambda w: SALES, "sale", Role.OPERATOR, 201),
    ("post", lambda w: f"{SALES}/{w.sale.pk}/void", "void", Role.MANAGER, 200),
    ("post", lambda w: f"{SALES}/{w.sale.pk}/refunds", "refund", Role.MANAGER, 201),
    ("post", lambda w: RECEIPTS, "receipt", Role.MANAGER, 201),
    ("post", lambda w: MOVES, "move", Role.MANAGER, 201),
    ("post", lambda w: ADJUSTMENTS, "adjustment", Role.MANAGER, 201),
    ("post", lambda w: WRITE_OFFS, "write_off", Role.MANAGER, 201),
]
ENDPOINT_IDS = [
    "list-sales",
    "sale-detail",
    "sale-create",
    "void",
    "refund",
    "receipt",
    "move",
    "adjustment",
    "write-off",
]


def call(client, endpoint, w):
    method, path, kind, *_ = endpoint
    if method == "get":
        return client.get(path(w))
    body = {"reason": "mistake"} if kind == "void" else build(kind, w)
    return post(client, path(w), body)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_endpoint_answers_by_role(endpoint, role, world, client_for):
    client = client_for(role)
    before = state()
    response = call(client, endpoint, world)
    if Role(role).rank >= Role(endpoint[3]).rank:
        assert response.status_code == endpoint[4], response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
        assert state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_endpoint_refuses_anonymous_callers(endpoint, world):
    before = state()
    response = call(APIClient(), endpoint, world)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert state() == before


# --- tenant isolation -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DOCUMENT_KINDS)
def test_another_orgs_store_does_not_exist(kind, world, manager):
    before = state()
    response = post(
        manager, path_of(kind, world), build(kind, world, top={"store": world.their_store.pk})
    )
    assert response.status_code == 400, response.content
    assert "does not exist" in response.json()["fields"]["store"][0]
    assert state() == before


@pytest.mark.parametrize("suffix,method", [("", "get"), ("/void", "post"), ("/refunds", "post")])
def test_another_orgs_sale_is_not_found(suffix, method, world, manager):
    before = state()
    path = f"{SALES}/{world.their_sale.pk}{suffix}"
    body = {"client_ref": ref(), "lines": [{"line": 1, "quantity": "1"}]}
    response = manager.get(path) if method == "get" else post(manager, path, body)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert state() == before
    assert Sale.objects.get(pk=world.their_sale.pk).status == "completed"


@pytest.mark.parametrize("kind", DOCUMENT_KINDS)
@pytest.mark.parametrize(
    "ident",
    [{"product": lambda w: w.their_product.pk}, {"sku": "RIVAL-1"}, {"barcode": THEIR_GTIN}],
    ids=["product", "sku", "barcode"],
)
def test_another_orgs_product_is_unknown(ident, kind, world, manager):
    field = next(iter(ident))
    line = {"product": DROP, **ident}
    before = state()
    response = post(manager, path_of(kind, world), build(kind, world, line=line))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "unknown_product"
    assert list(response.json()["fields"]) == [f"lines.0.{field}"]
    assert state() == before


@pytest.mark.parametrize(
    "kind,line,top,field",
    [
        ("sale", {"location": lambda w: w.their_sf.pk}, {}, "lines.0.location"),
        ("receipt", {"location": lambda w: w.their_sf.pk}, {}, "lines.0.location"),
        ("move", {"from_location": lambda w: w.their_sf.pk}, {}, "lines.0.from_location"),
        ("move", {"to_location": lambda w: w.their_br.pk}, {}, "lines.0.to_location"),
        ("adjustment", {"location": lambda w: w.their_sf.pk}, {}, "lines.0.location"),
        ("write_off", {"location": lambda w: w.their_sf.pk}, {}, "lines.0.location"),
        ("refund", {}, {"location": lambda w: w.their_br.pk}, "location"),
    ],
    ids=["sale", "receipt", "move-from", "move-to", "adjustment", "write-off", "refund"],
)
def test_another_orgs_location_is_unknown(kind, line, top, field, world, manager):
    before = state()
    response = post(manager, path_of(kind, world), build(kind, world, line=line, top=top))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "unknown_location"
    assert list(response.json()["fields"]) == [field]
    assert state() == before


@pytest.mark.parametrize("kind", DOCUMENT_KINDS)
def test_store_limited_member_cannot_write_to_another_store(kind, world, client_for):
    client = client_for(Role.ADMIN, stores=[world.store])
    before = state()
    rooms = (
        {"from_location": world.sf2.pk, "to_location": world.br2.pk}
        if kind == "move"
        else {"location": world.sf2.pk}
    )
    body = build(kind, world, line=rooms, top={"store": world.store2.pk})
    response = post(client, path_of(kind, world), body)
    assert response.status_code == 400, response.content
    assert "store" in response.json()["fields"]
    assert state() == before


def test_store_limited_member_sees_only_sales_of_its_stores(org, world, client_for):
    receive(org, world.store2, world.gum, 5, lot="S2", expiry=days(30))
    theirs = sell(org, world.store2, (world.gum, 1))
    client = client_for(Role.MANAGER, stores=[world.store])
    assert [s["id"] for s in client.get(SALES).json()["results"]] == [world.sale.pk]
    assert client.get(f"{SALES}?store={world.store2.pk}").json()["results"] == []
    assert client.get(f"{SALES}/{theirs.pk}").status_code == 404
    assert post(client, f"{SALES}/{theirs.pk}/void", {}).status_code == 404
    everyone = client_for(Role.MANAGER)
    assert {s["id"] for s in everyone.get(SALES).json()["results"]} == {world.sale.pk, theirs.pk}


# --- bad input --------------------------------------------------------------------------------

MANY_LINES = [{"sku": "GUM", "quantity": "1"}] * 501


def AHEAD(**delta) -> str:  # noqa: N802 - reads as a constant in the table below
    return (timezone.now() + datetime.timedelta(**delta)).isoformat()


BAD_INPUTS = [
    # kind, line overrides, top overrides, status, code, field
    pytest.param(
        "sale", {"quantity": "-1"}, {}, 400, "invalid", "lines.0.quantity", id="sale-negative"
    ),
    pytest.param("sale", {"quantity": "0"}, {}, 400, "invalid", "lines.0.quantity", id="sale-zero"),
    pytest.param(
        "sale",
        {"quantity": "1.00001"},
        {},
        400,
        "invalid",
        "lines.0.quantity",
        id="sale-five-decimals",
    ),
    pytest.param(
        "sale",
        {"quantity": "1.5"},
        {},
        400,
        "fractional_quantity",
        "lines.0.quantity",
        id="sale-fractional-each",
    ),
    pytest.param(
        "sale",
        {"quantity": "abc"},
        {},
        400,
        "invalid",
        "lines.0.quantity",
        id="sale-quantity-not-a-number",
    ),
    pytest.param(
        "sale",
        {"product": 987654},
        {},
        400,
        "unknown_product",
        "lines.0.product",
        id="sale-unknown-product-id",
    ),
    pytest.param(
        "sale",
        {"product": DROP, "sku": "NOPE"},
        {},
        400,
        "unknown_product",
        "lines.0.sku",
        id="sale-unknown-sku",
    ),
    pytest.param(
        "sale",
        {"product": DROP, "barcode": make_gtin(4242)},
        {},
        400,
        "unknown_product",
        "lines.0.barcode",
        id="sale-unknown-gtin",
    ),
    pytest.param(
        "sale",
        {"product": DROP, "barcode": "NO-SUCH-TAG"},
        {},
        400,
        "unknown_product",
        "lines.0.barcode",
        id="sale-unknown-tag",
    ),
    pytest.param(
        "sale",
        {"product": DROP, "barcode": BAD_UPC},
        {},
        400,
        "invalid_check_digit",
        "lines.0.barcode",
        id="sale-bad-check-digit",
    ),
    pytest.param(
        "sale",
        {"product": DROP, "barcode": f"(01)00{BAD_UPC}(10)A"},
        {},
        400,
        "invalid_check_digit",
        "lines.0.barcode",
        id="sale-gs1-bad-check-digit",
    ),
    pytest.param(
        "sale", {"sku": "GUM"}, {}, 400, "invalid", "lines.0.product", id="sale-two-identifiers"
    ),
    pytest.param(
        "sale", {"product": DROP}, {}, 400, "invalid", "lines.0.product", id="sale-no-identifier"
    ),
    pytest.param(
        "sale", {}, {"client_ref": DROP}, 400, "invalid", "client_ref", id="sale-missing-client-ref"
    ),
    pytest.param(
        "sale", {}, {"client_ref": ""}, 400, "invalid", "client_ref", id="sale-blank-client-ref"
    ),
    pytest.param("sale", {}, {"store": DROP}, 400, "invalid", "store", id="sale-missing-store"),
    pytest.param("sale", {}, {"lines": []}, 400, "invalid", "lines", id="sale-empty-lines"),
    pytest.param("sale", {}, {"lines": MANY_LINES}, 400, "invalid", "lines", id="sale-501-lines"),
    pytest.param(
        "sale",
        {"location": lambda w: w.br.pk},
        {},
        400,
        "not_sellable",
        "lines.0.location",
        id="sale-location-not-sellable",
    ),
    pytest.param(
        "sale",
        {"location": lambda w: w.sf2.pk},
        {},
        400,
        "unknown_location",
        "lines.0.location",
        id="sale-location-of-other-store",
    ),
    pytest.param(
        "sale",
        {"unit_price": "-1"},
        {},
        400,
        "invalid",
        "lines.0.unit_price",
        id="sale-negative-price",
    ),
    pytest.param(
        "sale",
        {},
        {"occurred_at": lambda w: AHEAD(hours=5)},
        400,
        "invalid",
        "occurred_at",
        id="sale-dated-hours-ahead",
    ),
    pytest.param(
        "sale",
        {},
        {"occurred_at": "2026-13-01T10:00:00Z"},
        400,
        "invalid",
        "occurred_at",
        id="sale-bad-time",
    ),
    pytest.param(
        "receipt",
        {},
        {"occurred_at": lambda w: AHEAD(days=400)},
        400,
        "invalid",
        "occurred_at",
        id="receipt-dated-next-year",
    ),
    pytest.param(
        "receipt",
        {"product": lambda w: w.gum.pk, "lot_code": "X"},
        {},
        400,
        "expiry_required",
        "lines.0.expiry_date",
        id="receipt-expiry-required",
    ),
    pytest.param(
        "receipt", {"quantity": "-5"}, {}, 400, "invalid", "lines.0.quantity", id="receipt-negative"
    ),
    pytest.param(
        "receipt",
        {"product": lambda w: w.gum.pk, "quantity": "1.5", "expiry_date": days(30).isoformat()},
        {},
        400,
        "fractional_quantity",
        "lines.0.quantity",
        id="receipt-fractional-each",
    ),
    pytest.param(
        "receipt",
        {"unit_cost": "-1"},
        {},
        400,
        "invalid",
        "lines.0.unit_cost",
        id="receipt-negative-cost",
    ),
    pytest.param(
        "receipt",
        {"location": DROP},
        {},
        400,
        "invalid",
        "lines.0.location",
        id="receipt-missing-location",
    ),
    pytest.param(
        "receipt",
        {"location": lambda w: w.sf2.pk},
        {},
        400,
        "unknown_location",
        "lines.0.location",
        id="receipt-location-of-other-store",
    ),
    pytest.param(
        "receipt",
        {"expiry_date": "31/12/2030"},
        {},
        400,
        "invalid",
        "lines.0.expiry_date",
        id="receipt-bad-date",
    ),
    pytest.param(
        "move",
        {"to_location": lambda w: w.sf.pk},
        {},
        400,
        "invalid",
        "lines.0.to_location",
        id="move-from-equals-to",
    ),
    pytest.param(
        "move",
        {"lot_code": "NOPE"},
        {},
        400,
        "unknown_lot",
        "lines.0.lot_code",
        id="move-unknown-lot",
    ),
    pytest.param("move", {"quantity": "0"}, {}, 400, "invalid", "lines.0.quantity", id="move-zero"),
    pytest.param(
        "move",
        {"quantity": "0.5"},
        {},
        400,
        "fractional_quantity",
        "lines.0.quantity",
        id="move-fractional-each",
    ),
    pytest.param(
        "move",
        {"to_location": lambda w: w.sf2.pk},
        {},
        400,
        "unknown_location",
        "lines.0.to_location",
        id="move-to-other-store",
    ),
    pytest.param(
        "adjustment",
        {"quantity": "0"},
        {},
        400,
        "invalid",
        "lines.0.quantity",
        id="adjustment-zero",
    ),
    pytest.param(
        "adjustment",
        {"quantity": "-0.5"},
        {},
        400,
        "fractional_quantity",
        "lines.0.quantity",
        id="adjustment-fractional-each",
    ),
    pytest.param(
        "adjustment", {}, {"reason": DROP}, 400, "invalid", "reason", id="adjustment-missing-reason"
    ),
    pytest.param(
        "adjustment", {}, {"reason": ""}, 400, "invalid", "reason", id="adjustment-blank-reason"
    ),
    pytest.param(
        "adjustment",
        {"quantity": "-1", "lot_code": "NOPE"},
        {},
        400,
        "unknown_lot",
        "lines.0.lot_code",
        id="adjustment-unknown-lot",
    ),
    pytest.param(
        "write_off", {}, {"type": "theft"}, 400, "invalid", "type", id="write-off-unknown-type"
    ),
    pytest.param(
        "write_off", {}, {"type": DROP}, 400, "invalid", "type", id="write-off-missing-type"
    ),
    pytest.param(
        "write_off", {}, {"reason": DROP}, 400, "invalid", "reason", id="write-off-missing-reason"
    ),
    pytest.param(
        "write_off",
        {"quantity": "-1"},
        {},
        400,
        "invalid",
        "lines.0.quantity",
        id="write-off-negative",
    ),
    pytest.param(
        "write_off",
        {"quantity": "1.5"},
        {},
        400,
        "fractional_quantity",
        "lines.0.quantity",
        id="write-off-fractional-each",
    ),
    pytest.param(
        "refund",
        {"quantity": "3"},
        {},
        400,
        "refund_exceeds_sold",
        "lines.0.quantity",
        id="refund-more-than-sold",
    ),
    pytest.param(
        "refund", {"line": 2}, {}, 400, "unknown_line", "lines.0.line", id="refund-line-not-in-sale"
    ),
    pytest.param(
        "refund", {"quantity": "0"}, {}, 400, "invalid", "lines.0.quantity", id="refund-zero"
    ),
    pytest.param(
        "refund",
        {},
        {"client_ref": DROP},
        400,
        "invalid",
        "client_ref",
        id="refund-missing-client-ref",
    ),
    pytest.param("refund", {}, {"lines": []}, 400, "invalid", "lines", id="refund-empty-lines"),
    pytest.param(
        "refund",
        {},
        {"location": lambda w: w.sf2.pk},
        400,
        "unknown_location",
        "location",
        id="refund-location-of-other-store",
    ),
    pytest.param(
        "refund",
        {"quantity": "0.5"},
        {},
        400,
        "fractional_quantity",
        "lines.0.quantity",
        id="refund-fractional-each",
    ),
]


@pytest.mark.parametrize("kind,line,top,status,code,field", BAD_INPUTS)
def test_bad_input_is_refused_with_code_and_field_and_writes_nothing(
    kind, line, top, status, code, field, world, manager
):
    before = state()
    response = post(manager, path_of(kind, world), build(kind, world, line=line, top=top))
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert field in body["fields"], body
    assert state() == before


def test_a_device_clock_a_little_fast_is_accepted_and_any_past_time_too(
    org, store, gum, sf, operator
):
    receive(org, store, gum, 5, lot="A", expiry=days(30), cost="1")
    for n, when in enumerate(
        (
            timezone.now() + datetime.timedelta(minutes=5),
            timezone.now() - datetime.timedelta(days=3),
        )
    ):
        response = post(
            operator,
            SALES,
            {
                "store": store.pk,
                "client_ref": f"skew-{n}",
                "occurred_at": when.isoformat(),
                "lines": [{"product": gum.pk, "quantity": "1"}],
            },
        )
        assert response.status_code == 201, response.content
    late = timezone.now() + datetime.timedelta(minutes=30)
    refused = post(
        operator,
        SALES,
        {
            "store": store.pk,
            "client_ref": "skew-late",
            "occurred_at": late.isoformat(),
            "lines": [{"product": gum.pk, "quantity": "1"}],
        },
    )
    assert refused.status_code == 400
    assert "clock" in refused.json()["fields"]["occurred_at"][0]


def test_every_bad_line_is_reported_at_once(world, manager):
    before = state()
    response = post(
        manager,
        SALES,
        {
            "store": world.store.pk,
            "client_ref": ref(),
            "lines": [
                {"sku": "NOPE", "quantity": "1"},
                {"product": world.gum.pk, "quantity": "1"},
                {"product": world.gum.pk, "quantity": "0.5"},
                {"product": world.gum.pk, "quantity": "1", "location": world.br.pk},
            ],
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"  # several codes: the fields say which line is what
    assert sorted(body["fields"]) == ["lines.0.sku", "lines.2.quantity", "lines.3.location"]
    assert state() == before


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_json_is_a_parse_error(kind, world, manager):
    before = state()
    response = manager.post(
        path_of(kind, world), data='{"store": 1, "lines": [', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert state() == before


# --- insufficient stock -----------------------------------------------------------------------


def test_short_sale_is_refused_listing_every_short_line_and_keeps_the_attempt(
    org, store, gum, flower, sf, operator
):
    receive(org, store, gum, 2, lot="A", expiry=days(10))
    receive(org, store, gum, 1, lot="OLD", expiry=days(-1))
    receive(org, store, gum, 50, location="BR", lot="B", expiry=days(30))  # not sellable
    receive(org, store, flower, 10)
    nothing = ProductFactory(org=org, sku="NONE")
    before = state()
    response = post(
        operator,
        SALES,
        {
            "store": store.pk,
            "client_ref": "pos-short",
            "lines": [
                {"product": gum.pk, "quantity": "5"},
                {"product": flower.pk, "quantity": "3"},
                {"product": nothing.pk, "quantity": "1"},
            ],
        },
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "insufficient_stock"
    assert [
        (ln["line"], ln["product"], ln["requested"], ln["available"], ln["expired"])
        for ln in body["lines"]
    ] == [(1, gum.pk, "5.0000", "2.0000", "1.0000"), (3, nothing.pk, "1.0000", "0.0000", "0.0000")]
    after = state()
    shortfalls = after.pop("StockShortfall") - before.pop("StockShortfall")
    assert after == before  # no sale, no ledger row, no quant change
    assert shortfalls == 2
    kept = StockShortfall.objects.order_by("product_id")
    assert {
        (s.product_id, s.requested, s.available, s.outcome, s.ref_type, s.client_ref, s.location_id)
        for s in kept
    } == {
        (gum.pk, D("5"), D("2"), ShortfallOutcome.BLOCKED, RefType.SALE, "pos-short", sf.pk),
        (nothing.pk, D("1"), D("0"), ShortfallOutcome.BLOCKED, RefType.SALE, "pos-short", sf.pk),
    }


@pytest.mark.parametrize(
    "kind,line",
    [
        ("move", {"quantity": "50"}),
        ("adjustment", {"quantity": "-50"}),
        ("write_off", {"quantity": "50"}),
    ],
    ids=["move", "adjustment", "write-off"],
)
def test_short_document_is_refused_and_writes_nothing(kind, line, world, manager):
    before = state()
    response = post(manager, path_of(kind, world), build(kind, world, line=line))
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "insufficient_stock"
    assert [(ln["requested"], ln["available"]) for ln in body["lines"]] == [("50.0000", "8.0000")]
    after = state()
    after.pop("StockShortfall")
    before.pop("StockShortfall")
    assert after == before


@pytest.mark.parametrize(
    "kind,line",
    [("move", {"quantity": "50"}), ("write_off", {"quantity": "50"})],
    ids=["move", "write-off"],
)
def test_short_document_keeps_the_attempt_as_a_blocked_shortfall(kind, line, world, manager):
    response = post(manager, path_of(kind, world), build(kind, world, line=line))
    assert response.status_code == 409
    assert (
        StockShortfall.objects.filter(outcome=ShortfallOutcome.BLOCKED, product=world.gum).count()
        == 1
    )


# --- negative-stock modes ---------------------------------------------------------------------


@pytest.mark.parametrize("mode,warned", [("warn", True), ("record", False)])
def test_sale_without_stock_is_booked_to_the_unallocated_batch_and_settled_by_a_receipt(
    mode, warned, org, store, gum, sf, operator, manager
):
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode=mode)
    receive(org, store, gum, 1, lot="A", expiry=days(10), cost="2")
    response = post(
        operator,
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{"product": gum.pk, "quantity": "4"}]},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    if warned:
        assert [
            (w["code"], w["line"], w["requested"], w["available"]) for w in body["warnings"]
        ] == [("sold_without_stock", 1, "4.0000", "1.0000")]
    else:
        assert body["warnings"] == []
    consumed_ = body["lines"][0]["consumed"]
    assert [(c["unallocated"], c["location"], c["quantity"]) for c in consumed_] == [
        (False, sf.pk, "1.0000"),
        (True, sf.pk, "3.0000"),
    ]
    spare = Batch.objects.get(product=gum, unallocated_store=store)
    assert quantity_of(spare, sf) == -3
    assert (
        StockShortfall.objects.filter(outcome=ShortfallOutcome.BOOKED, ref_id=body["id"]).count()
        == 1
    )
    assert_invariants()

    receipt = post(
        manager,
        RECEIPTS,
        {
            "store": store.pk,
            "client_ref": ref(),
            "lines": [
                {
                    "product": gum.pk,
                    "location": sf.pk,
                    "quantity": "5",
                    "lot_code": "C",
                    "expiry_date": days(40).isoformat(),
                    "unit_cost": "2",
                }
            ],
        },
    )
    assert receipt.status_code == 201, receipt.content
    assert quantity_of(spare, sf) == 0
    assert quantity_of(batch(gum, "C"), sf) == 2
    assert_invariants()


# --- query counts -----------------------------------------------------------------------------

# Measured on PostgreSQL, savepoint and release included (the test runs inside a transaction):
# auth (token, membership, its stores), store, products, [locations,] then the write itself
# (a sale: insert-or-replay with its lines, lock, upsert, ledger, stored answer; a document: its
# replay check first).
SALE_QUERIES = 12
RECEIPT_QUERIES = 15


def _stocked_products(org, store, n: int) -> list:
    """``n`` products with three lots each on the sales floor (2 units per lot)."""
    products = [ProductFactory(org=org, sku=f"Q-{i:02d}") for i in range(n)]
    for product in products:
        for k in range(3):
            receive(
                org,
                store,
                product,
                2,
                lot=f"{product.sku}-L{k}",
                expiry=days(10 + k),
                cost=str(k + 1),
            )
    return products


def test_sale_query_count_does_not_grow_with_lines_or_lots(
    org, store, operator, django_assert_num_queries
):
    products = _stocked_products(org, store, 11)
    operator.get("/api/v1/me")  # the token's once-a-minute last-used write happens here
    with django_assert_num_queries(SALE_QUERIES):
        one = post(
            operator,
            SALES,
            {
                "store": store.pk,
                "client_ref": ref(),
                "lines": [{"product": products[0].pk, "quantity": "3"}],
            },
        )
    assert one.status_code == 201
    assert len(one.json()["lines"][0]["consumed"]) == 2
    with django_assert_num_queries(SALE_QUERIES):
        ten = post(
            operator,
            SALES,
            {
                "store": store.pk,
                "client_ref": ref(),
                "lines": [{"product": p.pk, "quantity": "5"} for p in products[1:]],
            },
        )
    assert ten.status_code == 201
    assert sum(len(ln["consumed"]) for ln in ten.json()["lines"]) == 30
    assert_invariants()


def test_receipt_query_count_does_not_grow_with_lines_or_lots(
    org, store, sf, br, manager, django_assert_num_queries
):
    products = _stocked_products(org, store, 10)
    manager.get("/api/v1/me")

    def line(product, n):
        # new lots and existing ones, two rooms
        return {
            "product": product.pk,
            "location": (sf if n % 2 else br).pk,
            "quantity": "4",
            "lot_code": f"{product.sku}-L{n % 4}",
            "unit_cost": "2",
        }

    with django_assert_num_queries(RECEIPT_QUERIES):
        one = post(
            manager,
            RECEIPTS,
            {"store": store.pk, "client_ref": ref(), "lines": [line(products[0], 1)]},
        )
    assert one.status_code == 201, one.content
    with django_assert_num_queries(RECEIPT_QUERIES):
        ten = post(
            manager,
            RECEIPTS,
            {
                "store": store.pk,
                "client_ref": ref(),
                "lines": [line(p, n) for n, p in enumerate(products)],
            },
        )
    assert ten.status_code == 201, ten.content
    assert len(ten.json()["rows"]) == 10
    assert_invariants()
