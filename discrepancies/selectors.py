"""Reading discrepancies: the list, and one discrepancy with what explains it.

The list is one query per page whatever the filters (every related row it shows is joined),
scoped to the caller's organisation and, for a store-limited membership, to its stores.
Archived discrepancies (``ArchivedDiscrepancy``, same ids) are out of the default list; a
caller asks for them with ``archived=True``.

The detail (``discrepancy_detail``) adds three things, each one query:

* the **source document**: what the discrepancy came from, read generically by its
  ``document_type``. The discrepancies app knows no source app (counts, later imports and
  transfers import it, never the other way round), so each source app registers a reader for
  its document type (``register_source_document``, from its ``AppConfig.ready``); the
  documents this app and inventory own (correction requests, stock shortfalls) are read here.
  Without a reader the answer still names the document (type, id, line, ``source_ref``).
* the **correction's ledger rows**: every ``StockLedger`` row with the discrepancy's
  ``(ref_type, ref_id, ref_line)``;
* the **timeline**: the recording (from the row itself) and every audit event of
  ``("discrepancies.discrepancy", id)`` — who, when, before and after, a self-approval flagged.
  An archived discrepancy keeps its id, so its timeline is the same events.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Abs

from core.errors import NotFound
from core.isotime import iso
from discrepancies.models import (
    ArchivedDiscrepancy,
    CorrectionRequest,
    Discrepancy,
    DiscrepancyFields,
    DocumentType,
    Severity,
    open_q,
)
from inventory.audit.selectors import audit_event_timeline
from inventory.models import AuditAction, Organization, StockLedger, StockShortfall
from inventory.stock.write_path import fmt

#: Every related row a list row shows, joined in the list's one query.
LIST_RELATED = ("store", "location", "product", "batch", "created_by", "reviewed_by", "decided_by")

#: ``ordering`` values of the list -> the ORDER BY they mean (``id`` last breaks ties).
ORDERINGS: dict[str, tuple[str, ...]] = {
    "-id": ("-id",),
    "id": ("id",),
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
    "-abs_value": ("-abs_value", "-id"),
    "-abs_variance": ("-abs_variance", "-id"),
    "-severity": ("-severity_order", "-id"),
}

_SEVERITY_RANK = Case(
    *(When(severity=s.value, then=Value(s.rank)) for s in Severity),
    output_field=IntegerField(),
)


def discrepancy_list(
    *,
    org: Organization,
    store_ids: Iterable[int] | None = None,
    archived: bool = False,
    status: Iterable[str] = (),
    severity: Iterable[str] = (),
    kind: Iterable[str] = (),
    source: Iterable[str] = (),
    store: int | None = None,
    product: int | None = None,
    created_from: datetime.datetime | None = None,
    created_to: datetime.datetime | None = None,
    is_open: bool | None = None,
    search: str | None = None,
    ordering: str = "-id",
) -> QuerySet:
    """The organisation's discrepancies (or its archived ones), newest first by default.

    ``store_ids`` limits a store-limited reader to those stores (None: every store). The
    multi-valued filters match any of their values; ``created_to`` is exclusive; ``is_open``
    is ``open_q()`` (undecided, or approved with a correction still to post) or its
    negation; ``search`` looks for the text in the SKU, the product's name, ``source_ref``
    and the reason."""
    model = ArchivedDiscrepancy if archived else Discrepancy
    rows = model.objects.filter(org=org)
    if store_ids is not None:
        rows = rows.filter(store_id__in=sorted(store_ids))
    for name, values in (
        ("status", status),
        ("severity", severity),
        ("kind", kind),
        ("source", source),
    ):
        values = sorted(set(values))
        if values:
            rows = rows.filter(**{f"{name}__in": values})
    if store is not None:
        rows = rows.filter(store_id=store)
    if product is not None:
        rows = rows.filter(product_id=product)
    if created_from is not None:
        rows = rows.filter(created_at__gte=created_from)
    if created_to is not None:
        rows = rows.filter(created_at__lt=created_to)
    if is_open is not None:
        rows = rows.filter(open_q()) if is_open else rows.exclude(open_q())
    if search:
        rows = rows.filter(
            Q(product__sku__icontains=search)
            | Q(product__name__icontains=search)
            | Q(source_ref__icontains=search)
            | Q(reason__icontains=search)
        )
    order = ORDERINGS[ordering]
    if "-abs_value" in order:
        rows = rows.annotate(abs_value=Abs(F("value")))
    if "-abs_variance" in order:
        rows = rows.annotate(abs_variance=Abs(F("variance")))
    if "-severity_order" in order:
        rows = rows.annotate(severity_order=_SEVERITY_RANK)
    return rows.select_related(*LIST_RELATED).order_by(*order)


def discrepancy_get(
    *, org: Organization, pk: int, store_ids: Iterable[int] | None = None
) -> DiscrepancyFields:
    """One discrepancy by id, live or archived (an archived one keeps its id), with what a
    list row shows. Another organisation's, a store the reader may not see, or a missing id:
    ``NotFound``, the same answer for all three."""
    for model in (Discrepancy, ArchivedDiscrepancy):
        rows = model.objects.filter(org=org, pk=pk)
        if store_ids is not None:
            rows = rows.filter(store_id__in=sorted(store_ids))
        found = rows.select_related(*LIST_RELATED).first()
        if found is not None:
            return found
    raise NotFound()


def is_archived(d: DiscrepancyFields) -> bool:
    return isinstance(d, ArchivedDiscrepancy)


# --- the source document ------------------------------------------------------------------------

#: reader(org, discrepancy) -> what the answer shows of its document (JSON-ready values), or
#: None when the document is gone.
SourceReader = Callable[[Organization, DiscrepancyFields], dict[str, Any] | None]
_source_readers: dict[str, SourceReader] = {}


def register_source_document(document_type: str, reader: SourceReader) -> None:
    """Show discrepancies of ``document_type`` with ``reader``'s view of their document (a
    source app calls this from its ``AppConfig.ready``). One query per call at most: the
    reader runs for one discrepancy's detail, never per list row."""
    _source_readers[document_type] = reader


def source_document(*, org: Organization, discrepancy: DiscrepancyFields) -> dict[str, Any]:
    """What the discrepancy came from: its type, id, line and ``source_ref``, and in
    ``details`` what the document's reader shows (empty without a reader or a document)."""
    d = discrepancy
    reader = _source_readers.get(d.document_type)
    details = reader(org, d) if reader is not None and d.document_id is not None else None
    return {
        "type": d.document_type,
        "id": d.document_id,
        "line": d.document_line,
        "source_ref": d.source_ref,
        "details": details or {},
    }


def _correction_document(org: Organization, d: DiscrepancyFields) -> dict[str, Any] | None:
    """An ad-hoc adjustment or write-off request: how it was asked for, and its lines (the
    discrepancy's own is ``document_line``)."""
    request = (
        CorrectionRequest.objects.filter(org=org, pk=d.document_id)
        .select_related("created_by")
        .first()
    )
    if request is None:
        return None
    return {
        "kind": request.kind,
        "client_ref": request.client_ref,
        "status": request.status,
        "reason": request.reason,
        "write_off_type": request.write_off_type,
        "source_ref": request.source_ref,
        "occurred_at": iso(request.occurred_at),
        "created_at": iso(request.created_at),
        "created_by": request.created_by.email if request.created_by else None,
        "document": request.document_id,
        "lines": request.lines,
    }


def _shortfall_document(org: Organization, d: DiscrepancyFields) -> dict[str, Any] | None:
    """A move that wanted more than there was (a POS sale over stock, a clamped count)."""
    shortfall = StockShortfall.objects.filter(org=org, pk=d.document_id).first()
    if shortfall is None:
        return None
    return {
        "requested": fmt(shortfall.requested),
        "available": fmt(shortfall.available),
        "outcome": shortfall.outcome,
        "ref_type": shortfall.ref_type,
        "ref_id": shortfall.ref_id,
        "client_ref": shortfall.client_ref,
        "location": shortfall.location_id,
        "occurred_at": iso(shortfall.occurred_at),
        "resolved_at": iso(shortfall.resolved_at),
    }


register_source_document(DocumentType.CORRECTION, _correction_document)
register_source_document(DocumentType.SHORTFALL, _shortfall_document)


# --- ledger rows and timeline -------------------------------------------------------------------


def correction_ledger_rows(*, org: Organization, discrepancy: DiscrepancyFields) -> list:
    """The ledger rows that posted the discrepancy's correction (none before it is posted)."""
    d = discrepancy
    if not d.ledger_ref_type or d.ledger_ref_id is None:
        return []
    rows = StockLedger.objects.filter(
        org=org, ref_type=d.ledger_ref_type, ref_id=d.ledger_ref_id
    ).select_related("location", "batch", "user")
    if d.ledger_ref_line is not None:
        rows = rows.filter(ref_line=d.ledger_ref_line)
    return list(rows.order_by("id"))


@dataclass
class TimelineEntry:
    """One step of a discrepancy's life: ``event`` is ``recorded`` or the audit action's last
    part (``reviewed``, ``approved``, ``rejected``, ``adjusted``, ``archived``)."""

    event: str
    at: datetime.datetime
    actor: Any  # a user, or None for the system
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    notes: str = ""
    self_approved: bool = False
    request_id: str = ""


def _event_name(action: str) -> str:
    return action.rsplit(".", 1)[-1]


def discrepancy_timeline(*, org: Organization, discrepancy: DiscrepancyFields) -> list:
    """The recording, then every audit event of the discrepancy, oldest first (one query).

    The recording's status is the one before the first audit event changed it (a correction
    within policy is recorded ADJUSTED, a count's variance NEW)."""
    d = discrepancy
    events = list(audit_event_timeline(org=org, obj=Discrepancy(pk=d.pk)))
    first_status = next(
        (e.before["status"] for e in events if isinstance(e.before, dict) and "status" in e.before),
        d.status,
    )
    recorded = {
        "status": first_status,
        "severity": d.severity,
        "expected": fmt(d.expected),
        "actual": fmt(d.actual),
        "variance": fmt(d.variance),
        "value": fmt(d.value),
        "within_policy": d.within_policy,
        "escalated": d.escalated,
    }
    entries = [
        TimelineEntry(
            event="recorded",
            at=d.created_at,
            actor=d.created_by,
            after=recorded,
            notes=d.reason,
        )
    ]
    for e in events:
        after = e.after if isinstance(e.after, dict) else {}
        entries.append(
            TimelineEntry(
                event=_event_name(e.action),
                at=e.occurred_at,
                actor=e.actor,
                before=e.before if isinstance(e.before, dict) else {},
                after=after,
                notes=str(after.get("notes") or ""),
                self_approved=bool(after.get("self_approved")),
                request_id=e.request_id,
            )
        )
    if is_archived(d) and not any(e.action == AuditAction.DISCREPANCIES_ARCHIVED for e in events):
        entries.append(
            TimelineEntry(
                event="archived",
                at=getattr(d, "archived_at", d.created_at),
                actor=None,
                after={"archived": True},
            )
        )
    return entries


@dataclass
class DiscrepancyDetail:
    discrepancy: DiscrepancyFields
    archived: bool
    source_document: dict
    ledger_rows: list
    timeline: list


def discrepancy_detail(*, org: Organization, discrepancy: DiscrepancyFields) -> DiscrepancyDetail:
    """Everything the detail page shows of one discrepancy: three queries besides its own."""
    return DiscrepancyDetail(
        discrepancy=discrepancy,
        archived=is_archived(discrepancy),
        source_document=source_document(org=org, discrepancy=discrepancy),
        ledger_rows=correction_ledger_rows(org=org, discrepancy=discrepancy),
        timeline=discrepancy_timeline(org=org, discrepancy=discrepancy),
    )
