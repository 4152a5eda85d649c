"""Receipts, moves, adjustments and write-offs: stock documents a device may retry.

Each is one transaction that records a ``StockDocument`` (idempotent on ``client_ref``) and
calls the write path once for all its lines.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.isotime import iso
from inventory.exceptions import InsufficientStock
from inventory.models import (
    DocumentKind,
    Organization,
    RefType,
    ShortfallOutcome,
    StockDocument,
    Store,
)
from inventory.stock import write_path as stock
from inventory.stock.idempotency import check_replay, request_hash
from inventory.stock.shortfalls import shortfalls_record

WRITE_OFF_REF_TYPES = {"damage": RefType.DAMAGE, "waste": RefType.WASTE, "expiry": RefType.EXPIRY}


def _document_result(document: StockDocument, outcome: stock.Outcome) -> dict:
    return {
        "id": document.pk,
        "kind": document.kind,
        "store": document.store_id,
        "client_ref": document.client_ref,
        "reason": document.reason,
        "type": document.write_off_type or None,
        "source_ref": document.source_ref,
        "occurred_at": iso(document.occurred_at),
        "rows": [
            {
                "line": r.ref_line,
                "ref_type": r.ref_type,
                "product": r.product_id,
                "location": r.location_id,
                "batch": r.batch_id,
                "quantity": stock.fmt(r.qty_delta),
                "unit_cost": stock.fmt(r.unit_cost),
                "reason": r.reason,
            }
            for r in outcome.rows
        ],
    }


def _record(
    *,
    org: Organization,
    store: Store,
    kind: str,
    client_ref: str,
    payload: dict,
    occurred_at: datetime.datetime | None,
    reason: str,
    actor,
    source: str,
    source_ref: str,
    post: Callable[[stock.Posting], stock.Outcome],
    write_off_type: str = "",
    failure_ref_type: str,
) -> tuple[StockDocument, bool]:
    digest = request_hash(
        {
            **payload,
            "store": store,
            "kind": kind,
            "reason": reason,
            "occurred_at": occurred_at,
            "type": write_off_type,
            "source_ref": source_ref,
        }
    )
    occurred_at = occurred_at or timezone.now()
    existing = StockDocument.objects.filter(org=org, kind=kind, client_ref=client_ref).first()
    if existing is not None:
        return check_replay(existing, digest), False
    user = actor if getattr(actor, "pk", None) else None
    try:
        with transaction.atomic():
            document = StockDocument.objects.create(
                org=org,
                store=store,
                kind=kind,
                client_ref=client_ref,
                request_hash=digest,
                reason=reason,
                write_off_type=write_off_type,
                source=source,
                source_ref=source_ref,
                occurred_at=occurred_at,
                created_by=user,
            )
            outcome = post(
                stock.Posting(org, store, document.pk, occurred_at, user, source, source_ref)
            )
            document.result = _document_result(document, outcome)
            document.save(update_fields=["result"])
    except InsufficientStock as exc:
        stock.record_failure(failure_ref_type, exc.code)
        shortfalls_record(
            org=org,
            store=store,
            shortfalls=exc.shortfalls,
            outcome=ShortfallOutcome.BLOCKED,
            ref_type=failure_ref_type,
            ref_id=None,
            client_ref=client_ref,
            occurred_at=occurred_at,
            actor=user,
        )
        raise
    except IntegrityError:
        existing = StockDocument.objects.filter(org=org, kind=kind, client_ref=client_ref).first()
        if existing is None:
            raise
        return check_replay(existing, digest), False
    return document, True


def _fingerprint(lines) -> list:
    return [sorted(vars(ln).items()) for ln in lines]


def receipt_record(
    *,
    org: Organization,
    store: Store,
    lines: list[stock.ReceiveLine],
    client_ref: str,
    occurred_at=None,
    reason: str = "",
    source: str = "api",
    source_ref: str = "",
    ref_type: str = RefType.RECEIPT,
    actor=None,
):
    """Receive stock into lots (found by lot code, or new); settles unallocated shortfalls."""
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.RECEIPT,
        client_ref=client_ref,
        payload={"lines": _fingerprint(lines), "ref_type": ref_type},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        post=lambda posting: stock.receive(
            posting=posting, lines=lines, ref_type=ref_type, reason=reason
        ),
        failure_ref_type=ref_type,
    )


def move_record(
    *,
    org: Organization,
    store: Store,
    lines: list[stock.MoveLine],
    client_ref: str,
    occurred_at=None,
    reason: str = "",
    source: str = "api",
    source_ref: str = "",
    actor=None,
):
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.MOVE,
        client_ref=client_ref,
        payload={"lines": _fingerprint(lines)},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        post=lambda posting: stock.move(posting=posting, lines=lines, reason=reason),
        failure_ref_type=RefType.MOVE_OUT,
    )


def adjustment_record(
    *,
    org: Organization,
    store: Store,
    lines: list[stock.ReceiveLine],
    client_ref: str,
    reason: str,
    occurred_at=None,
    source: str = "api",
    source_ref: str = "",
    actor=None,
):
    """Signed corrections at locations; the reason is required and kept on every row."""
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.ADJUSTMENT,
        client_ref=client_ref,
        payload={"lines": _fingerprint(lines)},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        post=lambda posting: stock.adjust(posting=posting, lines=lines, reason=reason),
        failure_ref_type=RefType.ADJUSTMENT,
    )


def write_off_record(
    *,
    org: Organization,
    store: Store,
    lines: list[stock.ReceiveLine],
    write_off_type: str,
    client_ref: str,
    reason: str,
    occurred_at=None,
    source: str = "api",
    source_ref: str = "",
    actor=None,
):
    """Remove damaged, wasted or expired stock (positive quantities; expired lots included)."""
    ref_type = WRITE_OFF_REF_TYPES[write_off_type]
    negative = [
        stock.ReceiveLine(ln.line, ln.product, ln.location, -abs(ln.quantity), batch_id=ln.batch_id)
        for ln in lines
    ]
    return _record(
        org=org,
        store=store,
        kind=DocumentKind.WRITE_OFF,
        client_ref=client_ref,
        payload={"lines": _fingerprint(lines)},
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
        source=source,
        source_ref=source_ref,
        write_off_type=write_off_type,
        post=lambda posting: stock.adjust(
            posting=posting, lines=negative, ref_type=ref_type, reason=reason
        ),
        failure_ref_type=ref_type,
    )
