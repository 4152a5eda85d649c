"""A count's out-of-policy variance rows are discrepancies (source CYCLE_COUNT).

Reconciling a session records one discrepancy per row outside its category's variance policy
(``findings_for``); from then on the discrepancy is the one thing people decide — through the
discrepancies API, the admin, a bulk selection or the count's own approve/reject endpoints —
and this handler keeps the variance row in step: approving sets the row approved with the
discrepancy's posting mode, rejecting sets it rejected. Finalisation posts the approved rows
once and marks their discrepancies ADJUSTED (``counts.services.sessions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from core.bulk import any_of, bulk_update_rows
from counts.exceptions import WrongState
from counts.locks import lock_sessions, lock_variance_rows
from counts.models import CountSession, SessionStatus, VarianceRow, VarianceStatus
from counts.selectors import VarianceItem
from discrepancies.models import Discrepancy, DocumentType, Kind, Source
from discrepancies.services.decisions import SourceHandler
from discrepancies.services.record import Finding
from inventory.models import StockQuant

ZERO = Decimal("0")


def store_on_hand(session: CountSession, product_ids) -> dict[int, Decimal]:
    """Each product's stock at the session's store now (every location, every batch)."""
    return {
        row["product_id"]: row["total"] or ZERO
        for row in StockQuant.objects.filter(
            org_id=session.org_id, store_id=session.store_id, product_id__in=sorted(product_ids)
        )
        .values("product_id")
        .annotate(total=Sum("quantity"))
    }


def findings_for(session: CountSession, items: list[VarianceItem]) -> list[Finding]:
    """One finding per item (the caller keeps the rows outside policy)."""
    on_hand = store_on_hand(session, {item.product_id for item in items})
    return [
        Finding(
            store_id=session.store_id,
            product_id=item.product_id,
            category=item.category,
            expected=item.expected,
            actual=item.counted,
            unit_cost=item.unit_cost,
            source=Source.CYCLE_COUNT,
            kind=Kind.COUNT,
            document_type=DocumentType.COUNT_VARIANCE,
            location_id=item.location_id,
            batch_id=item.overage_batch_id,
            store_on_hand=on_hand.get(item.product_id, ZERO),
            source_ref=f"count-{session.pk}",
        )
        for item in items
    ]


#: What deciding reads and writes of a variance row (``_refuse``, ``_involved``, ``_mirror``).
_DECIDED_FIELDS = ("id", "session_id", "status", "mode", "reason", "decided_by", "decided_at")


@dataclass
class _State:
    sessions: dict[int, CountSession]
    rows: dict[int, VarianceRow]  # by discrepancy id


def _lock(org, discrepancies: list[Discrepancy]) -> _State:
    rows = list(  # (discrepancy, row, session) ids: what the locks need, no rows built
        VarianceRow.objects.filter(
            any_of("discrepancy_id", [d.pk for d in discrepancies]), org=org
        ).values_list("discrepancy_id", "id", "session_id")
    )
    sessions = lock_sessions(org=org, ids={session for _, _, session in rows})
    locked = lock_variance_rows(org=org, ids=[pk for _, pk, _ in rows], only=_DECIDED_FIELDS)
    return _State(sessions, {discrepancy: locked[pk] for discrepancy, pk, _ in rows})


def _refuse(state: _State, d: Discrepancy):
    row = state.rows.get(d.pk)
    if row is None or state.sessions[row.session_id].status != SessionStatus.RECONCILED:
        return WrongState(
            "A count's variance is decided while the count is reconciled.",
            fields={"status": [state.sessions[row.session_id].status if row else "unknown"]},
        )
    return None


def _mirror(state: _State, discrepancies: list[Discrepancy], actor, status: str) -> None:
    now = timezone.now()
    rows = []
    for d in discrepancies:
        row = state.rows[d.pk]
        row.status, row.decided_by, row.decided_at = status, actor, now
        row.mode = d.correction_mode
        if d.resolution_notes and not row.reason:
            row.reason = d.resolution_notes[:255]
        rows.append(row)
    # a bulk selection mirrors thousands of rows: one UPDATE … FROM (VALUES …) a thousand
    bulk_update_rows(VarianceRow, rows, ["status", "mode", "decided_by", "decided_at", "reason"])


def _involved(state: _State, d: Discrepancy) -> set[int]:
    row = state.rows.get(d.pk)
    reconciled_by = state.sessions[row.session_id].reconciled_by_id if row else None
    return {reconciled_by} if reconciled_by else set()


COUNT_VARIANCE = SourceHandler(
    lock=_lock,
    refuse=_refuse,
    approved=lambda state, ds, actor: _mirror(state, ds, actor, VarianceStatus.APPROVED),
    rejected=lambda state, ds, actor: _mirror(state, ds, actor, VarianceStatus.REJECTED),
    involved=_involved,
)
