"""The write path: FEFO, expiry, all-or-nothing, voids and refunds, shortfalls, query counts."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.errors import ValidationFailed
from inventory.exceptions import IdempotencyConflict, InsufficientStock
from inventory.models import (
    Batch,
    Location,
    Organization,
    RefType,
    Sale,
    StockLedger,
    StockQuant,
    StockShortfall,
)
from inventory.sales import services as sales
from inventory.stock import write_path as stock_service
from inventory.stock.locks import QuantFilter, lock_quants
from tests.factories import ProductFactory
from tests.stock_helpers import assert_invariants, days, loc, on_hand, receive, ref, sell

D = Decimal


@pytest.fixture
def product(org):
    return ProductFactory(org=org, sku="GUM")


def consumed_lots(sale):
    return [(c["lot_code"], c["quantity"]) for c in sale.result["lines"][0]["consumed"]]


def test_sale_consumes_earliest_expiry_first_and_no_expiry_last(org, store, product):
    receive(org, store, product, 5, lot="NOEXP", cost=1)
    receive(org, store, product, 5, lot="LATE", expiry=days(60), cost=2)
    receive(org, store, product, 5, lot="SOON", expiry=days(10), cost=3)
    sale = sell(org, store, (product, 12))
    assert consumed_lots(sale) == [("SOON", "5.0000"), ("LATE", "5.0000"), ("NOEXP", "2.0000")]
    assert D(sale.result["cogs"]) == D("5") * 3 + D("5") * 2 + D("2") * 1
    assert_invariants()


def test_same_expiry_goes_by_earliest_received(org, store, product):
    early = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    receive(
        org,
        store,
        product,
        3,
        lot="B",
        expiry=days(30),
        occurred_at=early + datetime.timedelta(days=5),
    )
    receive(org, store, product, 3, lot="A", expiry=days(30), occurred_at=early)
    assert consumed_lots(sell(org, store, (product, 4))) == [("A", "3.0000"), ("B", "1.0000")]


def test_expired_lots_are_never_sold(org, store, product):
    receive(org, store, product, 10, lot="OLD", expiry=days(-1))
    receive(org, store, product, 2, lot="NEW", expiry=days(5))
    with pytest.raises(InsufficientStock) as error:
        sell(org, store, (product, 3))
    assert error.value.extra["lines"][0]["available"] == "2.0000"
    assert error.value.extra["lines"][0]["expired"] == "10.0000"
    assert on_hand(product) == 12
    assert consumed_lots(sell(org, store, (product, 2))) == [("NEW", "2.0000")]


def test_lot_expiring_today_still_sells(org, store, product):
    receive(org, store, product, 1, lot="TODAY", expiry=days(0))
    assert consumed_lots(sell(org, store, (product, 1))) == [("TODAY", "1.0000")]


def test_only_sellable_locations_feed_sales(org, store, product):
    receive(org, store, product, 5, location="BR")
    with pytest.raises(InsufficientStock):
        sell(org, store, (product, 1))
    receive(org, store, product, 1, location="SF")
    sell(org, store, (product, 1))
    assert on_hand(product, loc(store, "BR")) == 5


def test_sale_is_all_or_nothing_and_lists_every_short_line(org, store, product):
    other = ProductFactory(org=org, sku="OTHER")
    third = ProductFactory(org=org, sku="THIRD")
    receive(org, store, product, 5)
    receive(org, store, other, 1)
    with pytest.raises(InsufficientStock) as error:
        sell(org, store, (product, 2), (other, 3), (third, 1))
    short = {
        (line["sku"], line["requested"], line["available"]) for line in error.value.extra["lines"]
    }
    assert short == {("OTHER", "3.0000", "1.0000"), ("THIRD", "1.0000", "0.0000")}
    assert on_hand(product) == 5 and on_hand(other) == 1
    assert not StockLedger.objects.filter(ref_type=RefType.SALE).exists()
    assert StockShortfall.objects.filter(outcome="blocked").count() == 2
    assert_invariants()


def test_sale_spanning_batches_and_locations(org, store, product):
    from tests.factories import StoreFactory  # noqa: F401

    display = stock_service  # noqa: F841
    receive(org, store, product, 2, lot="A", expiry=days(5))
    receive(org, store, product, 2, lot="B", expiry=days(6))
    sale = sell(org, store, (product, 3))
    assert consumed_lots(sale) == [("A", "2.0000"), ("B", "1.0000")]
    assert StockLedger.objects.filter(ref_type=RefType.SALE, ref_id=sale.pk).count() == 2


def test_void_returns_stock_to_the_batches_it_came_from(org, store, product):
    receive(org, store, product, 2, lot="A", expiry=days(5), cost=1)
    receive(org, store, product, 5, lot="B", expiry=days(9), cost=2)
    sale = sell(org, store, (product, 4))
    sales.sale_void(org=org, sale=sale)
    lots = {q.batch.lot_code: q.quantity for q in StockQuant.objects.select_related("batch")}
    assert lots == {"A": 2, "B": 5}
    before = StockLedger.objects.count()
    sales.sale_void(org=org, sale=sale)  # twice: posts nothing
    assert StockLedger.objects.count() == before
    assert_invariants()


def test_partial_refunds_then_void(org, store, product):
    receive(org, store, product, 2, lot="A", expiry=days(5))
    receive(org, store, product, 5, lot="B", expiry=days(9))
    sale = sell(org, store, (product, 5))  # A:2, B:3
    sales.sale_refund(
        org=org, sale=sale, lines=[sales.RefundLineInput(1, D(2))], client_ref=ref("r")
    )
    lots = {q.batch.lot_code: q.quantity for q in StockQuant.objects.select_related("batch")}
    assert lots == {"A": 0, "B": 4}  # latest consumed (B) comes back first
    with pytest.raises(ValidationFailed) as error:
        sales.sale_refund(
            org=org, sale=sale, lines=[sales.RefundLineInput(1, D(4))], client_ref=ref("r")
        )
    assert error.value.code == "refund_exceeds_sold"
    sales.sale_void(org=org, sale=sale)
    lots = {q.batch.lot_code: q.quantity for q in StockQuant.objects.select_related("batch")}
    assert lots == {"A": 2, "B": 5}
    assert_invariants()


def test_refund_into_quarantine(org, store, product):
    quarantine = Location.objects.create(
        org=org, store=store, code="QRN", name="Quarantine", kind="quarantine"
    )
    receive(org, store, product, 3)
    sale = sell(org, store, (product, 2))
    sales.sale_refund(
        org=org,
        sale=sale,
        lines=[sales.RefundLineInput(1, D(1))],
        client_ref=ref("r"),
        location=quarantine,
        reason="damaged",
    )
    assert on_hand(product, quarantine) == 1
    assert on_hand(product, loc(store, "SF")) == 1
    assert_invariants()


def test_refund_of_a_voided_sale_is_refused(org, store, product):
    receive(org, store, product, 3)
    sale = sell(org, store, (product, 1))
    sales.sale_void(org=org, sale=sale)
    with pytest.raises(Exception) as error:
        sales.sale_refund(
            org=org, sale=sale, lines=[sales.RefundLineInput(1, D(1))], client_ref=ref("r")
        )
    assert error.value.code == "sale_voided"


def test_replay_returns_the_first_sale_and_posts_nothing(org, store, product):
    receive(org, store, product, 5)
    first = sell(org, store, (product, 2), client_ref="till-1-0001")
    rows = StockLedger.objects.count()
    again = sell(org, store, (product, 2), client_ref="till-1-0001")
    assert again.pk == first.pk and again.result == first.result
    assert StockLedger.objects.count() == rows
    with pytest.raises(IdempotencyConflict):
        sell(org, store, (product, 3), client_ref="till-1-0001")


@pytest.mark.parametrize("mode", ["warn", "record"])
def test_negative_modes_book_the_shortfall_and_the_next_receipt_settles_it(
    org, store, product, mode
):
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode=mode)
    org.refresh_from_db()
    receive(org, store, product, 1, lot="A")
    sale = sell(org, store, (product, 3))
    assert bool(sale.result["warnings"]) is (mode == "warn")
    spare = Batch.objects.get(unallocated_store=store, product=product)
    assert StockQuant.objects.get(batch=spare).quantity == -2
    assert StockShortfall.objects.filter(outcome="booked").count() == 1
    assert_invariants()
    sell(org, store, (product, 1))  # deeper: same unallocated batch
    assert StockQuant.objects.get(batch=spare).quantity == -3
    receive(org, store, product, 5, lot="B")
    assert StockQuant.objects.get(batch=spare).quantity == 0
    assert on_hand(product) == 2
    assert_invariants()


def test_receiving_an_existing_lot_reuses_its_batch(org, store, product):
    receive(org, store, product, 2, lot="L1", expiry=days(3), cost=4)
    receive(org, store, product, 3, lot="L1", expiry=days(3), cost=4, location="BR")
    assert Batch.objects.filter(product=product, lot_code="L1").count() == 1
    assert on_hand(product) == 5


def test_receiving_an_expired_lot_is_allowed_but_it_never_sells(org, store, product):
    receive(org, store, product, 4, lot="GONE", expiry=days(-30))
    assert on_hand(product) == 4
    with pytest.raises(InsufficientStock):
        sell(org, store, (product, 1))


def test_write_path_takes_at_most_four_queries_for_a_whole_document(org, store):
    products = [ProductFactory(org=org) for _ in range(6)]
    for p in products:
        for lot in range(3):
            receive(org, store, p, 2, lot=f"{p.sku}-{lot}", expiry=days(lot + 1))
    posting = stock_service.Posting(org, store, 999, datetime.datetime.now(datetime.UTC))
    lines = [stock_service.ConsumeLine(n, p, D(5)) for n, p in enumerate(products, start=1)]
    floor = stock_service.first_sellable_location(store)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        outcome = stock_service.consume(
            posting=posting, lines=lines, ref_type=RefType.SALE, selling_location=floor
        )
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))
    ]
    assert len(outcome.rows) == 18
    assert len(statements) <= 4, statements
    lock = next(i for i, s in enumerate(statements) if "FOR UPDATE" in s)
    update = next(i for i, s in enumerate(statements) if "ON CONFLICT" in s)
    assert lock < update and "ORDER BY q.id FOR UPDATE OF q" in statements[lock]
    assert_invariants()


def test_sale_service_refuses_a_line_naming_a_room_that_does_not_sell(org, store, product):
    receive(org, store, product, 5, location="BR")
    with pytest.raises(ValidationFailed) as error:
        sell(org, store, (product, 1, "BR"))
    assert error.value.code == "not_sellable"
    assert on_hand(product) == 5


def _values(obj) -> list:
    return [getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields]


def test_lock_quants_loads_what_the_orm_would(org, store, product, django_assert_num_queries):
    receive(org, store, product, 3, lot="A", expiry=days(5), cost="2.1234")
    receive(org, store, product, 4, location="BR")
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode="record")
    org.refresh_from_db()
    sell(org, store, (product, 5, "SF"))  # 3 from lot A, 2 booked to the unallocated batch
    expected = list(
        StockQuant.objects.filter(product=product).select_related("batch").order_by("id")
    )
    with transaction.atomic(), django_assert_num_queries(1):
        locked = lock_quants(org=org, match=QuantFilter(products=[product.pk]))
        batches = [quant.batch for quant in locked]  # loaded with the quants: no query
    assert [_values(q) for q in locked] == [_values(q) for q in expected]
    assert [_values(b) for b in batches] == [_values(q.batch) for q in expected]
    first = next(q for q in locked if q.batch.lot_code == "A")
    assert isinstance(first.quantity, Decimal) and first.batch.unit_cost == D("2.1234")
    assert first.batch.expiry_date == days(5) and first.batch.received_at.tzinfo is not None
    assert [q.unallocated for q in locked].count(True) == 1
    assert not locked[0]._state.adding


def test_sale_service_statements_do_not_grow_with_lines_or_lots(org, store):
    """Insert-or-replay with the lines, lock, upsert, ledger, stored answer."""
    products = [ProductFactory(org=org) for _ in range(5)]
    for p in products:
        for lot in range(3):
            receive(org, store, p, 2, lot=f"{p.sku}-{lot}", expiry=days(lot + 1))

    floor = loc(store, "SF")

    def statements(*items, client_ref):
        lines = [sales.SaleLineInput(product, D(n), location=at) for product, n, at in items]
        with CaptureQueriesContext(connection) as queries:
            sale, _ = sales.sale_record(org=org, store=store, lines=lines, client_ref=client_ref)
        return sale, [
            q["sql"]
            for q in queries.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        ]

    one, one_sql = statements((products[0], 1, None), client_ref="s-1")
    many, many_sql = statements(
        (products[1], 5, floor), *[(p, 5, None) for p in products[2:]], client_ref="s-2"
    )
    assert len(one_sql) == len(many_sql) == 5, many_sql
    assert sum(len(ln["consumed"]) for ln in many.result["lines"]) == 12
    stored = type(many).objects.get(pk=many.pk)
    assert stored.result == many.result and stored.warnings == many.warnings == []
    assert list(
        stored.lines.values_list("line_no", "product_id", "location_id", "quantity", "unit_price")
    ) == [
        (n, p.pk, floor.pk if n == 1 else None, D(5), None)
        for n, p in enumerate(products[1:], start=1)
    ]

    rows = StockLedger.objects.count()
    again, again_sql = statements((products[0], 1, None), client_ref="s-1")
    assert again.pk == one.pk and again.result == one.result
    assert len(again_sql) == 2  # the insert that meets the key, and reading the first sale
    assert StockLedger.objects.count() == rows
    assert_invariants()


def test_a_deactivated_sellable_room_no_longer_feeds_sales(org, store, product):
    kiosk = Location.objects.create(
        org=org,
        store=store,
        code="KIOSK",
        name="Kiosk",
        kind="sales_floor",
        sellable=True,
        sort_order=1,
    )
    receive(org, store, product, 2, location="KIOSK", lot="K", expiry=days(1))
    receive(org, store, product, 5, location="SF", lot="F", expiry=days(30))
    sale = sell(org, store, (product, 3))  # the kiosk sorts first and its lot expires first
    assert consumed_lots(sale) == [("K", "2.0000"), ("F", "1.0000")]
    receive(org, store, product, 2, location="KIOSK", lot="K", expiry=days(1))
    Location.objects.filter(pk=kiosk.pk).update(is_active=False)
    sale = sell(org, store, (product, 1))
    assert consumed_lots(sale) == [("F", "1.0000")]
    with pytest.raises(ValidationFailed) as error:
        sell(org, store, (product, 1, "KIOSK"))
    assert error.value.code == "unknown_location"  # as the API says of an inactive room
    assert on_hand(product, loc(store, "KIOSK")) == 2
    assert_invariants()


def test_shortfalls_book_at_the_first_sellable_room_in_at_most_four_statements(org, store, product):
    """The first shortfall of a product in a store creates its spare batch (lock, batch,
    quants, ledger); later ones find that batch among the locked quants (lock, quants, ledger).
    """
    Location.objects.create(
        org=org,
        store=store,
        code="KIOSK",
        name="Kiosk",
        kind="sales_floor",
        sellable=True,
        sort_order=20,
    )  # sorts after the floor (10)
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode="record")
    org.refresh_from_db()
    floor = stock_service.first_sellable_location(store)
    assert floor == loc(store, "SF").pk

    def short_sale(quantity, ref_id):
        posting = stock_service.Posting(org, store, ref_id, datetime.datetime.now(datetime.UTC))
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            outcome = stock_service.consume(
                posting=posting,
                lines=[stock_service.ConsumeLine(1, product, D(quantity))],
                ref_type=RefType.SALE,
                selling_location=floor,
                negative_mode="record",
            )
        return outcome, [
            q["sql"]
            for q in queries.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        ]

    first, first_sql = short_sale(2, 997)
    assert len(first_sql) == 4, first_sql
    spare = Batch.objects.get(unallocated_store=store, product=product)
    assert [(r.batch_id, r.location_id, r.qty_delta) for r in first.rows] == [
        (spare.pk, floor, D(-2))
    ]
    again, again_sql = short_sale(3, 998)
    assert len(again_sql) == 3, again_sql
    assert [(r.batch_id, r.qty_delta) for r in again.rows] == [(spare.pk, D(-3))]
    assert StockQuant.objects.get(batch=spare).quantity == -5
    assert_invariants()


def test_a_sale_books_its_shortfall_where_the_sale_insert_said(org, store, product):
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode="warn")
    org.refresh_from_db()
    Location.objects.filter(store=store, code="SF").update(sort_order=30)
    kiosk = Location.objects.create(
        org=org,
        store=store,
        code="KIOSK",
        name="Kiosk",
        kind="sales_floor",
        sellable=True,
        sort_order=5,
    )
    sale = sell(org, store, (product, 2))
    assert sale.result["warnings"][0]["code"] == "sold_without_stock"
    spare = Batch.objects.get(unallocated_store=store, product=product)
    assert StockQuant.objects.get(batch=spare).location_id == kiosk.pk
    Location.objects.filter(store=store).update(sellable=False)
    with pytest.raises(InsufficientStock):  # a store that sells nowhere cannot book it
        sell(org, store, (product, 1))
    assert_invariants()


def test_a_sale_without_lines_is_refused_and_writes_nothing(org, store):
    with pytest.raises(ValidationFailed) as error:
        sales.sale_record(org=org, store=store, lines=[], client_ref="empty")
    assert list(error.value.fields) == ["lines"]
    assert not Sale.objects.exists()
