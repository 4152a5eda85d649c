"""Deciding discrepancies: review, approve, reject — one at a time or a selection at once.

Every path (the API, the admin, bulk selections, a count's own approve/reject endpoints) ends
here, so one set of rules decides who may do what:

* operators and viewers never decide; managers decide up to the escalation (severity HIGH or
  CRITICAL, or a value above the organisation's threshold), admins above it;
* nobody decides a discrepancy they recorded (or the count they reconciled) — unless nobody
  else in the organisation may decide it: then an admin may, with a note saying so, and the
  decision is flagged ``self_approved``;
* only NEW and UNDER_REVIEW discrepancies are decided (deciding a REJECTED one is 409); the
  same person repeating the same decision gets the discrepancy back unchanged.

What approval does depends on where the discrepancy came from, and that source's app says so
through a ``SourceHandler`` registered at start-up (``register_source_handler``): a count's
variance row follows its discrepancy and is posted by finalisation; an ad-hoc correction's
line posts at once and ends ADJUSTED; an informational one (a POS shortfall already booked,
an invariant mismatch, a count's clamped remainder) has nothing to post and ends APPROVED.

Locks: the source's rows first (a count's session and variance rows), then the discrepancies
in id order, then whatever the correction posts (``inventory.locks.LOCK_ORDER``). A selection
is decided in one transaction; each row is judged on its own and refusals are listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.bulk import any_of, bulk_update_rows, gc_paused
from core.errors import ApplicationError, NotFound, ValidationFailed
from discrepancies.exceptions import (
    ApproverRequired,
    EscalationRequired,
    NoteRequired,
    SelfApproval,
    WrongState,
)
from discrepancies.locks import lock_discrepancies
from discrepancies.models import (
    SERIOUS,
    UNDECIDED,
    ArchivedDiscrepancy,
    CorrectionMode,
    Discrepancy,
    DocumentType,
    Status,
)
from discrepancies.services.record import holds_refresh, log_event
from inventory.audit.services import audit_record_many
from inventory.models import AuditAction, Membership, MembershipStore, Organization, Role
from inventory.tenancy.capabilities import Action, role_can

#: A selection decided at once is at most this many discrepancies.
BULK_LIMIT = 5000
#: The sources whose correction posts in a mode a decision may choose (a count's variance row:
#: keep the difference or set the counted quantity). Any other refuses a ``mode``: it would be
#: stored on the discrepancy and ignored by what posts.
MODE_SOURCES = frozenset({DocumentType.COUNT_VARIANCE})
#: What a decision is called once taken (its log event, its refusal's wording).
PAST = {"approve": "approved", "reject": "rejected", "review": "taken under review"}
LOGGED = {"approve": "approved", "reject": "rejected", "review": "reviewed"}


# --- what each source does ----------------------------------------------------------------------


@dataclass
class SourceHandler:
    """How one kind of source document takes part in decisions.

    ``lock(org, discrepancies)`` takes the source's own row locks (before the discrepancies'),
    returning whatever ``refuse``, ``approved`` and ``rejected`` need. ``refuse`` may refuse a
    row for the source's own reasons (a count no longer reconciled). ``approved`` and
    ``rejected`` run after the statuses are set, on the rows decided: they post a correction
    (and set ADJUSTED with the ledger reference on the instances), mirror the decision onto
    the source's rows, or do nothing. ``approved`` may return rows it could not carry out as
    ``(id, error)`` (an ad-hoc correction whose stock is gone meanwhile): those are left
    undecided and listed as refused — the handler must have undone what it did for them (a
    savepoint). ``involved(state, d)`` names people who may not decide it besides its
    recorder (who reconciled the count).
    """

    lock: Callable[[Organization, list[Discrepancy]], Any] = lambda org, ds: None
    refuse: Callable[[Any, Discrepancy], ApplicationError | None] = lambda state, d: None
    approved: Callable[
        [Any, list[Discrepancy], Any], Sequence[tuple[int, ApplicationError]] | None
    ] = lambda state, ds, actor: None
    rejected: Callable[[Any, list[Discrepancy], Any], None] = lambda state, ds, actor: None
    involved: Callable[[Any, Discrepancy], set[int]] = lambda state, d: set()


#: A source with nothing to post: approval acknowledges it.
INFORMATIONAL = SourceHandler()
_handlers: dict[str, SourceHandler] = {}


def register_source_handler(document_type: str, handler: SourceHandler) -> None:
    """Decide discrepancies of ``document_type`` with ``handler`` (from ``AppConfig.ready``)."""
    _handlers[document_type] = handler


def _handler(d: Discrepancy) -> SourceHandler:
    return _handlers.get(d.document_type, INFORMATIONAL) if d.corrective else INFORMATIONAL


# --- who may decide -----------------------------------------------------------------------------


def escalated(org: Organization, d: Discrepancy) -> bool:
    """Does ``d`` need an admin: HIGH or CRITICAL, or worth more than the organisation's
    escalation threshold now (a threshold changed since it was recorded counts)."""
    return d.severity in SERIOUS or abs(d.value) > org.escalation_threshold


def _someone_else_may_decide(org: Organization, d: Discrepancy, excluded: set[int]) -> bool:
    """Is there another active member who may decide ``d`` (role, stores)?"""
    least = Role.ADMIN if escalated(org, d) else Role.MANAGER
    roles = [r for r in Role if r.rank >= least.rank]
    limited = MembershipStore.objects.filter(membership=OuterRef("pk"))
    return (
        Membership.objects.filter(org=org, is_active=True, user__is_active=True, role__in=roles)
        .exclude(user_id__in=excluded)
        .filter(~Exists(limited) | Exists(limited.filter(store_id=d.store_id)))
        .exists()
    )


@dataclass
class Decision:
    """What a person asks: approve or reject (or take under review), with a note, and for a
    count's discrepancy the posting mode."""

    action: str  # "approve" | "reject" | "review"
    notes: str = ""
    mode: str | None = None


@dataclass
class Outcome:
    decided: list[Discrepancy] = field(default_factory=list)
    unchanged: list[Discrepancy] = field(default_factory=list)  # the same decision, repeated
    refused: list[tuple[int, ApplicationError]] = field(default_factory=list)

    def refusals(self) -> list[dict]:
        return [
            {"id": pk, "code": error.code, "detail": error.message, "fields": error.fields}
            for pk, error in self.refused
        ]


def _refusal(
    org: Organization, d: Discrepancy, decision: Decision, tenant, actor, involved: set[int]
) -> tuple[ApplicationError | None, bool]:
    """Why ``actor`` may not take ``decision`` on ``d`` (None if they may), and whether it
    would be their own discrepancy decided under the no-one-else rule."""
    if not tenant.may_use_store(d.store_id):
        return NotFound(), False
    if not tenant.can(Action.VARIANCE_APPROVE):
        return ApproverRequired(), False
    if d.status not in UNDECIDED:
        return WrongState(
            f"This discrepancy is {d.status}: it cannot be {PAST[decision.action]}.",
            fields={"status": [d.status]},
        ), False
    if decision.action == "review":
        return None, False
    if decision.mode is not None and not (d.corrective and d.document_type in MODE_SOURCES):
        return ValidationFailed(
            "Only a count's discrepancy is approved with a posting mode.",
            fields={"mode": ["Only a count's discrepancy takes a mode; leave it out."]},
        ), False
    own = actor.pk in involved
    if own and (tenant.role != Role.ADMIN or _someone_else_may_decide(org, d, involved)):
        return SelfApproval(), False
    if escalated(org, d) and not tenant.can(Action.APPROVE_ABOVE_THRESHOLD):
        return EscalationRequired(
            severity=d.severity, value=str(abs(d.value)), threshold=str(org.escalation_threshold)
        ), False
    if own and not decision.notes.strip():
        return NoteRequired(fields={"notes": ["Say why nobody else could decide it."]}), False
    return None, own


def _repeated(d: Discrepancy, decision: Decision, actor) -> bool:
    """The same person asking for what they already did: answered with the row, unchanged."""
    if decision.action == "review":
        return d.status == Status.UNDER_REVIEW and d.reviewed_by_id == actor.pk
    wanted = (
        (Status.APPROVED, Status.ADJUSTED) if decision.action == "approve" else (Status.REJECTED,)
    )
    return d.status in wanted and d.decided_by_id == actor.pk


# --- the service --------------------------------------------------------------------------------


def discrepancies_decide(
    *,
    org: Organization,
    ids: Sequence[int],
    decision: Decision,
    tenant,
    actor,
) -> Outcome:
    """Take ``decision`` on each of the discrepancies ``ids`` (one transaction). Each row is
    judged by the same rules; those refused are listed with their error, the others decided.
    Unknown ids (or another organisation's, or a store the person may not use) are refused
    as not found."""
    if decision.action not in ("approve", "reject", "review"):
        raise ValidationFailed(fields={"action": ["approve, reject or review."]})
    if decision.mode is not None and decision.mode not in CorrectionMode.values:
        raise ValidationFailed(
            fields={"mode": [f"One of {', '.join(CorrectionMode.values)}."]}, code="invalid"
        )
    ids = list(dict.fromkeys(ids))
    if len(ids) > BULK_LIMIT:
        raise ValidationFailed(fields={"ids": [f"At most {BULK_LIMIT} at once."]})
    outcome = Outcome()
    with gc_paused(), transaction.atomic():  # thousands of rows: core.bulk.gc_paused
        # What the sources' locks need (they come first in the lock order): not whole rows,
        # which the discrepancies' own lock reads next.
        known = list(
            Discrepancy.objects.filter(any_of("pk", ids), org=org)
            .only("id", "document_type", "document_id", "corrective")
            .order_by("pk")
        )
        groups: dict[int, tuple[SourceHandler, list[Discrepancy]]] = {}
        for d in known:
            handler = _handler(d)
            groups.setdefault(id(handler), (handler, []))[1].append(d)
        states = {key: handler.lock(org, group) for key, (handler, group) in groups.items()}
        locked = lock_discrepancies(org=org, ids=[d.pk for d in known])
        outcome.refused += _missing(org, [pk for pk in ids if pk not in locked], tenant)
        now = timezone.now()
        decided_by_group: dict[int, list[Discrepancy]] = {}
        audit: list[tuple] = []
        for key, (handler, group) in groups.items():
            state = states[key]
            for stale in group:
                d = locked[stale.pk]
                if _repeated(d, decision, actor):
                    outcome.unchanged.append(d)
                    continue
                involved = {pk for pk in (d.created_by_id,) if pk} | handler.involved(state, d)
                error, own = _refusal(org, d, decision, tenant, actor, involved)
                error = error or handler.refuse(state, d)
                if error is not None:
                    outcome.refused.append((d.pk, error))
                    continue
                before = {"status": d.status, "correction_mode": d.correction_mode}
                _apply(d, decision, actor, now, own)
                decided_by_group.setdefault(key, []).append(d)
                audit.append((d, before))
        not_carried_out: dict[int, ApplicationError] = {}
        for key, group in decided_by_group.items():
            handler, state = groups[key][0], states[key]
            if decision.action == "approve":
                not_carried_out.update(handler.approved(state, group, actor) or ())
            elif decision.action == "reject":
                handler.rejected(state, group, actor)
        # What the source could not carry out stays as it was (unsaved), refused.
        outcome.refused += list(not_carried_out.items())
        audit = [(d, before) for d, before in audit if d.pk not in not_carried_out]
        decided = [
            d for group in decided_by_group.values() for d in group if d.pk not in not_carried_out
        ]
        _save(decided, _changed_fields(decision, decided))
        action = {
            "approve": AuditAction.DISCREPANCY_APPROVED,
            "reject": AuditAction.DISCREPANCY_REJECTED,
            "review": AuditAction.DISCREPANCY_REVIEWED,
        }[decision.action]
        audit_record_many(
            org=org,
            action=action,
            changes=[(d, before, _after(d, decision), d.store_id) for d, before in audit],
            actor=actor,
        )
        holds_refresh(org=org, pairs={(d.store_id, d.product_id) for d in decided})
        for d in decided:
            log_event(
                f"discrepancy_{LOGGED[decision.action]}",
                d,
                actor=actor,
                self_approved=d.self_approved,
            )
        outcome.decided = decided
    order = {pk: n for n, pk in enumerate(ids)}
    outcome.refused.sort(key=lambda item: order[item[0]])
    return outcome


def _missing(org: Organization, ids: list[int], tenant) -> list[tuple[int, ApplicationError]]:
    """Why ids that are not live discrepancies are refused: an archived one (closed, in a
    store the person may use) is ``invalid_state`` as it is one at a time; the rest, another
    organisation's or a missing id, ``not_found`` (one query, only when some are missing)."""
    if not ids:
        return []
    archived = {
        a.pk: a
        for a in ArchivedDiscrepancy.objects.filter(org=org, pk__in=ids).only(
            "id", "store_id", "status"
        )
    }
    refused: list[tuple[int, ApplicationError]] = []
    for pk in ids:
        a = archived.get(pk)
        if a is None or not tenant.may_use_store(a.store_id):
            refused.append((pk, NotFound()))
        else:
            refused.append(
                (
                    pk,
                    WrongState(
                        f"An archived discrepancy is closed ({a.status}).",
                        fields={"status": [a.status]},
                    ),
                )
            )
    return refused


def discrepancy_decide(
    *, org: Organization, discrepancy: Discrepancy | int, decision: Decision, tenant, actor
) -> Discrepancy:
    """Decide one discrepancy; a refusal is raised (the API's 4xx), not listed."""
    pk = discrepancy if isinstance(discrepancy, int) else discrepancy.pk
    outcome = discrepancies_decide(org=org, ids=[pk], decision=decision, tenant=tenant, actor=actor)
    if outcome.refused:
        raise outcome.refused[0][1]
    return (outcome.decided or outcome.unchanged)[0]


def _apply(d: Discrepancy, decision: Decision, actor, now, own: bool) -> None:
    notes = decision.notes.strip()
    if notes:
        d.resolution_notes = notes
    if decision.action == "review":
        d.status, d.reviewed_by, d.reviewed_at = Status.UNDER_REVIEW, actor, now
        return
    d.status = Status.APPROVED if decision.action == "approve" else Status.REJECTED
    d.decided_by, d.decided_at, d.self_approved = actor, now, own
    if decision.mode is not None and decision.action == "approve":
        d.correction_mode = decision.mode


def _after(d: Discrepancy, decision: Decision) -> dict:
    after = {"status": d.status, "correction_mode": d.correction_mode}
    if decision.notes.strip():
        after["notes"] = decision.notes.strip()
    if d.self_approved:
        after["self_approved"] = True
    if d.ledger_ref_id is not None:
        after["ledger_ref"] = [d.ledger_ref_type, d.ledger_ref_id, d.ledger_ref_line]
        after["posted_quantity"] = d.posted_quantity
    return after


_DECISION_FIELDS = [
    "status",
    "resolution_notes",
    "reviewed_by",
    "reviewed_at",
    "decided_by",
    "decided_at",
    "self_approved",
    "correction_mode",
    "adjusted_at",
    "ledger_ref_type",
    "ledger_ref_id",
    "ledger_ref_line",
    "posted_quantity",
]


#: What marking a discrepancy ADJUSTED changes.
_ADJUSTED_FIELDS = [
    "status",
    "adjusted_at",
    "ledger_ref_type",
    "ledger_ref_id",
    "ledger_ref_line",
    "posted_quantity",
]


#: What ``discrepancies_adjusted`` reads of a discrepancy (its log line, its audit event, the
#: holds) and writes: a source finalising thousands locks them with ``only=ADJUSTED_READS``.
ADJUSTED_READS = (
    "id",
    "org",
    "store",
    "product",
    "location",
    "source",
    "kind",
    "severity",
    "expected",
    "actual",
    "variance",
    "value",
    *_ADJUSTED_FIELDS,
)


def _changed_fields(decision: Decision, decided: list[Discrepancy]) -> list[str]:
    """The columns ``decision`` may have changed: a bulk decision writes every column it names
    for every row, so naming only these halves the work for thousands of rows."""
    if decision.action == "review":
        return ["status", "resolution_notes", "reviewed_by", "reviewed_at"]
    fields = [
        "status",
        "resolution_notes",
        "decided_by",
        "decided_at",
        "self_approved",
        "correction_mode",
    ]
    if any(d.status == Status.ADJUSTED for d in decided):  # a source posted on approval
        fields += [f for f in _ADJUSTED_FIELDS if f not in fields]
    return fields


def _save(decided: list[Discrepancy], fields: Sequence[str] = _DECISION_FIELDS) -> None:
    bulk_update_rows(Discrepancy, decided, fields)


# --- what sources call --------------------------------------------------------------------------


def discrepancies_adjusted(
    *,
    org: Organization,
    posted: Sequence[tuple[Discrepancy, tuple[str, int, int], Any]],
    actor,
) -> None:
    """Mark approved discrepancies ADJUSTED: their correction was posted (``posted``:
    (discrepancy, (ref_type, ref_id, ref_line), quantity posted)). The caller has locked
    them (``lock_discrepancies``) before posting, and refreshes nothing else: holds are
    refreshed here, after the posting (lock order)."""
    if not posted:
        return
    now = timezone.now()
    for d, (ref_type, ref_id, ref_line), quantity in posted:
        d.status, d.adjusted_at = Status.ADJUSTED, now
        d.ledger_ref_type, d.ledger_ref_id, d.ledger_ref_line = ref_type, ref_id, ref_line
        d.posted_quantity = quantity
    decided = [d for d, _, _ in posted]
    _save(decided, _ADJUSTED_FIELDS)
    audit_record_many(
        org=org,
        action=AuditAction.DISCREPANCY_ADJUSTED,
        changes=[
            (
                d,
                {"status": Status.APPROVED},
                {
                    "status": d.status,
                    "ledger_ref": [d.ledger_ref_type, d.ledger_ref_id, d.ledger_ref_line],
                    "posted_quantity": d.posted_quantity,
                },
                d.store_id,
            )
            for d in decided
        ],
        actor=actor,
    )
    holds_refresh(org=org, pairs={(d.store_id, d.product_id) for d in decided})
    for d in decided:
        log_event("discrepancy_adjusted", d, actor=actor)


def discrepancies_withdraw(
    *, org: Organization, discrepancies: Sequence[Discrepancy], notes: str, actor
) -> None:
    """Reject what is still open of ``discrepancies`` because their source went away (a
    cancelled count): nothing will post. The caller holds the source's locks and has locked
    the rows (``lock_discrepancies``)."""
    open_rows = [d for d in discrepancies if d.status in (*UNDECIDED, Status.APPROVED)]
    if not open_rows:
        return
    now = timezone.now()
    before = {d.pk: d.status for d in open_rows}
    for d in open_rows:
        d.status, d.decided_by, d.decided_at = Status.REJECTED, actor, now
        d.resolution_notes = notes
    _save(open_rows)
    audit_record_many(
        org=org,
        action=AuditAction.DISCREPANCY_REJECTED,
        changes=[
            (d, {"status": before[d.pk]}, {"status": d.status, "notes": notes}, d.store_id)
            for d in open_rows
        ],
        actor=actor,
    )
    holds_refresh(org=org, pairs={(d.store_id, d.product_id) for d in open_rows})


def may_decide(tenant, d: Discrepancy) -> bool:
    """Whether ``tenant``'s role could decide ``d`` at all (for screens: which buttons)."""
    needed = Action.APPROVE_ABOVE_THRESHOLD if escalated(tenant.org, d) else Action.VARIANCE_APPROVE
    return role_can(tenant.role, needed) and tenant.may_use_store(d.store_id)
