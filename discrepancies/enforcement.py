"""Enforcement modes: what selling or moving a held product does, per organisation.

A product is held at a store while it has an open HIGH or CRITICAL discrepancy there
(``inventory.StockHold``, kept by ``services.record.holds_refresh``). The organisation's
``discrepancy_enforcement`` (seed 002's rollout: record → warn → block) says what a posting
that takes a held product out of its store does:

* ``record`` — it posts as if nothing were held; a log line and the
  ``stock_movements_total{result="held", reason="open_discrepancy"}`` counter say it happened;
* ``warn`` — it posts and answers a ``warnings`` entry (``open_discrepancy``) per held line,
  naming the product, the store and the open discrepancies;
* ``block`` — it is refused (409 ``open_discrepancy``, the lines named; nothing is written),
  unless a manager or admin of the store gives an ``override_reason``: then it posts, answers
  an ``open_discrepancy_overridden`` warning, and the override is audited
  (``stock_hold.overridden``). An operator's till cannot override: that is what block means.

It applies to sales, manual moves (not upstock pulls) and transfer sends — the stock leaving a
held place. Reversals (voids, refunds), counts, corrections (an approved discrepancy's
adjustment), receipts and imports post whatever the mode: they are how a held product is put
right, or they put stock back.

Cost: the write path's quant lock reads the holds with the quants (``PlannedPosting.held``),
and the mode comes from the organisation the caller already has, so a sale of products that
are not held costs no statement here. Only a product held and sold (its discrepancies are read
for the answer: one query), or — in modes ``warn`` and ``block`` — sold at a store where the
lock saw none of it (one query, ``held_pairs``), costs more. Mode ``record`` logs only the holds
the lock read: the rare sale of a product with no stock at all there goes unlogged rather than
costing a query.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace

from django.db import transaction

from discrepancies.exceptions import OpenDiscrepancy
from discrepancies.models import SERIOUS, Discrepancy, Severity, open_q
from inventory.audit.services import audit_record
from inventory.metrics import stock_movements_total
from inventory.models import (
    AuditAction,
    DiscrepancyEnforcement,
    RefType,
    Sale,
    StockDocument,
)
from inventory.stock.holds import held_pairs
from inventory.stock.policy import PlannedPosting, PlannedRow, PolicyWarning, register_stock_policy

logger = logging.getLogger("discrepancies")

#: A manual move from this source is exempt: restocking the floor from the back room is not
#: the stock leaving the store.
EXEMPT_SOURCES = frozenset({"upstock"})
REASON = "open_discrepancy"


#: The postings enforcement judges (``_judged_rows``); the write path consults it for no other.
JUDGED_KINDS = frozenset({"sale", "move", "transfer"})


def _judged_rows(planned: PlannedPosting) -> list[PlannedRow]:
    """The planned rows the enforcement judges: stock taken out of a place by a sale, a
    manual move or a transfer send. Everything else posts whatever the mode."""
    if planned.kind == "sale":
        return [row for row in planned.rows if row.qty_delta < 0]
    if planned.kind == "move" and planned.source not in EXEMPT_SOURCES:
        return [row for row in planned.rows if row.qty_delta < 0]
    if planned.kind == "transfer":  # the sending store's rows; a transfer receipt posts
        return [
            row
            for row in planned.rows
            if row.qty_delta < 0 and row.ref_type == RefType.TRANSFER_OUT
        ]
    return []


def _held(planned: PlannedPosting, rows: list[PlannedRow]) -> set[tuple[int, int]]:
    """The (store, product) pairs of ``rows`` that are held: what the lock read, and for the
    pairs it saw no quant of (a product sold with no stock at the store), one query."""
    pairs = {(row.store_id, row.product_id) for row in rows}
    held = pairs & planned.held
    unseen = pairs & planned.unseen
    by_store: dict[int, set[int]] = defaultdict(set)
    for store_id, product_id in unseen:
        by_store[store_id].add(product_id)
    for store_id, products in sorted(by_store.items()):
        held |= {
            (store_id, product_id)
            for product_id in held_pairs(
                org=planned.org_id, store_id=store_id, product_ids=products
            )
        }
    return held


def _open_discrepancies(
    org_id: int, pairs: set[tuple[int, int]]
) -> dict[tuple[int, int], list[tuple[int, str]]]:
    """The open HIGH/CRITICAL discrepancies of each held pair, ``(id, severity)``, worst first
    (one query; only for a posting that meets a hold)."""
    found: dict[tuple[int, int], list[tuple[int, str]]] = defaultdict(list)
    rows = (
        Discrepancy.objects.filter(
            open_q(),
            org_id=org_id,
            severity__in=SERIOUS,
            store_id__in=sorted({store for store, _ in pairs}),
            product_id__in=sorted({product for _, product in pairs}),
        )
        .order_by("id")
        .values_list("store_id", "product_id", "id", "severity")
    )
    for store_id, product_id, pk, severity in rows:
        if (store_id, product_id) in pairs:
            found[(store_id, product_id)].append((pk, severity))
    for items in found.values():
        items.sort(key=lambda item: (-Severity(item[1]).rank, item[0]))
    return found


def _lines(
    rows: list[PlannedRow],
    held: set[tuple[int, int]],
    found: dict[tuple[int, int], list[tuple[int, str]]],
) -> list[dict]:
    """One entry per document line that takes a held product out of its store."""
    lines: dict[tuple[int, int, int], dict] = {}
    for row in rows:
        pair = (row.store_id, row.product_id)
        if pair not in held:
            continue
        key = (row.ref_line, *pair)
        if key not in lines:
            open_ = found.get(pair, [])
            lines[key] = {
                "line": row.ref_line,
                "product": row.product_id,
                "store": row.store_id,
                "discrepancies": [pk for pk, _ in open_],
                "severity": open_[0][1] if open_ else None,
            }
    return [lines[key] for key in sorted(lines)]


def _count(ref_type: str, result: str, n: int) -> None:
    stock_movements_total.labels(ref_type=ref_type, result=result, reason=REASON).inc(n)


def _log(event: str, planned: PlannedPosting, lines: list[dict]) -> None:
    for line in lines:
        logger.info(
            "%s %s:%s line %s product #%s store #%s",
            event,
            planned.ref_type,
            planned.ref_id,
            line["line"],
            line["product"],
            line["store"],
            extra={
                "event": event,
                "org_id": planned.org_id,
                "ref_type": planned.ref_type,
                "ref_id": planned.ref_id,
                "line": line["line"],
                "product_id": line["product"],
                "store_id": line["store"],
                "discrepancies": line["discrepancies"],
                "severity": line["severity"],
                "mode": planned.enforcement,
                "actor_id": planned.user_id,
                "override_reason": planned.override_reason or None,
            },
        )


def _document(planned: PlannedPosting):
    """The document a posting belongs to, as the audit trail names it."""
    return (Sale if planned.kind == "sale" else StockDocument), planned.ref_id


def enforce(planned: PlannedPosting) -> list[PolicyWarning]:
    """The stock policy: judge ``planned`` against the holds, per the organisation's mode."""
    rows = _judged_rows(planned)
    mode = planned.enforcement or DiscrepancyEnforcement.RECORD
    if mode == DiscrepancyEnforcement.RECORD:
        # logs only what the lock read: a query for a log line is not worth it
        planned = replace(planned, unseen=frozenset())
    if not rows or not (planned.held or planned.unseen):
        return []  # the common case: nothing held among what the lock read
    held = _held(planned, rows)
    if not held:
        return []
    if mode == DiscrepancyEnforcement.RECORD:
        lines = _lines(rows, held, {})
        _log("stock_hold_recorded", planned, lines)
        transaction.on_commit(lambda: _count(planned.ref_type, "held", len(lines)))
        return []

    lines = _lines(rows, held, _open_discrepancies(planned.org_id, held))
    overriding = mode == DiscrepancyEnforcement.BLOCK
    if overriding and not (planned.override_reason.strip() and planned.may_override):
        _log("stock_hold_refused", planned, lines)
        _count(planned.ref_type, "failed", 1)
        why = (
            "Only a manager or admin of the store may override a hold."
            if planned.override_reason.strip()
            else "Held: an open HIGH or CRITICAL discrepancy; a manager may override it."
        )
        raise OpenDiscrepancy(
            fields={f"lines.{line['line'] - 1}.product": [why] for line in lines},
            lines=lines,
        )

    if overriding:
        audit_record(
            org=planned.org_id,
            action=AuditAction.STOCK_HOLD_OVERRIDDEN,
            obj=_document(planned),
            after={
                "ref_type": planned.ref_type,
                "products": sorted({line["product"] for line in lines}),
                "lines": lines,
                "reason": planned.override_reason.strip(),
            },
            store=planned.store_id,
            actor=planned.user_id,
        )
    _log("stock_hold_overridden" if overriding else "stock_hold_warned", planned, lines)
    transaction.on_commit(lambda: _count(planned.ref_type, "held", len(lines)))
    code = "open_discrepancy_overridden" if overriding else "open_discrepancy"
    detail = (
        f"Posted despite the hold: {planned.override_reason.strip()}"
        if overriding
        else "This product has an open HIGH or CRITICAL discrepancy at this store."
    )
    return [
        PolicyWarning(
            code,
            detail,
            line=line["line"],
            extra={k: v for k, v in line.items() if k != "line"},
        )
        for line in lines
    ]


def register() -> None:
    """Register the enforcement policy on the write path (called once from
    ``DiscrepanciesConfig.ready``)."""
    register_stock_policy(enforce, kinds=JUDGED_KINDS)
