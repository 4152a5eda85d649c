"""Every document rule lives in the services: called directly with what the API refuses, each
service refuses it with the same code, lists every bad line in one error, and writes nothing.

And one resolver turns what a device names into products, lots and locations for every service
(sales, stock documents, count scans), in a fixed number of queries.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from core.errors import ApplicationError
from counts.services import passes as P
from counts.services import sessions as S
from inventory.catalog.resolver import ItemRef, Problems, items_resolve, lots_resolve
from inventory.models import Sale, StockDocument, StockLedger, StockShortfall
from inventory.sales import services as sales
from inventory.stock import documents
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, make_gtin
from tests.stock_helpers import loc, receive, ref

D = Decimal


@pytest.fixture
def shop(org, store, other_org):
    each = ProductFactory(org=org, sku="EACH", unit="each", barcodes=[{"code": make_gtin(31)}])
    grams = ProductFactory(org=org, sku="GRAMS", unit="g")
    dated = ProductFactory(org=org, sku="DATED", tracks_expiry=True)
    old = ProductFactory(org=org, sku="OLD")
    old.is_active = False
    old.save(update_fields=["is_active"])
    receive(org, store, each, 10, lot="EACH-LOT")
    theirs = ProductFactory(org=other_org, sku="THEIRS")
    elsewhere = StoreFactory(org=org, code="S2")
    return {
        "each": each,
        "grams": grams,
        "dated": dated,
        "old": old,
        "theirs": theirs,
        "sf": loc(store, "SF"),
        "br": loc(store, "BR"),
        "elsewhere": loc(elsewhere, "SF"),
    }


def nothing_written():
    return (
        Sale.objects.count(),
        StockDocument.objects.count(),
        StockLedger.objects.count(),
        StockShortfall.objects.count(),
    )


def refused(call, code: str, fields: set[str]):
    before = nothing_written()
    with pytest.raises(ApplicationError) as caught:
        call()
    error = caught.value
    assert error.code == code, (error.code, error.fields)
    assert set(error.fields) == fields, error.fields
    assert {p["field"] for p in error.extra.get("problems", [])} == fields
    assert nothing_written() == before
    return error


# --- sales --------------------------------------------------------------------------------------


def test_sale_refuses_every_bad_line_at_once(org, store, shop):
    lines = [
        sales.SaleLineInput(shop["each"], D("0.5")),  # fractional_quantity
        sales.SaleLineInput(ItemRef(sku="NO-SUCH"), D(1)),  # unknown_product
        sales.SaleLineInput(shop["theirs"], D(1)),  # another organisation's product
        sales.SaleLineInput(shop["old"], D(1)),  # inactive_product
        sales.SaleLineInput(shop["each"], D(1), location=shop["br"]),  # not_sellable
        sales.SaleLineInput(shop["each"], D(1), location=shop["elsewhere"]),  # unknown_location
        sales.SaleLineInput(shop["grams"], D("-1")),  # invalid_quantity
        sales.SaleLineInput(shop["each"], D(1), unit_price=D("-2")),  # invalid
    ]
    error = refused(
        lambda: sales.sale_record(org=org, store=store, lines=lines, client_ref=ref()),
        "invalid",
        {
            "lines.0.quantity",
            "lines.1.sku",
            "lines.2.product",
            "lines.3.product",
            "lines.4.location",
            "lines.5.location",
            "lines.6.quantity",
            "lines.7.unit_price",
        },
    )
    codes = {p["field"]: p["code"] for p in error.extra["problems"]}
    assert codes == {
        "lines.0.quantity": "fractional_quantity",
        "lines.1.sku": "unknown_product",
        "lines.2.product": "unknown_product",
        "lines.3.product": "inactive_product",
        "lines.4.location": "not_sellable",
        "lines.5.location": "unknown_location",
        "lines.6.quantity": "invalid_quantity",
        "lines.7.unit_price": "invalid",
    }


@pytest.mark.parametrize(
    "line,code,field",
    [
        (
            lambda s: sales.SaleLineInput(s["each"], D("1.5")),
            "fractional_quantity",
            "lines.0.quantity",
        ),
        (
            lambda s: sales.SaleLineInput(ItemRef(barcode="]C1" + make_gtin(99)), D(1)),
            "unknown_product",
            "lines.0.barcode",
        ),
        (
            lambda s: sales.SaleLineInput(s["each"], D(1), location=999999),
            "unknown_location",
            "lines.0.location",
        ),
    ],
)
def test_sale_service_codes_match_the_api(org, store, shop, line, code, field):
    refused(
        lambda: sales.sale_record(org=org, store=store, lines=[line(shop)], client_ref=ref()),
        code,
        {field},
    )


def test_an_empty_sale_is_refused(org, store, shop):
    refused(
        lambda: sales.sale_record(org=org, store=store, lines=[], client_ref=ref()),
        "invalid",
        {"lines"},
    )


def test_a_sale_named_by_scan_sku_or_id_resolves_alike(org, store, shop):
    sale, _ = sales.sale_record(
        org=org,
        store=store,
        client_ref=ref(),
        lines=[
            sales.SaleLineInput(ItemRef(barcode=make_gtin(31)), D(1)),
            sales.SaleLineInput(ItemRef(sku="EACH"), D(1)),
            sales.SaleLineInput(ItemRef(product=shop["each"].pk), D(1), location=shop["sf"].pk),
        ],
    )
    assert [line["product"] for line in sale.result["lines"]] == [shop["each"].pk] * 3


def test_a_refund_into_another_stores_room_is_refused(org, store, shop):
    sale, _ = sales.sale_record(
        org=org, store=store, client_ref=ref(), lines=[sales.SaleLineInput(shop["each"], D(2))]
    )
    refused(
        lambda: sales.sale_refund(
            org=org,
            sale=sale,
            client_ref=ref(),
            lines=[sales.RefundLineInput(1, D(1))],
            location=shop["elsewhere"],
        ),
        "unknown_location",
        {"location"},
    )


# --- stock documents ----------------------------------------------------------------------------


def test_receipt_rules(org, store, shop):
    lines = [
        documents.ReceiptLineInput(shop["dated"], shop["br"], D(5)),  # expiry_required
        documents.ReceiptLineInput(shop["each"], shop["elsewhere"], D(5)),  # unknown_location
        documents.ReceiptLineInput(shop["each"], shop["br"], D("2.5")),  # fractional
        documents.ReceiptLineInput(shop["grams"], shop["br"], D(1), unit_cost=D(-1)),
        documents.ReceiptLineInput(
            shop["grams"], shop["br"], D(1), expiry_date=datetime.date(1999, 1, 1)
        ),
    ]
    error = refused(
        lambda: documents.receipt_record(org=org, store=store, lines=lines, client_ref=ref()),
        "invalid",
        {
            "lines.0.expiry_date",
            "lines.1.location",
            "lines.2.quantity",
            "lines.3.unit_cost",
            "lines.4.expiry_date",
        },
    )
    assert {p["code"] for p in error.extra["problems"]} == {
        "expiry_required",
        "unknown_location",
        "fractional_quantity",
        "invalid",
    }


def test_receipt_takes_lot_and_expiry_from_a_gs1_scan(org, store, shop):
    expiry = datetime.date.today() + datetime.timedelta(days=200)
    gtin14 = "0" + make_gtin(41)
    product = ProductFactory(
        org=org, sku="GS1", tracks_expiry=True, barcodes=[{"code": make_gtin(41)}]
    )
    scan = f"01{gtin14}17{expiry:%y%m%d}10LOT-GS1"
    document, _ = documents.receipt_record(
        org=org,
        store=store,
        client_ref=ref(),
        lines=[documents.ReceiptLineInput(ItemRef(barcode=scan), shop["br"], D(3))],
    )
    (row,) = document.result["rows"]
    assert row["product"] == product.pk
    batch = product.batches.get()
    assert (batch.lot_code, batch.expiry_date) == ("LOT-GS1", expiry)


def test_move_rules(org, store, shop):
    lines = [
        documents.MoveLineInput(shop["each"], shop["sf"], shop["sf"], D(1)),
        documents.MoveLineInput(shop["each"], shop["sf"], shop["br"], D(1), lot_code="NOPE"),
        documents.MoveLineInput(shop["each"], shop["elsewhere"], shop["br"], D(1)),
    ]
    error = refused(
        lambda: documents.move_record(org=org, store=store, lines=lines, client_ref=ref()),
        "invalid",
        {"lines.0.to_location", "lines.1.lot_code", "lines.2.from_location"},
    )
    assert {p["code"] for p in error.extra["problems"]} == {
        "invalid",
        "unknown_lot",
        "unknown_location",
    }


def test_adjustment_rules(org, store, shop):
    refused(
        lambda: documents.adjustment_record(
            org=org,
            store=store,
            client_ref=ref(),
            reason=" ",
            lines=[documents.AdjustmentLineInput(shop["each"], shop["sf"], D(1))],
        ),
        "invalid",
        {"reason"},
    )
    lines = [
        documents.AdjustmentLineInput(shop["each"], shop["sf"], D(0)),
        documents.AdjustmentLineInput(shop["each"], shop["sf"], D(-1), lot_code="NOPE"),
        documents.AdjustmentLineInput(shop["dated"], shop["sf"], D(2), lot_code="NEW-LOT"),
    ]
    error = refused(
        lambda: documents.adjustment_record(
            org=org, store=store, lines=lines, client_ref=ref(), reason="count"
        ),
        "invalid",
        {"lines.0.quantity", "lines.1.lot_code", "lines.2.expiry_date"},
    )
    assert {p["code"] for p in error.extra["problems"]} == {
        "invalid_quantity",
        "unknown_lot",
        "expiry_required",
    }


def test_write_off_rules(org, store, shop):
    refused(
        lambda: documents.write_off_record(
            org=org,
            store=store,
            client_ref=ref(),
            reason="x",
            write_off_type="theft",
            lines=[documents.WriteOffLineInput(shop["each"], shop["sf"], D(1))],
        ),
        "invalid",
        {"type"},
    )
    refused(
        lambda: documents.write_off_record(
            org=org,
            store=store,
            client_ref=ref(),
            reason="broken",
            write_off_type="damage",
            lines=[
                documents.WriteOffLineInput(shop["each"], shop["sf"], D(1), lot_code="NOPE"),
                documents.WriteOffLineInput(ItemRef(product=shop["theirs"].pk), shop["sf"], D(1)),
            ],
        ),
        "invalid",
        {"lines.0.lot_code", "lines.1.product"},
    )


def test_documents_refuse_business_times_out_of_range(org, store, shop):
    for moment in (
        datetime.datetime(1999, 12, 31, tzinfo=datetime.UTC),
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2),
    ):
        refused(
            lambda moment=moment: documents.receipt_record(
                org=org,
                store=store,
                client_ref=ref(),
                occurred_at=moment,
                lines=[documents.ReceiptLineInput(shop["each"], shop["br"], D(1))],
            ),
            "invalid",
            {"occurred_at"},
        )


# --- count scans --------------------------------------------------------------------------------


def test_count_scans_report_every_bad_line_and_keep_unknown_scans(org, store, shop):
    manager = MembershipFactory(org=org, role="manager").user
    session = S.session_start(
        org=org,
        actor=manager,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
    )
    count_pass = P.pass_create(org=org, session=session, location=shop["sf"], actor=manager)
    with pytest.raises(ApplicationError) as caught:
        P.scans_add(
            org=org,
            count_pass=count_pass,
            actor=manager,
            scans=[
                P.ScanInput(ItemRef(sku="NOPE")),
                P.ScanInput(shop["each"], D("0.5")),
                P.ScanInput(ItemRef(barcode="UNKNOWN-CODE")),
            ],
        )
    assert set(caught.value.fields) == {"lines.0.sku", "lines.1.quantity"}
    assert count_pass.unresolved.count() == 0  # all or nothing
    result = P.scans_add(
        org=org,
        count_pass=count_pass,
        actor=manager,
        scans=[
            P.ScanInput(ItemRef(barcode="UNKNOWN-CODE"), D(2)),
            P.ScanInput(ItemRef(barcode="EACH-LOT"), D(3)),  # a package tag names product and lot
        ],
    )
    assert [index for index, _ in result.unresolved] == [0]
    ((line, applied),) = result.lines
    assert (line.product_id, line.lot_code, line.batch_id is not None, applied) == (
        shop["each"].pk,
        "EACH-LOT",
        True,
        True,
    )


# --- the resolver -------------------------------------------------------------------------------


def test_the_resolver_costs_a_fixed_number_of_queries(
    org, store, shop, django_assert_max_num_queries
):
    def refs(n):
        return (
            [ItemRef(sku="EACH")] * n
            + [ItemRef(barcode=make_gtin(31))] * n
            + [ItemRef(product=shop["grams"].pk)] * n
            + [ItemRef(barcode="EACH-LOT")] * n
        )

    for n in (1, 40):
        problems = Problems()
        with django_assert_max_num_queries(4):  # products, stored codes, package tags, lots
            named = items_resolve(org=org, items=refs(n), problems=problems)
            lots_resolve(org=org, named=named, lot_codes=[""] * len(named), problems=problems)
        assert not problems
    with django_assert_max_num_queries(0):
        items_resolve(org=org, items=[shop["each"]] * 50, problems=Problems())


def test_the_resolver_prefers_an_exact_code_to_a_bad_check_digit(org, shop):
    numeric = make_gtin(51)[:-1] + str((int(make_gtin(51)[-1]) + 3) % 10)  # a wrong check digit
    product = ProductFactory(org=org, sku=numeric)
    problems = Problems()
    (named,) = items_resolve(org=org, items=[ItemRef(barcode=numeric)], problems=problems)
    assert (named.product, problems.items) == (product, [])
    (bad,) = items_resolve(
        org=org,
        items=[
            ItemRef(
                barcode=make_gtin(52)[:-1] + "0"
                if make_gtin(52)[-1] != "0"
                else make_gtin(52)[:-1] + "1"
            )
        ],
        problems=problems,
    )
    assert bad.product is None
    assert [p.code for p in problems.items] == ["invalid_check_digit"]
