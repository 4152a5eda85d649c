"""Reconciliation: does the ledger still explain every quant? (docs/architecture.md,
invariants 1–2.)

The write path keeps quants and ledger rows in step inside one transaction; this module is the
independent check that nothing else (a raw UPDATE, a restored backup, a bug) broke that. It is
set-based on purpose: one grouped query compares the whole organisation's ledger with its quants
(a FULL OUTER JOIN, so a quant without ledger rows and ledger rows without a quant both show),
one more lists negative quants. The number of queries does not grow with the number of quants,
so the nightly job stays two round trips per organisation however large the catalogue.

Used by ``manage.py reconcile_inventory``, the nightly Celery task and
``GET /api/v1/stock/reconciliation``, so all three report the same thing. A run
(``stock_reconciliation_run``) also tells the registered mismatch listeners what it found
(``register_mismatch_listener``): the discrepancies app records each mismatch as a discrepancy
to investigate, without inventory importing it.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum
from django.utils import timezone

from core.isotime import iso
from inventory.metrics import stock_out_of_sync_items
from inventory.models import Organization, StockLedger, StockQuant, Store

ZERO = Decimal("0")
QUANTUM = Decimal("0.0001")
#: a product is flagged when its absolute mismatch exceeds this share of its on-hand quantity
FLAG_RATIO = Decimal("0.05")


def _dec(value) -> Decimal:
    """A database number as a 4-place Decimal; SQLite hands back floats for decimal sums."""
    if value is None:
        return ZERO
    if isinstance(value, float):
        value = round(value, 4)
    return Decimal(str(value)).quantize(QUANTUM)


def _fmt(value: Decimal) -> str:
    return str(value.quantize(QUANTUM))


@dataclass
class ReconciliationReport:
    """What one check found. ``ok`` is False when any invariant is broken.

    Open shortfalls (negative *unallocated* quants in the ``warn``/``record`` modes) are allowed
    and recorded by design: they are listed for information and do not make the report fail.
    """

    org: Organization
    store: Store | None
    checked_at: datetime.datetime
    mismatches: list[dict] = field(default_factory=list)
    negative_quants: list[dict] = field(default_factory=list)
    open_shortfalls: list[dict] = field(default_factory=list)
    flagged_products: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.negative_quants

    def as_dict(self) -> dict:
        """JSON-ready: quantities as strings with four decimals, as the rest of the API shows."""
        return {
            "org": {"id": self.org.pk, "slug": self.org.slug},
            "store": {"id": self.store.pk, "code": self.store.code} if self.store else None,
            "checked_at": iso(self.checked_at),
            "ok": self.ok,
            "mismatches": [_jsonable(row) for row in self.mismatches],
            "negative_quants": [_jsonable(row) for row in self.negative_quants],
            "open_shortfalls": [_jsonable(row) for row in self.open_shortfalls],
            "flagged_products": [_jsonable(row) for row in self.flagged_products],
        }

    def summary(self) -> str:
        where = f"{self.org.slug}" + (f" / store {self.store.code}" if self.store else "")
        if self.ok:
            state = "OK"
        else:
            state = (
                f"{len(self.mismatches)} mismatch(es), {len(self.negative_quants)} "
                f"negative quant(s), {len(self.flagged_products)} flagged product(s)"
            )
        return f"Stock reconciliation {where}: {state}"

    def as_text(self) -> str:
        """The report for people: the command's output and the admins' e-mail."""
        lines = [self.summary(), f"checked at {iso(self.checked_at)}"]
        if self.mismatches:
            lines += ["", "Ledger sum differs from the quant (location, lot, product):"]
            lines += [_mismatch_line(m) for m in self.mismatches]
        if self.flagged_products:
            lines += ["", f"Products whose mismatch exceeds {FLAG_RATIO:.0%} of on-hand:"]
            lines += [
                f"  {p['sku']:<16} mismatch {_fmt(p['mismatch']):>14}"
                f"  on hand {_fmt(p['on_hand']):>14}"
                for p in self.flagged_products
            ]
        if self.negative_quants:
            lines += ["", "Negative quants outside the unallocated batch (invariant 2):"]
            lines += [_quant_line(q) for q in self.negative_quants]
        if self.open_shortfalls:
            lines += ["", "Open shortfalls (unallocated, allowed; settled by a receipt or count):"]
            lines += [_quant_line(q) for q in self.open_shortfalls]
        return "\n".join(lines)


def _mismatch_line(m: dict) -> str:
    lot = m["batch"]["lot"] or f"#{m['batch']['id']}"
    return (
        f"  {m['location']['code']:<10} {lot:<16} {m['product']['sku']:<16}"
        f" ledger {_fmt(m['ledger_sum']):>14}  quant {_fmt(m['quant']):>14}"
        f"  diff {_fmt(m['difference']):>14}"
    )


def _quant_line(q: dict) -> str:
    return (
        f"  {q['location']['code']:<10} {q['product']['sku']:<16} quant {q['quant_id']:<8}"
        f" {_fmt(q['quantity']):>14}"
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return _fmt(value)
    return value


def _store_filter(alias: str, store_ids: list[int] | None) -> tuple[str, list]:
    if store_ids is None:
        return "", []
    placeholders = ", ".join(["%s"] * len(store_ids))
    return f" AND {alias}.store_id IN ({placeholders})", list(store_ids)


def _mismatch_rows(org_id: int, store_ids: list[int] | None) -> list[tuple]:
    """Every (location, batch) whose ledger sum differs from its quant, in one query.

    Both sides are rounded to the column's four places before comparing: PostgreSQL sums
    numerics exactly, SQLite sums them as floats, and 0.1 + 0.2 must still equal 0.3.
    The product's on-hand (sum of its quants in scope) and its total absolute mismatch come
    along so flagging needs no further query.
    """
    ledger_store, ledger_params = _store_filter("sl", store_ids)
    quant_store, quant_params = _store_filter("sq", store_ids)
    sql = f"""
        WITH ledger AS (
            SELECT sl.location_id, sl.batch_id, SUM(sl.qty_delta) AS total
            FROM inventory_stockledger sl
            WHERE sl.org_id = %s{ledger_store}
            GROUP BY sl.location_id, sl.batch_id
        ), quants AS (
            SELECT sq.location_id, sq.batch_id, sq.quantity
            FROM inventory_stockquant sq
            WHERE sq.org_id = %s{quant_store}
        ), mismatch AS (
            SELECT COALESCE(ledger.location_id, quants.location_id) AS location_id,
                   COALESCE(ledger.batch_id, quants.batch_id) AS batch_id,
                   COALESCE(ledger.total, 0) AS ledger_sum,
                   COALESCE(quants.quantity, 0) AS quant
            FROM ledger FULL OUTER JOIN quants
              ON quants.location_id = ledger.location_id AND quants.batch_id = ledger.batch_id
            WHERE ROUND(COALESCE(ledger.total, 0), 4) <> ROUND(COALESCE(quants.quantity, 0), 4)
        ), on_hand AS (
            SELECT sq.product_id, SUM(sq.quantity) AS quantity
            FROM inventory_stockquant sq
            WHERE sq.org_id = %s{quant_store}
              AND sq.product_id IN (SELECT b.product_id FROM mismatch
                                    JOIN inventory_batch b ON b.id = mismatch.batch_id)
            GROUP BY sq.product_id
        )
        SELECT mismatch.location_id, loc.code, loc.store_id, mismatch.batch_id, b.lot_code,
               b.product_id, p.sku, mismatch.ledger_sum, mismatch.quant,
               COALESCE(on_hand.quantity, 0),
               SUM(ABS(mismatch.ledger_sum - mismatch.quant)) OVER (PARTITION BY b.product_id)
        FROM mismatch
        JOIN inventory_location loc ON loc.id = mismatch.location_id
        JOIN inventory_batch b ON b.id = mismatch.batch_id
        JOIN inventory_product p ON p.id = b.product_id
        LEFT JOIN on_hand ON on_hand.product_id = b.product_id
        ORDER BY p.sku, loc.code, mismatch.batch_id
    """
    params = [org_id, *ledger_params, org_id, *quant_params, org_id, *quant_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _negative_quants(org: Organization, store_ids: list[int] | None) -> list[dict]:
    quants = StockQuant.objects.filter(org=org, quantity__lt=0)
    if store_ids is not None:
        quants = quants.filter(store_id__in=store_ids)
    rows = quants.order_by("product__sku", "location__code", "id").values(
        "id",
        "quantity",
        "unallocated",
        "store_id",
        "location_id",
        "location__code",
        "batch_id",
        "batch__lot_code",
        "batch__unallocated_store_id",
        "product_id",
        "product__sku",
    )
    return [
        {
            "quant_id": r["id"],
            "store_id": r["store_id"],
            "location": {"id": r["location_id"], "code": r["location__code"]},
            "batch": {"id": r["batch_id"], "lot": r["batch__lot_code"]},
            "product": {"id": r["product_id"], "sku": r["product__sku"]},
            "quantity": _dec(r["quantity"]),
            # both flags must agree: the quant's copy is what the CHECK constraint trusts
            "unallocated": bool(r["unallocated"] and r["batch__unallocated_store_id"]),
        }
        for r in rows
    ]


def stock_reconciliation_get(
    *, org: Organization, store: Store | None = None, store_ids: Iterable[int] | None = None
) -> ReconciliationReport:
    """Check invariants 1–2 for ``org`` (optionally one store, or a set of store ids).

    Two queries whatever the size of the organisation; a pure read (the service
    ``stock_reconciliation_run`` publishes the figure).
    """
    if store is not None:
        if store.org_id != org.pk:
            raise ValueError("store belongs to another organisation")
        scope_ids: list[int] | None = [store.pk]
    else:
        scope_ids = sorted(set(store_ids)) if store_ids is not None else None
    report = ReconciliationReport(org=org, store=store, checked_at=timezone.now())
    if scope_ids == []:
        return report

    totals: dict[int, dict] = {}
    for (
        location_id,
        location_code,
        store_id,
        batch_id,
        lot,
        product_id,
        sku,
        ledger_sum,
        quant,
        on_hand,
        product_mismatch,
    ) in _mismatch_rows(org.pk, scope_ids):
        ledger_sum, quant = _dec(ledger_sum), _dec(quant)
        report.mismatches.append(
            {
                "store_id": store_id,
                "location": {"id": location_id, "code": location_code},
                "batch": {"id": batch_id, "lot": lot},
                "product": {"id": product_id, "sku": sku},
                "ledger_sum": ledger_sum,
                "quant": quant,
                "difference": quant - ledger_sum,
            }
        )
        totals[product_id] = {
            "product_id": product_id,
            "sku": sku,
            "on_hand": _dec(on_hand),
            "mismatch": _dec(product_mismatch),
        }
    report.flagged_products = [
        product
        for product in totals.values()
        if product["on_hand"] <= 0 or product["mismatch"] > FLAG_RATIO * product["on_hand"]
    ]
    for quant in _negative_quants(org, scope_ids):
        unallocated = quant.pop("unallocated")
        (report.open_shortfalls if unallocated else report.negative_quants).append(quant)
    return report


def _day_start(day: datetime.date, tz) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=tz)


def ledger_ref_type_summary_list(
    *,
    org: Organization,
    date_from: datetime.date,
    date_to: datetime.date,
    store: Store | None = None,
) -> list[dict]:
    """Ledger movements between two local dates (inclusive), grouped by ref_type.

    One GROUP BY query: rows, net quantity and net value at cost (qty × unit_cost) per ref_type.
    Days are the store's (or, for the whole organisation, the organisation's) local days.
    """
    tz = zoneinfo.ZoneInfo((store or org).time_zone)
    rows = StockLedger.objects.filter(
        org=org,
        occurred_at__gte=_day_start(date_from, tz),
        occurred_at__lt=_day_start(date_to + datetime.timedelta(days=1), tz),
    )
    if store is not None:
        rows = rows.filter(store=store)
    value = ExpressionWrapper(
        F("qty_delta") * F("unit_cost"), output_field=DecimalField(max_digits=32, decimal_places=8)
    )
    grouped = (
        rows.order_by()
        .values("ref_type")
        .annotate(rows=Count("id"), quantity=Sum("qty_delta"), value=Sum(value))
        .order_by("ref_type")
    )
    return [
        {
            "ref_type": g["ref_type"],
            "rows": g["rows"],
            "quantity": _dec(g["quantity"]),
            "value": _dec(g["value"]),
        }
        for g in grouped
    ]


#: listener(report): a run's report that found ledger ≠ quant mismatches (``report.mismatches``:
#: store_id, location, batch, product, ledger_sum, quant, difference for each).
MismatchListener = Callable[[ReconciliationReport], None]
_mismatch_listeners: list[MismatchListener] = []


def register_mismatch_listener(listener: MismatchListener) -> None:
    """Call ``listener`` after every reconciliation run that found mismatches (idempotent:
    ``ready`` may run twice). It opens its own transaction if it writes."""
    if listener not in _mismatch_listeners:
        _mismatch_listeners.append(listener)


def unregister_mismatch_listener(listener: MismatchListener) -> None:
    if listener in _mismatch_listeners:
        _mismatch_listeners.remove(listener)


def stock_reconciliation_run(
    *, org: Organization, store: Store | None = None, store_ids: Iterable[int] | None = None
) -> ReconciliationReport:
    """Check invariants 1–2 (``stock_reconciliation_get``) and publish the result.

    The ``stock_out_of_sync_items`` gauge of the organisation (``scope="all"``) or of the one
    store checked (its code) is set to the number of mismatching (location, batch) pairs, where
    every web process's ``/metrics`` reads it (``inventory.metrics.PublishedGauge``). A check
    of a set of stores (what a store-limited member sees) sees only part of the organisation
    and leaves the gauge alone.

    Mismatches found are handed to the registered listeners (a clean run costs nothing more).
    """
    report = stock_reconciliation_get(org=org, store=store, store_ids=store_ids)
    if store is not None or store_ids is None:
        stock_out_of_sync_items.set(
            len(report.mismatches), org=org.slug, scope=store.code if store else "all"
        )
    if report.mismatches:
        for listener in _mismatch_listeners:
            listener(report)
    return report
