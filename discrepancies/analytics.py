"""Discrepancy analytics: what went wrong with the stock, month by month, and what it cost.

Set-based: each figure is one GROUP BY over the live table and one over the archive (a
discrepancy archived after the retention window still counts in its month), merged here, plus
one GROUP BY over the ledger for the shrink rate — seven queries whatever the number of rows.

The period is whole UTC days, ``date_from`` to ``date_to`` inclusive, like every time the API
writes; a discrepancy belongs to the month it was recorded in (``created_at``), a ledger row to
the moment it happened (``occurred_at``).

- **per month**: discrepancies recorded, by status and by source; absolute variance in units
  and in value at cost (a shortage and a surplus both count as a mismatch of their size); how
  many were self-approved (an admin deciding their own because nobody else could);
- **top products and stores**, by frequency (how many discrepancies) and by size (absolute
  value at cost);
- **shrink rate per category** = shrink ÷ cost of goods sold in the period, from the ledger:
  shrink is the value at cost of the negative rows of stock corrections (``COUNT_RECONCILE``,
  ``ADJUSTMENT``, ``DAMAGE``, ``WASTE``, ``EXPIRY``), COGS the value of ``SALE`` rows net of
  ``VOID`` and ``REFUND`` rows (``-qty_delta × unit_cost``, as the COGS report computes it).
  No COGS in a category: no rate (None), never a division by zero.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Abs, Coalesce, TruncMonth

from discrepancies.models import ArchivedDiscrepancy, Discrepancy, Source, Status
from inventory.models import Organization, RefType, StockLedger

ZERO = Decimal("0")
UTC = datetime.UTC
SHRINK_REF_TYPES = (
    RefType.COUNT_RECONCILE,
    RefType.ADJUSTMENT,
    RefType.DAMAGE,
    RefType.WASTE,
    RefType.EXPIRY,
)
COGS_REF_TYPES = (RefType.SALE, RefType.VOID, RefType.REFUND)
_AMOUNT = DecimalField(max_digits=38, decimal_places=8)
_QTY = DecimalField(max_digits=28, decimal_places=4)
DEFAULT_TOP = 10


def period_bounds(
    date_from: datetime.date, date_to: datetime.date
) -> tuple[datetime.datetime, datetime.datetime]:
    """``[date_from 00:00Z, date_to + 1 day 00:00Z)``."""
    start = datetime.datetime.combine(date_from, datetime.time.min, tzinfo=UTC)
    end = datetime.datetime.combine(
        date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=UTC
    )
    return start, end


def _sum(expression, output_field=_QTY):
    return Coalesce(Sum(expression), Value(ZERO), output_field=output_field)


def _measures() -> dict[str, Any]:
    return {
        "count": Count("id"),
        "abs_variance": _sum(Abs(F("variance"))),
        "abs_value": _sum(Abs(F("value")), _AMOUNT),
        "self_approved": Count("id", filter=Q(self_approved=True)),
    }


def _grouped(querysets: Iterable, keys: list[str], extra: dict[str, Any] | None = None) -> dict:
    """Each queryset grouped by ``keys`` with the measures, merged by key (live + archive)."""
    merged: dict[tuple, dict[str, Any]] = {}
    for rows in querysets:
        values = rows.values(*keys, **(extra or {})).annotate(**_measures()).order_by()
        for row in values:
            key = tuple(row[k] for k in (*keys, *(extra or {})))
            into = merged.get(key)
            if into is None:
                merged[key] = dict(row)
                continue
            for measure in ("count", "abs_variance", "abs_value", "self_approved"):
                into[measure] += row[measure]
    return merged


def discrepancy_analytics(
    *,
    org: Organization,
    date_from: datetime.date,
    date_to: datetime.date,
    store_ids: Iterable[int] | None = None,
    store: int | None = None,
    top: int = DEFAULT_TOP,
) -> dict[str, Any]:
    """The organisation's discrepancy figures for the period, limited to ``store`` or to the
    reader's ``store_ids`` (None: every store). Values are Decimals, months dates (the 1st)."""
    start, end = period_bounds(date_from, date_to)
    stores: list[int] | None = None
    if store is not None:
        stores = [store]
    elif store_ids is not None:
        stores = sorted(store_ids)

    def recorded(model):
        rows = model.objects.filter(org=org, created_at__gte=start, created_at__lt=end)
        return rows.filter(store_id__in=stores) if stores is not None else rows

    both = (recorded(Discrepancy), recorded(ArchivedDiscrepancy))
    by_month = _grouped(
        [rows.annotate(month=TruncMonth("created_at", tzinfo=UTC)) for rows in both],
        ["month", "status", "source"],
    )
    by_product = _grouped(
        both,
        ["product_id"],
        {"sku": F("product__sku"), "name": F("product__name"), "category": F("product__category")},
    )
    by_store = _grouped(
        both, ["store_id"], {"code": F("store__code"), "store_name": F("store__name")}
    )
    return {
        "from": date_from,
        "to": date_to,
        "store": store,
        **_monthly(by_month),
        "top_products": _top(by_product.values(), top),
        "top_stores": _top(by_store.values(), top),
        "shrink": shrink_by_category(org=org, start=start, end=end, stores=stores),
    }


def _empty() -> dict[str, Any]:
    return {
        "count": 0,
        "by_status": {s: 0 for s in Status.values},
        "by_source": {s: 0 for s in Source.values},
        "abs_variance": ZERO,
        "abs_value": ZERO,
        "self_approved": 0,
    }


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    into["count"] += row["count"]
    into["by_status"][row["status"]] += row["count"]
    into["by_source"][row["source"]] += row["count"]
    into["abs_variance"] += row["abs_variance"]
    into["abs_value"] += row["abs_value"]
    into["self_approved"] += row["self_approved"]


def _monthly(by_month: dict) -> dict[str, Any]:
    months: dict[datetime.date, dict[str, Any]] = defaultdict(_empty)
    totals = _empty()
    for row in by_month.values():
        month = row["month"].astimezone(UTC).date() if row["month"] is not None else None
        _add(months[month], row)
        _add(totals, row)
    return {
        "months": [{"month": month, **months[month]} for month in sorted(months)],
        "totals": totals,
    }


def _top(rows: Iterable[dict[str, Any]], top: int) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` rows by frequency (then size) and by size (then frequency); ties by id."""
    rows = list(rows)
    ident = "product_id" if rows and "product_id" in rows[0] else "store_id"
    by_frequency = sorted(rows, key=lambda r: (-r["count"], -r["abs_value"], r[ident]))
    by_size = sorted(rows, key=lambda r: (-r["abs_value"], -r["count"], r[ident]))
    return {"by_frequency": by_frequency[:top], "by_size": by_size[:top]}


def shrink_by_category(
    *,
    org: Organization,
    start: datetime.datetime,
    end: datetime.datetime,
    stores: list[int] | None = None,
) -> dict[str, Any]:
    """Shrink, COGS and their ratio per product category in ``[start, end)`` (one query).

    A category with COGS of zero or less (nothing sold, or more refunded than sold) has no
    rate: None."""
    rows = StockLedger.objects.filter(
        org=org,
        occurred_at__gte=start,
        occurred_at__lt=end,
        ref_type__in=[*SHRINK_REF_TYPES, *COGS_REF_TYPES],
    )
    if stores is not None:
        rows = rows.filter(store_id__in=stores)
    outflow = ExpressionWrapper(-F("qty_delta") * F("unit_cost"), output_field=_AMOUNT)
    grouped = (
        rows.values(category=F("product__category"))
        .annotate(
            shrink=Coalesce(
                Sum(outflow, filter=Q(ref_type__in=SHRINK_REF_TYPES, qty_delta__lt=0)),
                Value(ZERO),
                output_field=_AMOUNT,
            ),
            cogs=Coalesce(
                Sum(outflow, filter=Q(ref_type__in=COGS_REF_TYPES)),
                Value(ZERO),
                output_field=_AMOUNT,
            ),
        )
        .order_by("category")
    )
    categories = [
        {"category": row["category"], "shrink": row["shrink"], "cogs": row["cogs"]}
        for row in grouped
        if row["shrink"] or row["cogs"]
    ]
    for row in categories:
        row["rate"] = rate(row["shrink"], row["cogs"])
    shrink = sum((row["shrink"] for row in categories), ZERO)
    cogs = sum((row["cogs"] for row in categories), ZERO)
    return {
        "categories": categories,
        "total": {"shrink": shrink, "cogs": cogs, "rate": rate(shrink, cogs)},
    }


def rate(shrink: Decimal, cogs: Decimal) -> Decimal | None:
    return shrink / cogs if cogs > 0 else None
