"""Settling lines: pulls through the write path (lots earliest expiry first, retries posting
nothing, two staff at once), scans, skips and exceptions (missing/damaged → a discrepancy)."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal

import pytest
from django.db import connection

from core.errors import ValidationFailed
from discrepancies.models import Discrepancy, Source, Status
from inventory.exceptions import IdempotencyConflict, InsufficientStock, UnknownBarcode
from inventory.models import RefType, StockDocument, StockLedger
from inventory.tenancy.scope import tenant_scope
from tests.factories import make_gtin
from tests.stock_helpers import assert_invariants, on_hand, receive, sell
from tests.upstock.conftest import local
from upstock import selectors
from upstock.exceptions import LineDecided, NotOnRun, RunNotInProgress, WrongProduct
from upstock.models import LineStatus, UpstockLine, UpstockPull
from upstock.services import baselines, lines, runs

D = Decimal


def by_sku(run) -> dict[str, UpstockLine]:
    return {line.product.sku: line for line in selectors.run_lines(run)}


@pytest.fixture
def stocked(org, store, floor, clock, product, manager):
    """A with two lots in the back room (LATE expires after EARLY) and a par of 6 on the
    floor; B sold 2 with no par; then tonight's run."""
    a = product(sku="A", tracks_expiry=True, barcodes=[{"code": make_gtin(11)}])
    b = product(sku="B", barcodes=[{"code": make_gtin(12)}])
    clock.set(local(2026, 6, 1, 9, 0))
    receive(org, store, a, 4, location="BR", lot="LATE", expiry=datetime.date(2026, 9, 1))
    receive(org, store, a, 3, location="BR", lot="EARLY", expiry=datetime.date(2026, 7, 1))
    receive(org, store, a, 2, location="BR", lot="GONE", expiry=datetime.date(2026, 6, 2))
    receive(org, store, b, 5, location="SF")
    receive(org, store, b, 5, location="BR")
    clock.set(local(2026, 6, 9, 15, 0))
    sell(org, store, (b, 2))
    baselines.baseline_upsert(
        org=org, store=store, location=floor, product=a, par_qty=D(6), actor=manager
    )
    clock.set(local(2026, 6, 9, 22, 0))
    run = runs.run_create(org=org, store=store, location=floor, actor=manager)
    return run, a, b


@pytest.mark.django_db
def test_done_moves_earliest_expiry_first_and_keeps_ledger_equal_to_quants(
    org, store, floor, back, stocked, manager
):
    run, a, _b = stocked
    line = by_sku(run)["A"]
    assert (line.suggested, line.back_room_available) == (6, 7)  # GONE expired: not counted
    done = lines.line_done(org=org, line=line, pulled=D(5), client_ref="t1-a", actor=manager)
    assert (done.status, done.pulled) == (LineStatus.DONE, 5)
    taken = selectors.line_lots_taken(done)
    assert [(t["lot_code"], t["quantity"]) for t in taken] == [("EARLY", 3), ("LATE", 2)]
    assert on_hand(a, floor) == 5 and on_hand(a, back) == 4  # 2 LATE + the 2 expired
    document = StockDocument.objects.get(pk=done.move_document_id)
    assert document.source == "upstock"
    assert_invariants(org)


@pytest.mark.django_db
def test_done_twice_with_the_same_client_ref_posts_once(org, stocked, manager):
    run, _a, _b = stocked
    line = by_sku(run)["A"]
    first = lines.line_done(org=org, line=line, pulled=D(2), client_ref="same", actor=manager)
    again = lines.line_done(org=org, line=line, pulled=D(2), client_ref="same", actor=manager)
    assert again.pulled == first.pulled == 2
    assert StockLedger.objects.filter(org=org, ref_type=RefType.MOVE_IN).count() == 1
    with pytest.raises(IdempotencyConflict):
        lines.line_done(org=org, line=line, pulled=D(3), client_ref="same", actor=manager)
    with pytest.raises(LineDecided):
        lines.line_done(org=org, line=line, pulled=D(1), client_ref="other", actor=manager)


@pytest.mark.django_db
def test_pulling_more_than_the_back_room_has_is_refused_and_writes_nothing(org, stocked, manager):
    run, _a, _b = stocked
    line = by_sku(run)["A"]
    with pytest.raises(InsufficientStock) as refused:
        lines.line_done(org=org, line=line, pulled=D(8), client_ref="big", actor=manager)
    assert refused.value.status == 409
    (short,) = refused.value.extra["lines"]
    assert (short["requested"], short["available"], short["expired"]) == (
        "8.0000",
        "7.0000",
        "2.0000",
    )
    line.refresh_from_db()
    assert line.status == LineStatus.PENDING and not UpstockPull.objects.exists()
    assert not StockLedger.objects.filter(ref_type=RefType.MOVE_IN).exists()


@pytest.mark.django_db
def test_done_with_a_named_lot_takes_only_that_lot(org, stocked, manager):
    run, _a, _b = stocked
    line = by_sku(run)["A"]
    done = lines.line_done(
        org=org, line=line, pulled=D(2), client_ref="lot", batch="LATE", actor=manager
    )
    assert [t["lot_code"] for t in selectors.line_lots_taken(done)] == ["LATE"]
    with pytest.raises(ValidationFailed) as refused:
        lines.line_done(
            org=org, line=by_sku(run)["B"], pulled=D(1), client_ref="x", batch="NOPE",
            actor=manager,
        )  # fmt: skip
    assert refused.value.code == "unknown_lot"


@pytest.mark.django_db
def test_fractional_pull_of_a_unit_product_is_refused(org, stocked, manager):
    run, _a, _b = stocked
    with pytest.raises(ValidationFailed) as refused:
        lines.line_done(
            org=org, line=by_sku(run)["A"], pulled=D("1.5"), client_ref="f", actor=manager
        )
    assert refused.value.code == "fractional_quantity"


@pytest.mark.django_db
def test_scan_adds_pulls_and_replays_post_nothing(org, stocked, manager):
    run, _a, _b = stocked
    gtin = make_gtin(12)
    lines.line_scan(org=org, run=run, code=gtin, quantity=D(1), client_ref="s1", actor=manager)
    lines.line_scan(org=org, run=run, code=gtin, quantity=D(1), client_ref="s1", actor=manager)
    line = lines.line_scan(
        org=org, run=run, code=gtin, quantity=D(1), client_ref="s2", actor=manager
    )
    assert (line.status, line.pulled) == (LineStatus.DONE, 2)
    assert UpstockPull.objects.filter(line=line).count() == 2
    assert_invariants(org)


@pytest.mark.django_db
def test_scan_of_a_gs1_with_a_lot_pulls_that_lot(org, stocked, manager):
    run, _a, _b = stocked
    code = f"010{make_gtin(11)}10LATE"
    line = lines.line_scan(
        org=org, run=run, code=code, quantity=D(2), client_ref="g", actor=manager
    )
    assert [t["lot_code"] for t in selectors.line_lots_taken(line)] == ["LATE"]


@pytest.mark.django_db
def test_scan_of_the_wrong_product_or_one_not_on_the_run(org, stocked, product, manager):
    run, _a, _b = stocked
    expected = by_sku(run)["A"]
    with pytest.raises(WrongProduct) as refused:
        lines.line_scan(
            org=org, run=run, code="B", quantity=D(1), client_ref="w", line=expected,
            actor=manager,
        )  # fmt: skip
    assert refused.value.status == 409 and refused.value.extra["expected"]["sku"] == "A"
    product(sku="NOT-HERE")
    with pytest.raises(NotOnRun):
        lines.line_scan(
            org=org, run=run, code="NOT-HERE", quantity=D(1), client_ref="n", actor=manager
        )
    with pytest.raises(UnknownBarcode):
        lines.line_scan(
            org=org, run=run, code="NOTHING-AT-ALL", quantity=D(1), client_ref="u", actor=manager
        )
    assert not UpstockPull.objects.exists()


@pytest.mark.django_db
def test_skip_and_decided_lines(org, stocked, manager):
    run, _a, _b = stocked
    line = by_sku(run)["B"]
    skipped = lines.line_skip(org=org, line=line, note="enough", actor=manager)
    assert skipped.status == LineStatus.SKIPPED and skipped.note == "enough"
    assert lines.line_skip(org=org, line=line, actor=manager).status == LineStatus.SKIPPED
    with pytest.raises(LineDecided):
        lines.line_done(org=org, line=line, pulled=D(1), client_ref="late", actor=manager)


@pytest.mark.django_db
def test_missing_by_an_operator_records_a_discrepancy_for_a_manager(
    org, store, back, stocked, operator, operator_tenant
):
    run, _a, b = stocked
    line = by_sku(run)["B"]
    marked = lines.line_exception(
        org=org,
        line=line,
        reason="missing",
        quantity=D(2),
        note="not on the shelf",
        tenant=operator_tenant,
        actor=operator,
    )
    assert marked.status == LineStatus.EXCEPTION and marked.exception_quantity == 2
    discrepancy = Discrepancy.objects.get(pk=marked.discrepancy_id)
    assert (discrepancy.source, discrepancy.status) == (Source.AD_HOC, Status.NEW)
    assert discrepancy.location_id == back.pk and discrepancy.product_id == b.pk
    assert on_hand(b, back) == 5  # nothing moves before a manager decides
    again = lines.line_exception(
        org=org, line=line, reason="missing", quantity=D(2), note="not on the shelf",
        tenant=operator_tenant, actor=operator,
    )  # fmt: skip
    assert again.discrepancy_id == marked.discrepancy_id
    assert Discrepancy.objects.count() == 1
    with pytest.raises(LineDecided):
        lines.line_exception(
            org=org, line=line, reason="damaged", quantity=D(1), tenant=operator_tenant,
            actor=operator,
        )  # fmt: skip


@pytest.mark.django_db
def test_damaged_after_a_partial_pull_keeps_the_pull(org, stocked, manager, operator_tenant):
    run, _a, _b = stocked
    line = by_sku(run)["A"]
    lines.line_done(org=org, line=line, pulled=D(2), client_ref="p", actor=manager)
    marked = lines.line_exception(
        org=org, line=line, reason="damaged", quantity=D(1), tenant=operator_tenant,
        actor=manager,
    )  # fmt: skip
    assert (marked.pulled, marked.exception_reason) == (2, "damaged")
    assert marked.discrepancy_id is not None


@pytest.mark.django_db
def test_exception_without_quantity_records_nothing_and_bad_reason_is_400(
    org, stocked, manager, operator_tenant
):
    run, _a, _b = stocked
    line = by_sku(run)["B"]
    with pytest.raises(ValidationFailed):
        lines.line_exception(
            org=org, line=line, reason="eaten", tenant=operator_tenant, actor=manager
        )
    marked = lines.line_exception(
        org=org, line=line, reason="already_stocked", tenant=operator_tenant, actor=manager
    )
    assert marked.discrepancy_id is None and not Discrepancy.objects.exists()


@pytest.mark.django_db
def test_lines_of_a_completed_run_do_not_change(org, stocked, manager):
    run, _a, _b = stocked
    runs.run_abandon(org=org, run=run, actor=manager)
    with pytest.raises(RunNotInProgress):
        lines.line_done(org=org, line=by_sku(run)["A"], pulled=D(1), client_ref="z", actor=manager)


# --- two staff at once ----------------------------------------------------------------------


def together(org, workers: list) -> list:
    """Run each ``worker()`` in its own thread, released at once; results or exceptions."""
    barrier = threading.Barrier(len(workers))
    results: list = [None] * len(workers)

    def run(index: int, worker) -> None:
        try:
            with tenant_scope(org):
                barrier.wait(timeout=30)
                results[index] = worker()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


@pytest.fixture
def live_run(org, store, floor, product, manager):
    """Real time (threads do not see the test's clock): A sold 2 with 10 in the back room."""
    a = product(sku="A")
    receive(org, store, a, 5, location="SF")
    receive(org, store, a, 10, location="BR")
    sell(org, store, (a, 2))
    run = runs.run_create(org=org, store=store, location=floor, actor=manager)
    return run, by_sku(run)["A"]


@pytest.mark.django_db(transaction=True)
def test_two_staff_marking_one_line_done_at_once_post_one_move(org, live_run, manager, operator):
    _run, line = live_run
    results = together(
        org,
        [
            lambda: lines.line_done(org=org, line=line, pulled=D(2), client_ref="a", actor=manager),
            lambda: lines.line_done(
                org=org, line=line, pulled=D(2), client_ref="b", actor=operator
            ),
        ],
    )
    assert sorted(type(r).__name__ for r in results) == ["LineDecided", "UpstockLine"]
    line.refresh_from_db()
    assert line.pulled == 2
    assert StockLedger.objects.filter(ref_type=RefType.MOVE_IN).count() == 1
    assert_invariants(org)


@pytest.mark.django_db(transaction=True)
def test_the_same_pull_sent_twice_at_once_posts_once(org, live_run, manager):
    _run, line = live_run
    results = together(
        org,
        [lambda: lines.line_done(org=org, line=line, pulled=D(2), client_ref="same", actor=manager)]
        * 2,
    )
    assert all(isinstance(r, UpstockLine) for r in results), results
    line.refresh_from_db()
    assert line.pulled == 2 and UpstockPull.objects.count() == 1
    assert_invariants(org)


@pytest.mark.django_db(transaction=True)
def test_scans_of_one_line_at_once_all_count(org, live_run, manager):
    run, line = live_run
    results = together(
        org,
        [
            (lambda n=n: lines.line_scan(
                org=org, run=run, code="A", quantity=D(1), client_ref=f"s{n}", actor=manager
            ))
            for n in range(4)
        ],
    )  # fmt: skip
    assert all(isinstance(r, UpstockLine) for r in results), results
    line.refresh_from_db()
    assert line.pulled == 4
    assert_invariants(org)
