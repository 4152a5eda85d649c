"""Deciding and finalising hundreds of count rows at once: the same statements as for three,
and the same results.

A bulk decision or a full count's finalisation sends its rows as arrays or as one JSON
parameter from a size on (``core.bulk.ARRAY_FROM`` ids, 200 audit events or ledger rows), and
writes only what the step reads; these tests run both sizes through the real services, so the
large paths are exercised and checked against the small ones.
"""

from __future__ import annotations

import gc
import threading
from decimal import Decimal

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.bulk import ARRAY_FROM, any_of, bulk_update_rows, gc_paused
from counts.models import CountSession, VarianceRow
from counts.services import sessions as S
from discrepancies.models import Discrepancy, Severity, Status
from discrepancies.services.decisions import Decision, discrepancies_decide
from inventory.models import (
    AuditAction,
    AuditEvent,
    RefType,
    Role,
    StockHold,
    StockLedger,
    Store,
)
from tests.discrepancies.test_decisions import counted, person, tenant
from tests.factories import ProductFactory, StoreFactory, VariancePolicyFactory
from tests.stock_helpers import assert_invariants, on_hand, receive

D = Decimal
LARGE = 220  # past ARRAY_FROM (ids) and the 200 from which audit events and ledger rows go as JSON


def _reconciled(org, size: int, counter):
    """A store of ``size`` products, 20 each on the floor, counted 3 short (MEDIUM) — every
    tenth 8 short (HIGH: held)."""
    store = StoreFactory(org=org, code=f"B{size}")
    products = [ProductFactory(org=org, sku=f"B{size}-{n:03d}") for n in range(size)]
    for product in products:
        receive(org, store, product, 20, cost=D("2.5"))
    short = {p: (12 if n % 10 == 0 else 17) for n, p in enumerate(products)}
    session = counted(org, store, counter, short)
    return store, session, short


def _approve_and_finalise(org, session, admin):
    ids = list(
        VarianceRow.objects.filter(session=session)
        .order_by("pk")
        .values_list("discrepancy_id", flat=True)
    )
    with CaptureQueriesContext(connection) as approving:
        outcome = discrepancies_decide(
            org=org,
            ids=ids,
            decision=Decision("approve", notes="counted twice"),
            tenant=tenant(org, admin),
            actor=admin,
        )
    assert not outcome.refused and len(outcome.decided) == len(ids)
    with CaptureQueriesContext(connection) as finalising:
        S.session_finalize(org=org, session=session, actor=admin)
    return ids, len(approving), len(finalising)


def test_three_rows_or_hundreds_cost_the_same_statements_and_end_the_same(org):
    VariancePolicyFactory(org=org, units=2, percent=0)
    counter, admin = person(org, Role.MANAGER), person(org, Role.ADMIN)
    costs = []
    for size in (3, LARGE):
        store, session, short = _reconciled(org, size, counter)
        held = StockHold.objects.filter(store=store)
        assert held.count() == len(range(0, size, 10))
        ids, approving, finalising = _approve_and_finalise(org, session, admin)
        costs.append((approving, finalising))

        assert CountSession.objects.get(pk=session.pk).status == "closed"
        assert not held.exists()
        for product, quantity in short.items():
            assert on_hand(product) == quantity
        rows = {r.discrepancy_id: r for r in VarianceRow.objects.filter(session=session)}
        ledger = {
            (r.ref_line, r.product_id): r.qty_delta
            for r in StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE, ref_id=session.pk)
        }
        for d in Discrepancy.objects.filter(pk__in=ids):
            row = rows[d.pk]
            assert (d.status, d.decided_by_id, d.resolution_notes) == (
                Status.ADJUSTED,
                admin.pk,
                "counted twice",
            )
            assert (row.status, row.decided_by_id, row.reason) == (
                "approved",
                admin.pk,
                "counted twice",
            )
            expected = D(-8) if d.severity == Severity.HIGH else D(-3)
            assert d.posted_quantity == row.posted_quantity == expected
            assert ledger[(d.ledger_ref_line, d.product_id)] == expected
            assert (d.ledger_ref_type, d.ledger_ref_id) == (RefType.COUNT_RECONCILE, session.pk)
        events = AuditEvent.objects.filter(
            object_type="discrepancies.discrepancy", object_id__in=ids
        )
        for action in (AuditAction.DISCREPANCY_APPROVED, AuditAction.DISCREPANCY_ADJUSTED):
            mine = list(events.filter(action=action).order_by("pk"))
            assert [e.object_id for e in mine] == ids  # one each, in the order decided
            assert {(e.actor_id, e.store_id) for e in mine} == {(admin.pk, store.pk)}
        adjusted = events.get(action=AuditAction.DISCREPANCY_ADJUSTED, object_id=ids[1])
        assert adjusted.after["posted_quantity"] == "-3.0000"
        assert adjusted.after["ledger_ref"][:2] == [RefType.COUNT_RECONCILE, session.pk]
    assert costs[0] == costs[1], costs
    assert_invariants()


# --- the helpers themselves ----------------------------------------------------------------------


def test_any_of_sends_a_long_list_as_one_array_and_a_short_one_as_a_list(org):
    stores = [StoreFactory(org=org, code=f"A{n:03d}") for n in range(ARRAY_FROM + 5)]
    ids = [s.pk for s in stores]

    for chosen, shape in ((ids, "= ANY("), (ids[:3], " IN (")):
        with CaptureQueriesContext(connection) as queries:
            found = sorted(Store.objects.filter(any_of("pk", chosen)).values_list("pk", flat=True))
        assert found == sorted(chosen)
        assert shape in queries[0]["sql"]
    assert list(Store.objects.filter(any_of("pk", []))) == []


def test_bulk_update_rows_sends_a_shared_value_once_and_each_row_its_own(org):
    counter = person(org, Role.MANAGER)
    VariancePolicyFactory(org=org, units=2, percent=0)
    _, session, _ = _reconciled(org, 3, counter)
    rows = list(VarianceRow.objects.filter(session=session).order_by("pk"))
    texts = ['l\'apostrophe "quoted" \\ back', "ünïcödé — ✓", ""]
    with transaction.atomic():
        for row, text in zip(rows, texts, strict=True):
            row.reason, row.posted_quantity, row.status = text, D("-0.0001"), "approved"
        with CaptureQueriesContext(connection) as queries:
            bulk_update_rows(VarianceRow, rows, ["reason", "posted_quantity", "status"])
    statement = queries[0]["sql"]
    assert "jsonb_array_elements(" in statement and statement.count("UPDATE") == 1
    stored = list(
        VarianceRow.objects.filter(session=session)
        .order_by("pk")
        .values_list("reason", "posted_quantity", "status")
    )
    assert stored == [(text, D("-0.0001"), "approved") for text in texts]


def test_bulk_update_rows_refuses_a_value_too_long_for_its_column_rather_than_cutting_it(org):
    counter = person(org, Role.MANAGER)
    VariancePolicyFactory(org=org, units=2, percent=0)
    _, session, _ = _reconciled(org, 2, counter)
    rows = list(VarianceRow.objects.filter(session=session).order_by("pk"))
    before = [row.reason for row in rows]
    rows[0].reason, rows[1].reason = "x" * 300, "short"
    with pytest.raises(DataError), transaction.atomic():
        bulk_update_rows(VarianceRow, rows, ["reason"])
    stored = VarianceRow.objects.filter(session=session).order_by("pk")
    assert [row.reason for row in stored] == before


def test_bulk_update_rows_sends_values_json_cannot_carry_as_arrays(org):
    """A JSON column's value is an adapter, not plain JSON text: those rows go as arrays."""
    counter = person(org, Role.MANAGER)
    store = StoreFactory(org=org, code="JS")
    sessions = [
        S.session_create(org=org, store=store, scope="FULL_STORE", actor=counter),
        S.session_create(
            org=org, store=StoreFactory(org=org, code="JT"), scope="FULL_STORE", actor=counter
        ),
    ]
    sessions[0].scope_categories, sessions[1].scope_categories = ["Flower"], ["Edibles", "Vapes"]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        bulk_update_rows(CountSession, sessions, ["scope_categories"])
    assert "unnest(" in queries[0]["sql"]
    assert [
        s.scope_categories
        for s in CountSession.objects.filter(pk__in=[x.pk for x in sessions]).order_by("pk")
    ] == [["Flower"], ["Edibles", "Vapes"]]


def test_gc_paused_resumes_the_collector_when_the_last_block_leaves():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block is still inside
    assert gc.isenabled()

    with pytest.raises(ValueError), gc_paused():
        raise ValueError
    assert gc.isenabled()

    # two threads: the first to leave does not resume it under the other
    entered, first_left, done = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def second():
        with gc_paused():
            entered.set()
            first_left.wait(5)
            seen.append(gc.isenabled())
        done.set()

    worker = threading.Thread(target=second)
    with gc_paused():
        worker.start()
        entered.wait(5)
    first_left.set()
    done.wait(5)
    worker.join(5)
    assert seen == [False] and gc.isenabled()

    gc.disable()  # paused by someone else before: left as it was
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
