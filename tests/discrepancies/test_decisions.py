"""Deciding discrepancies: who may, in which state, the holds they keep, and a count's shortage
posted exactly once however and however often it is approved."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from counts.models import CountSession, VarianceRow
from counts.services import passes as P
from counts.services import sessions as S
from discrepancies.models import DocumentType, Severity, Source, Status
from discrepancies.services.decisions import Decision, discrepancies_decide, discrepancy_decide
from discrepancies.services.record import Finding, discrepancies_record
from inventory.models import AuditAction, AuditEvent, RefType, Role, StockHold, StockLedger
from inventory.tenancy.scope import resolve_tenant, tenant_scope
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, VariancePolicyFactory
from tests.stock_helpers import assert_invariants, loc, on_hand, receive

D = Decimal


def person(org, role, stores=()):
    return MembershipFactory(org=org, role=role, stores=stores).user


def tenant(org, user):
    return resolve_tenant(user, org_id=org.pk)


def counted(org, store, counter, products: dict) -> CountSession:
    """A reconciled full-store count by ``counter``: ``{product: counted quantity}``."""
    session = S.session_start(
        org=org,
        actor=counter,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=counter),
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=counter)
    P.lines_add(
        org=org,
        count_pass=count_pass,
        actor=counter,
        entries=[P.Entry(product, D(quantity)) for product, quantity in products.items()],
    )
    P.pass_submit(org=org, count_pass=count_pass, actor=counter)
    S.session_submit(org=org, session=session, actor=counter)
    return S.session_reconcile(org=org, session=session, actor=counter)


@pytest.fixture
def people(org, store):
    return {
        "counter": person(org, Role.MANAGER),
        "manager": person(org, Role.MANAGER),
        "admin": person(org, Role.ADMIN),
        "clerk": person(org, Role.OPERATOR),
        "viewer": person(org, Role.VIEWER),
    }


@pytest.fixture
def shortage(org, store, people):
    """10 received, 7 counted (policy: 2 units): a MEDIUM discrepancy a manager may decide."""
    VariancePolicyFactory(org=org, units=2, percent=0)
    product = ProductFactory(org=org, sku="SHORT-1")
    receive(org, store, product, 10, cost=2)
    session = counted(org, store, people["counter"], {product: 7})
    row = VarianceRow.objects.get(session=session)
    assert row.status == "pending" and row.discrepancy is not None
    return session, row, row.discrepancy


def code_of(call) -> str:
    with pytest.raises(Exception) as error:
        call()
    return error.value.code


def decide(org, d, who, action="approve", **kwargs):
    return discrepancy_decide(
        org=org,
        discrepancy=d,
        decision=Decision(action, **kwargs),
        tenant=tenant(org, who),
        actor=who,
    )


def test_a_counts_shortage_is_a_discrepancy_with_its_numbers(org, store, shortage, people):
    session, row, d = shortage
    assert (d.source, d.kind, d.status, d.document_type) == (
        Source.CYCLE_COUNT,
        "COUNT",
        Status.NEW,
        DocumentType.COUNT_VARIANCE,
    )
    assert (d.expected, d.actual, d.variance, d.value) == (10, 7, -3, -6)
    assert (d.severity, d.within_policy, d.escalated) == (Severity.MEDIUM, False, False)
    assert (d.store_id, d.location_id, d.created_by_id) == (
        store.pk,
        loc(store, "SF").pk,
        people["counter"].pk,
    )
    assert d.store_on_hand == 10 and d.source_ref == f"count-{session.pk}"


def test_who_may_decide(org, store, shortage, people):
    session, row, d = shortage
    assert code_of(lambda: decide(org, d, people["clerk"])) == "permission_denied"
    assert code_of(lambda: decide(org, d, people["viewer"])) == "permission_denied"
    assert code_of(lambda: decide(org, d, people["counter"])) == "self_approval"
    other_store = StoreFactory(org=org, code="S2")
    elsewhere = person(org, Role.MANAGER, stores=[other_store])
    assert code_of(lambda: decide(org, d, elsewhere)) == "not_found"
    approved = decide(org, d, people["manager"], notes="shelf recount agrees")
    assert (approved.status, approved.decided_by_id) == (Status.APPROVED, people["manager"].pk)
    row.refresh_from_db()
    assert (row.status, row.decided_by_id) == ("approved", people["manager"].pk)
    # the same person again: unchanged; anyone deciding it otherwise: 409
    assert decide(org, d, people["manager"]).status == Status.APPROVED
    assert code_of(lambda: decide(org, d, people["admin"], "reject")) == "invalid_state"


def test_escalated_needs_an_admin(org, store, people):
    product = ProductFactory(org=org, sku="BIG-1")
    receive(org, store, product, 100, cost=1)
    session = counted(org, store, people["counter"], {product: 50})  # 50 of 100: CRITICAL
    d = VarianceRow.objects.get(session=session).discrepancy
    assert (d.severity, d.escalated) == (Severity.CRITICAL, True)
    assert code_of(lambda: decide(org, d, people["manager"])) == "escalation_required"
    assert decide(org, d, people["admin"]).status == Status.APPROVED


def test_a_lone_admin_approves_their_own_with_a_note(org, store, people):
    """The counter is the org's only admin; the managers may not decide a CRITICAL one."""
    product = ProductFactory(org=org, sku="LONE-1")
    receive(org, store, product, 100, cost=1)
    session = counted(org, store, people["admin"], {product: 40})
    d = VarianceRow.objects.get(session=session).discrepancy
    lone = people["admin"]
    assert code_of(lambda: decide(org, d, lone)) == "note_required"
    approved = decide(org, d, lone, notes="only admin; the owner asked me to close it")
    assert approved.self_approved
    event = AuditEvent.objects.get(object_id=d.pk, action=AuditAction.DISCREPANCY_APPROVED)
    assert event.after["self_approved"] is True
    # with a second admin in the organisation, nobody approves their own again
    product2 = ProductFactory(org=org, sku="LONE-2")
    receive(org, store, product2, 100, cost=1)
    S.session_finalize(org=org, session=session, actor=people["manager"])
    second = counted(org, store, lone, {product2: 40})
    person(org, Role.ADMIN)
    d2 = VarianceRow.objects.get(session=second, product=product2).discrepancy
    assert code_of(lambda: decide(org, d2, lone, notes="still me")) == "self_approval"


def test_bulk_decides_each_row_on_its_own_and_lists_refusals(org, store, people):
    VariancePolicyFactory(org=org, units=2, percent=0)
    small = [ProductFactory(org=org, sku=f"SM-{n}") for n in range(3)]
    big = ProductFactory(org=org, sku="BIG-X")
    for product in [*small, big]:
        receive(org, store, product, 100, cost=1)
    session = counted(
        org, store, people["counter"], {**{p: 96 for p in small}, big: 10}
    )  # 4 of 100 (MEDIUM) ×3; 90 of 100 (CRITICAL)
    rows = {r.product_id: r for r in VarianceRow.objects.filter(session=session)}
    ids = [rows[p.pk].discrepancy_id for p in small] + [rows[big.pk].discrepancy_id, 999999]
    outcome = discrepancies_decide(
        org=org,
        ids=ids,
        decision=Decision("approve"),
        tenant=tenant(org, people["manager"]),
        actor=people["manager"],
    )
    assert sorted(d.pk for d in outcome.decided) == sorted(ids[:3])
    assert [(pk, e.code) for pk, e in outcome.refused] == [
        (rows[big.pk].discrepancy_id, "escalation_required"),
        (999999, "not_found"),
    ]
    assert {r.status for r in VarianceRow.objects.filter(session=session)} == {
        "approved",
        "pending",
    }
    assert AuditEvent.objects.filter(action=AuditAction.DISCREPANCY_APPROVED).count() == 3


def test_a_serious_discrepancy_holds_its_product_until_its_correction_posts(org, store, people):
    product = ProductFactory(org=org, sku="HOLD-1")
    receive(org, store, product, 100, cost=1)
    session = counted(org, store, people["counter"], {product: 50})
    d = VarianceRow.objects.get(session=session).discrepancy
    held = StockHold.objects.filter(store=store, product=product)
    assert d.severity == Severity.CRITICAL and held.exists()
    decide(org, d, people["admin"])
    assert held.exists()  # approved, not yet posted: still open
    S.session_finalize(org=org, session=session, actor=people["manager"])
    d.refresh_from_db()
    assert d.status == Status.ADJUSTED and not held.exists()
    assert (d.ledger_ref_type, d.ledger_ref_id, d.posted_quantity) == (
        RefType.COUNT_RECONCILE,
        session.pk,
        -50,
    )
    rows = StockLedger.objects.filter(
        ref_type=d.ledger_ref_type, ref_id=d.ledger_ref_id, ref_line=d.ledger_ref_line
    )
    assert sum(r.qty_delta for r in rows) == -50 and on_hand(product) == 50
    assert_invariants()


def test_cancelling_a_count_rejects_its_open_discrepancies_and_releases_holds(org, store, people):
    product = ProductFactory(org=org, sku="CAN-1")
    receive(org, store, product, 100, cost=1)
    session = counted(org, store, people["counter"], {product: 20})
    d = VarianceRow.objects.get(session=session).discrepancy
    S.session_cancel(org=org, session=session, actor=people["manager"])
    d.refresh_from_db()
    assert d.status == Status.REJECTED and "cancelled" in d.resolution_notes
    assert not StockHold.objects.exists()
    assert on_hand(product) == 100


def test_rejected_rows_post_nothing_and_a_rejected_one_cannot_be_approved(
    org, store, shortage, people
):
    session, row, d = shortage
    decide(org, d, people["manager"], "reject", notes="miscounted: recount tomorrow")
    assert code_of(lambda: decide(org, d, people["admin"])) == "invalid_state"
    S.session_finalize(org=org, session=session, actor=people["admin"])
    assert not StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).exists()
    assert on_hand(row.product) == 10


def test_reviewing_takes_it_under_review_and_only_new_ones(org, store, shortage, people):
    _, _, d = shortage
    reviewed = decide(org, d, people["manager"], "review", notes="looking")
    assert (reviewed.status, reviewed.reviewed_by_id) == (
        Status.UNDER_REVIEW,
        people["manager"].pk,
    )
    assert decide(org, d, people["admin"]).status == Status.APPROVED
    assert code_of(lambda: decide(org, d, people["admin"], "review")) == "invalid_state"


def test_recording_informational_findings_holds_and_judges(org, store):
    product = ProductFactory(org=org, sku="INFO-1", category="Flower", default_cost=D("4"))
    with tenant_scope(org):
        (d,) = discrepancies_record(
            org=org,
            findings=[
                Finding(
                    store_id=store.pk,
                    product_id=product.pk,
                    category=product.category,
                    expected=D("0"),
                    actual=D("30"),
                    unit_cost=D("4"),
                    source=Source.POS_SHORTFALL,
                    document_type=DocumentType.SHORTFALL,
                    corrective=False,
                )
            ],
            actor=None,
        )
    assert (d.variance, d.value, d.severity, d.is_open) == (30, 120, Severity.CRITICAL, True)
    assert StockHold.objects.filter(store=store, product=product).exists()


# --- under real concurrency --------------------------------------------------------------------


def together(org, workers):
    barrier = threading.Barrier(len(workers))
    results, errors = [None] * len(workers), []

    def run(index, worker):
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
    assert not any(t.is_alive() for t in threads)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_two_managers_approving_at_once_post_one_correction(org, store):
    VariancePolicyFactory(org=org, units=2, percent=0)
    counter = person(org, Role.MANAGER)
    managers = [person(org, Role.MANAGER) for _ in range(2)]
    product = ProductFactory(org=org, sku="RACE-1")
    receive(org, store, product, 10, cost=1)
    session = counted(org, store, counter, {product: 7})
    d = VarianceRow.objects.get(session=session).discrepancy

    def approve(who):
        return lambda: discrepancies_decide(
            org=org,
            ids=[d.pk],
            decision=Decision("approve"),
            tenant=tenant(org, who),
            actor=who,
        )

    results, errors = together(org, [approve(m) for m in managers])
    assert not errors, errors
    assert sorted(len(r.decided) for r in results) == [0, 1]
    assert [e.code for r in results for _, e in r.refused] == ["invalid_state"]

    def finalise():
        return S.session_finalize(org=org, session=session, actor=managers[0])

    _, errors = together(org, [finalise, finalise])
    assert not errors, errors
    assert on_hand(product) == 7
    assert StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count() == 1
    with tenant_scope(org):
        assert_invariants()
