"""The write path under real concurrency: real threads, real PostgreSQL, committed data.

Each thread is one till or tablet: it opens its own connection, enters the tenant scope itself
(context variables do not carry into new threads), waits at a barrier so all start together, and
closes its connection at the end. Every session has a ``statement_timeout`` and every join a
timeout, so a deadlock or a lost lock fails the test instead of hanging it. PostgreSQL itself
reports real deadlocks within ``deadlock_timeout`` (1 s) as ``OperationalError``; none may occur.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import OperationalError, connection
from django.db.models import Sum

from core.errors import InvalidState, ValidationFailed
from inventory.exceptions import InsufficientStock
from inventory.models import (
    Batch,
    Location,
    NegativeStockMode,
    Organization,
    RefType,
    Sale,
    SaleStatus,
    StockLedger,
    StockQuant,
    StockShortfall,
)
from inventory.sales import services as sales
from inventory.stock import documents
from inventory.stock import write_path as stock_service
from inventory.tenancy.scope import tenant_scope
from inventory.tenancy.services import location_create
from tests.factories import ProductFactory
from tests.stock_helpers import (
    adjustment_inputs,
    assert_invariants,
    days,
    loc,
    move_inputs,
    on_hand,
    receipt_inputs,
    receive,
    sell,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

D = Decimal
STATEMENT_TIMEOUT = "20s"
BARRIER_TIMEOUT = 30
JOIN_TIMEOUT = 90


def _open_connections() -> int:
    """Other sessions on this test database (the threads' connections, until they close)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def run_concurrently(org, jobs) -> list[tuple[object, BaseException | None]]:
    """Run each job in its own thread, released together; ``(result, error)`` per job.

    The jobs run inside ``tenant_scope(org)`` as an API request would. After the join the
    threads' connections must be gone: a thread that leaks its connection fails the test.
    """
    barrier = threading.Barrier(len(jobs))
    outcomes: list[tuple[object, BaseException | None]] = [(None, None)] * len(jobs)

    def worker(index, job):
        try:
            with tenant_scope(org):
                with connection.cursor() as cursor:  # connect before the barrier
                    cursor.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
                barrier.wait(timeout=BARRIER_TIMEOUT)
                outcomes[index] = (job(), None)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            outcomes[index] = (None, exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(i, job), daemon=True) for i, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {JOIN_TIMEOUT}s (deadlock?): {stuck}"

    for _ in range(50):  # backends exit just after the client closes
        if _open_connections() == 0:
            break
        time.sleep(0.1)
    assert _open_connections() == 0, "a thread left its database connection open"
    return outcomes


def errors_of(outcomes) -> list[BaseException]:
    return [error for _, error in outcomes if error is not None]


def assert_no_deadlock(outcomes) -> None:
    broken = [e for e in errors_of(outcomes) if isinstance(e, OperationalError)]
    assert not broken, f"deadlock or timeout: {broken[:3]}"


def product_total(product) -> Decimal:
    return StockQuant.objects.filter(product=product).aggregate(total=Sum("quantity"))[
        "total"
    ] or D(0)


def sale_job(org, store, items, client_ref):
    """One till's sale through the service, as the API calls it."""
    lines = [sales.SaleLineInput(product, D(str(quantity))) for product, quantity in items]

    def job():
        sale, created = sales.sale_record(org=org, store=store, lines=lines, client_ref=client_ref)
        return sale.pk, created

    return job


@pytest.fixture
def display(org, store) -> Location:
    """A second sellable room, sorted before the sales floor."""
    return location_create(
        org=org,
        store=store,
        code="DSP",
        name="Display case",
        kind="sales_floor",
        sellable=True,
        sort_order=5,
    )


def test_sixteen_tills_selling_the_last_ten_units_never_oversell(org, store, display):
    product = ProductFactory(org=org, sku="HOT")
    receive(org, store, product, 3, lot="A", expiry=days(5), cost=1)
    receive(org, store, product, 3, lot="B", expiry=days(9), cost=2, location="DSP")
    receive(org, store, product, 4, lot="C", cost=3)

    outcomes = run_concurrently(
        org, [sale_job(org, store, [(product, 1)], f"till-{n}") for n in range(16)]
    )

    assert_no_deadlock(outcomes)
    sold = [result for result, error in outcomes if error is None]
    refused = errors_of(outcomes)
    assert len(sold) == 10 and all(created for _, created in sold)
    assert len(refused) == 6 and all(isinstance(e, InsufficientStock) for e in refused), refused
    assert all(e.extra["lines"][0]["available"] == "0.0000" for e in refused)

    assert product_total(product) == 0
    assert not StockQuant.objects.filter(quantity__lt=0).exists()
    assert Sale.objects.count() == 10  # refused sales leave no document behind
    rows = StockLedger.objects.filter(ref_type=RefType.SALE)
    assert rows.count() == 10 and rows.aggregate(t=Sum("qty_delta"))["t"] == -10
    assert sorted(rows.values_list("ref_id", flat=True)) == sorted(pk for pk, _ in sold)
    blocked = StockShortfall.objects.filter(outcome="blocked")
    assert blocked.count() == 6
    assert set(blocked.values_list("requested", "available")) == {(D(1), D(0))}
    assert_invariants()


def test_sixteen_tills_selling_two_units_each_lose_no_update(org, store):
    product = ProductFactory(org=org, sku="BULK")
    receive(org, store, product, 60, lot="A", expiry=days(30))
    receive(org, store, product, 40, lot="B", expiry=days(60))

    outcomes = run_concurrently(
        org, [sale_job(org, store, [(product, 2)], f"till-{n}") for n in range(16)]
    )

    assert errors_of(outcomes) == []
    assert len({pk for (pk, _), _ in outcomes}) == 16
    assert product_total(product) == 68
    lots = {
        q.batch.lot_code: q.quantity
        for q in StockQuant.objects.filter(product=product).select_related("batch")
    }
    assert lots == {"A": 28, "B": 40}  # earliest expiry first, even under contention
    assert (
        StockLedger.objects.filter(ref_type=RefType.SALE).aggregate(t=Sum("qty_delta"))["t"] == -32
    )
    assert_invariants()


def test_overlapping_baskets_in_opposite_order_do_not_deadlock(org, store, display):
    """Half the tills sell [A, B, C], the other half [C, B, A], over and over.

    Each product has lots in two sellable rooms, received interleaved so that quant ids do
    not follow the basket order: only locking in id order keeps this free of deadlocks.
    """
    a, b, c = (ProductFactory(org=org, sku=sku) for sku in ("A", "B", "C"))
    rounds, tills = 6, 16
    per_product = rounds * tills
    for n, product in enumerate((c, a, b, a, c, b)):
        receive(
            org,
            store,
            product,
            per_product // 2 + 5,
            lot=f"{product.sku}-{n}",
            expiry=days(10 + n),
            location="SF" if n % 2 else "DSP",
        )

    def till(n):
        basket = [(a, 1), (b, 1), (c, 1)] if n % 2 == 0 else [(c, 1), (b, 1), (a, 1)]

        def job():
            return [sale_job(org, store, basket, f"till-{n}-{r}")()[0] for r in range(rounds)]

        return job

    outcomes = run_concurrently(org, [till(n) for n in range(tills)])

    assert_no_deadlock(outcomes)
    assert errors_of(outcomes) == []
    assert Sale.objects.count() == per_product
    for product in (a, b, c):
        assert product_total(product) == 2 * (per_product // 2 + 5) - per_product
    assert (
        StockLedger.objects.filter(ref_type=RefType.SALE).aggregate(t=Sum("qty_delta"))["t"]
        == -3 * per_product
    )
    assert_invariants()


def test_same_client_ref_from_eight_tills_posts_one_sale(org, store):
    """A till retrying on eight connections at once: one sale, the others are replays."""
    product = ProductFactory(org=org, sku="RETRY")
    receive(org, store, product, 3, lot="A", expiry=days(5))
    receive(org, store, product, 10, lot="B", expiry=days(50))

    outcomes = run_concurrently(
        org, [sale_job(org, store, [(product, 4)], "till-7-000123") for _ in range(8)]
    )

    assert errors_of(outcomes) == []
    ids = {pk for (pk, _), _ in outcomes}
    assert len(ids) == 1
    assert Counter(created for (_, created), _ in outcomes) == {True: 1, False: 7}
    sale = Sale.objects.get()
    assert sale.pk in ids
    rows = StockLedger.objects.filter(ref_type=RefType.SALE)
    assert sorted(rows.values_list("ref_id", "qty_delta")) == [(sale.pk, D(-3)), (sale.pk, D(-1))]
    assert product_total(product) == 9
    assert_invariants()


def test_receipts_during_sales_do_not_deadlock(org, store):
    """Receipts create lots and quants (and lock an existing lot) while tills sell the product.

    Four receivers post into new lots, into the one shared new lot ``SHARED`` (concurrent
    inserts of the same batch and quant) and into the existing lot ``OPEN``; eight tills sell.
    """
    product = ProductFactory(org=org, sku="RESTOCK")
    receive(org, store, product, 40, lot="OPEN", expiry=days(20))
    receive(org, store, product, 5, lot="NOEXP")
    rounds = 5

    def receiver(n):
        def job():
            for r in range(rounds):
                for lot, location in (
                    (f"NEW-{n}-{r}", "SF"),
                    ("SHARED", "BR"),
                    ("OPEN", "SF"),
                    ("", "SF"),
                ):
                    expiry = (days(20) if lot == "OPEN" else days(40)) if lot else None
                    line = stock_service.ReceiveLine(
                        1,
                        product,
                        loc(store, location),
                        D(1),
                        lot_code=lot,
                        expiry_date=expiry,
                        unit_cost=D("2.50"),
                    )
                    documents.receipt_record(
                        org=org,
                        store=store,
                        lines=receipt_inputs([line]),
                        client_ref=f"rcv-{n}-{r}-{lot}",
                    )

        return job

    def seller(n):
        def job():
            for r in range(rounds):
                sale_job(org, store, [(product, 1)], f"till-{n}-{r}")()

        return job

    outcomes = run_concurrently(
        org, [receiver(n) for n in range(4)] + [seller(n) for n in range(8)]
    )

    assert_no_deadlock(outcomes)
    assert errors_of(outcomes) == []
    received = 4 * rounds * 4
    assert product_total(product) == 45 + received - 8 * rounds
    shared = StockQuant.objects.filter(product=product, batch__lot_code="SHARED")
    assert shared.count() == 1 and shared.get().quantity == 4 * rounds
    assert (
        StockQuant.objects.filter(
            product=product, batch__lot_code="OPEN", location=loc(store, "SF")
        )
        .get()
        .quantity
        == 40 + 4 * rounds - 8 * rounds
    )  # the tills sell OPEN first (earliest expiry)
    assert_invariants()


def test_moves_and_adjustments_during_sales_do_not_deadlock(org, store):
    """Sales, restocking moves both ways and count adjustments on the same quants at once."""
    product = ProductFactory(org=org, sku="MIXED")
    other = ProductFactory(org=org, sku="MIXED-2")
    for n, (item, location) in enumerate(
        ((product, "BR"), (other, "SF"), (product, "SF"), (other, "BR"), (product, "SF"))
    ):
        receive(org, store, item, 50, lot=f"L{n}", expiry=days(10 + n), location=location)
    rounds = 5

    def mover(n, source, target):
        def job():
            for r in range(rounds):
                lines = [
                    stock_service.MoveLine(
                        1, product, loc(store, source), loc(store, target), D(1)
                    ),
                    stock_service.MoveLine(2, other, loc(store, source), loc(store, target), D(1)),
                ]
                documents.move_record(
                    org=org, store=store, lines=move_inputs(lines), client_ref=f"mv-{n}-{r}"
                )

        return job

    def adjuster(n):
        def job():
            for r in range(rounds):
                sign = 1 if (n + r) % 2 else -1
                lines = [
                    stock_service.ReceiveLine(1, other, loc(store, "SF"), D(sign)),
                    stock_service.ReceiveLine(2, product, loc(store, "SF"), D(sign)),
                ]
                documents.adjustment_record(
                    org=org,
                    store=store,
                    lines=adjustment_inputs(lines),
                    client_ref=f"adj-{n}-{r}",
                    reason="count",
                )

        return job

    def seller(n):
        basket = [(product, 1), (other, 1)] if n % 2 else [(other, 1), (product, 1)]

        def job():
            for r in range(rounds):
                sale_job(org, store, basket, f"till-{n}-{r}")()

        return job

    jobs = (
        [mover(n, "BR", "SF") for n in range(3)]
        + [mover(n + 3, "SF", "BR") for n in range(3)]
        + [adjuster(n) for n in range(4)]
        + [seller(n) for n in range(6)]
    )
    outcomes = run_concurrently(org, jobs)

    assert_no_deadlock(outcomes)
    assert errors_of(outcomes) == []
    sold = 6 * rounds
    adjusted = sum(1 if (n + r) % 2 else -1 for n in range(4) for r in range(rounds))
    assert product_total(product) == 150 - sold + adjusted
    assert product_total(other) == 100 - sold + adjusted
    assert on_hand(product, loc(store, "BR")) == 50  # three moves in, three out, each round
    assert_invariants()


def test_concurrent_voids_restore_stock_once(org, store):
    product = ProductFactory(org=org, sku="VOID")
    receive(org, store, product, 2, lot="A", expiry=days(5))
    receive(org, store, product, 8, lot="B", expiry=days(9))
    sale = sell(org, store, (product, 5))

    def job():
        return sales.sale_void(org=org, sale=sale, reason="wrong customer").status

    outcomes = run_concurrently(org, [job] * 6)

    assert errors_of(outcomes) == []
    assert {status for status, _ in outcomes} == {SaleStatus.VOIDED}
    assert StockLedger.objects.filter(ref_type=RefType.VOID).aggregate(t=Sum("qty_delta"))["t"] == 5
    assert product_total(product) == 10
    assert_invariants()


def test_concurrent_refunds_never_exceed_what_was_sold(org, store):
    product = ProductFactory(org=org, sku="REFUND")
    receive(org, store, product, 3, lot="A", expiry=days(5))
    receive(org, store, product, 7, lot="B", expiry=days(9))
    sale = sell(org, store, (product, 5))

    def refund(n):
        def job():
            refunded, _ = sales.sale_refund(
                org=org, sale=sale, lines=[sales.RefundLineInput(1, D(1))], client_ref=f"ret-{n}"
            )
            return refunded.pk

        return job

    outcomes = run_concurrently(org, [refund(n) for n in range(8)])

    refused = errors_of(outcomes)
    assert len(refused) == 3, refused
    assert all(isinstance(e, ValidationFailed) and e.code == "refund_exceeds_sold" for e in refused)
    assert (
        StockLedger.objects.filter(ref_type=RefType.REFUND).aggregate(t=Sum("qty_delta"))["t"] == 5
    )
    lots = {
        q.batch.lot_code: q.quantity
        for q in StockQuant.objects.filter(product=product).select_related("batch")
    }
    assert lots == {"A": 3, "B": 7}
    assert_invariants()


def test_void_racing_refunds_returns_exactly_what_was_sold(org, store):
    """Whatever order the void and the refunds take, the sale's stock comes back exactly once."""
    product = ProductFactory(org=org, sku="RACE")
    receive(org, store, product, 6, lot="A", expiry=days(5))
    sale = sell(org, store, (product, 4))

    def refund(n):
        return lambda: (
            sales.sale_refund(
                org=org, sale=sale, lines=[sales.RefundLineInput(1, D(1))], client_ref=f"ret-{n}"
            )[0].pk
        )

    outcomes = run_concurrently(
        org, [refund(n) for n in range(3)] + [lambda: sales.sale_void(org=org, sale=sale).pk]
    )

    for error in errors_of(outcomes):  # refunds that came after the void are refused
        assert isinstance(error, InvalidState) and error.code == "sale_voided", error
    returned = StockLedger.objects.filter(ref_type__in=[RefType.REFUND, RefType.VOID]).aggregate(
        t=Sum("qty_delta")
    )["t"]
    assert returned == 4
    assert product_total(product) == 6
    assert Sale.objects.get().status == SaleStatus.VOIDED
    assert_invariants()


def test_record_mode_books_every_missing_unit_and_receipts_settle_it_once(org, store):
    """Sixteen tills sell ten units in ``record`` mode, then four receipts arrive at once.

    The six missing units go to one unallocated batch (created by whichever till got there
    first); the receipts then settle the debt exactly once between them.
    """
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode=NegativeStockMode.RECORD)
    org.refresh_from_db()
    product = ProductFactory(org=org, sku="OVERSOLD")
    receive(org, store, product, 4, lot="A", expiry=days(5))
    receive(org, store, product, 6, lot="B", expiry=days(9))

    outcomes = run_concurrently(
        org, [sale_job(org, store, [(product, 1)], f"till-{n}") for n in range(16)]
    )

    assert errors_of(outcomes) == []
    spare = Batch.objects.get(unallocated_store=store, product=product)
    assert StockQuant.objects.get(batch=spare).quantity == -6
    assert StockShortfall.objects.filter(outcome="booked").count() == 6
    assert_invariants()

    def receipt(n):
        line = stock_service.ReceiveLine(
            1,
            product,
            loc(store, "SF"),
            D(3),
            lot_code=f"R{n}",
            expiry_date=days(30),
            unit_cost=D(2),
        )
        return lambda: (
            documents.receipt_record(
                org=org, store=store, lines=receipt_inputs([line]), client_ref=f"delivery-{n}"
            )[0].pk
        )

    outcomes = run_concurrently(org, [receipt(n) for n in range(4)])

    assert errors_of(outcomes) == []
    assert StockQuant.objects.get(batch=spare).quantity == 0
    assert product_total(product) == 12 - 6
    settled = StockLedger.objects.filter(batch=spare, ref_type=RefType.RECEIPT)
    assert settled.aggregate(t=Sum("qty_delta"))["t"] == 6
    assert_invariants()


def test_receipts_naming_the_same_lots_in_opposite_order_do_not_deadlock(org, store):
    """Deliveries of the same lots, listed in opposite orders, posted at the same moment.

    Receiving into an existing lot locks its batch row: every document must meet the lots in
    one order, whatever the order of its lines.
    """
    a = ProductFactory(org=org, sku="LOT-A")
    b = ProductFactory(org=org, sku="LOT-B")
    receive(org, store, a, 1, lot="XA", expiry=days(30))
    receive(org, store, b, 1, lot="XB", expiry=days(30))
    rounds = 4

    def receiver(n):
        order = [(a, "XA"), (b, "XB")] if n % 2 == 0 else [(b, "XB"), (a, "XA")]

        def job():
            for r in range(rounds):
                lines = [
                    stock_service.ReceiveLine(
                        i, product, loc(store, "SF"), D(1), lot_code=lot, expiry_date=days(30)
                    )
                    for i, (product, lot) in enumerate(order, start=1)
                ]
                documents.receipt_record(
                    org=org,
                    store=store,
                    lines=receipt_inputs(lines),
                    client_ref=f"delivery-{n}-{r}",
                )

        return job

    outcomes = run_concurrently(org, [receiver(n) for n in range(8)])

    assert_no_deadlock(outcomes)
    assert errors_of(outcomes) == []
    assert product_total(a) == product_total(b) == 1 + 8 * rounds
    assert_invariants()


def test_adjustments_into_a_lot_during_receipts_of_it_do_not_deadlock(org, store):
    """Counts adding found units to lot X while deliveries of lot X are received, same room.

    Finding or creating a lot's batch locks its row, so receipts and adjustments alike must do
    it before they lock quants (batches, then quants, in one order).
    """
    product = ProductFactory(org=org, sku="FOUND")
    receive(org, store, product, 5, lot="X", expiry=days(30))
    rounds = 5

    def receiver(n):
        def job():
            for r in range(rounds):
                line = stock_service.ReceiveLine(
                    1, product, loc(store, "SF"), D(1), lot_code="X", expiry_date=days(30)
                )
                documents.receipt_record(
                    org=org,
                    store=store,
                    lines=receipt_inputs([line]),
                    client_ref=f"delivery-{n}-{r}",
                )

        return job

    def adjuster(n):
        def job():
            for r in range(rounds):
                line = stock_service.ReceiveLine(
                    1, product, loc(store, "SF"), D(1), lot_code="X", expiry_date=days(30)
                )
                documents.adjustment_record(
                    org=org,
                    store=store,
                    lines=adjustment_inputs([line]),
                    client_ref=f"found-{n}-{r}",
                    reason="found",
                )

        return job

    outcomes = run_concurrently(
        org, [receiver(n) for n in range(4)] + [adjuster(n) for n in range(4)]
    )

    assert_no_deadlock(outcomes)
    assert errors_of(outcomes) == []
    assert product_total(product) == 5 + 8 * rounds
    assert_invariants()


def test_first_shortfalls_of_a_basket_in_opposite_order_do_not_deadlock(org, store):
    """Record mode, products never received: each till's sale creates the unallocated batches.

    Tills list the same four products in opposite orders; every round uses new products, so
    every round creates the batches anew.
    """
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode=NegativeStockMode.RECORD)
    org.refresh_from_db()
    for r in range(3):
        basket = [ProductFactory(org=org, sku=f"NEW-{r}-{k}") for k in range(4)]
        outcomes = run_concurrently(
            org,
            [
                sale_job(
                    org,
                    store,
                    [(p, 1) for p in (basket if n % 2 else basket[::-1])],
                    f"till-{n}-{r}",
                )
                for n in range(16)
            ],
        )
        assert_no_deadlock(outcomes)
        assert errors_of(outcomes) == []
        for product in basket:
            assert product_total(product) == -16
    assert_invariants()
