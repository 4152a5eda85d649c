"""Counts under real concurrency: several tablets, several managers, one database.

Each test commits its state (``transaction=True``) and then releases real threads together with a
``threading.Barrier``. Every thread enters its organisation's scope itself (scopes live in a
context variable, which a new thread does not inherit) and closes its own database connection.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from counts.models import CountLine, CountPass, CountScan, CountSession, VarianceRow
from counts.services import passes as P
from counts.services import sessions as S
from inventory.models import RefType, Role, StockLedger
from inventory.tenancy.scope import tenant_scope
from tests.factories import MembershipFactory, ProductFactory
from tests.stock_helpers import assert_invariants, loc, on_hand, receive

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v1/counts"
D = Decimal


def together(org, workers: list) -> list:
    """Run each ``worker()`` in its own thread, all released at once; return their results."""
    barrier = threading.Barrier(len(workers))
    results: list = [None] * len(workers)
    errors: list[BaseException] = []

    def run(index: int, worker) -> None:
        try:
            with tenant_scope(org):
                barrier.wait(timeout=30)
                results[index] = worker()
        except BaseException as exc:  # noqa: BLE001 - asserted in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert not errors, errors
    return results


def started_full_count(org, store, actor) -> CountSession:
    return S.session_start(
        org=org,
        actor=actor,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=actor),
    )


@pytest.fixture
def manager(org):
    return MembershipFactory(org=org, role=Role.MANAGER).user


@pytest.fixture
def open_pass(org, store, manager) -> CountPass:
    session = started_full_count(org, store, manager)
    return P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=manager)


@pytest.mark.parametrize("tablets", [2, 8])
def test_tablets_scanning_one_product_into_one_pass_lose_nothing(
    org, open_pass, client_for, tablets
):
    ProductFactory(org=org, sku="SAME-1")
    clients = [client_for(Role.OPERATOR) for _ in range(tablets)]
    scans_each = 10

    def tablet(client, n):
        def work():
            statuses = []
            for i in range(scans_each):
                response = client.post(
                    f"{BASE}/passes/{open_pass.pk}/lines",
                    {"sku": "SAME-1", "client_line_id": f"t{n}-{i}"},
                    format="json",
                )
                statuses.append(response.status_code)
            bulk = client.post(
                f"{BASE}/passes/{open_pass.pk}/lines/bulk",
                {
                    "device_id": f"tablet-{n}",
                    "lines": [
                        {"sku": "SAME-1", "quantity": "2"},
                        {"sku": "SAME-1", "quantity": "3"},
                    ],
                },
                format="json",
            )
            statuses.append(bulk.status_code)
            return statuses

        return work

    results = together(org, [tablet(c, n) for n, c in enumerate(clients)])
    assert all(status == 201 for statuses in results for status in statuses), results
    line = CountLine.objects.get(count_pass=open_pass)
    assert line.quantity == tablets * (scans_each + 5)
    assert CountScan.objects.filter(count_pass=open_pass).count() == tablets * (scans_each + 2)


def test_concurrent_replays_of_one_client_line_id_apply_once(org, open_pass, client_for):
    ProductFactory(org=org, sku="ONCE-1")
    clients = [client_for(Role.OPERATOR) for _ in range(8)]

    def replay(client):
        return lambda: (
            client.post(
                f"{BASE}/passes/{open_pass.pk}/lines",
                {"sku": "ONCE-1", "quantity": "4", "client_line_id": "offline-17"},
                format="json",
            ).status_code
        )

    statuses = Counter(together(org, [replay(c) for c in clients]))
    assert statuses == {201: 1, 200: 7}
    assert CountLine.objects.get(count_pass=open_pass).quantity == 4
    assert CountScan.objects.filter(count_pass=open_pass).count() == 1


def test_concurrent_bulk_replays_apply_each_line_once(org, open_pass, client_for):
    ProductFactory(org=org, sku="ONCE-2")
    clients = [client_for(Role.OPERATOR) for _ in range(6)]
    lines = [{"sku": "ONCE-2", "client_line_id": f"b-{i}"} for i in range(5)]

    def replay(client):
        def work():
            response = client.post(
                f"{BASE}/passes/{open_pass.pk}/lines/bulk", {"lines": lines}, format="json"
            )
            assert response.status_code == 201, response.content
            return response.json()["applied"]

        return work

    assert sum(together(org, [replay(c) for c in clients])) == 5
    assert CountLine.objects.get(count_pass=open_pass).quantity == 5


def test_concurrent_starts_of_two_full_store_counts_let_one_win(org, store, client_for, manager):
    managers = [client_for(Role.MANAGER) for _ in range(2)]
    for _ in range(3):  # a few rounds: the loser never sneaks through
        drafts = [
            S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager)
            for _ in managers
        ]

        def start(client, session):
            def work():
                response = client.post(f"{BASE}/sessions/{session.pk}/start")
                return response.status_code, response.json().get("code")

            return work

        answers = together(org, [start(c, s) for c, s in zip(managers, drafts, strict=True)])
        assert sorted(answers, key=str) == sorted(
            [(200, None), (409, "full_count_active")], key=str
        ), answers
        active = CountSession.objects.filter(store=store, status="in_progress")
        assert active.count() == 1
        S.session_cancel(org=org, session=active.get(), actor=manager)


def test_concurrent_overlapping_passes_of_two_zone_counts_let_one_win(
    org, store, client_for, manager
):
    sf = loc(store, "SF")
    clerks = [client_for(Role.OPERATOR) for _ in range(2)]
    for round_ in range(3):
        sessions = [
            S.session_start(
                org=org,
                actor=manager,
                session=S.session_create(
                    org=org, store=store, scope="ZONE", scope_locations=[sf], actor=manager
                ),
            )
            for _ in clerks
        ]

        def open_(client, session):
            def work():
                response = client.post(
                    f"{BASE}/sessions/{session.pk}/passes",
                    {"location": sf.pk, "category": "Edibles"},
                    format="json",
                )
                return response.status_code, response.json().get("code")

            return work

        answers = together(org, [open_(c, s) for c, s in zip(clerks, sessions, strict=True)])
        assert sorted(answers, key=str) == sorted([(201, None), (409, "scope_in_use")], key=str), (
            round_,
            answers,
        )
        assert CountPass.objects.filter(session__in=sessions).count() == 1
        for session in sessions:
            S.session_cancel(org=org, session=session, actor=manager)


def test_a_pass_submit_racing_scans_never_lets_a_scan_in_after_it(org, open_pass, client_for):
    ProductFactory(org=org, sku="RACE-1")
    scanners = [client_for(Role.OPERATOR) for _ in range(4)]
    closer = client_for(Role.OPERATOR)

    def scanner(client, n):
        def work():
            answers = []
            for i in range(400):
                response = client.post(
                    f"{BASE}/passes/{open_pass.pk}/lines",
                    {"sku": "RACE-1", "client_line_id": f"r{n}-{i}"},
                    format="json",
                )
                answers.append((response.status_code, response.json().get("code")))
                if response.status_code != 201:
                    break
            return answers

        return work

    def submit():
        time.sleep(0.3)  # let the scanners get going
        response = closer.post(f"{BASE}/passes/{open_pass.pk}/submit")
        assert response.status_code == 200, response.content
        return response.json()

    *answers, _ = together(org, [scanner(c, n) for n, c in enumerate(scanners)] + [submit])
    applied = sum(1 for per_thread in answers for status, _ in per_thread if status == 201)
    for per_thread in answers:
        *before, last = per_thread
        assert all(status == 201 for status, _ in before), per_thread
        assert last == (409, "pass_not_open"), per_thread  # each scanner ran into the submit
    assert applied > 0
    count_pass = CountPass.objects.get(pk=open_pass.pk)
    assert count_pass.status == "submitted"
    scans = CountScan.objects.filter(count_pass=count_pass)
    assert scans.count() == applied
    assert CountLine.objects.get(count_pass=count_pass).quantity == applied
    latest = max(scan.created_at for scan in scans)
    assert latest <= count_pass.submitted_at


def test_concurrent_finalisations_post_once(org, store, client_for, manager):
    product = ProductFactory(org=org, sku="FINAL-1")
    receive(org, store, product, 10, cost=1)
    session = started_full_count(org, store, manager)
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=manager)
    P.lines_add(org=org, count_pass=count_pass, actor=manager, entries=[P.Entry(product, D(9))])
    P.pass_submit(org=org, count_pass=count_pass, actor=manager)
    S.session_submit(org=org, session=session, actor=manager)
    S.session_reconcile(org=org, session=session, actor=manager)
    assert VarianceRow.objects.get(session=session).status == "auto_approved"
    managers = [client_for(Role.MANAGER) for _ in range(4)]

    def finalise(client):
        def work():
            response = client.post(f"{BASE}/sessions/{session.pk}/finalize")
            return response.status_code, response.json()["status"]

        return work

    assert together(org, [finalise(c) for c in managers]) == [(200, "closed")] * 4
    assert StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count() == 1
    assert on_hand(product) == 9
    assert_invariants()


@pytest.mark.parametrize("mode", ["keep_difference", "set_counted"])
def test_finalise_racing_sales_and_receipts_of_the_same_products(org, store, manager, mode):
    """count_post locks every counted place once, in quant id order, like every other stock
    write: a finalisation (with debt to settle) meeting overlapping sales and receipts neither
    deadlocks nor breaks the ledger = quants invariant."""
    from inventory.models import NegativeStockMode
    from inventory.sales import services as sales
    from inventory.stock import documents
    from inventory.tenancy.scope import resolve_tenant
    from tests.stock_helpers import ref, sell

    org.negative_stock_mode = NegativeStockMode.RECORD
    org.save(update_fields=["negative_stock_mode"])
    products = [ProductFactory(org=org, sku=f"RACE-{n}") for n in range(6)]
    for product in products:
        receive(org, store, product, 20, lot=f"RACE-LOT-{product.pk}")
    sell(org, store, *[(p, 21) for p in products[:3]])  # debt of 1 on three of them
    receive_more = {p.pk: 5 for p in products}
    session = started_full_count(org, store, manager)
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=manager)
    P.lines_add(
        org=org,
        count_pass=count_pass,
        actor=manager,
        entries=[P.Entry(p, D(n % 4)) for n, p in enumerate(products)],
    )
    P.pass_submit(org=org, count_pass=count_pass, actor=manager)
    S.session_submit(org=org, session=session, actor=manager)
    S.session_reconcile(org=org, session=session, actor=manager)
    approver = MembershipFactory(org=org, role=Role.ADMIN).user
    tenant = resolve_tenant(approver, org_id=org.pk)
    for row in VarianceRow.objects.filter(session=session):
        if row.status == "pending":
            S.variance_decide(
                org=org, row=row, approve=True, mode=mode, tenant=tenant, actor=approver
            )
    VarianceRow.objects.filter(session=session).update(mode=mode)

    def finalise():
        return S.session_finalize(org=org, session=session, actor=manager).status

    def basket(offset):
        def work():
            ordered = products[offset:] + products[:offset]  # overlapping, other orders
            lines = [sales.SaleLineInput(p, D(1)) for p in ordered[:4]]
            sale, _ = sales.sale_record(
                org=org, store=store, lines=lines, client_ref=ref("race"), actor=manager
            )
            return sale.status

        return work

    def delivery():
        lines = [
            documents.ReceiptLineInput(
                p, loc(store, "SF"), D(receive_more[p.pk]), lot_code=f"RACE-LOT-{p.pk}"
            )
            for p in reversed(products)
        ]
        document, _ = documents.receipt_record(
            org=org, store=store, lines=lines, client_ref=ref("race-rcv"), actor=manager
        )
        return document.kind

    results = together(org, [finalise, basket(0), basket(2), basket(4), delivery, basket(1)])
    assert results[0] == "closed"
    assert results[1:4] + results[5:] == ["completed"] * 4
    assert_invariants()
    session.refresh_from_db()
    assert session.status == "closed"
