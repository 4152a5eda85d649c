"""Enforcement modes on the write path: record → warn → block, for sales, manual moves and
transfer sends of a product held by an open HIGH or CRITICAL discrepancy; a manager's
override; what is never judged; when a hold ends; what it costs; and under real concurrency.

Holds are made the real way: a discrepancy recorded through ``discrepancies_record``."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from counts.models import VarianceRow
from counts.services import passes as P
from counts.services import sessions as S
from discrepancies.enforcement import enforce
from discrepancies.exceptions import OpenDiscrepancy
from discrepancies.models import DocumentType, Kind, Severity, Source, Status
from discrepancies.services.decisions import Decision, discrepancy_decide
from discrepancies.services.record import Finding, discrepancies_record
from inventory.models import (
    AuditAction,
    AuditEvent,
    Location,
    Organization,
    RefType,
    Role,
    Sale,
    StockDocument,
    StockHold,
    StockLedger,
    StockQuant,
)
from inventory.sales import services as sales
from inventory.stock import documents, policy
from inventory.stock import write_path as stock
from inventory.stock.policy import may_override
from inventory.tenancy.scope import resolve_tenant, tenant_scope
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.response_schema import AnswerChecker
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, ref, sell

D = Decimal
SALES = "/api/v1/sales"
MOVES = "/api/v1/stock/moves"


# --- helpers ------------------------------------------------------------------------------------


def mode(org, enforcement: str, negative: str | None = None) -> None:
    changes = {"discrepancy_enforcement": enforcement}
    if negative:
        changes["negative_stock_mode"] = negative
    Organization.objects.filter(pk=org.pk).update(**changes)
    org.refresh_from_db()


def hold(org, store, product, *, corrective: bool = False):
    """A CRITICAL discrepancy of ``product`` at ``store`` (100 expected, 40 found; the default
    allowance is 2 units): the product is held there from now on."""
    (d,) = discrepancies_record(
        org=org,
        findings=[
            Finding(
                store_id=store.pk,
                product_id=product.pk,
                category=product.category,
                expected=D("100"),
                actual=D("40"),
                unit_cost=D("1"),
                source=Source.INVARIANT,
                document_type=DocumentType.INVARIANT_CHECK,
                kind=Kind.DATA_ERROR,
                corrective=corrective,
            )
        ],
        actor=None,
    )
    assert d.severity == Severity.CRITICAL and d.is_open
    assert StockHold.objects.filter(store=store, product=product).exists()
    return d


def person(org, role, stores=()):
    return MembershipFactory(org=org, role=role, stores=stores).user


def tenant(org, user):
    return resolve_tenant(user, org_id=org.pk)


def decide(org, d, who, action):
    return discrepancy_decide(
        org=org, discrepancy=d, decision=Decision(action), tenant=tenant(org, who), actor=who
    )


def post(client, path, body):
    return client.post(path, body, format="json")


def sale_body(store, *lines, **extra):
    return {
        "store": store.pk,
        "client_ref": ref("sale"),
        "lines": [{"product": p.pk, "quantity": str(q)} for p, q in lines],
        **extra,
    }


def move_body(store, product, quantity, **extra):
    return {
        "store": store.pk,
        "client_ref": ref("move"),
        "lines": [
            {
                "product": product.pk,
                "from_location": loc(store, "SF").pk,
                "to_location": loc(store, "BR").pk,
                "quantity": str(quantity),
            }
        ],
        **extra,
    }


def state() -> tuple:
    """Every stock row there is, to prove a refusal wrote nothing."""
    return (
        StockLedger.objects.count(),
        Sale.objects.count(),
        StockDocument.objects.count(),
        sorted(StockQuant.objects.values_list("pk", "quantity")),
    )


def movements(ref_type: str, result: str) -> float:
    labels = {"ref_type": ref_type, "result": result, "reason": "open_discrepancy"}
    return REGISTRY.get_sample_value("stock_movements_total", labels) or 0.0


@pytest.fixture
def checker(db):
    return AnswerChecker.served()


@pytest.fixture
def manager(client_for, store):
    return client_for(Role.MANAGER, stores=[store])


@pytest.fixture
def operator(client_for):
    return client_for(Role.OPERATOR)


@pytest.fixture
def held(org, store):
    """HELD-1 held at the store with 50 on the floor; FREE-1 not held, 50 on the floor."""
    product = ProductFactory(org=org, sku="HELD-1")
    free = ProductFactory(org=org, sku="FREE-1")
    receive(org, store, product, 50, cost=2)
    receive(org, store, free, 50, cost=2)
    d = hold(org, store, product)
    return product, free, d


# --- record: nothing changes ----------------------------------------------------------------------


def test_record_mode_posts_as_if_nothing_were_held_and_logs_it(
    org, store, held, operator, manager, caplog, django_capture_on_commit_callbacks
):
    product, _, d = held
    mode(org, "record")
    before = movements(RefType.SALE, "held")
    with caplog.at_level(logging.INFO, logger="discrepancies"):
        with django_capture_on_commit_callbacks(execute=True):
            sold = post(operator, SALES, sale_body(store, (product, 2)))
        moved = post(manager, MOVES, move_body(store, product, 3))
    assert sold.status_code == 201, sold.json()
    assert sold.json()["warnings"] == []
    assert moved.status_code == 201, moved.json()
    assert moved.json().get("warnings", []) == []
    assert on_hand(product, loc(store, "SF")) == 45
    assert movements(RefType.SALE, "held") - before == 1
    logged = [r for r in caplog.records if getattr(r, "event", "") == "stock_hold_recorded"]
    assert [(r.ref_type, r.product_id, r.store_id, r.line) for r in logged] == [
        (RefType.SALE, product.pk, store.pk, 1),
        (RefType.MOVE_OUT, product.pk, store.pk, 1),
    ]
    assert_invariants()


# --- warn: posts, and says so ---------------------------------------------------------------------


def test_warn_mode_posts_and_answers_a_warning_per_held_line(
    org, store, held, operator, manager, checker
):
    product, free, d = held
    mode(org, "warn")
    sold = post(operator, SALES, sale_body(store, (free, 1), (product, 2)))
    assert sold.status_code == 201, sold.json()
    checker.check(sold, "/api/v1/sales/")
    warning = {
        "code": "open_discrepancy",
        "line": 2,
        "product": product.pk,
        "store": store.pk,
        "discrepancies": [d.pk],
        "severity": "CRITICAL",
    }
    (said,) = sold.json()["warnings"]
    assert {k: said[k] for k in warning} == warning and said["detail"]
    sale = Sale.objects.get(pk=sold.json()["id"])
    assert sale.warnings == sold.json()["warnings"]  # kept for the sale's readers
    assert post(operator, SALES, sale_body(store, (free, 1))).json()["warnings"] == []

    moved = post(manager, MOVES, move_body(store, product, 3))
    assert moved.status_code == 201, moved.json()
    document = StockDocument.objects.get(pk=moved.json()["id"])
    (said,) = document.result["warnings"]
    assert {k: said[k] for k in warning} == {**warning, "line": 1}
    if "warnings" in moved.json():  # the document answer's shape documents warnings
        assert moved.json()["warnings"] == document.result["warnings"]
        checker.check(moved, "/api/v1/stock/moves/")
    assert on_hand(product, loc(store, "SF")) == 45 and on_hand(product, loc(store, "BR")) == 3
    assert_invariants()


def test_a_warned_sale_replays_byte_for_byte(org, store, held, operator):
    product, _, _ = held
    mode(org, "warn")
    body = sale_body(store, (product, 1))
    first = post(operator, SALES, body)
    again = post(operator, SALES, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content and first.json()["warnings"]
    assert on_hand(product) == 49


# --- block: refused, unless a manager overrides ------------------------------------------------


def test_block_mode_refuses_a_sale_and_writes_nothing(org, store, held, operator, manager):
    product, free, d = held
    mode(org, "block")
    before, floor = state(), on_hand(product, loc(store, "SF"))
    refused = post(operator, SALES, sale_body(store, (free, 1), (product, 2)))
    assert refused.status_code == 409, refused.json()
    error = refused.json()
    assert error["code"] == "open_discrepancy"
    assert list(error["fields"]) == ["lines.1.product"]  # the held line, not the other
    assert error["lines"] == [
        {
            "line": 2,
            "product": product.pk,
            "store": store.pk,
            "discrepancies": [d.pk],
            "severity": "CRITICAL",
        }
    ]
    assert state() == before and on_hand(product, loc(store, "SF")) == floor
    # a manager without a reason is refused too; the other product still sells
    assert post(manager, SALES, sale_body(store, (product, 1))).status_code == 409
    assert post(operator, SALES, sale_body(store, (free, 1))).status_code == 201
    assert_invariants()


def test_block_mode_refuses_a_move_and_writes_nothing(org, store, held, manager):
    product, _, _ = held
    mode(org, "block")
    before = state()
    refused = post(manager, MOVES, move_body(store, product, 3))
    assert refused.status_code == 409, refused.json()
    assert refused.json()["code"] == "open_discrepancy"
    assert list(refused.json()["fields"]) == ["lines.0.product"]
    assert state() == before
    assert on_hand(product, loc(store, "SF")) == 50 and on_hand(product, loc(store, "BR")) == 0


def test_a_managers_override_posts_answers_a_warning_and_is_audited(
    org, store, held, manager, checker
):
    product, _, d = held
    mode(org, "block")
    sold = post(
        manager, SALES, sale_body(store, (product, 2), override_reason="recounted: shelf is right")
    )
    assert sold.status_code == 201, sold.json()
    checker.check(sold, "/api/v1/sales/")
    (said,) = sold.json()["warnings"]
    assert (said["code"], said["line"], said["product"], said["discrepancies"]) == (
        "open_discrepancy_overridden",
        1,
        product.pk,
        [d.pk],
    )
    assert "recounted: shelf is right" in said["detail"]
    event = AuditEvent.objects.get(action=AuditAction.STOCK_HOLD_OVERRIDDEN)
    assert (event.object_type, event.object_id, event.actor_id, event.store_id) == (
        "inventory.sale",
        sold.json()["id"],
        manager.user.pk,
        store.pk,
    )
    assert event.after["reason"] == "recounted: shelf is right"
    assert event.after["products"] == [product.pk] and event.after["ref_type"] == RefType.SALE
    assert event.after["lines"][0]["discrepancies"] == [d.pk]

    moved = post(manager, MOVES, move_body(store, product, 3, override_reason="to quarantine"))
    assert moved.status_code == 201, moved.json()
    document = StockDocument.objects.get(pk=moved.json()["id"])
    assert [w["code"] for w in document.result["warnings"]] == ["open_discrepancy_overridden"]
    events = AuditEvent.objects.filter(action=AuditAction.STOCK_HOLD_OVERRIDDEN).order_by("id")
    assert [(e.object_type, e.object_id) for e in events] == [
        ("inventory.sale", sold.json()["id"]),
        ("inventory.stockdocument", document.pk),
    ]
    assert on_hand(product, loc(store, "SF")) == 45
    assert_invariants()


def test_an_operators_till_cannot_override(org, store, held, operator):
    product, _, _ = held
    mode(org, "block")
    before = state()
    refused = post(
        operator, SALES, sale_body(store, (product, 1), override_reason="customer waits")
    )
    assert refused.status_code == 409 and refused.json()["code"] == "open_discrepancy"
    assert "manager" in refused.json()["fields"]["lines.0.product"][0]
    assert state() == before
    assert not AuditEvent.objects.filter(action=AuditAction.STOCK_HOLD_OVERRIDDEN).exists()


def test_who_may_override(org, store):
    elsewhere = StoreFactory(org=org, code="S2")
    for role, stores, expected in [
        (Role.VIEWER, (), False),
        (Role.OPERATOR, (), False),
        (Role.MANAGER, (), True),
        (Role.MANAGER, [store], True),
        (Role.MANAGER, [elsewhere], False),  # a manager of another store
        (Role.ADMIN, (), True),
    ]:
        assert may_override(tenant(org, person(org, role, stores)), store) is expected, role
    assert may_override(None, store) is False  # a job or a command


def test_an_override_reason_is_at_most_255_characters(org, store, held, manager):
    product, _, _ = held
    mode(org, "block")
    long = post(manager, SALES, sale_body(store, (product, 1), override_reason="x" * 256))
    assert long.status_code == 400 and "override_reason" in long.json()["fields"]
    with pytest.raises(Exception) as error:
        sales.sale_record(
            org=org,
            store=store,
            lines=[sales.SaleLineInput(product, D(1))],
            client_ref=ref(),
            override_reason="y" * 256,
        )
    assert error.value.fields == {"override_reason": ["At most 255 characters."]}


def test_an_override_where_nothing_is_held_changes_nothing(org, store, held, operator):
    _, free, _ = held
    mode(org, "block")
    sold = post(operator, SALES, sale_body(store, (free, 1), override_reason="habit"))
    assert sold.status_code == 201 and sold.json()["warnings"] == []
    assert not AuditEvent.objects.filter(action=AuditAction.STOCK_HOLD_OVERRIDDEN).exists()


# --- never judged ------------------------------------------------------------------------------


def test_voids_refunds_receipts_corrections_and_upstock_post_under_block(org, store, manager):
    product = ProductFactory(org=org, sku="EXEMPT-1")
    receive(org, store, product, 50, cost=2)
    sold = sell(org, store, (product, 5))
    refunded = sell(org, store, (product, 3))
    hold(org, store, product)
    mode(org, "block")
    user = manager.user

    sales.sale_void(org=org, sale=sold, actor=user)
    sales.sale_refund(
        org=org,
        sale=refunded,
        lines=[sales.RefundLineInput(1, D(1))],
        client_ref=ref("refund"),
        actor=user,
    )
    receive(org, store, product, 10, cost=2)
    documents.adjustment_record(
        org=org,
        store=store,
        lines=[documents.AdjustmentLineInput(product, loc(store, "SF"), D(-2))],
        client_ref=ref("adj"),
        reason="approved correction",
        actor=user,
    )
    documents.write_off_record(
        org=org,
        store=store,
        lines=[documents.WriteOffLineInput(product, loc(store, "SF"), D(1))],
        write_off_type="damage",
        client_ref=ref("wo"),
        reason="crushed",
        actor=user,
    )
    upstock, _ = documents.move_record(
        org=org,
        store=store,
        lines=[documents.MoveLineInput(product, loc(store, "SF"), loc(store, "BR"), D(4))],
        client_ref=ref("up"),
        source="upstock",
        actor=user,
    )
    assert upstock.result["warnings"] == []
    # 50 - 5 - 3 + 5 (void) + 1 (refund) + 10 - 2 - 1 = 55, 4 of them moved to the back
    assert on_hand(product) == 55 and on_hand(product, loc(store, "BR")) == 4
    assert not AuditEvent.objects.filter(action=AuditAction.STOCK_HOLD_OVERRIDDEN).exists()
    with pytest.raises(OpenDiscrepancy):  # while a sale is still refused
        sell(org, store, (product, 1))
    assert_invariants()


def _counted(org, store, counter, product, quantity):
    session = S.session_start(
        org=org,
        actor=counter,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=counter),
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=counter)
    P.lines_add(
        org=org, count_pass=count_pass, actor=counter, entries=[P.Entry(product, D(quantity))]
    )
    P.pass_submit(org=org, count_pass=count_pass, actor=counter)
    S.session_submit(org=org, session=session, actor=counter)
    return S.session_reconcile(org=org, session=session, actor=counter)


def test_a_count_finalises_under_block_and_its_adjustment_ends_the_hold(org, store):
    product = ProductFactory(org=org, sku="COUNTED-1")
    receive(org, store, product, 100, cost=1)
    counter, admin = person(org, Role.MANAGER), person(org, Role.ADMIN)
    session = _counted(org, store, counter, product, 40)  # CRITICAL: held
    d = VarianceRow.objects.get(session=session).discrepancy
    assert d.severity == Severity.CRITICAL
    mode(org, "block")
    with pytest.raises(OpenDiscrepancy):
        sell(org, store, (product, 1))
    decide(org, d, admin, "approve")
    with pytest.raises(OpenDiscrepancy):  # approved, not yet posted: still open
        sell(org, store, (product, 1))
    S.session_finalize(org=org, session=session, actor=admin)  # a count posts under block
    d.refresh_from_db()
    assert d.status == Status.ADJUSTED and on_hand(product) == 40
    sell(org, store, (product, 1))  # the hold ended with the adjustment
    assert on_hand(product) == 39
    assert_invariants()


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_hold_ends_when_its_discrepancy_is_decided(org, store, held, operator, action):
    product, _, d = held
    mode(org, "block")
    assert post(operator, SALES, sale_body(store, (product, 1))).status_code == 409
    decide(org, d, person(org, Role.ADMIN), action)  # informational: approving closes it
    assert not StockHold.objects.filter(store=store, product=product).exists()
    sold = post(operator, SALES, sale_body(store, (product, 1)))
    assert sold.status_code == 201 and sold.json()["warnings"] == []


def test_a_hold_is_per_store(org, store, held, operator):
    product, _, _ = held
    other = StoreFactory(org=org, code="S2")
    receive(org, other, product, 5)
    mode(org, "block")
    assert post(operator, SALES, sale_body(other, (product, 1))).status_code == 201
    assert post(operator, SALES, sale_body(store, (product, 1))).status_code == 409


def test_a_transfer_send_is_judged_and_its_receipt_is_not(org, store):
    """Transfers are write-path moves with TRANSFER_OUT/IN rows (their documents come later):
    the sending store's rows are judged, receiving into another store is not."""
    product = ProductFactory(org=org, sku="TRF-1")
    other = StoreFactory(org=org, code="S2")
    transit = Location.objects.create(org=org, store=store, code="TRN", name="T", kind="transit")
    receiving = Location.objects.create(
        org=org, store=other, code="RCV", name="R", kind="receiving"
    )
    receive(org, store, product, 10)
    hold(org, store, product)
    mode(org, "block")

    def transfer(lines, types):
        with transaction.atomic():
            return stock.move(
                posting=stock.Posting(org, store, 1, timezone.now()), lines=lines, ref_types=types
            )

    send = [stock.MoveLine(1, product, loc(store, "SF"), transit, D(4))]
    with pytest.raises(OpenDiscrepancy):
        transfer(send, (RefType.TRANSFER_OUT, RefType.TRANSFER_OUT))
    mode(org, "warn")
    sent = transfer(send, (RefType.TRANSFER_OUT, RefType.TRANSFER_OUT))
    assert [w.code for w in sent.warnings] == ["open_discrepancy"]
    mode(org, "block")
    received = transfer(
        [stock.MoveLine(1, product, transit, receiving, D(4))],
        (RefType.TRANSFER_IN, RefType.TRANSFER_IN),
    )
    assert received.warnings == [] and on_hand(product, receiving) == 4
    assert_invariants()


# --- the oversell of a product with no stock at the store ------------------------------------


@pytest.mark.parametrize("negative", ["warn", "record"])
def test_selling_a_held_product_with_no_stock_at_the_store_is_still_judged(
    org, store, operator, negative
):
    """The lock sees no quant of it there (the sale books to the unallocated batch), so the
    policy looks the hold up: one query, only on this path."""
    product = ProductFactory(org=org, sku="NOSTOCK-1")
    d = hold(org, store, product)
    mode(org, "block", negative)
    before = state()
    refused = post(operator, SALES, sale_body(store, (product, 2)))
    assert refused.status_code == 409 and refused.json()["code"] == "open_discrepancy"
    assert refused.json()["lines"][0]["discrepancies"] == [d.pk]
    assert state() == before

    mode(org, "warn", negative)
    sold = post(operator, SALES, sale_body(store, (product, 2)))
    assert sold.status_code == 201, sold.json()
    codes = [w["code"] for w in sold.json()["warnings"]]
    expected = ["open_discrepancy"]
    assert codes == (["sold_without_stock", *expected] if negative == "warn" else expected)
    assert on_hand(product) == -2
    assert_invariants()


def test_the_no_stock_path_costs_one_query_more_and_only_there(org, store):
    """A product sold with no quant at the store at all: the lock cannot say whether it is
    held, so the policy looks it up (one query) — for a held product and for one that is not.
    Once its unallocated quant exists, the lock reads the hold. A held product's warning
    costs one more (its discrepancies)."""
    held, free = ProductFactory(org=org, sku="NOSTOCK-2"), ProductFactory(org=org, sku="NOSTOCK-3")
    hold(org, store, held)
    mode(org, "warn", "record")

    def statements(product):
        with CaptureQueriesContext(connection) as queries:
            sales.sale_record(
                org=org, store=store, lines=[sales.SaleLineInput(product, D(1))], client_ref=ref()
            )
        return [
            q["sql"]
            for q in queries.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        ]

    def lookups(sql):
        return sum(s.startswith('SELECT "inventory_stockhold"') for s in sql)

    plain_first, plain_again = statements(free), statements(free)
    first, again = statements(held), statements(held)
    assert (lookups(plain_first), lookups(plain_again), lookups(first), lookups(again)) == (
        1,
        0,
        1,
        0,
    )
    assert len(first) == len(plain_first) + 1, first  # its discrepancies, for the warning
    assert len(again) == len(plain_again) + 1, again


# --- what it costs ------------------------------------------------------------------------------


def _sale_statements(org, store, lines, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        sale, _ = sales.sale_record(org=org, store=store, lines=lines, client_ref=ref(), **kwargs)
    return sale, [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]


def test_a_sale_stays_five_statements_under_block_with_holds_present(org, store):
    products = [ProductFactory(org=org, sku=f"FAST-{n}") for n in range(4)]
    others = [ProductFactory(org=org, sku=f"HELD-{n}") for n in range(3)]
    for p in products + others:
        receive(org, store, p, 10, lot=f"{p.sku}-A")
        receive(org, store, p, 10, lot=f"{p.sku}-B")
    for p in others:
        hold(org, store, p)
    mode(org, "block")
    lines = [sales.SaleLineInput(p, D(15)) for p in products]
    sale, sql = _sale_statements(org, store, lines)
    assert len(sql) == 5, sql
    assert "inventory_stockhold" in sql[1] and "FOR UPDATE" in sql[1]  # read by the lock
    assert sale.result["warnings"] == []
    with pytest.raises(OpenDiscrepancy):
        _sale_statements(org, store, [sales.SaleLineInput(others[0], D(1))])
    assert_invariants()


def test_the_sale_api_keeps_its_query_count_under_block(
    org, store, operator, django_assert_num_queries
):
    from tests.inventory.test_stock_api import SALE_QUERIES

    product, other = ProductFactory(org=org, sku="API-1"), ProductFactory(org=org, sku="API-2")
    receive(org, store, product, 10)
    receive(org, store, other, 10)
    hold(org, store, other)
    mode(org, "block")
    operator.get("/api/v1/me")  # the token's once-a-minute last-used write happens here
    with django_assert_num_queries(SALE_QUERIES):
        sold = post(operator, SALES, sale_body(store, (product, 1)))
    assert sold.status_code == 201


def test_no_policy_registered_costs_nothing_and_reads_the_holds_all_the_same(org, store):
    product = ProductFactory(org=org, sku="NOPOL-1")
    receive(org, store, product, 5)
    hold(org, store, product)
    mode(org, "block")
    policy.unregister_stock_policy(enforce)
    try:
        sale, sql = _sale_statements(org, store, [sales.SaleLineInput(product, D(1))])
    finally:
        policy.register_stock_policy(enforce)
    assert len(sql) == 5 and sale.result["warnings"] == []


def test_a_policy_sees_the_holds_the_source_and_the_override(org, store):
    product = ProductFactory(org=org, sku="SEEN-1")
    receive(org, store, product, 5)
    hold(org, store, product)
    mode(org, "warn")
    seen = []

    def spy(planned):
        seen.append(planned)
        return []

    policy.register_stock_policy(spy)
    try:
        sales.sale_record(
            org=org,
            store=store,
            lines=[sales.SaleLineInput(product, D(1))],
            client_ref=ref(),
            override_reason="  why  ",
        )
    finally:
        policy.unregister_stock_policy(spy)
    (planned,) = seen
    assert planned.held == frozenset({(store.pk, product.pk)}) and planned.unseen == frozenset()
    assert (planned.source, planned.enforcement) == ("pos", "warn")
    assert (planned.override_reason, planned.may_override) == ("why", False)  # no membership
    assert [r.ref_type for r in planned.rows] == [RefType.SALE]


# --- under real concurrency ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_selling_a_held_product_while_its_discrepancy_is_rejected(org, store):
    """Four tills sell a held product under block while an admin rejects its discrepancy:
    each sale either posts or is refused cleanly (nothing written), and the stock adds up."""
    product = ProductFactory(org=org, sku="RACE-1")
    receive(org, store, product, 100, cost=1)
    with transaction.atomic():
        d = hold(org, store, product)
    mode(org, "block")
    admin = person(org, Role.ADMIN)
    tills = 4
    barrier = threading.Barrier(tills + 1)
    outcomes: list = []
    errors: list = []

    def till(n):
        try:
            with tenant_scope(org):
                barrier.wait(timeout=30)
                for k in range(5):
                    try:
                        sale, _ = sales.sale_record(
                            org=org,
                            store=store,
                            lines=[sales.SaleLineInput(product, D(1))],
                            client_ref=f"race-{n}-{k}",
                        )
                        outcomes.append(("posted", sale.pk))
                    except OpenDiscrepancy:
                        outcomes.append(("refused", f"race-{n}-{k}"))
        except BaseException as exc:  # noqa: BLE001 - asserted in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    def close():
        try:
            with tenant_scope(org):
                barrier.wait(timeout=30)
                decide(org, d, admin, "reject")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=till, args=(n,)) for n in range(tills)]
    threads.append(threading.Thread(target=close))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    posted = [pk for what, pk in outcomes if what == "posted"]
    refused = [key for what, key in outcomes if what == "refused"]
    assert len(posted) + len(refused) == tills * 5
    # a refused sale left nothing behind; each posted one took exactly its unit
    assert not Sale.objects.filter(client_ref__in=refused).exists()
    assert Sale.objects.filter(pk__in=posted).count() == len(posted)
    assert StockLedger.objects.filter(ref_type=RefType.SALE).count() == len(posted)
    assert on_hand(product) == 100 - len(posted)
    d.refresh_from_db()
    assert d.status == Status.REJECTED
    assert not StockHold.objects.exists()
    with tenant_scope(org):
        sell(org, store, (product, 1))  # closed: it sells again
        assert_invariants()
