"""Where discrepancies come from, plugged into inventory's hooks (inventory imports no other app).

* **Ad-hoc corrections** (``/stock/adjustments``, ``/stock/write-offs``): deciding a request's
  lines is the ``CORRECTION`` source handler (``discrepancies.services.corrections``).
* **Shortfalls** (``inventory.stock.shortfalls``): a sale that sold more than the records held —
  booked to the unallocated batch (``warn``/``record``) or refused (``block``, recorded after
  the rollback) — is a ``POS_SHORTFALL``: the shelf had more than the records (expected = what
  was available, actual = what was sold). A count's clamped remainder (finalisation could not
  post all of a shortage: the stock had gone meanwhile) is a ``CYCLE_COUNT`` discrepancy
  describing the unposted part (expected = the shortage to post, actual = what was there).
  Both are informational: nothing is left to post, approval acknowledges them. Other refused
  moves (a move, an adjustment) are their caller's 409 and record nothing.
* **The invariant check** (``inventory.reports.reconciliation``): each ledger ≠ quant mismatch
  a reconciliation run finds is an ``INVARIANT`` discrepancy (a defect to investigate: expected
  = the ledger's balance, actual = the quant), never a second open one for the same place.

Severity, value and escalation come from the one recording service
(``discrepancies.services.record``), as for every source.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from core.isotime import iso
from discrepancies.models import Discrepancy, DocumentType, Kind, Source, open_q
from discrepancies.services.corrections import CORRECTION_HANDLER
from discrepancies.services.decisions import register_source_handler
from discrepancies.services.record import Finding, discrepancies_record
from inventory.locks import lock_organization
from inventory.models import (
    Batch,
    Organization,
    RefType,
    ShortfallOutcome,
    StockShortfall,
    Store,
)
from inventory.reports.reconciliation import ReconciliationReport, register_mismatch_listener
from inventory.stock.shortfalls import register_shortfall_listener

ZERO = Decimal("0")


def register() -> None:
    """Register this module's hooks (called once from ``DiscrepanciesConfig.ready``)."""
    register_source_handler(DocumentType.CORRECTION, CORRECTION_HANDLER)
    register_shortfall_listener(shortfalls_recorded)
    register_mismatch_listener(mismatches_found)


# --- shortfalls ---------------------------------------------------------------------------------


def _shortfall_finding(row: StockShortfall) -> Finding | None:
    """A sale's or a clamped count's shortfall as a finding; None for the others."""
    product = row.product  # loaded: the recording passed the instance (no query)
    common = {
        "store_id": row.store_id,
        "product_id": row.product_id,
        "category": product.category,
        "unit_cost": product.default_cost or ZERO,
        "document_type": DocumentType.SHORTFALL,
        "document_id": row.pk,
        "location_id": row.location_id,
        "corrective": False,
    }
    if row.ref_type == RefType.SALE:
        sold = row.outcome == ShortfallOutcome.BOOKED
        return Finding(
            **common,
            expected=row.available,
            actual=row.requested,
            source=Source.POS_SHORTFALL,
            kind=Kind.DATA_ERROR,
            source_ref=f"sale-{row.ref_id}" if row.ref_id else (row.client_ref or ""),
            reason=(
                "Sold more than the records held (booked to the unallocated batch)."
                if sold
                else "A sale of more than the records held was refused."
            ),
        )
    if row.ref_type == RefType.COUNT_RECONCILE:
        return Finding(
            **common,
            expected=row.requested,
            actual=row.available,
            source=Source.CYCLE_COUNT,
            kind=Kind.COUNT,
            source_ref=f"count-{row.ref_id}" if row.ref_id else "",
            reason="Finalising the count could not post all of its shortage: the stock had gone.",
        )
    return None


def shortfalls_recorded(org: Organization, store: Store, rows: list[StockShortfall]) -> None:
    """Record the discrepancies of a batch of shortfalls, in the recording's transaction: on
    a sale's path that is the policy read and one INSERT (and a hold, when one is serious)."""
    findings = [f for f in map(_shortfall_finding, rows) if f is not None]
    if findings:
        discrepancies_record(org=org, findings=findings, actor=rows[0].user)


# --- the invariant check ------------------------------------------------------------------------


def _check_name(report: ReconciliationReport) -> str:
    scope = f" store {report.store.code}" if report.store is not None else ""
    return f"reconciliation{scope} {iso(report.checked_at)}"


def mismatches_found(report: ReconciliationReport) -> list[Discrepancy]:
    """Record each mismatch of ``report`` that has no open INVARIANT discrepancy yet for its
    store, location, product and batch. The organisation's row is locked first
    (``lock_organization``) so two runs at once record each mismatch once."""
    org = report.org
    with transaction.atomic():
        lock_organization(org=org)
        already = set(
            Discrepancy.objects.filter(open_q(), org=org, source=Source.INVARIANT).values_list(
                "store_id", "location_id", "product_id", "batch_id"
            )
        )
        new = [
            m
            for m in report.mismatches
            if (m["store_id"], m["location"]["id"], m["product"]["id"], m["batch"]["id"])
            not in already
        ]
        if not new:
            return []
        batches = Batch.objects.filter(org=org, pk__in=sorted({m["batch"]["id"] for m in new}))
        by_id = {b.pk: b for b in batches.select_related("product")}
        check = _check_name(report)
        findings = [
            Finding(
                store_id=m["store_id"],
                product_id=m["product"]["id"],
                category=by_id[m["batch"]["id"]].product.category,
                expected=m["ledger_sum"],
                actual=m["quant"],
                unit_cost=by_id[m["batch"]["id"]].unit_cost,
                source=Source.INVARIANT,
                document_type=DocumentType.INVARIANT_CHECK,
                location_id=m["location"]["id"],
                batch_id=m["batch"]["id"],
                kind=Kind.DATA_ERROR,
                corrective=False,
                source_ref=check,
                reason="The ledger's balance differs from the quant: investigate.",
            )
            for m in new
        ]
        return discrepancies_record(org=org, findings=findings, actor=None)
