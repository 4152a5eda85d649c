"""Upstock reads: par levels, runs, a run's lines in walking order, a run's summary."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from inventory.models import RefType, StockLedger
from upstock.models import Baseline, LineStatus, UpstockLine, UpstockPull, UpstockRun

ZERO = Decimal("0")


def baseline_list(*, org, store=None, location=None, product=None) -> QuerySet[Baseline]:
    """Par levels of the organisation, optionally of one store, floor or product; category
    defaults (no product) come with their floor's rows, ordered by category."""
    qs = Baseline.objects.filter(org=org).select_related("store", "location", "product")
    if store is not None:
        qs = qs.filter(store=store)
    if location is not None:
        qs = qs.filter(location=location)
    if product is not None:
        qs = qs.filter(product=product)
    return qs.order_by("store_id", "location_id", "category", "subcategory", "product__sku", "id")


def run_list(*, org, store=None, location=None, status=None) -> QuerySet[UpstockRun]:
    """Runs, newest first."""
    qs = UpstockRun.objects.filter(org=org).select_related("store", "location", "created_by")
    if store is not None:
        qs = qs.filter(store=store)
    if location is not None:
        qs = qs.filter(location=location)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def run_get(*, org, run_id: int) -> UpstockRun:
    """One run (``UpstockRun.DoesNotExist`` for another organisation's id)."""
    return (
        UpstockRun.objects.filter(org=org)
        .select_related("store", "location", "created_by")
        .get(pk=run_id)
    )


def run_lines(run: UpstockRun) -> QuerySet[UpstockLine]:
    """The run's lines in walking order: the back-room location first (its order in the
    store), then the product's category, then the product (``position``, fixed when the run
    was computed)."""
    return (
        UpstockLine.objects.filter(org_id=run.org_id, run=run)
        .select_related("product", "source_location", "updated_by")
        .order_by("position", "id")
    )


def run_summary(run: UpstockRun) -> dict:
    """Counts per line status and the totals suggested and pulled (one query)."""
    by_status = {status: Count("id", filter=Q(status=status)) for status in LineStatus.values}
    totals = UpstockLine.objects.filter(org_id=run.org_id, run=run).aggregate(
        lines=Count("id"),
        suggested=Sum("suggested"),
        pulled=Sum("pulled"),
        **by_status,
    )
    return {
        "run": run.pk,
        "status": run.status,
        "lines": totals["lines"],
        "by_status": {status: totals[status] for status in LineStatus.values},
        "suggested_total": totals["suggested"] or ZERO,
        "pulled_total": totals["pulled"] or ZERO,
    }


def line_lots_taken(line: UpstockLine) -> list[dict]:
    """The lots the line's pulls brought to the floor (oldest pull first): lot code, expiry,
    quantity, and the move that took them. Two queries."""
    documents = list(
        UpstockPull.objects.filter(org_id=line.org_id, line=line)
        .exclude(document_id=None)
        .values_list("document_id", flat=True)
    )
    if not documents:
        return []
    return [
        {
            "document": row.ref_id,
            "batch": row.batch_id,
            "lot_code": row.batch.lot_code,
            "expiry_date": row.batch.expiry_date,
            "quantity": row.qty_delta,
        }
        for row in StockLedger.objects.filter(
            org_id=line.org_id,
            ref_type=RefType.MOVE_IN,
            ref_id__in=documents,
            location_id=line.run.location_id,
        )
        .select_related("batch")
        .order_by("id")
    ]
