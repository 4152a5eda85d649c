"""The write path's public surface: policies it consults, postings that span two stores, many
documents in one call, and the statement budget each keeps."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import ApplicationError
from inventory.models import Location, RefType, StockLedger, StockQuant
from inventory.stock import documents, policy
from inventory.stock import write_path as stock
from tests.factories import ProductFactory, StoreFactory
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, ref, sell

D = Decimal


@pytest.fixture
def product(org):
    return ProductFactory(org=org, sku="POL-1")


@pytest.fixture
def registered():
    """Register policies for one test only."""
    added = []

    def add(function, kinds=None):
        policy.register_stock_policy(function, kinds=kinds)
        added.append(function)
        return function

    yield add
    for function in added:
        policy.unregister_stock_policy(function)


def test_a_policy_that_names_its_kinds_is_consulted_for_those_only(org, store, product, registered):
    """A policy of sales alone costs a receipt or a count nothing (no rows planned for it)."""
    seen = []
    registered(lambda planned: seen.append(planned.kind) or [], kinds={"sale"})
    receive(org, store, product, 10)
    sell(org, store, (product, 1))
    assert seen == ["sale"]  # the receipt posted without it


def test_a_policy_sees_the_planned_rows_and_its_warnings_reach_the_sale(
    org, store, product, registered
):
    seen = []

    @registered
    def big_sales(planned: policy.PlannedPosting):
        seen.append(planned)
        sold = -sum(row.qty_delta for row in planned.rows)
        if planned.kind == "sale" and sold > 3:
            return [policy.PolicyWarning("large_sale", f"{sold} units in one sale", line=1)]
        return []

    receive(org, store, product, 10)
    sale = sell(org, store, (product, 4))
    assert sale.result["warnings"] == [
        {"code": "large_sale", "line": 1, "detail": "4 units in one sale"}
    ]
    planned = seen[-1]
    assert (planned.kind, planned.ref_type, planned.ref_id, planned.store_id) == (
        "sale",
        RefType.SALE,
        sale.pk,
        store.pk,
    )
    assert [(r.location_id, r.qty_delta) for r in planned.rows] == [(loc(store, "SF").pk, -4)]
    assert sell(org, store, (product, 1)).result["warnings"] == []


def test_a_policy_refusal_posts_nothing(org, store, product, registered):
    class Blocked(ApplicationError):
        code = "blocked_by_policy"
        status = 409

    @registered
    def no_moves_to_the_back(planned: policy.PlannedPosting):
        back = loc(store, "BR").pk
        if planned.kind == "move" and any(
            r.location_id == back and r.qty_delta > 0 for r in planned.rows
        ):
            raise Blocked("Moves into the back room need a manager's approval.")
        return []

    receive(org, store, product, 5)
    before = StockLedger.objects.count()
    with pytest.raises(Blocked):
        documents.move_record(
            org=org,
            store=store,
            client_ref=ref(),
            lines=[documents.MoveLineInput(product, loc(store, "SF"), loc(store, "BR"), D(2))],
        )
    assert StockLedger.objects.count() == before
    assert on_hand(product, loc(store, "SF")) == 5


def test_a_transfer_is_a_move_whose_rows_belong_to_each_location_s_store(org, store, product):
    other = StoreFactory(org=org, code="S2")
    transit = Location.objects.create(
        org=org, store=store, code="TRN", name="Transit", kind="transit"
    )
    receiving = Location.objects.create(
        org=org, store=other, code="RCV", name="Receiving", kind="receiving"
    )
    receive(org, store, product, 6, lot="T-LOT", cost=3)
    with transaction.atomic():
        posting = stock.Posting(org, store, 1, timezone.now())
        sent = stock.move(
            posting=posting,
            ref_types=(RefType.TRANSFER_OUT, RefType.TRANSFER_OUT),
            lines=[stock.MoveLine(1, product, loc(store, "SF"), transit, D(4))],
        )
        received = stock.move(
            posting=posting,
            ref_types=(RefType.TRANSFER_IN, RefType.TRANSFER_IN),
            lines=[stock.MoveLine(1, product, transit, receiving, D(4))],
        )
    assert {(r.location_id, r.store_id) for r in sent.rows + received.rows} == {
        (loc(store, "SF").pk, store.pk),
        (transit.pk, store.pk),
        (receiving.pk, other.pk),
    }
    quant = StockQuant.objects.get(location=receiving)
    assert (quant.store_id, quant.quantity, quant.batch.lot_code) == (other.pk, 4, "T-LOT")
    assert quant.batch.unit_cost == 3  # the lot keeps its identity and cost
    assert_invariants()


def test_many_receipts_post_in_one_call_within_the_statement_budget(org, store):
    products = [ProductFactory(org=org, sku=f"MANY-{n}") for n in range(30)]
    documents_ = [
        (
            stock.Posting(org, store, 1000 + n, timezone.now()),
            [stock.ReceiveLine(1, p, loc(store, "BR"), D(n + 1), lot_code=f"M{n}")],
        )
        for n, p in enumerate(products)
    ]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        outcome = stock.receive_many(documents=documents_)
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    assert len(statements) <= 4, statements  # batches, lock, quants, ledger
    assert sorted({row.ref_id for row in outcome.rows}) == [1000 + n for n in range(30)]
    assert on_hand(products[29]) == 30
    assert_invariants()


def test_a_large_posting_sends_its_rows_as_one_json_parameter_and_writes_the_same_rows(org, store):
    """From 200 rows on, the ledger insert and the quant upsert send every row in one JSON
    parameter (``core.bulk.json_rows``) instead of a VALUES list with a placeholder per value: the
    same rows, the same quants, exact decimals and times."""
    products = [ProductFactory(org=org, sku=f"BIG-{n:03d}") for n in range(250)]
    floor = loc(store, "SF")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        received = stock.receive(
            posting=stock.Posting(org, store, 77, timezone.now(), source="bench", source_ref="b"),
            lines=[
                stock.ReceiveLine(
                    n + 1, p, floor, D(n + 1) + D("0.0001"), lot_code=f"BIG-{n}", unit_cost=D(2)
                )
                for n, p in enumerate(products)
            ],
        )
    writes = [q["sql"] for q in queries.captured_queries if "jsonb_array_elements(" in q["sql"]]
    assert [sql.split()[2] for sql in writes] == ["inventory_stockquant", "inventory_stockledger"]
    assert not any(" VALUES " in sql for sql in writes)
    assert len(received.rows) == 250
    rows = StockLedger.objects.filter(ref_type=RefType.RECEIPT, ref_id=77).order_by("ref_line")
    assert [(r.ref_line, r.product_id, r.qty_delta, r.unit_cost) for r in rows] == [
        (n + 1, p.pk, D(n + 1) + D("0.0001"), D(2)) for n, p in enumerate(products)
    ]
    assert {r.occurred_at for r in rows} == {received.rows[0].occurred_at}
    assert {(r.source, r.source_ref, r.user_id, r.store_id) for r in rows} == {
        ("bench", "b", None, store.pk)
    }
    # the upsert's conflict branch: take one unit of each back, through arrays again
    with transaction.atomic():
        stock.adjust(
            posting=stock.Posting(org, store, 78, timezone.now()),
            lines=[stock.ReceiveLine(n + 1, p, floor, D(-1)) for n, p in enumerate(products)],
            reason="big correction",
        )
    assert [on_hand(p, floor) for p in products[:3]] == [D("0.0001"), D("1.0001"), D("2.0001")]
    assert on_hand(products[-1], floor) == D("249.0001")
    assert_invariants()
