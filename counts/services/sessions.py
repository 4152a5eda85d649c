"""Count sessions: create, start, submit, reconcile, decide variance, finalise, cancel.

Finalising posts COUNT_RECONCILE rows through the stock write path in one multi-line call and
one transaction; a session is closed only once, so finalising twice posts nothing twice.

Every step records who took it in the audit trail (``inventory.audit.services``), in its
transaction; a retried step that finds the session already there records nothing.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core.bulk import bulk_update_rows, gc_paused
from core.errors import ValidationFailed
from counts.exceptions import (
    ApprovalRequired,
    EscalationRequired,
    FullCountActive,
    SelfApproval,
    WrongState,
)
from counts.locks import lock_session, lock_variance_row
from counts.models import (
    CountPass,
    CountSession,
    PassStatus,
    PostingMode,
    Scope,
    SessionStatus,
    VarianceRow,
    VarianceStatus,
)
from counts.selectors import variance_compute
from counts.services.approvals import findings_for
from discrepancies.locks import lock_discrepancies
from discrepancies.services.decisions import (
    ADJUSTED_READS,
    Decision,
    discrepancies_adjusted,
    discrepancies_withdraw,
    discrepancy_decide,
)
from discrepancies.services.record import discrepancies_record, findings_judge
from inventory.audit.services import audit_diff, audit_record, audit_snapshot
from inventory.models import (
    AuditAction,
    Location,
    Organization,
    RefType,
    ShortfallOutcome,
    StockQuant,
    Store,
)
from inventory.stock import write_path as stock
from inventory.stock.shortfalls import shortfalls_record
from inventory.tenancy.capabilities import Action

ZERO = Decimal("0")


def _audit_step(
    *, org, session: CountSession, action: AuditAction, old: dict, actor, **extra
) -> None:
    """Record a step of ``session``: the fields in ``old`` that changed, and ``extra`` facts
    of the step (how many rows it produced, posted, voided)."""
    before, after = audit_diff(old, audit_snapshot(session, old))
    audit_record(
        org=org,
        action=action,
        obj=session,
        before=before,
        after={**after, **extra},
        store=session.store_id,
        actor=actor,
    )


def _move(session: CountSession, allowed_from: tuple[str, ...], to: str) -> None:
    if session.status not in allowed_from:
        raise WrongState(
            f"A {session.status} session cannot become {to}.", fields={"status": [session.status]}
        )


def session_create(
    *,
    org: Organization,
    store: Store,
    scope: str,
    blind: bool = False,
    notes: str = "",
    scope_locations: list[Location] = (),
    scope_categories: list[dict] = (),
    actor,
) -> CountSession:
    """A draft count. A ZONE names locations and/or categories; a FULL_STORE names neither."""
    if scope == Scope.FULL_STORE and (scope_locations or scope_categories):
        raise ValidationFailed(fields={"scope": ["A full-store count has no zone."]})
    if scope == Scope.ZONE and not (scope_locations or scope_categories):
        raise ValidationFailed(
            fields={"scope_locations": ["A zone count names locations and/or categories."]}
        )
    bad = [loc.pk for loc in scope_locations if loc.store_id != store.pk]
    if bad:
        raise ValidationFailed(
            fields={"scope_locations": ["Not locations of this store."]}, code="unknown_location"
        )
    with transaction.atomic():
        session = CountSession.objects.create(
            org=org,
            store=store,
            scope=scope,
            blind=blind,
            notes=notes,
            scope_locations=sorted(loc.pk for loc in scope_locations),
            scope_categories=[
                {
                    "category": c["category"].strip(),
                    "subcategory": (c.get("subcategory") or "").strip(),
                }
                for c in scope_categories
            ],
            created_by=actor,
        )
        audit_record(
            org=org,
            action=AuditAction.COUNT_SESSION_CREATED,
            obj=session,
            after=audit_snapshot(
                session,
                ["store", "scope", "blind", "notes", "scope_locations", "scope_categories"],
            ),
            store=store,
            actor=actor,
        )
    return session


def session_start(*, org: Organization, session: CountSession, actor) -> CountSession:
    """Draft → in progress. One active full-store count per store (the database enforces it)."""
    try:
        with transaction.atomic():
            session = lock_session(org=org, session_id=session.pk)
            if session.status == SessionStatus.IN_PROGRESS:
                return session
            _move(session, (SessionStatus.DRAFT,), SessionStatus.IN_PROGRESS)
            old = audit_snapshot(session, ["status", "started_at"])
            session.status, session.started_at = SessionStatus.IN_PROGRESS, timezone.now()
            session.save(update_fields=["status", "started_at"])
            _audit_step(
                org=org,
                session=session,
                action=AuditAction.COUNT_SESSION_STARTED,
                old=old,
                actor=actor,
            )
    except IntegrityError as exc:
        raise FullCountActive() from exc
    return session


def session_submit(*, org: Organization, session: CountSession, actor) -> CountSession:
    """In progress → submitted: counting is over (no pass may still be open)."""
    with transaction.atomic():
        session = lock_session(org=org, session_id=session.pk)
        if session.status == SessionStatus.SUBMITTED:
            return session
        _move(session, (SessionStatus.IN_PROGRESS,), SessionStatus.SUBMITTED)
        open_passes = list(
            CountPass.objects.filter(session=session, status=PassStatus.IN_PROGRESS).values_list(
                "pk", flat=True
            )
        )
        if open_passes:
            raise WrongState(
                "Submit or void the open passes first.",
                code="passes_open",
                fields={"passes": [str(pk) for pk in open_passes]},
            )
        old = audit_snapshot(session, ["status", "submitted_at"])
        session.status, session.submitted_at = SessionStatus.SUBMITTED, timezone.now()
        session.save(update_fields=["status", "submitted_at"])
        _audit_step(
            org=org,
            session=session,
            action=AuditAction.COUNT_SESSION_SUBMITTED,
            old=old,
            actor=actor,
        )
    return session


def session_reconcile(*, org: Organization, session: CountSession, actor) -> CountSession:
    """Submitted → reconciled: freeze the variance rows. A row within its category's variance
    policy is approved by policy; every other row is recorded as a discrepancy (source
    CYCLE_COUNT) and waits for someone other than the reconciler to decide it."""
    with gc_paused(), transaction.atomic():  # a full count: core.bulk.gc_paused
        session = lock_session(org=org, session_id=session.pk)
        if session.status == SessionStatus.RECONCILED:
            return session
        _move(session, (SessionStatus.SUBMITTED,), SessionStatus.RECONCILED)
        items = variance_compute(session)
        differing = [item for item in items if item.variance != 0]
        findings = findings_for(session, differing)
        judged = dict(
            zip(map(id, differing), findings_judge(org=org, findings=findings), strict=True)
        )
        rows = [
            VarianceRow(
                org=org,
                session=session,
                location_id=item.location_id,
                product_id=item.product_id,
                expected=item.expected,
                counted=item.counted,
                variance=item.variance,
                variance_pct=item.variance_pct,
                unit_cost=item.unit_cost,
                value=item.value,
                expected_at=item.expected_at,
                overage_batch_id=item.overage_batch_id,
                status=(
                    VarianceStatus.AUTO_APPROVED
                    if item.variance == 0 or judged[id(item)].within_policy
                    else VarianceStatus.PENDING
                ),
            )
            for item in items
        ]
        outside = [(f, judged[id(item)]) for f, item in zip(findings, differing, strict=True)]
        outside = [(f, j) for f, j in outside if not j.within_policy]
        VarianceRow.objects.bulk_create(rows)
        pending = [row for row in rows if row.status == VarianceStatus.PENDING]
        recorded = discrepancies_record(
            org=org,
            findings=[
                dataclasses.replace(f, document_id=row.pk)
                for (f, _), row in zip(outside, pending, strict=True)
            ],
            judgements=[j for _, j in outside],
            actor=actor,
        )
        for row, d in zip(pending, recorded, strict=True):
            row.discrepancy = d
        VarianceRow.objects.bulk_update(pending, ["discrepancy"], batch_size=1000)
        old = audit_snapshot(session, ["status", "reconciled_at", "reconciled_by"])
        session.status, session.reconciled_at = SessionStatus.RECONCILED, timezone.now()
        session.reconciled_by = actor
        session.save(update_fields=["status", "reconciled_at", "reconciled_by"])
        _audit_step(
            org=org,
            session=session,
            action=AuditAction.COUNT_SESSION_RECONCILED,
            old=old,
            actor=actor,
            variance_rows=len(rows),
            pending=len(pending),
        )
    return session


def variance_decide(
    *,
    org: Organization,
    row: VarianceRow,
    approve: bool,
    tenant,
    mode: str = PostingMode.KEEP_DIFFERENCE,
    reason: str = "",
    actor,
) -> VarianceRow:
    """Approve (with a posting mode) or reject one variance row of a reconciled session.

    A row outside its variance policy is a discrepancy: deciding the row decides the
    discrepancy, by the discrepancies' rules (``discrepancies.services.decisions``: managers up
    to the escalation, admins above, never the person who reconciled the count). A row within
    policy (approved by policy) may still be rejected or given another posting mode, by the
    same people. The audit event carries the decision, the posting mode and the reason.
    """
    if row.discrepancy_id is not None:
        discrepancy_decide(
            org=org,
            discrepancy=row.discrepancy_id,
            decision=Decision("approve" if approve else "reject", notes=reason, mode=mode),
            tenant=tenant,
            actor=actor,
        )
        row.refresh_from_db()
        return row
    with transaction.atomic():
        session = lock_session(org=org, session_id=row.session_id)
        if session.status != SessionStatus.RECONCILED:
            raise WrongState("Variance is decided while the session is reconciled.")
        row = lock_variance_row(org=org, row_id=row.pk)
        if session.reconciled_by_id == actor.pk:
            raise SelfApproval()
        if abs(row.value) > org.escalation_threshold and not tenant.can(
            Action.APPROVE_ABOVE_THRESHOLD
        ):
            raise EscalationRequired(
                value=str(abs(row.value)), threshold=str(org.escalation_threshold)
            )
        old = {"status": row.status, "mode": row.mode, "reason": row.reason}
        row.status = VarianceStatus.APPROVED if approve else VarianceStatus.REJECTED
        row.mode = mode
        if reason:
            row.reason = reason
        row.decided_by, row.decided_at = actor, timezone.now()
        row.save(update_fields=["status", "mode", "reason", "decided_by", "decided_at"])
        audit_record(
            org=org,
            action=AuditAction.COUNT_VARIANCE_APPROVED
            if approve
            else AuditAction.COUNT_VARIANCE_REJECTED,
            obj=row,
            before=old,
            after={"status": row.status, "mode": row.mode, "reason": row.reason},
            store=session.store_id,
            actor=actor,
        )
    return row


def variance_reason_set(*, org: Organization, row: VarianceRow, reason: str, actor) -> VarianceRow:
    """Explain a variance row while its session is reconciled. Locks the session, then the row
    (as deciding does), so the reason recorded as "before" is the one it replaced."""
    with transaction.atomic():
        session = lock_session(org=org, session_id=row.session_id)
        if session.status != SessionStatus.RECONCILED:
            raise WrongState("Reasons are given while the session is reconciled.")
        row = lock_variance_row(org=org, row_id=row.pk)
        old = row.reason
        if reason != old:
            row.reason = reason
            row.save(update_fields=["reason"])
            audit_record(
                org=org,
                action=AuditAction.COUNT_VARIANCE_REASON_SET,
                obj=row,
                before={"reason": old},
                after={"reason": reason},
                store=session.store_id,
                actor=actor,
            )
    return row


def session_finalize(*, org: Organization, session: CountSession, actor) -> CountSession:
    """Post the approved variance as COUNT_RECONCILE rows and close the session.

    One transaction, one write-path call (``stock.count_post``), which locks the counted
    places' quants once. A shortage takes earliest expiry first at its location, clamped to
    what is there now (stock sold since the count cannot be taken twice); the part that could
    not post stays on the row (``unposted_quantity``) and is kept as a ``clamped`` shortfall.
    An overage goes to the scanned lot, else the newest batch there, else a new batch at the
    last known cost. "Set to counted" rows post counted minus the balance at this moment. Every
    counted place also settles the store's unallocated debt there, even with no variance.
    """
    with gc_paused(), transaction.atomic():  # a full count: core.bulk.gc_paused
        session = lock_session(org=org, session_id=session.pk)
        if session.status == SessionStatus.CLOSED:
            return session
        _move(session, (SessionStatus.RECONCILED,), SessionStatus.CLOSED)
        pending = list(
            VarianceRow.objects.filter(session=session, status=VarianceStatus.PENDING).values_list(
                "pk", flat=True
            )[:100]
        )
        if pending:
            raise ApprovalRequired(fields={"variance": [str(pk) for pk in pending]})
        old = audit_snapshot(session, ["status", "closed_at", "closed_by"])
        approved = list(_rows_to_post(session))
        # The rows' discrepancies, locked before the posting (lock order), marked ADJUSTED after.
        discrepancies = lock_discrepancies(
            org=org,
            ids=[row.discrepancy_id for row in approved if row.discrepancy_id],
            only=ADJUSTED_READS,
        )
        now = timezone.now()
        by_line = dict(enumerate(approved, start=1))
        # each counted room once, not once per row
        rooms = Location.objects.in_bulk({row.location_id for row in approved})
        outcome = (
            stock.count_post(
                posting=stock.Posting(
                    org, session.store, session.pk, now, actor, "count", f"count-{session.pk}"
                ),
                lines=[
                    stock.CountedLine(
                        number,
                        row.product,
                        rooms[row.location_id],
                        difference=row.variance
                        if row.mode == PostingMode.KEEP_DIFFERENCE
                        else ZERO,
                        counted=row.counted if row.mode == PostingMode.SET_COUNTED else None,
                        batch_id=row.overage_batch_id,
                    )
                    for number, row in by_line.items()
                ],
                reason=f"count session {session.pk}",
            )
            if approved
            else stock.Outcome()
        )
        posted: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for ledger_row in outcome.rows:
            posted[ledger_row.ref_line] += ledger_row.qty_delta
        unposted = {s.line: s.available - s.requested for s in outcome.shortfalls}
        for number, row in by_line.items():
            row.posted_quantity = posted[number]
            row.unposted_quantity = unposted.get(number, ZERO)
        _save_posted(approved)
        discrepancies_adjusted(
            org=org,
            posted=[
                (
                    discrepancies[row.discrepancy_id],
                    (RefType.COUNT_RECONCILE, session.pk, number),
                    row.posted_quantity,
                )
                for number, row in by_line.items()
                if row.discrepancy_id
            ],
            actor=actor,
        )
        if outcome.shortfalls:
            shortfalls_record(
                org=org,
                store=session.store,
                shortfalls=outcome.shortfalls,
                outcome=ShortfallOutcome.CLAMPED,
                ref_type=RefType.COUNT_RECONCILE,
                ref_id=session.pk,
                client_ref="",
                occurred_at=now,
                actor=actor,
            )
        session.status, session.closed_at, session.closed_by = SessionStatus.CLOSED, now, actor
        session.save(update_fields=["status", "closed_at", "closed_by"])
        _audit_step(
            org=org,
            session=session,
            action=AuditAction.COUNT_SESSION_FINALIZED,
            old=old,
            actor=actor,
            posted_rows=len(approved),
            clamped_rows=len(unposted),
        )
    return session


def _rows_to_post(session: CountSession):
    """Approved rows that can post anything: a variance, "set to counted", or a place where
    the store owes unallocated stock. Most of a count matches and needs no work."""
    owes = StockQuant.objects.filter(
        org_id=session.org_id,
        location_id=OuterRef("location_id"),
        product_id=OuterRef("product_id"),
        unallocated=True,
        quantity__lt=0,
    )
    return (
        VarianceRow.objects.filter(
            session=session, status__in=[VarianceStatus.APPROVED, VarianceStatus.AUTO_APPROVED]
        )
        .filter(~Q(variance=0) | Q(mode=PostingMode.SET_COUNTED) | Exists(owes))
        .select_related("product")
        # a full count posts thousands of rows: what posting never reads of a row and its
        # product is left out (their times above all, the costliest values to load)
        .defer(*_NOT_POSTED)
        .order_by("id")
    )


#: What finalisation never reads of a variance row and its product.
_NOT_POSTED = (
    "expected_at",
    "decided_at",
    "decided_by",
    "reason",
    "variance_pct",
    "value",
    "product__created_at",
    "product__updated_at",
    "product__image_url",
    "product__brand",
)


def _save_posted(rows: list[VarianceRow]) -> None:
    """Write each row's posted and unposted quantities in one statement (``bulk_update_rows``:
    the rows as one JSON parameter on PostgreSQL, where a VALUES list of 15,000 placeholders
    cost more to bind than to run)."""
    bulk_update_rows(VarianceRow, rows, ["posted_quantity", "unposted_quantity"])


def session_cancel(*, org: Organization, session: CountSession, actor) -> CountSession:
    """Cancel a count that has not been finalised; its open passes are voided. Nothing posts."""
    with transaction.atomic():
        session = lock_session(org=org, session_id=session.pk)
        if session.status == SessionStatus.CANCELLED:
            return session
        _move(
            session,
            (
                SessionStatus.DRAFT,
                SessionStatus.IN_PROGRESS,
                SessionStatus.SUBMITTED,
                SessionStatus.RECONCILED,
            ),
            SessionStatus.CANCELLED,
        )
        now = timezone.now()
        voided = CountPass.objects.filter(session=session, status=PassStatus.IN_PROGRESS).update(
            status=PassStatus.VOIDED, voided_at=now
        )
        discrepancies_withdraw(
            org=org,
            discrepancies=list(
                lock_discrepancies(
                    org=org,
                    ids=VarianceRow.objects.filter(
                        session=session, discrepancy__isnull=False
                    ).values_list("discrepancy_id", flat=True),
                ).values()
            ),
            notes=f"Count {session.pk} was cancelled.",
            actor=actor,
        )
        old = audit_snapshot(session, ["status", "cancelled_at"])
        session.status, session.cancelled_at = SessionStatus.CANCELLED, now
        session.save(update_fields=["status", "cancelled_at"])
        _audit_step(
            org=org,
            session=session,
            action=AuditAction.COUNT_SESSION_CANCELLED,
            old=old,
            actor=actor,
            voided_passes=voided,
        )
    return session
