"""The audit trail of a count: every step records one event with who took it; scans record
none (each ``CountScan`` carries who and which device itself); retries and refusals record
nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Max

from counts.exceptions import WrongState
from counts.models import CountSession, UnresolvedScan, VarianceRow
from counts.services import passes as P
from counts.services import sessions as S
from inventory.audit.selectors import audit_event_timeline
from inventory.models import ApiToken, AuditAction, AuditEvent, Role
from inventory.tenancy.scope import resolve_tenant
from tests.factories import MembershipFactory, ProductFactory
from tests.stock_helpers import loc, receive

A = AuditAction
D = Decimal


def last_id() -> int:
    return AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0


def step(start: int, action, obj, actor, store) -> AuditEvent:
    """The one event written since ``start``: its action, object, person and store."""
    new = list(AuditEvent.objects.filter(pk__gt=start).order_by("id"))
    assert [e.action for e in new] == [action]
    event = new[0]
    assert (event.object_type, event.object_id) == (obj._meta.label_lower, obj.pk)
    assert (event.actor_id, event.store_id, event.token_id) == (actor.pk, store.pk, None)
    return event


@pytest.fixture
def people(org):
    return {
        "manager": MembershipFactory(org=org, role=Role.MANAGER).user,
        "admin": MembershipFactory(org=org, role=Role.ADMIN).user,
        "clerk": MembershipFactory(org=org, role=Role.OPERATOR).user,
    }


def test_every_step_of_a_count_is_recorded_with_who_took_it(org, store, people):
    manager, admin, clerk = people["manager"], people["admin"], people["clerk"]
    flower = ProductFactory(org=org, sku="F")
    receive(org, store, flower, 10, cost=5)

    start = last_id()
    session = S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager)
    event = step(start, A.COUNT_SESSION_CREATED, session, manager, store)
    assert event.before == {}
    assert event.after == {
        "store": store.pk,
        "scope": "FULL_STORE",
        "blind": False,
        "notes": "",
        "scope_locations": [],
        "scope_categories": [],
    }

    start = last_id()
    session = S.session_start(org=org, session=session, actor=manager)
    event = step(start, A.COUNT_SESSION_STARTED, session, manager, store)
    assert event.before == {"status": "draft", "started_at": None}
    assert event.after["status"] == "in_progress" and event.after["started_at"].endswith("Z")

    start = last_id()
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    event = step(start, A.COUNT_PASS_CREATED, count_pass, clerk, store)
    assert {k: event.after[k] for k in ("session", "location")} == {
        "session": session.pk,
        "location": loc(store, "SF").pk,
    }

    start = last_id()
    P.lines_add(
        org=org, count_pass=count_pass, actor=clerk, entries=[P.Entry(flower, D("4"))]
    )  # a scan: its CountScan is its record
    assert last_id() == start

    P.pass_submit(org=org, count_pass=count_pass, actor=clerk)
    event = step(start, A.COUNT_PASS_SUBMITTED, count_pass, clerk, store)
    assert (event.before, event.after) == ({"status": "in_progress"}, {"status": "submitted"})

    start = last_id()
    S.session_submit(org=org, session=session, actor=manager)
    event = step(start, A.COUNT_SESSION_SUBMITTED, session, manager, store)
    assert event.after["status"] == "submitted"

    start = last_id()
    S.session_reconcile(org=org, session=session, actor=manager)
    event = step(start, A.COUNT_SESSION_RECONCILED, session, manager, store)
    assert {k: event.after[k] for k in ("status", "reconciled_by", "variance_rows", "pending")} == {
        "status": "reconciled",
        "reconciled_by": manager.pk,
        "variance_rows": 1,
        "pending": 1,
    }

    row = VarianceRow.objects.get(session=session)
    start = last_id()
    S.variance_reason_set(org=org, row=row, reason="shrink", actor=admin)
    event = step(start, A.COUNT_VARIANCE_REASON_SET, row, admin, store)
    assert (event.before, event.after) == ({"reason": ""}, {"reason": "shrink"})

    start = last_id()
    S.variance_decide(
        org=org,
        row=row,
        approve=True,
        tenant=resolve_tenant(admin, org_id=org.pk),
        actor=admin,
    )
    # the row is outside policy: deciding it is deciding its discrepancy, and that is recorded
    event = step(start, A.DISCREPANCY_APPROVED, row.discrepancy, admin, store)
    assert event.before == {"status": "NEW", "correction_mode": "keep_difference"}
    assert event.after == {"status": "APPROVED", "correction_mode": "keep_difference"}
    row.refresh_from_db()
    assert (row.status, row.reason, row.decided_by_id) == ("approved", "shrink", admin.pk)

    start = last_id()
    S.session_finalize(org=org, session=session, actor=manager)
    adjusted = AuditEvent.objects.get(pk__gt=start, action=A.DISCREPANCY_ADJUSTED)
    assert adjusted.object_id == row.discrepancy_id and D(adjusted.after["posted_quantity"]) == -6
    start = adjusted.pk
    event = step(start, A.COUNT_SESSION_FINALIZED, session, manager, store)
    assert {k: event.after[k] for k in ("status", "closed_by", "posted_rows", "clamped_rows")} == {
        "status": "closed",
        "closed_by": manager.pk,
        "posted_rows": 1,
        "clamped_rows": 0,
    }

    timeline = audit_event_timeline(org=org, obj=session)
    assert [e.action for e in timeline] == [
        A.COUNT_SESSION_CREATED,
        A.COUNT_SESSION_STARTED,
        A.COUNT_SESSION_SUBMITTED,
        A.COUNT_SESSION_RECONCILED,
        A.COUNT_SESSION_FINALIZED,
    ]


def test_retried_and_refused_steps_record_nothing(org, store, people):
    manager, clerk = people["manager"], people["clerk"]
    session = S.session_start(
        org=org,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
        actor=manager,
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    start = last_id()
    S.session_start(org=org, session=session, actor=manager)  # a retry
    with pytest.raises(WrongState):
        S.session_submit(org=org, session=session, actor=manager)  # the pass is open
    P.pass_submit(org=org, count_pass=count_pass, actor=clerk)
    after_submit = last_id()
    P.pass_submit(org=org, count_pass=count_pass, actor=clerk)  # a retry
    assert [e.action for e in AuditEvent.objects.filter(pk__gt=start)] == [A.COUNT_PASS_SUBMITTED]
    assert last_id() == after_submit


def test_cancelling_records_the_passes_it_voided_and_a_void_its_own(org, store, people):
    manager, clerk = people["manager"], people["clerk"]
    session = S.session_start(
        org=org,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
        actor=manager,
    )
    voided = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    P.pass_create(org=org, session=session, location=loc(store, "BR"), actor=clerk)
    start = last_id()
    P.pass_void(org=org, count_pass=voided, actor=manager)
    event = step(start, A.COUNT_PASS_VOIDED, voided, manager, store)
    assert (event.before, event.after) == ({"status": "in_progress"}, {"status": "voided"})
    start = last_id()
    S.session_cancel(org=org, session=session, actor=manager)
    event = step(start, A.COUNT_SESSION_CANCELLED, session, manager, store)
    assert event.before == {"status": "in_progress", "cancelled_at": None}
    assert event.after["status"] == "cancelled" and event.after["voided_passes"] == 1


def test_a_rejection_records_the_reason(org, store, people):
    manager, admin, clerk = people["manager"], people["admin"], people["clerk"]
    flower = ProductFactory(org=org, sku="F")
    receive(org, store, flower, 10, cost=5)
    session = S.session_start(
        org=org,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
        actor=manager,
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    P.lines_add(org=org, count_pass=count_pass, actor=clerk, entries=[P.Entry(flower, D("2"))])
    P.pass_submit(org=org, count_pass=count_pass, actor=clerk)
    S.session_submit(org=org, session=session, actor=manager)
    S.session_reconcile(org=org, session=session, actor=manager)
    row = VarianceRow.objects.get(session=session)
    start = last_id()
    S.variance_decide(
        org=org,
        row=row,
        approve=False,
        tenant=resolve_tenant(admin, org_id=org.pk),
        mode="set_counted",
        reason="recount tomorrow",
        actor=admin,
    )
    # outside policy: the rejection is its discrepancy's, with the reason as its note
    event = step(start, A.DISCREPANCY_REJECTED, row.discrepancy, admin, store)
    assert event.after == {
        "status": "REJECTED",
        "correction_mode": "keep_difference",
        "notes": "recount tomorrow",
    }
    row.refresh_from_db()
    assert (row.status, row.reason) == ("rejected", "recount tomorrow")


def test_mapping_an_unknown_scan_records_who_mapped_it(org, store, people):
    manager, clerk = people["manager"], people["clerk"]
    flower = ProductFactory(org=org, sku="F")
    session = S.session_start(
        org=org,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
        actor=manager,
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    start = last_id()
    scan = P.unresolved_record(
        org=org, count_pass=count_pass, raw_scan="??-123", quantity=D("3"), actor=clerk
    )
    assert last_id() == start  # a scan: kept with who and which device
    line = P.unresolved_resolve(org=org, scan=scan, product=flower, actor=manager)
    event = step(start, A.COUNT_SCAN_RESOLVED, UnresolvedScan.objects.get(), manager, store)
    assert event.before == {"resolved_line": None}
    assert event.after == {"resolved_line": line.pk, "product": flower.pk, "quantity": "3.0000"}


def test_a_step_through_the_api_records_the_device_token_and_request(org, store, client_for):
    manager = client_for(Role.MANAGER)
    session = S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager.user)
    start = last_id()
    response = manager.post(
        f"/api/v1/counts/sessions/{session.pk}/start", HTTP_X_REQUEST_ID="count-start-1"
    )
    assert response.status_code == 200, response.content
    event = AuditEvent.objects.get(pk__gt=start)
    token = ApiToken.objects.filter(user=manager.user).order_by("pk").first()
    assert (event.action, event.object_id, event.actor_id, event.token_id) == (
        A.COUNT_SESSION_STARTED,
        session.pk,
        manager.user.pk,
        token.pk,
    )
    assert event.request_id == "count-start-1"
    assert CountSession.objects.get(pk=session.pk).status == "in_progress"


def test_correcting_or_deleting_a_line_by_hand_is_recorded(org, store, people):
    clerk = people["clerk"]
    flower = ProductFactory(org=org, sku="HAND")
    session = S.session_start(
        org=org,
        actor=people["manager"],
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=people["manager"]),
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    ((line, _),) = P.lines_add(
        org=org, count_pass=count_pass, actor=clerk, entries=[P.Entry(flower, D(3))]
    )
    start = last_id()
    P.line_update(org=org, line=line, quantity=D(5), actor=people["manager"])
    event = step(start, A.COUNT_LINE_CORRECTED, line, people["manager"], store)
    assert (event.before, event.after) == ({"quantity": "3.0000"}, {"quantity": "5"})
    start = last_id()
    P.line_update(org=org, line=line, quantity=D(5), actor=people["manager"])  # no change
    assert last_id() == start
    P.line_delete(org=org, line=line, actor=clerk)
    event = step(start, A.COUNT_LINE_DELETED, line, clerk, store)
    assert event.before["product"] == flower.pk
