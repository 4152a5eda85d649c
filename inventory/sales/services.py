"""POS sales, voids and refunds. Stock moves only through ``inventory.stock.write_path``.

A sale consumes earliest-expiry-first from the store's sellable locations (or a line's own
sellable location). A void puts back what is still out — sold minus refunded — into the very
batches and locations it came from; a refund does the same for part of a line, or sends the
goods to another location (e.g. quarantine for a damaged return). Refunds take back the most
recently consumed lots of a line first.
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import InvalidState, ValidationFailed
from core.isotime import iso
from core.sql import db_datetime, insert, values_clause
from inventory.catalog.resolver import (
    Item,
    Problems,
    check_quantities,
    items_resolve,
    locations_resolve,
)
from inventory.exceptions import InsufficientStock
from inventory.models import (
    Location,
    NegativeStockMode,
    Organization,
    RefType,
    Refund,
    Sale,
    SaleLine,
    SaleStatus,
    ShortfallOutcome,
    StockLedger,
    Store,
)
from inventory.stock import write_path as stock
from inventory.stock.idempotency import check_replay, request_hash
from inventory.stock.locks import lock_sale
from inventory.stock.policy import may_override, override_check
from inventory.stock.shortfalls import shortfalls_record

ZERO = Decimal("0")


@dataclass(frozen=True)
class SaleLineInput:
    """A sale line as sent: the product (or how the POS names it: id, SKU, scan), a quantity,
    maybe a price and a sellable location (an object or an id) to sell from."""

    product: Item
    quantity: Decimal
    unit_price: Decimal | None = None
    location: Location | int | None = None


def _describe_rows(rows, batches) -> dict[int, list[dict]]:
    consumed: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        batch = batches.get(row.batch_id)
        consumed[row.ref_line].append(
            {
                "batch": row.batch_id,
                "lot_code": batch.lot_code if batch else "",
                "expiry_date": batch.expiry_date.isoformat()
                if batch and batch.expiry_date
                else None,
                "unallocated": batch is None or batch.is_unallocated,
                "location": row.location_id,
                "quantity": stock.fmt(-row.qty_delta),
                "unit_cost": stock.fmt(row.unit_cost),
            }
        )
    return consumed


def _sale_result(
    sale: Sale, lines: list[SaleLineInput], outcome: stock.Outcome, warn: bool
) -> dict:
    consumed = _describe_rows(outcome.rows, outcome.batches)
    body_lines, total = [], ZERO
    for number, line in enumerate(lines, start=1):
        cost = sum(
            (Decimal(c["quantity"]) * Decimal(c["unit_cost"]) for c in consumed[number]), ZERO
        )
        total += cost
        body_lines.append(
            {
                "line": number,
                "product": line.product.pk,
                "sku": line.product.sku,
                "quantity": stock.fmt(line.quantity),
                "unit_price": stock.fmt(line.unit_price) if line.unit_price is not None else None,
                "cost": stock.fmt(cost),
                "consumed": consumed[number],
            }
        )
    warnings = (
        [
            {
                "code": "sold_without_stock",
                "line": s.line,
                "sku": s.product.sku,
                "requested": stock.fmt(s.requested),
                "available": stock.fmt(s.available),
                "detail": "Booked to the unallocated batch; the next receipt or count settles it.",
            }
            for s in outcome.shortfalls
        ]
        if warn
        else []
    ) + [warning.as_dict() for warning in outcome.warnings]  # what stock policies said
    return {
        "id": sale.pk,
        "store": sale.store_id,
        "client_ref": sale.client_ref,
        "status": sale.status,
        "occurred_at": iso(sale.occurred_at),
        "source_ref": sale.source_ref,
        "lines": body_lines,
        "cogs": stock.fmt(total),
        "warnings": warnings,
        # the API's one sale shape (inventory/api/sales/responses.py): as recorded, not voided
        # and nothing refunded yet
        "voided_at": None,
        "refunds": [],
    }


# A sale is written by hand: compiling these statements in the ORM took longer than running
# them, and a sale is the hottest write there is (bench/README.md).
_SALE_INSERT = (
    f"INSERT INTO {Sale._meta.db_table} (org_id, store_id, client_ref, request_hash, status,"
    " source, source_ref, occurred_at, warnings, result, created_by_id, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (org_id, client_ref) DO NOTHING RETURNING id"
)
_SALE_LINE_COLUMNS = (
    "org_id",
    "sale_id",
    "line_no",
    "product_id",
    "location_id",
    "quantity",
    "unit_price",
)
# PostgreSQL writes the sale and its lines in one statement; the lines' INSERT reads the new
# sale's id, so a replay (no id) writes no lines. The first VALUES row carries the types. The
# same statement reads where the store books a shortfall (its first sellable room), so selling
# without stock costs no extra query.
_SALE_WITH_LINES = (
    f"WITH sale AS ({_SALE_INSERT}),"
    f" lines AS (INSERT INTO {SaleLine._meta.db_table} ({', '.join(_SALE_LINE_COLUMNS)})"
    " SELECT v.org_id, sale.id, v.line_no, v.product_id, v.location_id, v.quantity, v.unit_price"
    " FROM sale CROSS JOIN (VALUES (%s::bigint, %s::integer, %s::bigint, %s::bigint,"
    " %s::numeric, %s::numeric){more})"
    " AS v (org_id, line_no, product_id, location_id, quantity, unit_price))"
    f" SELECT id, ({stock.FIRST_SELLABLE}) FROM sale"
)
_SALE_ANSWER = f"UPDATE {Sale._meta.db_table} SET result = %s, warnings = %s WHERE id = %s"


def _sale_insert(sale: Sale, lines: list[SaleLineInput]) -> tuple[int | None, int | None]:
    """Insert the sale and its lines: ``(sale id, the store's first sellable location)``.

    The id is ``None`` when the ``client_ref`` is taken (a replay, or another request with the
    same key: a concurrent one is waited for) and nothing was written.
    """
    params = [
        sale.org_id,
        sale.store_id,
        sale.client_ref,
        sale.request_hash,
        sale.status,
        sale.source,
        sale.source_ref,
        db_datetime(sale.occurred_at),
        "[]",
        "{}",
        sale.created_by_id,
        db_datetime(sale.created_at),
    ]
    rows = [
        (
            sale.org_id,
            n,
            ln.product.pk,
            ln.location.pk if ln.location else None,
            ln.quantity,
            ln.unit_price,
        )
        for n, ln in enumerate(lines, start=1)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            more = (", " + values_clause(len(rows) - 1, 6)) if len(rows) > 1 else ""
            cursor.execute(
                _SALE_WITH_LINES.format(more=more),
                [*params, *(value for row in rows for value in row), sale.org_id, sale.store_id],
            )
            found = cursor.fetchone()
            return (found[0], found[1]) if found else (None, None)
        cursor.execute(_SALE_INSERT, params)
        found = cursor.fetchone()
    if not found:
        return None, None
    insert(
        SaleLine._meta.db_table, _SALE_LINE_COLUMNS, [(row[0], found[0], *row[1:]) for row in rows]
    )
    return found[0], stock.first_sellable_location(sale.store)


def sale_lines_check(
    *, org: Organization, store: Store, lines: list[SaleLineInput]
) -> list[SaleLineInput]:
    """Every rule of a sale's lines, checked for the whole request and raised as one error
    naming each bad line: at least one line; products the organisation has and sells
    (``unknown_product``, ``unknown_barcode``, ``inactive_product``), positive quantities,
    whole ones for products sold by the unit (``fractional_quantity``), prices not below zero,
    and a named location an active sellable one of the store (``unknown_location``,
    ``not_sellable``). Returns the lines with their products and locations resolved — no query
    for what the caller passed resolved (the hot path), one per kind of name otherwise."""
    problems = Problems()
    if not lines:
        problems.add("lines", "At least one line.", "invalid")
    named = items_resolve(org=org, items=[ln.product for ln in lines], problems=problems)
    check_quantities(
        named=named,
        quantities=[ln.quantity for ln in lines],
        problems=problems,
        minimum=Decimal("0"),
    )
    for index, ln in enumerate(lines):
        if ln.unit_price is not None and ln.unit_price < 0:
            problems.add(f"lines.{index}.unit_price", "Must not be negative.", "invalid")
    wanted = {f"lines.{i}.location": ln.location for i, ln in enumerate(lines) if ln.location}
    places = locations_resolve(store=store, named=wanted, problems=problems, sellable=wanted)
    problems.raise_if_any()
    return [
        SaleLineInput(found.product, ln.quantity, ln.unit_price, places.get(f"lines.{i}.location"))
        for i, (ln, found) in enumerate(zip(lines, named, strict=True))
    ]


def sale_record(
    *,
    org: Organization,
    store: Store,
    lines: list[SaleLineInput],
    client_ref: str,
    occurred_at: datetime.datetime | None = None,
    source: str = "pos",
    source_ref: str = "",
    actor=None,
    override_reason: str = "",
    tenant=None,
) -> tuple[Sale, bool]:
    """Record a POS sale: all lines or none. Returns ``(sale, created)``.

    Replaying ``client_ref`` with the same request returns the first sale and posts nothing.
    In ``block`` mode a short line raises ``InsufficientStock`` listing every short line; the
    attempt is kept as ``StockShortfall`` rows.

    A product held at the store (an open HIGH or CRITICAL discrepancy) is judged by the
    organisation's enforcement mode (``discrepancies.enforcement``, a stock policy): its
    warnings join the answer's, and in ``block`` mode the sale is refused (409
    ``open_discrepancy``) unless ``override_reason`` comes from a manager or admin of the store
    (``tenant``, the caller's membership: ``may_override``).

    Five statements besides BEGIN/COMMIT on PostgreSQL however many lines and lots: insert the
    sale with its lines (which is also the replay check), the write path's lock (which also
    reads the holds), upsert and ledger insert, and the stored answer.
    """
    override_reason = override_check(override_reason)
    lines = sale_lines_check(org=org, store=store, lines=lines)
    digest = request_hash(
        {
            "store": store,
            "source_ref": source_ref,
            "occurred_at": occurred_at,
            "lines": [[ln.product, ln.quantity, ln.unit_price, ln.location] for ln in lines],
        }
    )
    occurred_at = occurred_at or timezone.now()
    user = actor if getattr(actor, "pk", None) else None
    sale = Sale(
        org=org,
        store=store,
        client_ref=client_ref,
        request_hash=digest,
        source=source,
        source_ref=source_ref,
        occurred_at=occurred_at,
        created_by=user,
    )
    try:
        with transaction.atomic():
            sale.pk, selling_location = _sale_insert(sale, lines)
            if sale.pk is None:
                existing = Sale.objects.get(org=org, client_ref=client_ref)
                return check_replay(existing, digest), False
            sale._state.adding = False
            outcome = stock.consume(
                posting=stock.Posting(
                    org,
                    store,
                    sale.pk,
                    occurred_at,
                    user,
                    source,
                    source_ref,
                    override_reason,
                    may_override(tenant, store) if override_reason else False,
                ),
                lines=[
                    stock.ConsumeLine(n, ln.product, ln.quantity, ln.location)
                    for n, ln in enumerate(lines, start=1)
                ],
                ref_type=RefType.SALE,
                selling_location=selling_location,
                negative_mode=org.negative_stock_mode,
            )
            sale.result = _sale_result(
                sale, lines, outcome, warn=org.negative_stock_mode == NegativeStockMode.WARN
            )
            sale.warnings = sale.result["warnings"]
            with connection.cursor() as cursor:
                cursor.execute(
                    _SALE_ANSWER, [json.dumps(sale.result), json.dumps(sale.warnings), sale.pk]
                )
            if outcome.shortfalls:
                shortfalls_record(
                    org=org,
                    store=store,
                    shortfalls=outcome.shortfalls,
                    outcome=ShortfallOutcome.BOOKED,
                    ref_type=RefType.SALE,
                    ref_id=sale.pk,
                    client_ref=client_ref,
                    occurred_at=occurred_at,
                    actor=user,
                )
    except InsufficientStock as exc:
        stock.record_failure(RefType.SALE, exc.code)
        shortfalls_record(
            org=org,
            store=store,
            shortfalls=exc.shortfalls,
            outcome=ShortfallOutcome.BLOCKED,
            ref_type=RefType.SALE,
            ref_id=None,
            client_ref=client_ref,
            occurred_at=occurred_at,
            actor=user,
        )
        raise
    return sale, True


def _sale_movements(org: Organization, sale: Sale):
    """The sale's SALE rows, and what its refunds already returned per (line, batch)."""
    refund_ids = Refund.objects.filter(sale=sale).values("pk")
    rows = list(
        StockLedger.objects.filter(org=org)
        .filter(
            Q(ref_type=RefType.SALE, ref_id=sale.pk)
            | Q(ref_type=RefType.REFUND, ref_id__in=refund_ids)
        )
        .select_related("batch")
        .order_by("id")
    )
    sold = [r for r in rows if r.ref_type == RefType.SALE]
    returned: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        if row.ref_type == RefType.REFUND:
            returned[(row.ref_line, row.batch_id)] += row.qty_delta
    return sold, returned


def _outstanding(sold: list[StockLedger], returned: dict) -> list[tuple[StockLedger, Decimal]]:
    """Each SALE row with how much of it is still out, latest consumption first.

    Refunds take back the latest-consumed lots of a line first, so earlier refunds are charged
    against the rows in the same order here.
    """
    budget = dict(returned)
    out = []
    for row in sorted(sold, key=lambda r: -r.pk):
        key = (row.ref_line, row.batch_id)
        taken = min(-row.qty_delta, budget.get(key, ZERO))
        budget[key] = budget.get(key, ZERO) - taken
        out.append((row, -row.qty_delta - taken))
    return out


def _as_reversal(row: StockLedger, quantity: Decimal) -> dict:
    return {
        "location_id": row.location_id,
        "batch_id": row.batch_id,
        "product_id": row.product_id,
        "qty_delta": -quantity,
        "unit_cost": row.unit_cost,
        "ref_line": row.ref_line,
        "unallocated": row.batch.is_unallocated,
    }


def _not_before_sale(sale: Sale, occurred_at: datetime.datetime | None) -> None:
    """A void or refund given a business time cannot have happened before its sale."""
    if occurred_at is not None and occurred_at < sale.occurred_at:
        raise ValidationFailed(
            "Dated before the sale.",
            code="before_sale",
            fields={"occurred_at": [f"The sale happened at {iso(sale.occurred_at)}."]},
        )


def sale_void(
    *,
    org: Organization,
    sale: Sale,
    reason: str = "",
    occurred_at: datetime.datetime | None = None,
    actor=None,
) -> Sale:
    """Void a sale: what is still out goes back to its batches and locations. Twice = once.

    ``occurred_at`` is the business time of the void (the VOID rows' date; default now);
    ``voided_at`` stays the time it was recorded.
    """
    user = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        sale = lock_sale(org=org, sale_id=sale.pk)
        if sale.status == SaleStatus.VOIDED:
            return sale
        _not_before_sale(sale, occurred_at)
        sold, returned = _sale_movements(org, sale)
        reversal = [_as_reversal(row, q) for row, q in _outstanding(sold, returned) if q > 0]
        now = timezone.now()
        stock.reverse(
            posting=stock.Posting(
                org, sale.store, sale.pk, occurred_at or now, user, "void", sale.source_ref
            ),
            rows=reversal,
            ref_type=RefType.VOID,
            reason=reason or "sale voided",
        )
        sale.status, sale.voided_at, sale.voided_by = SaleStatus.VOIDED, now, user
        sale.save(update_fields=["status", "voided_at", "voided_by"])
    return sale


@dataclass(frozen=True)
class RefundLineInput:
    line: int  # the sale's line number
    quantity: Decimal


def _check_refund_lines(sale: Sale, lines: list[RefundLineInput], sold) -> None:
    """Lines the sale has, in whole numbers for products sold by the unit."""
    units = {
        line.line_no: line.product.unit
        for line in SaleLine.objects.filter(sale=sale).select_related("product")
    }
    unknown = {
        f"lines.{i}.line": ["The sale has no such line."]
        for i, ln in enumerate(lines)
        if ln.line not in units
    }
    if unknown:
        raise ValidationFailed("The sale has no such line.", code="unknown_line", fields=unknown)
    fractional = {
        f"lines.{i}.quantity": ["Sold by the unit: refund a whole number."]
        for i, ln in enumerate(lines)
        if units[ln.line] == "each" and ln.quantity % 1
    }
    if fractional:
        raise ValidationFailed("Whole numbers only.", code="fractional_quantity", fields=fractional)


def sale_refund(
    *,
    org: Organization,
    sale: Sale,
    lines: list[RefundLineInput],
    client_ref: str,
    location: Location | int | None = None,
    reason: str = "",
    occurred_at: datetime.datetime | None = None,
    actor=None,
) -> tuple[Refund, bool]:
    """Take back part of a sale, into the lots and rooms it came from or into ``location`` (an
    active location of the sale's store: ``unknown_location``). More than sold minus already
    refunded is refused (400)."""
    user = actor if getattr(actor, "pk", None) else None
    if location is not None:
        problems = Problems()
        location = locations_resolve(
            store=sale.store, named={"location": location}, problems=problems
        ).get("location")
        problems.raise_if_any("The refund cannot go there.")
    digest = request_hash(
        {
            "sale": sale.pk,
            "location": location,
            "reason": reason,
            "occurred_at": occurred_at,
            "lines": [[ln.line, ln.quantity] for ln in lines],
        }
    )
    given_at, occurred_at = occurred_at, occurred_at or timezone.now()
    existing = Refund.objects.filter(org=org, client_ref=client_ref).first()
    if existing is not None:
        return check_replay(existing, digest), False
    try:
        with transaction.atomic():
            sale = lock_sale(org=org, sale_id=sale.pk)
            if sale.status == SaleStatus.VOIDED:
                raise InvalidState("A voided sale cannot be refunded.", code="sale_voided")
            _not_before_sale(sale, given_at)
            sold, returned = _sale_movements(org, sale)
            outstanding = _outstanding(sold, returned)
            left_by_line: dict[int, Decimal] = defaultdict(lambda: ZERO)
            for row, q in outstanding:
                left_by_line[row.ref_line] += q
            _check_refund_lines(sale, lines, sold)
            errors = {}
            wanted: dict[int, Decimal] = defaultdict(lambda: ZERO)
            for index, ln in enumerate(lines):
                wanted[ln.line] += ln.quantity
                if wanted[ln.line] > left_by_line[ln.line]:
                    errors[f"lines.{index}.quantity"] = [
                        f"At most {left_by_line[ln.line]} can still be refunded."
                    ]
            if errors:
                raise ValidationFailed(
                    "Refund exceeds what was sold.", code="refund_exceeds_sold", fields=errors
                )
            refund = Refund.objects.create(
                org=org,
                sale=sale,
                client_ref=client_ref,
                request_hash=digest,
                location=location,
                reason=reason,
                occurred_at=occurred_at,
                created_by=user,
            )
            reversal = []
            for row, q in outstanding:  # latest consumption first
                need = wanted.get(row.ref_line, ZERO)
                take = min(need, q)
                if take > 0:
                    wanted[row.ref_line] -= take
                    reversal.append(_as_reversal(row, take))
            outcome = stock.reverse(
                posting=stock.Posting(
                    org, sale.store, refund.pk, occurred_at, user, "refund", sale.source_ref
                ),
                rows=reversal,
                ref_type=RefType.REFUND,
                reason=reason or "refund",
                to_location_id=location.pk if location else None,
            )
            refund.result = {
                "id": refund.pk,
                "sale": sale.pk,
                "client_ref": client_ref,
                "location": location.pk if location else None,
                "reason": reason,
                "occurred_at": iso(occurred_at),
                "lines": [
                    {
                        "line": r.ref_line,
                        "batch": r.batch_id,
                        "location": r.location_id,
                        "quantity": stock.fmt(r.qty_delta),
                        "unit_cost": stock.fmt(r.unit_cost),
                    }
                    for r in outcome.rows
                ],
            }
            refund.save(update_fields=["result"])
    except IntegrityError:
        existing = Refund.objects.filter(org=org, client_ref=client_ref).first()
        if existing is None:
            raise
        return check_replay(existing, digest), False
    return refund, True
