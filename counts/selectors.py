"""Count reads: movement-aware variance, and session progress.

Expected quantity (docs/domain.md, Counts; the part that is easy to get subtly wrong):

* for a counted (location, product): the ledger balance from rows whose ``occurred_at`` is at or
  before the earliest surviving scan of that product there — so a sale or a move made while the
  clerk was counting never shows up as variance;
* for an in-scope product that was not counted: the balance when its pass was submitted, and
  counted is 0.

The balance "as of t" is computed as today's quant total minus the ledger rows after t: one
grouped query over the quants of the counted locations and one over the (few) ledger rows since
the count began, whatever the number of lines. Counted quantities come from submitted, non-voided
passes; a recount supersedes the passes it recounts for the products it counted.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, Max, Min, Q, Sum

from core.isotime import iso
from counts.models import (
    ACTIVE_STATUSES,
    CountLine,
    CountPass,
    CountSession,
    PassStatus,
    Scope,
    SessionStatus,
    UnresolvedScan,
)
from inventory.models import Location, Organization, Product, StockLedger, StockQuant
from inventory.reports.visibility import HiddenZone
from inventory.tenancy.capabilities import Action

ZERO = Decimal("0")
HUNDRED = Decimal("100")


@dataclass
class VarianceItem:
    location_id: int
    product_id: int
    expected: Decimal
    counted: Decimal
    expected_at: datetime.datetime
    unit_cost: Decimal
    category: str
    overage_batch_id: int | None = None

    @property
    def variance(self) -> Decimal:
        return self.counted - self.expected

    @property
    def variance_pct(self) -> Decimal | None:
        if self.expected == 0:
            return None
        return (self.variance / self.expected * HUNDRED).quantize(Decimal("0.0001"))

    @property
    def value(self) -> Decimal:
        return (self.variance * self.unit_cost).quantize(Decimal("0.0001"))


def _surviving(passes: list[CountPass], per_pass: dict[int, set[int]]) -> dict[int, set[int]]:
    """For each pass, the products a later recount (of it, or of its recounts) re-counted."""
    children: dict[int, list[int]] = defaultdict(list)
    for p in passes:
        if p.recount_of_id:
            children[p.recount_of_id].append(p.pk)
    superseded: dict[int, set[int]] = {}
    for p in passes:
        stack, seen, products = list(children[p.pk]), set(), set()
        while stack:
            child = stack.pop()
            if child in seen:
                continue
            seen.add(child)
            products |= per_pass.get(child, set())
            stack.extend(children[child])
        superseded[p.pk] = products
    return superseded


def _matches(product_category: str, product_sub: str, category: str, sub: str) -> bool:
    if not category:
        return True
    if product_category.lower() != category.lower():
        return False
    return not sub or product_sub.lower() == sub.lower()


def variance_compute(session: CountSession) -> list[VarianceItem]:
    """Expected and counted per (location, product) for a session's submitted passes."""
    passes = list(CountPass.objects.filter(session=session, status=PassStatus.SUBMITTED))
    if not passes:
        return []
    pass_by_id = {p.pk: p for p in passes}
    aggregates = list(
        CountLine.objects.filter(count_pass__in=pass_by_id)
        .values("count_pass_id", "product_id")
        .annotate(quantity=Sum("quantity"), first_scan=Min("captured_at"), batch=Max("batch_id"))
    )
    per_pass: dict[int, set[int]] = defaultdict(set)
    for row in aggregates:
        per_pass[row["count_pass_id"]].add(row["product_id"])
    superseded = _surviving(passes, per_pass)

    counted: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    as_of: dict[tuple[int, int], datetime.datetime] = {}
    overage_batch: dict[tuple[int, int], int] = {}
    for row in aggregates:
        count_pass = pass_by_id[row["count_pass_id"]]
        if row["product_id"] in superseded[count_pass.pk]:
            continue
        key = (count_pass.location_id, row["product_id"])
        counted[key] += row["quantity"]
        as_of[key] = min(as_of.get(key, row["first_scan"]), row["first_scan"])
        if row["batch"]:
            overage_batch[key] = row["batch"]

    location_ids = {p.location_id for p in passes}
    balances = {
        (r["location_id"], r["product_id"]): r
        for r in StockQuant.objects.filter(org_id=session.org_id, location_id__in=location_ids)
        .values(
            "location_id",
            "product_id",
            "product__category",
            "product__subcategory",
            "product__default_cost",
        )
        .annotate(
            on_hand=Sum("quantity"),
            in_stock=Sum("quantity", filter=Q(quantity__gt=0)),
            in_stock_value=Sum(F("quantity") * F("batch__unit_cost"), filter=Q(quantity__gt=0)),
        )
    }

    # In scope but not counted: stock the pass's location and category covered, counted as 0.
    in_scope_uncounted: dict[tuple[int, int], datetime.datetime] = {}
    for (location_id, product_id), row in balances.items():
        key = (location_id, product_id)
        if key in counted:
            continue
        covering = [
            p
            for p in passes
            if p.location_id == location_id
            and _matches(
                row["product__category"] or "",
                row["product__subcategory"] or "",
                p.category,
                p.subcategory,
            )
        ]
        if covering:
            in_scope_uncounted[key] = max(p.submitted_at for p in covering)

    moments = list(as_of.values()) + list(in_scope_uncounted.values())
    since = min(moments) if moments else None
    later: dict[tuple[int, int], list[tuple[datetime.datetime, Decimal]]] = defaultdict(list)
    if since is not None:
        for row in (
            StockLedger.objects.filter(
                org_id=session.org_id,
                store_id=session.store_id,
                location_id__in=location_ids,
                occurred_at__gt=since,
            )
            .values_list("location_id", "product_id", "occurred_at", "qty_delta")
            .iterator(chunk_size=5000)
        ):
            later[(row[0], row[1])].append((row[2], row[3]))

    def balance_at(key, moment) -> Decimal:
        current = balances[key]["on_hand"] if key in balances else ZERO
        return current - sum((delta for at, delta in later.get(key, ()) if at > moment), ZERO)

    keys = list(counted) + list(in_scope_uncounted)
    # Cost and category come with the balances; only products counted where they have no
    # stock at all need a look-up of their own.
    missing = {k[1] for k in keys if k not in balances}
    products = (
        {
            p.pk: p
            for p in Product.objects.filter(pk__in=missing).only("pk", "category", "default_cost")
        }
        if missing
        else {}
    )
    items = []
    for key in keys:
        moment = as_of.get(key) or in_scope_uncounted[key]
        expected = balance_at(key, moment)
        quantity = counted.get(key, ZERO)
        if key in in_scope_uncounted and expected == 0:
            continue  # nothing expected, nothing counted: not a finding
        row = balances.get(key)
        if row is not None:
            category = row["product__category"] or ""
            cost = (
                row["in_stock_value"] / row["in_stock"]
                if row["in_stock"]
                else row["product__default_cost"] or ZERO
            )
        else:
            category = products[key[1]].category
            cost = products[key[1]].default_cost or ZERO
        items.append(
            VarianceItem(
                location_id=key[0],
                product_id=key[1],
                expected=expected,
                counted=quantity,
                expected_at=moment,
                unit_cost=Decimal(cost).quantize(Decimal("0.0001")),
                category=category,
                overage_batch_id=overage_batch.get(key),
            )
        )
    return items


def may_see_expected(tenant, session: CountSession) -> bool:
    """Blind counts hide expected quantities and variance from operators and viewers until the
    session is closed; a live preview (before reconciliation) is for managers only."""
    if tenant.can(Action.COUNT_EXPECTED_VIEW):
        return True
    if session.blind:
        return session.status == SessionStatus.CLOSED
    return session.status in (SessionStatus.RECONCILED, SessionStatus.CLOSED)


def blind_zones(org: Organization, store_ids) -> list[HiddenZone]:
    """The places open blind counts cover, for ``inventory.reports.visibility``: from the
    start of counting until the session is closed or cancelled, stock there is left out of the
    reads of roles that may not see expected quantities (else the ledger or the stock list
    would give the expected number away). One query."""
    sessions = CountSession.objects.filter(org=org, blind=True, status__in=ACTIVE_STATUSES)
    if store_ids is not None:
        sessions = sessions.filter(store_id__in=store_ids)
    zones = []
    for session in sessions.only("store_id", "scope", "scope_locations", "scope_categories"):
        locations = (
            frozenset(session.scope_locations)
            if session.scope == Scope.ZONE and session.scope_locations
            else None
        )
        categories = tuple(
            (c.get("category") or "", c.get("subcategory") or "")
            for c in session.scope_categories or ()
            if c.get("category")
        )
        zones.append(HiddenZone(session.store_id, locations, categories))
    return zones


def session_progress(session: CountSession) -> dict:
    """Passes with their line counts, locations covered, totals: for the session detail."""
    passes = list(
        CountPass.objects.filter(session=session)
        .select_related("location", "started_by")
        .annotate(line_count=Count("lines"), units=Sum("lines__quantity"))
        .order_by("id")
    )
    submitted = {p.location_id for p in passes if p.status == PassStatus.SUBMITTED}
    scope = session.scope_locations or list(
        Location.objects.filter(store_id=session.store_id, is_active=True).values_list(
            "pk", flat=True
        )
    )
    return {
        "passes": [
            {
                "id": p.pk,
                "location": p.location_id,
                "location_code": p.location.code,
                "category": p.category,
                "subcategory": p.subcategory,
                "status": p.status,
                "recount_of": p.recount_of_id,
                "started_by": p.started_by.email,
                "device_id": p.device_id,
                "started_at": iso(p.started_at),
                "submitted_at": iso(p.submitted_at),
                "lines": p.line_count,
                "units": _q(p.units or ZERO),
            }
            for p in passes
        ],
        "locations_in_scope": sorted(scope),
        "locations_covered": sorted(submitted),
        "lines": sum(p.line_count for p in passes if p.status != PassStatus.VOIDED),
        "unresolved_scans": UnresolvedScan.objects.filter(
            count_pass__session=session, resolved_at__isnull=True
        ).count(),
    }


ORDERINGS = {
    "abs_value": lambda r: (abs(r["_value"]), r["sku"]),
    "abs_variance": lambda r: (abs(r["_variance"]), r["sku"]),
    "variance": lambda r: (r["_variance"], r["sku"]),
    "value": lambda r: (r["_value"], r["sku"]),
    "sku": lambda r: (r["sku"], r["location_code"]),
}


def variance_report(session: CountSession, *, ordering: str = "-abs_value") -> dict:
    """The variance of a session: frozen rows once reconciled, else a live preview."""
    from counts.models import VarianceRow

    frozen = session.status in (SessionStatus.RECONCILED, SessionStatus.CLOSED) or (
        session.status == SessionStatus.CANCELLED and session.reconciled_at is not None
    )
    if frozen:
        source = list(VarianceRow.objects.filter(session=session).select_related("decided_by"))
    else:
        source = variance_compute(session)
    products = {
        p.pk: p
        for p in Product.objects.filter(pk__in={r.product_id for r in source}).only(
            "pk", "sku", "name", "category", "subcategory", "unit"
        )
    }
    locations = {
        loc.pk: loc
        for loc in Location.objects.filter(pk__in={r.location_id for r in source}).only(
            "pk", "code"
        )
    }
    rows = []
    for r in source:
        product = products[r.product_id]
        row = {
            "id": r.pk if frozen else None,
            "location": r.location_id,
            "location_code": locations[r.location_id].code,
            "product": r.product_id,
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "subcategory": product.subcategory,
            "expected": _q(r.expected),
            "counted": _q(r.counted),
            "variance": _q(r.variance),
            "variance_pct": _q(r.variance_pct) if r.variance_pct is not None else None,
            "unit_cost": _q(r.unit_cost),
            "value": _q(r.value),
            "expected_at": iso(r.expected_at),
            "_variance": r.variance,
            "_value": r.value,
        }
        if frozen:
            row.update(
                {
                    "status": r.status,
                    "mode": r.mode,
                    "reason": r.reason,
                    "decided_by": r.decided_by.email if r.decided_by else None,
                    "posted_quantity": _posted(session, r),
                    "unposted_quantity": _posted(session, r, unposted=True),
                    "discrepancy": r.discrepancy_id,
                }
            )
        rows.append(row)
    descending = ordering.startswith("-")
    key = ORDERINGS.get(ordering.lstrip("-"), ORDERINGS["abs_value"])
    rows.sort(key=key, reverse=descending)

    by_product: dict[int, dict] = {}
    for row in rows:
        entry = by_product.setdefault(
            row["product"],
            {
                "product": row["product"],
                "sku": row["sku"],
                "name": row["name"],
                "_expected": ZERO,
                "_counted": ZERO,
                "_value": ZERO,
            },
        )
        entry["_expected"] += Decimal(row["expected"])
        entry["_counted"] += Decimal(row["counted"])
        entry["_value"] += row["_value"]
    rollup = [
        {
            "product": e["product"],
            "sku": e["sku"],
            "name": e["name"],
            "expected": _q(e["_expected"]),
            "counted": _q(e["_counted"]),
            "variance": _q(e["_counted"] - e["_expected"]),
            "value": _q(e["_value"]),
        }
        for e in by_product.values()
    ]
    variances = [row["_variance"] for row in rows]
    values = [row["_value"] for row in rows]
    totals = {
        "items": len(rows),
        "items_counted": sum(1 for row in rows if Decimal(row["counted"]) != 0),
        "items_with_variance": sum(1 for v in variances if v != 0),
        "positive_units": _q(sum((v for v in variances if v > 0), ZERO)),
        "negative_units": _q(sum((v for v in variances if v < 0), ZERO)),
        "positive_value": _q(sum((v for v in values if v > 0), ZERO)),
        "negative_value": _q(sum((v for v in values if v < 0), ZERO)),
        "absolute_value": _q(sum((abs(v) for v in values), ZERO)),
    }
    for row in rows:
        del row["_variance"], row["_value"]
    return {
        "session": session.pk,
        "status": session.status,
        "frozen": frozen,
        "rows": rows,
        "by_product": rollup,
        "totals": totals,
    }


def _posted(session: CountSession, row, *, unposted: bool = False) -> str | None:
    """What finalising posted for the row (or, ``unposted``, the part of a shortage it could
    not post): rows with nothing to post are stored as NULL (a count is mostly matches) and
    shown as 0 once the session is closed."""
    from counts.models import VarianceStatus

    stored = row.unposted_quantity if unposted else row.posted_quantity
    if stored is not None:
        return _q(stored)
    approved = row.status in (VarianceStatus.APPROVED, VarianceStatus.AUTO_APPROVED)
    return _q(ZERO) if session.status == SessionStatus.CLOSED and approved else None


def _q(value) -> str:
    return str(Decimal(value).quantize(Decimal("0.0001")))


def variance_row_document(org: Organization, discrepancy) -> dict | None:
    """A count discrepancy's source document as the discrepancy's detail shows it: the
    session, the variance row and its location, and what the row says now (one query).
    Registered with ``discrepancies.selectors.register_source_document`` (counts.apps)."""
    from counts.models import VarianceRow

    row = (
        VarianceRow.objects.filter(org=org, pk=discrepancy.document_id)
        .select_related("session", "location")
        .first()
    )
    if row is None:
        return None
    return {
        "session": row.session_id,
        "session_status": row.session.status,
        "variance_row": row.pk,
        "location": row.location_id,
        "location_code": row.location.code,
        "expected": _q(row.expected),
        "counted": _q(row.counted),
        "variance": _q(row.variance),
        "expected_at": iso(row.expected_at),
        "status": row.status,
        "mode": row.mode,
        "reason": row.reason,
        "posted_quantity": None if row.posted_quantity is None else _q(row.posted_quantity),
        "unposted_quantity": None if row.unposted_quantity is None else _q(row.unposted_quantity),
    }
