"""The one write path for stock: the only code that writes quants and ledger rows.

Every operation here runs inside the caller's transaction (the document services own it) and
follows the same three steps:

1. **lock** the quants it may touch, in id order (``inventory.stock.locks.lock_quants``), one query;
2. **plan** in Python: first-expiry-first allocation over the locked quants, shortfalls,
   settlements — no queries;
3. **apply**: one upsert adds every quantity delta to its quant (creating new quants), one bulk
   insert writes the ledger rows. New batches, when needed, cost one more upsert.

So a whole document costs at most four queries however many lines and lots it touches.
Domain errors (``InsufficientStock``) are raised for the whole document, listing every short
line, before anything is written.

FEFO order: earliest expiry first, no expiry last, then earliest received, then batch id, then
location sort order. A lot is expired for a sale when its expiry date is before the store-local
date of the sale's ``occurred_at``; expired lots are never sold but may be moved, adjusted and
written off.

Raw SQL here interpolates only constant table and column names; every value is a placeholder.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from core.bulk import cast_type, json_rows, json_select
from core.errors import ValidationFailed
from core.sql import db_datetime, insert
from inventory.exceptions import InsufficientStock
from inventory.metrics import stock_movements_total
from inventory.models import (
    Batch,
    Location,
    NegativeStockMode,
    Organization,
    Product,
    RefType,
    StockLedger,
    StockQuant,
    Store,
)
from inventory.stock import policy
from inventory.stock.locks import QuantFilter, is_held, lock_quants
from inventory.stock.policy import PolicyWarning

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ZERO = Decimal("0")
QUANTUM = Decimal("0.0001")
FAR_FUTURE = datetime.date.max


# --- inputs and outputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    """Who, when and why: shared by every ledger row of one document.

    ``override_reason``: why the caller asks to post despite a hold on a product (the
    discrepancy enforcement's ``block`` mode); ``may_override``: whether they may — the
    document's service checked that a manager or admin of the store asks. Both only reach the
    stock policies (``inventory.stock.policy``); no ledger row keeps them.
    """

    org: Organization
    store: Store
    ref_id: int
    occurred_at: datetime.datetime
    user: User | None = None
    source: str = ""
    source_ref: str = ""
    override_reason: str = ""
    may_override: bool = False


@dataclass
class Change:
    """One planned ledger row: a quantity delta for (location, batch)."""

    location_id: int
    batch_id: int
    product_id: int
    qty_delta: Decimal
    unit_cost: Decimal
    ref_type: str
    ref_line: int
    reason: str = ""
    unallocated: bool = False
    posting: Posting | None = None  # its document, when one call posts several


@dataclass
class Shortfall:
    line: int
    product: Product
    location_id: int | None
    requested: Decimal
    available: Decimal
    expired: Decimal = ZERO

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "product": self.product.pk,
            "sku": self.product.sku,
            "location": self.location_id,
            "requested": fmt(self.requested),
            "available": fmt(self.available),
            "expired": fmt(self.expired),
        }


@dataclass
class ConsumeLine:
    """Take ``quantity`` of ``product``: at ``location`` if given, else across ``locations``."""

    line: int
    product: Product
    quantity: Decimal
    location: Location | None = None
    batch_id: int | None = None  # take only from this batch


@dataclass
class ReceiveLine:
    line: int
    product: Product
    location: Location
    quantity: Decimal
    lot_code: str = ""
    expiry_date: datetime.date | None = None
    unit_cost: Decimal | None = None
    batch_id: int | None = None  # into this existing batch


@dataclass
class MoveLine:
    line: int
    product: Product
    from_location: Location
    to_location: Location
    quantity: Decimal
    batch_id: int | None = None


@dataclass
class CountedLine:
    """What a count found of ``product`` at ``location``, and how to post it.

    ``counted`` set: the place ends at exactly that quantity ("set to counted"). Otherwise
    ``difference`` (signed) is added to the place ("keep the difference": the variance against
    the balance at the time of the count, so sales made since are not taken twice). An overage
    lands in ``batch_id`` (the lot that was scanned) when given.
    """

    line: int
    product: Product
    location: Location
    difference: Decimal = ZERO
    counted: Decimal | None = None
    batch_id: int | None = None


@dataclass
class Outcome:
    """What a write-path call did: its ledger rows, and shortfalls it booked (warn/record)."""

    rows: list[StockLedger] = field(default_factory=list)
    shortfalls: list[Shortfall] = field(default_factory=list)
    # the batches the planner saw (for describing the rows without another query)
    batches: dict[int, Batch] = field(default_factory=dict)
    # what the registered stock policies said of this posting (``inventory.stock.policy``)
    warnings: list[PolicyWarning] = field(default_factory=list)


# --- helpers ----------------------------------------------------------------------------------


def fmt(quantity: Decimal) -> str:
    """Quantities and money leave the service with four decimals, as the API shows them."""
    return str(Decimal(quantity).quantize(QUANTUM))


def local_date(store: Store, moment: datetime.datetime) -> datetime.date:
    return timezone.localtime(moment, zoneinfo.ZoneInfo(store.time_zone)).date()


def is_expired(batch: Batch, on: datetime.date) -> bool:
    return batch.expiry_date is not None and batch.expiry_date < on


def fefo_key(quant: StockQuant, sort_order: dict[int, int]):
    batch = quant.batch
    return (
        batch.expiry_date or FAR_FUTURE,
        batch.received_at,
        batch.pk,
        sort_order.get(quant.location_id, 0),
        quant.location_id,
    )


def _by_place(
    quants: Iterable[StockQuant], sort_order: dict[int, int]
) -> dict[tuple[int, int], list[StockQuant]]:
    """Quants grouped by (location, product), each group in FEFO order: a line walks only its
    own group, so a count posting thousands of lines stays linear."""
    groups: dict[tuple[int, int], list[StockQuant]] = defaultdict(list)
    for quant in sorted(quants, key=lambda q: fefo_key(q, sort_order)):
        groups[(quant.location_id, quant.product_id)].append(quant)
    return groups


def _take(
    group: Iterable[StockQuant],
    left: dict[int, Decimal],
    need: Decimal,
    batch_id: int | None = None,
) -> tuple[list[tuple[StockQuant, Decimal]], Decimal]:
    """Take ``need`` from a FEFO-ordered group (only ``batch_id`` when given), updating
    ``left``; returns what was taken from which quant, and what is still missing."""
    taken = []
    for quant in group:
        if need == 0:
            break
        if left[quant.pk] <= 0 or (batch_id and quant.batch_id != batch_id):
            continue
        take = min(need, left[quant.pk])
        left[quant.pk] -= take
        need -= take
        taken.append((quant, take))
    return taken, need


def _record_metrics(changes: Sequence[Change]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for change in changes:
        counts[change.ref_type] += 1

    def emit():
        for ref_type, n in counts.items():
            stock_movements_total.labels(ref_type=ref_type, result="ok", reason="").inc(n)

    transaction.on_commit(emit)


def record_failure(ref_type: str, reason: str) -> None:
    stock_movements_total.labels(ref_type=ref_type, result="failed", reason=reason).inc()


# --- apply: the only writes -------------------------------------------------------------------


def _apply(
    posting: Posting,
    changes: list[Change],
    locked: dict[tuple[int, int], StockQuant],
    *,
    kind: str,
    stores: dict[int, int] | None = None,
    shortfalls: Sequence[Shortfall] = (),
) -> tuple[list[StockLedger], list[PolicyWarning]]:
    """Add every change to its quant (one upsert) and write the ledger rows (one insert).

    Each row's store is its location's (``stores`` maps the locations the caller named, the
    locked quants give the others; the document's store by default), so one posting may span
    two stores (a transfer). The registered stock policies see the planned rows first and may
    warn or refuse (``inventory.stock.policy``); with none registered this costs nothing.
    """
    if not changes:
        return [], []
    store_of = {quant.location_id: quant.store_id for quant in locked.values()}
    store_of.update(stores or {})

    def store(location_id: int) -> int:
        return store_of.get(location_id, posting.store.pk)

    totals: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    meta: dict[tuple[int, int], Change] = {}
    for change in changes:
        key = (change.location_id, change.batch_id)
        totals[key] += change.qty_delta
        meta[key] = change
    for key, delta in totals.items():
        quant = locked.get(key)
        after = (quant.quantity if quant else ZERO) + delta
        if after < 0 and not meta[key].unallocated:
            # The planner never lets this happen; the database would refuse it too.
            raise InsufficientStock(
                lines=[
                    {
                        "location": key[0],
                        "batch": key[1],
                        "requested": str(-delta),
                        "available": str(after - delta),
                    }
                ]
            )
    warnings = _consult_policies(posting, changes, locked, kind, store, shortfalls)

    now = timezone.now()
    rows = [
        (
            posting.org.pk,
            store(loc),
            loc,
            meta[(loc, batch)].product_id,
            batch,
            totals[(loc, batch)],
            meta[(loc, batch)].unallocated,
            now,
        )
        for loc, batch in sorted(totals)
        if totals[(loc, batch)] != 0
    ]
    if rows:
        _upsert_quants(rows)

    # Positional, in the model's field order: keyword construction costs a count's 5,000
    # rows a tenth of a second more (every keyword is looked up among the fields).
    ledger = []
    for c in changes:
        if c.qty_delta == 0:
            continue
        doc = c.posting or posting
        row = StockLedger(  # type: ignore[misc]  # the stubs type keywords, not positions
            None,
            doc.org.pk,
            store(c.location_id),
            c.location_id,
            c.product_id,
            c.batch_id,
            c.qty_delta,
            c.ref_type,
            doc.ref_id,
            c.ref_line,
            doc.source,
            doc.source_ref,
            c.reason,
            c.unit_cost,
            doc.user.pk if doc.user is not None else None,
            doc.occurred_at,
            now,
        )
        # the related rows the keywords would have cached
        _LEDGER_ORG.set_cached_value(row, doc.org)
        if doc.user is not None:
            _LEDGER_USER.set_cached_value(row, doc.user)
        ledger.append(row)
    _insert_ledger(ledger)
    _record_metrics(changes)
    return ledger, warnings


def _consult_policies(
    posting: Posting,
    changes: list[Change],
    locked: dict[tuple[int, int], StockQuant],
    kind: str,
    store: Callable[[int], int],
    shortfalls: Sequence[Shortfall],
) -> list[PolicyWarning]:
    """What the registered policies say of the planned rows (nothing to do without any).

    Which rows' products are held comes from the locked quants (``is_held``: the lock read it);
    a (store, product) the lock saw no quant of is passed as ``unseen``.
    """
    if not policy.has_policies(kind):
        return []
    rows = tuple(
        policy.PlannedRow(
            store(c.location_id),
            c.location_id,
            c.product_id,
            c.batch_id,
            c.qty_delta,
            c.ref_line,
            c.unallocated,
            c.ref_type,
        )
        for c in changes
        if c.qty_delta != 0
    )
    seen: set[tuple[int, int]] = set()
    held: set[tuple[int, int]] = set()
    for quant in locked.values():
        pair = (quant.store_id, quant.product_id)
        seen.add(pair)
        if is_held(quant):
            held.add(pair)
    planned = {(row.store_id, row.product_id) for row in rows}
    return policy.consult(
        policy.PlannedPosting(
            org_id=posting.org.pk,
            store_id=posting.store.pk,
            kind=kind,
            ref_type=changes[0].ref_type,
            ref_id=posting.ref_id,
            user_id=getattr(posting.user, "pk", None),
            rows=rows,
            shortfalls=tuple((s.line, s.product.pk, s.requested, s.available) for s in shortfalls),
            source=posting.source,
            enforcement=posting.org.discrepancy_enforcement,
            held=frozenset(planned & held),
            unseen=frozenset(planned - seen),
            override_reason=posting.override_reason,
            may_override=posting.may_override,
        )
    )


_LEDGER_COLUMNS = (
    "org_id",
    "store_id",
    "location_id",
    "product_id",
    "batch_id",
    "qty_delta",
    "ref_type",
    "ref_id",
    "ref_line",
    "source",
    "source_ref",
    "reason",
    "unit_cost",
    "user_id",
    "occurred_at",
    "created_at",
)
# ``_apply`` builds ledger rows positionally: the model's fields must stay in this order.
assert [f.attname for f in StockLedger._meta.concrete_fields] == ["id", *_LEDGER_COLUMNS]
_LEDGER_ORG = StockLedger._meta.get_field("org")
_LEDGER_USER = StockLedger._meta.get_field("user")


#: From this many rows on, an insert sends its rows as one JSON parameter (``_insert``).
_JSON_FROM = 200


def _insert(
    model: type[Model], columns: Sequence[str], rows: list[tuple], suffix: str = ""
) -> None:
    """``INSERT INTO … (columns) VALUES …`` (and ``suffix``) for ``rows``.

    A large posting (a count's thousands of lines) on PostgreSQL sends every row as one JSON
    parameter instead (``core.bulk.json_rows``: ``INSERT … SELECT (e->>0)::bigint, … FROM
    jsonb_array_elements(%s)``), so the statement stays a few hundred characters and the
    client binds one string: a VALUES statement's text is split at each of its placeholders
    (80,000 for 5,000 ledger rows), and one array per column is quoted value by value, both
    costing more than the insert itself. A sale's few rows keep the plain VALUES statement.
    """
    if len(rows) < _JSON_FROM or connection.vendor != "postgresql":
        insert(model._meta.db_table, columns, rows, suffix)
        return
    by_column = {field.column: field for field in model._meta.concrete_fields}
    types = [str(by_column[name].db_type(connection)) for name in columns]
    head = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
    payload = json_rows(rows)
    with connection.cursor() as cursor:
        if payload is not None:
            cursor.execute(head + json_select(types) + suffix, [payload])
            return
        arrays = ", ".join(f"%s::{cast_type(db_type)}[]" for db_type in types)
        cursor.execute(
            head + f"SELECT * FROM unnest({arrays}){suffix}",
            [list(values) for values in zip(*rows, strict=True)],
        )


def _insert_ledger(rows: list[StockLedger]) -> None:
    """Write the ledger rows in one INSERT (by hand: ``bulk_create`` spent longer preparing
    a one-row insert than the database took to run it). The rows keep no primary key."""
    if not rows:
        return
    created_at = db_datetime(rows[0].created_at)  # one moment for the whole call
    occurred = {}  # business times: one per document (a call may post several)
    for row in rows:
        if row.occurred_at not in occurred:
            occurred[row.occurred_at] = db_datetime(row.occurred_at)
    _insert(
        StockLedger,
        _LEDGER_COLUMNS,
        [
            (
                r.org_id,
                r.store_id,
                r.location_id,
                r.product_id,
                r.batch_id,
                r.qty_delta,
                r.ref_type,
                r.ref_id,
                r.ref_line,
                r.source,
                r.source_ref,
                r.reason,
                r.unit_cost,
                r.user_id,
                occurred[r.occurred_at],
                created_at,
            )
            for r in rows
        ],
    )


def _upsert_quants(rows: list[tuple]) -> None:
    """Add each delta to its quant, creating missing quants, in one statement (SQLite: chunks).

    ``rows`` are ``(org, store, location, product, batch, delta, unallocated, now)``. The
    proposed INSERT row carries the delta twice: as ``last_delta``, which the UPDATE branch adds
    to the existing quantity, and as the new row's quantity — 0 for a negative delta, because
    PostgreSQL checks ``quant_not_negative`` on the proposed row before resolving the conflict
    (the planner never creates a quant with a negative delta; only unallocated quants go below
    zero). Rows are sorted by (location, batch), so concurrent inserts meet in one order.
    """
    table = StockQuant._meta.db_table
    _insert(
        StockQuant,
        _QUANT_COLUMNS,
        [
            (
                org_id,
                store_id,
                location_id,
                product_id,
                batch_id,
                delta if delta >= 0 or unallocated else ZERO,
                delta,
                unallocated,
                db_datetime(now),
            )
            for org_id, store_id, location_id, product_id, batch_id, delta, unallocated, now in rows
        ],
        suffix=(
            f" ON CONFLICT (org_id, location_id, batch_id) DO UPDATE SET"
            f" quantity = {table}.quantity + excluded.last_delta,"
            f" last_delta = excluded.last_delta, updated_at = excluded.updated_at"
        ),
    )


_QUANT_COLUMNS = (
    "org_id",
    "store_id",
    "location_id",
    "product_id",
    "batch_id",
    "quantity",
    "last_delta",
    "unallocated",
    "updated_at",
)


def _upsert_batches(org: Organization, specs: list[dict]) -> list[tuple[int, Decimal]]:
    """Find or create batches in one query; ``(id, unit_cost)`` in the order of ``specs``.

    A spec with a lot code finds the product's batch of that lot (creating it the first time);
    one without a lot always creates a new batch. ``unallocated_store`` specs find or create the
    store's unallocated batch. ``unit_cost=None`` means the product's last known cost.
    """
    if not specs:
        return []
    table = Batch._meta.db_table
    now = timezone.now()
    # One VALUES row per named lot (PostgreSQL refuses to upsert a row twice in a statement):
    # the first line naming a lot decides a new lot's expiry and cost.
    first_of: dict[tuple, dict] = {}
    for spec in specs:
        lot = spec.get("lot_code", "")
        key = (
            ("spare", spec["product"].pk, spec["unallocated_store"])
            if spec.get("unallocated_store")
            else ("lot", spec["product"].pk, lot)
            if lot
            else ("new", id(spec))
        )
        first_of.setdefault(key, spec)
        spec["_key"] = key
    # Sorted by key: an upsert that meets an existing lot locks its row, so every document
    # must meet them in one order (see inventory/locks.py).
    unique = [first_of[key] for key in sorted(first_of, key=lambda k: tuple(map(str, k)))]
    lot_specs = [s for s in unique if not s.get("unallocated_store")]
    spare_specs = [s for s in unique if s.get("unallocated_store")]
    found: list[tuple] = []
    last_cost = (
        f"(SELECT b.unit_cost FROM {table} b WHERE b.org_id = %s AND b.product_id = %s"
        f" AND b.unallocated_store_id IS NULL ORDER BY b.received_at DESC, b.id DESC LIMIT 1)"
    )
    columns = (
        "org_id, product_id, lot_code, expiry_date, received_at, unit_cost,"
        " unallocated_store_id, created_at"
    )
    returning = "RETURNING id, unit_cost, product_id, expiry_date"
    with connection.cursor() as cursor:
        for group, conflict in (
            # written exactly as Django wrote the partial index: SQLite matches it literally
            (
                lot_specs,
                "(org_id, product_id, lot_code) WHERE (unallocated_store_id IS NULL"
                " AND NOT (lot_code = ''))",
            ),
            (
                spare_specs,
                "(org_id, product_id, unallocated_store_id) WHERE unallocated_store_id IS NOT NULL",
            ),
        ):
            if not group:
                continue
            values, params = [], []
            for spec in group:
                product = spec["product"]
                values.append(f"(%s, %s, %s, %s, %s, COALESCE(%s, {last_cost}, %s), %s, %s)")
                params += [
                    org.pk,
                    product.pk,
                    spec.get("lot_code", ""),
                    spec.get("expiry_date"),
                    db_datetime(spec.get("received_at", now)),
                    spec.get("unit_cost"),
                    org.pk,
                    product.pk,
                    product.default_cost or ZERO,
                    spec.get("unallocated_store"),
                    db_datetime(now),
                ]
            if group is spare_specs:
                # An unallocated batch is found, never locked: a sale that books a shortfall
                # after locking quants must not wait on a batch row another sale holds (that
                # sale may be waiting on those quants). Existing ones are read afterwards.
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES {', '.join(values)}"
                    f" ON CONFLICT {conflict} DO NOTHING {returning}",
                    params,
                )
                made = {row[2]: row for row in cursor.fetchall()}
                missing = [s["product"].pk for s in group if s["product"].pk not in made]
                if missing:
                    made.update(
                        {
                            b.product_id: (b.pk, b.unit_cost, b.product_id, None)
                            for b in Batch.objects.filter(
                                org=org,
                                product_id__in=missing,
                                unallocated_store_id=group[0]["unallocated_store"],
                            )
                        }
                    )
                found += [made[s["product"].pk] for s in group]
                continue
            # A known lot keeps its expiry; one received before without a date gains this one.
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join(values)}"
                f" ON CONFLICT {conflict} DO UPDATE SET"
                f" expiry_date = COALESCE({table}.expiry_date, excluded.expiry_date)"
                f" {returning}",
                params,
            )
            found += cursor.fetchall()
    # RETURNING follows the VALUES order; spare batches come after the lot batches.
    by_key = dict(zip((s["_key"] for s in lot_specs + spare_specs), found, strict=True))
    _check_lot_expiry(specs, by_key)
    return [(by_key[s["_key"]][0], Decimal(str(by_key[s["_key"]][1]))) for s in specs]


def _check_lot_expiry(specs: list[dict], by_key: dict[tuple, tuple]) -> None:
    """A line naming a known lot with another expiry date is refused, not silently given the
    stored date: one lot has one expiry, and FEFO and the expiry reports rely on it. A line
    that gives no expiry takes the lot's; a lot stored without one has just taken the line's."""
    wrong = {}
    for spec in specs:
        given = spec.get("expiry_date")
        if not given or not spec.get("lot_code"):
            continue
        stored = by_key[spec["_key"]][3]
        if stored is not None and not isinstance(stored, datetime.date):
            stored = datetime.date.fromisoformat(str(stored)[:10])  # SQLite's RETURNING text
        if stored != given:
            field = f"lines.{spec['line'] - 1}.expiry_date" if "line" in spec else "expiry_date"
            wrong[field] = [
                f"Lot {spec['lot_code']} of {spec['product'].sku} expires on "
                f"{stored.isoformat() if stored else 'no date'}, not {given}."
            ]
    if wrong:
        raise ValidationFailed(
            "A lot has one expiry date.", code="lot_expiry_mismatch", fields=wrong
        )


def _lock_ordinary(org: Organization, location_ids, product_ids) -> list[StockQuant]:
    """Lock the products' ordinary (not unallocated) quants at the locations."""
    return lock_quants(
        org=org, match=QuantFilter(locations=location_ids, products=product_ids, ordinary=True)
    )


def _load_batches(ids: Iterable[int]) -> dict[int, Batch]:
    return {b.pk: b for b in Batch.objects.filter(pk__in=set(ids))}


# --- operations -------------------------------------------------------------------------------


def consume(
    *,
    posting: Posting,
    lines: list[ConsumeLine],
    ref_type: str,
    selling_location: int | None,
    negative_mode: str = NegativeStockMode.BLOCK,
    skip_expired: bool = True,
    reason: str = "",
) -> Outcome:
    """Take stock FEFO from the store's active sellable locations (or a line's own location).

    Sales pass ``skip_expired=True`` and the org's negative-stock mode. In ``block`` mode any
    short line raises ``InsufficientStock`` listing all short lines; in ``warn``/``record`` the
    missing quantity is booked to the store's unallocated batch for the product at
    ``selling_location`` (the store's first sellable one, ``first_sellable_location``; None
    when it sells nowhere, and then nothing can be booked) or at the line's own location, and
    reported in ``Outcome.shortfalls``.

    The lock reads which locations sell (``l``), so a sale needs no separate location query.
    """
    store = posting.store
    quants = lock_quants(
        org=posting.org,
        match=QuantFilter(
            store=store.pk,
            products={ln.product.pk for ln in lines},
            held=True,
            sellable_or_at={ln.location.pk for ln in lines if ln.location},
        ),
    )
    sort_order = {q.location_id: q.location.sort_order for q in quants}
    today = local_date(store, posting.occurred_at)
    left = {q.pk: q.quantity for q in quants}
    by_product: dict[int, list[StockQuant]] = defaultdict(list)
    for quant in sorted(quants, key=lambda q: fefo_key(q, sort_order)):
        by_product[quant.product_id].append(quant)

    changes: list[Change] = []
    shortfalls: list[Shortfall] = []
    for ln in lines:
        need, expired = ln.quantity, ZERO
        for quant in by_product[ln.product.pk]:
            if left[quant.pk] <= 0:
                # (a positive unallocated quant is real stock put back by a void or refund
                # after its shortfall was settled: it sells like any lot without expiry)
                continue
            if ln.location and quant.location_id != ln.location.pk:
                continue
            if ln.location is None and not (quant.location.sellable and quant.location.is_active):
                continue
            if ln.batch_id and quant.batch_id != ln.batch_id:
                continue
            if skip_expired and is_expired(quant.batch, today):
                expired += left[quant.pk]
                continue
            take = min(need, left[quant.pk])
            left[quant.pk] -= take
            need -= take
            changes.append(
                Change(
                    quant.location_id,
                    quant.batch_id,
                    quant.product_id,
                    -take,
                    quant.batch.unit_cost,
                    ref_type,
                    ln.line,
                    reason,
                    unallocated=quant.unallocated,
                )
            )
            if need == 0:
                break
        if need > 0:
            shortfalls.append(
                Shortfall(
                    ln.line,
                    ln.product,
                    ln.location.pk if ln.location else selling_location,
                    ln.quantity,
                    ln.quantity - need,
                    expired,
                )
            )

    cannot_book = any(s.location_id is None for s in shortfalls)  # the store sells nowhere
    if shortfalls and (negative_mode == NegativeStockMode.BLOCK or cannot_book):
        raise InsufficientStock(lines=[s.as_dict() for s in shortfalls], shortfalls=shortfalls)
    if shortfalls:
        changes += _book_shortfalls(posting, shortfalls, quants, ref_type, reason)

    locked = {(q.location_id, q.batch_id): q for q in quants}
    rows, warnings = _apply(
        posting,
        changes,
        locked,
        kind="sale" if ref_type == RefType.SALE else "issue",
        shortfalls=shortfalls,
    )
    return Outcome(rows, shortfalls, {q.batch_id: q.batch for q in quants}, warnings)


FIRST_SELLABLE = (
    f"SELECT id FROM {Location._meta.db_table} WHERE org_id = %s AND store_id = %s"
    " AND sellable AND is_active ORDER BY sort_order, id LIMIT 1"
)


def first_sellable_location(store: Store) -> int | None:
    """Where a store books what it sold without stock: its first active sellable location."""
    with connection.cursor() as cursor:
        cursor.execute(FIRST_SELLABLE, [store.org_id, store.pk])
        row = cursor.fetchone()
    return row[0] if row else None


def _booked_at(shortfall: Shortfall) -> int:
    """Where a shortfall is booked: the consume step refused those with nowhere to go."""
    assert shortfall.location_id is not None
    return shortfall.location_id


def _book_shortfalls(
    posting: Posting,
    shortfalls: list[Shortfall],
    quants: list[StockQuant],
    ref_type: str,
    reason: str,
) -> list[Change]:
    """Book missing quantities to the store's unallocated batch of each product.

    The batch usually came with the lock (its quant is at a sellable location, locked with the
    rest); only a product's first shortfall in the store finds or creates it (one upsert).
    """
    spare = {
        q.product_id: (q.batch_id, q.batch.unit_cost)
        for q in quants
        if q.batch.unallocated_store_id == posting.store.pk
    }
    missing = {s.product.pk: s.product for s in shortfalls if s.product.pk not in spare}
    batch_ids = _upsert_batches(
        posting.org,
        [
            {"product": p, "unallocated_store": posting.store.pk, "unit_cost": None}
            for p in missing.values()
        ],
    )
    spare.update(zip(missing, batch_ids, strict=True))
    return [
        Change(
            _booked_at(s),
            spare[s.product.pk][0],
            s.product.pk,
            -(s.requested - s.available),
            spare[s.product.pk][1],
            ref_type,
            s.line,
            reason or "sold without stock: booked to the unallocated batch",
            unallocated=True,
        )
        for s in shortfalls
    ]


def receive(
    *, posting: Posting, lines: list[ReceiveLine], ref_type: str = RefType.RECEIPT, reason: str = ""
) -> Outcome:
    """Put stock into new or existing batches; settle any negative unallocated stock.

    A line with a lot code goes to that lot's batch (created on first receipt, keeping its
    expiry and cost); a line without one makes a new batch. When the store has sold a product
    without stock (a negative unallocated quant), the receipt settles it with a pair of rows.
    """
    return receive_many(documents=[(posting, lines)], ref_type=ref_type, reason=reason)


def receive_many(
    *,
    documents: Sequence[tuple[Posting, list[ReceiveLine]]],
    ref_type: str = RefType.RECEIPT,
    reason: str = "",
) -> Outcome:
    """Receive many documents of one organisation in one call, as ``receive`` does each: an
    import posts a document per row or package without a round trip per document.

    Still at most four statements for all of them (new lots, the lock, the quant upsert, the
    ledger insert); each document's rows carry its own ``Posting`` (ref id, business time,
    user, source), and a debt settled by one document is not settled again by the next.
    """
    if not documents:
        return Outcome()
    org = documents[0][0].org
    if any(posting.org.pk != org.pk for posting, _ in documents):
        raise ValueError("receive_many posts the documents of one organisation")
    specs = [
        {
            "product": ln.product,
            "lot_code": ln.lot_code.strip(),
            "expiry_date": ln.expiry_date,
            "unit_cost": ln.unit_cost,
            "received_at": posting.occurred_at,
            "line": ln.line,
        }
        for posting, lines in documents
        for ln in lines
        if ln.batch_id is None
    ]
    upserted = iter(_upsert_batches(org, specs))
    batch_of: dict[tuple[int, int], int] = {}  # (document, line) -> batch
    cost_of: dict[tuple[int, int], Decimal] = {}
    for d, (_, lines) in enumerate(documents):
        for ln in lines:
            if ln.batch_id is None:
                batch_of[(d, ln.line)], cost_of[(d, ln.line)] = next(upserted)
            else:
                batch_of[(d, ln.line)] = ln.batch_id
    debts_by_store: dict[int, set[int]] = defaultdict(set)
    for posting, lines in documents:
        debts_by_store[posting.store.pk] |= {ln.product.pk for ln in lines}
    quants = lock_quants(
        org=org,
        match=[
            QuantFilter(
                locations={ln.location.pk for _, lines in documents for ln in lines},
                batches=set(batch_of.values()),
            ),
            # each store's negative unallocated quants of these products: what receipts settle
            *(
                QuantFilter(store=store_id, products=products, ordinary=False, in_debt=True)
                for store_id, products in sorted(debts_by_store.items())
            ),
        ],
    )
    unknown_cost = {
        batch_of[(d, ln.line)]
        for d, (_, lines) in enumerate(documents)
        for ln in lines
        if ln.unit_cost is None and (d, ln.line) not in cost_of
    }
    if unknown_cost:  # receiving into a named existing batch without a cost: rare
        loaded = _load_batches(unknown_cost)
        for key, batch_id in batch_of.items():
            if key not in cost_of and batch_id in loaded:
                cost_of[key] = loaded[batch_id].unit_cost
    owed = {q.pk: -q.quantity for q in quants if q.unallocated and q.quantity < 0}
    changes: list[Change] = []
    for d, (posting, lines) in enumerate(documents):
        changes += [
            Change(
                ln.location.pk,
                batch_of[(d, ln.line)],
                ln.product.pk,
                ln.quantity,
                ln.unit_cost if ln.unit_cost is not None else cost_of[(d, ln.line)],
                ref_type,
                ln.line,
                reason,
                posting=posting,
            )
            for ln in lines
        ]
        changes += _settlements(
            posting,
            lines,
            {line: b for (e, line), b in batch_of.items() if e == d},
            quants,
            owed,
            ref_type,
        )
    locked = {(q.location_id, q.batch_id): q for q in quants}
    stores = {ln.location.pk: ln.location.store_id for _, lines in documents for ln in lines}
    rows, warnings = _apply(documents[0][0], changes, locked, kind="receipt", stores=stores)
    return Outcome(rows, warnings=warnings)


def _settlements(
    posting: Posting,
    lines: list[ReceiveLine],
    batch_of: dict[int, int],
    quants: list[StockQuant],
    owed: dict[int, Decimal],
    ref_type: str,
) -> list[Change]:
    """Pairs of rows moving received stock onto the store's negative unallocated quants, up
    to zero; ``owed`` (quant id -> debt left) is shared by the documents of one call."""
    debts = [
        q for q in quants if q.unallocated and q.quantity < 0 and q.store_id == posting.store.pk
    ]
    changes: list[Change] = []
    for ln in lines:
        available = ln.quantity
        for debt in debts:
            if debt.product_id != ln.product.pk or owed[debt.pk] <= 0 or available <= 0:
                continue
            settle = min(owed[debt.pk], available)
            owed[debt.pk] -= settle
            available -= settle
            why = "settles stock sold without stock"
            changes.append(
                Change(
                    ln.location.pk,
                    batch_of[ln.line],
                    ln.product.pk,
                    -settle,
                    debt.batch.unit_cost,
                    ref_type,
                    ln.line,
                    why,
                    posting=posting,
                )
            )
            changes.append(
                Change(
                    debt.location_id,
                    debt.batch_id,
                    debt.product_id,
                    settle,
                    debt.batch.unit_cost,
                    ref_type,
                    ln.line,
                    why,
                    unallocated=True,
                    posting=posting,
                )
            )
    return changes


def move(
    *,
    posting: Posting,
    lines: list[MoveLine],
    reason: str = "",
    ref_types: tuple[str, str] = (RefType.MOVE_OUT, RefType.MOVE_IN),
) -> Outcome:
    """Move stock between locations, earliest expiry first (expired lots too), keeping each
    lot's identity, expiry and cost.

    The two locations may belong to different stores: each row's store is its location's, so
    a transfer is a move with ``ref_types=(TRANSFER_OUT, TRANSFER_IN)`` — out of the source's
    room into the source's transit room on sending, out of transit into the destination's
    receiving room on receipt.
    """
    out_type, in_type = ref_types
    location_ids = {ln.from_location.pk for ln in lines} | {ln.to_location.pk for ln in lines}
    quants = _lock_ordinary(posting.org, location_ids, {ln.product.pk for ln in lines})
    sort_order = {q.location_id: 0 for q in quants}
    left = {q.pk: q.quantity for q in quants}
    ordered = _by_place(quants, sort_order)
    changes: list[Change] = []
    shortfalls: list[Shortfall] = []
    for ln in lines:
        taken, need = _take(
            ordered.get((ln.from_location.pk, ln.product.pk), ()), left, ln.quantity, ln.batch_id
        )
        for quant, take in taken:
            cost = quant.batch.unit_cost
            changes.append(
                Change(
                    ln.from_location.pk,
                    quant.batch_id,
                    ln.product.pk,
                    -take,
                    cost,
                    out_type,
                    ln.line,
                    reason,
                )
            )
            changes.append(
                Change(
                    ln.to_location.pk,
                    quant.batch_id,
                    ln.product.pk,
                    take,
                    cost,
                    in_type,
                    ln.line,
                    reason,
                )
            )
        if need > 0:
            shortfalls.append(
                Shortfall(ln.line, ln.product, ln.from_location.pk, ln.quantity, ln.quantity - need)
            )
    if shortfalls:
        raise InsufficientStock(lines=[s.as_dict() for s in shortfalls], shortfalls=shortfalls)
    locked = {(q.location_id, q.batch_id): q for q in quants}
    stores = {loc.pk: loc.store_id for ln in lines for loc in (ln.from_location, ln.to_location)}
    rows, warnings = _apply(
        posting,
        changes,
        locked,
        kind="transfer" if out_type in (RefType.TRANSFER_OUT, RefType.TRANSFER_IN) else "move",
        stores=stores,
    )
    return Outcome(rows, warnings=warnings)


def adjust(
    *,
    posting: Posting,
    lines: list[ReceiveLine],
    ref_type: str = RefType.ADJUSTMENT,
    reason: str,
    clamp: bool = False,
) -> Outcome:
    """Correct stock at a location by signed quantities (reason required).

    Negative lines take earliest expiry first at that location (expired lots included) and never
    below zero: a shortfall raises ``InsufficientStock``, or with ``clamp`` takes what there is
    and reports the rest in ``Outcome.shortfalls`` (a count booking shrink after the stock has
    meanwhile been sold). Positive lines go to the named lot or batch; else to the product's
    newest batch at that location; else to a new batch at the product's last known cost.
    """
    location_ids = {ln.location.pk for ln in lines}
    product_ids = {ln.product.pk for ln in lines}
    positive = [ln for ln in lines if ln.quantity > 0]
    negative = [ln for ln in lines if ln.quantity < 0]
    # Named lots are found or created before the quants are locked, as receipts do: batch rows
    # an upsert meets are locked, and batches come before quants in the lock order.
    lot_lines = [ln for ln in positive if ln.batch_id is None and ln.lot_code.strip()]
    lot_batches = _upsert_batches(
        posting.org,
        [
            {
                "product": ln.product,
                "lot_code": ln.lot_code.strip(),
                "expiry_date": ln.expiry_date,
                "unit_cost": ln.unit_cost,
                "received_at": posting.occurred_at,
                "line": ln.line,
            }
            for ln in lot_lines
        ],
    )
    quants = _lock_ordinary(posting.org, location_ids, product_ids)

    newest: dict[tuple[int, int], StockQuant] = {}
    for quant in quants:
        key = (quant.location_id, quant.product_id)
        best = newest.get(key)
        if best is None or (quant.batch.received_at, quant.batch_id) > (
            best.batch.received_at,
            best.batch_id,
        ):
            newest[key] = quant
    # A line with nothing to go to gets a new lot-less batch: a plain insert that meets no
    # existing row, so it may come after the quant lock.
    specs, needs_spec = [], []
    for ln in positive:
        if (
            ln.batch_id is None
            and not ln.lot_code.strip()
            and (ln.location.pk, ln.product.pk) not in newest
        ):
            specs.append(
                {
                    "product": ln.product,
                    "expiry_date": ln.expiry_date,
                    "unit_cost": ln.unit_cost,
                    "received_at": posting.occurred_at,
                }
            )
            needs_spec.append(ln)
    upserted = lot_batches + _upsert_batches(posting.org, specs)
    created = {
        ln.line: batch_id
        for ln, (batch_id, _) in zip(lot_lines + needs_spec, upserted, strict=True)
    }
    cost = {q.batch_id: q.batch.unit_cost for q in quants}
    cost.update(dict(upserted))
    missing = {ln.batch_id for ln in positive if ln.batch_id} - set(cost)
    if missing:  # a named batch not yet at this location: rare
        cost.update({b.pk: b.unit_cost for b in _load_batches(missing).values()})

    changes: list[Change] = []
    for ln in positive:
        if ln.line in created:
            batch_id = created[ln.line]
        elif ln.batch_id:
            batch_id = ln.batch_id
        else:
            batch_id = newest[(ln.location.pk, ln.product.pk)].batch_id
        changes.append(
            Change(
                ln.location.pk,
                batch_id,
                ln.product.pk,
                ln.quantity,
                cost[batch_id],
                ref_type,
                ln.line,
                reason,
            )
        )

    sort_order = {loc: 0 for loc in location_ids}
    left = {q.pk: q.quantity for q in quants}
    ordered = _by_place(quants, sort_order)
    shortfalls: list[Shortfall] = []
    for ln in negative:
        taken, need = _take(
            ordered.get((ln.location.pk, ln.product.pk), ()), left, -ln.quantity, ln.batch_id
        )
        changes += [
            Change(
                quant.location_id,
                quant.batch_id,
                quant.product_id,
                -take,
                quant.batch.unit_cost,
                ref_type,
                ln.line,
                reason,
            )
            for quant, take in taken
        ]
        if need > 0:
            shortfalls.append(
                Shortfall(ln.line, ln.product, ln.location.pk, -ln.quantity, -ln.quantity - need)
            )
    if shortfalls and not clamp:
        raise InsufficientStock(lines=[s.as_dict() for s in shortfalls], shortfalls=shortfalls)
    locked = {(q.location_id, q.batch_id): q for q in quants}
    rows, warnings = _apply(
        posting,
        changes,
        locked,
        kind="adjustment",
        stores={ln.location.pk: ln.location.store_id for ln in lines},
    )
    return Outcome(rows, shortfalls, warnings=warnings)


def count_post(
    *,
    posting: Posting,
    lines: list[CountedLine],
    ref_type: str = RefType.COUNT_RECONCILE,
    reason: str,
) -> Outcome:
    """Post what a count found, and settle the unallocated stock at each counted place.

    A count is the truth about a shelf: after it, the place holds what was counted in real
    lots, and no unallocated debt (stock sold there without stock) is left beside it — a debt
    next to ordinary lots would leave units sellable that are not on the shelf. Per line (one
    per place):

    1. the change: ``counted`` minus the place's current balance (its debt included), or the
       line's ``difference``;
    2. a positive change first pays the place's debt, then goes to the scanned lot, else the
       newest lot there, else a new lot at the product's last known cost; a negative change
       takes earliest expiry first (expired lots too) and is clamped to what is there — the
       rest is reported in ``Outcome.shortfalls`` (stock sold since the count cannot go twice);
    3. what the place still owes is then settled from its remaining ordinary stock, as pairs
       of rows (ordinary −x, unallocated +x) that leave the place's total unchanged.

    Locks every quant of the counted places, ordinary and unallocated, once and in id order;
    four statements at most (lock, new lots, quant upsert, ledger insert).
    """
    places = [(ln.location.pk, ln.product.pk) for ln in lines]
    if len(set(places)) != len(places):
        raise ValueError("count_post takes one line per (location, product)")
    pairs = sorted(places)
    quants = lock_quants(org=posting.org, match=QuantFilter(places=pairs)) if pairs else []
    left = {q.pk: q.quantity for q in quants}
    ordered = _by_place([q for q in quants if not q.unallocated], {loc: 0 for loc, _ in pairs})
    debt_of = {(q.location_id, q.product_id): q for q in quants if q.unallocated and q.quantity < 0}
    balance: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for quant in quants:
        balance[(quant.location_id, quant.product_id)] += quant.quantity

    # Step 1, and how much of each positive change is left once the debt is paid.
    plan = []
    for ln in lines:
        key = (ln.location.pk, ln.product.pk)
        change = ln.counted - balance[key] if ln.counted is not None else ln.difference
        owed = -debt_of[key].quantity if key in debt_of else ZERO
        pays = min(change, owed) if change > 0 else ZERO
        plan.append((ln, key, change, pays, change - pays if change > 0 else ZERO))

    newest: dict[tuple[int, int], StockQuant] = {
        key: max(group, key=lambda q: (q.batch.received_at, q.batch_id))
        for key, group in ordered.items()
    }
    # Overages with nowhere to go get a new lot-less batch: a plain insert that meets no
    # existing row, so it may come after the quant lock.
    homeless = [
        ln
        for ln, key, _, _, extra in plan
        if extra > 0 and ln.batch_id is None and key not in newest
    ]
    created = dict(
        zip(
            (ln.line for ln in homeless),
            _upsert_batches(
                posting.org,
                [
                    {"product": ln.product, "unit_cost": None, "received_at": posting.occurred_at}
                    for ln in homeless
                ],
            ),
            strict=True,
        )
    )
    cost = {q.batch_id: q.batch.unit_cost for q in quants}
    cost.update(dict(created.values()))
    named = {ln.batch_id for ln, _, _, _, extra in plan if extra > 0 and ln.batch_id}
    if named - set(cost):  # a scanned lot not yet at this place: rare
        cost.update({b.pk: b.unit_cost for b in _load_batches(named - set(cost)).values()})

    changes: list[Change] = []
    shortfalls: list[Shortfall] = []
    for ln, key, change, pays, extra in plan:
        debt = debt_of.get(key)
        owed = -debt.quantity if debt is not None else ZERO
        if pays:
            assert debt is not None  # only a place that owes is paid
            changes.append(
                Change(
                    key[0],
                    debt.batch_id,
                    key[1],
                    pays,
                    debt.batch.unit_cost,
                    ref_type,
                    ln.line,
                    reason,
                    unallocated=True,
                )
            )
            owed -= pays
        if extra > 0:
            batch_id = (
                created[ln.line][0] if ln.line in created else ln.batch_id or newest[key].batch_id
            )
            changes.append(
                Change(key[0], batch_id, key[1], extra, cost[batch_id], ref_type, ln.line, reason)
            )
        elif change < 0:
            taken, need = _take(ordered.get(key, ()), left, -change)
            changes += [
                Change(
                    key[0],
                    quant.batch_id,
                    key[1],
                    -take,
                    quant.batch.unit_cost,
                    ref_type,
                    ln.line,
                    reason,
                )
                for quant, take in taken
            ]
            if need > 0:
                shortfalls.append(Shortfall(ln.line, ln.product, key[0], -change, -change - need))
        if owed > 0:
            assert debt is not None  # step 3 (a positive change has paid everything already)
            taken, _ = _take(ordered.get(key, ()), left, owed)
            why = reason or "count settles stock sold without stock"
            for quant, take in taken:
                changes.append(
                    Change(
                        key[0],
                        quant.batch_id,
                        key[1],
                        -take,
                        quant.batch.unit_cost,
                        ref_type,
                        ln.line,
                        why,
                    )
                )
                changes.append(
                    Change(
                        key[0],
                        debt.batch_id,
                        key[1],
                        take,
                        debt.batch.unit_cost,
                        ref_type,
                        ln.line,
                        why,
                        unallocated=True,
                    )
                )
    locked = {(q.location_id, q.batch_id): q for q in quants}
    rows, warnings = _apply(
        posting,
        changes,
        locked,
        kind="count",
        stores={ln.location.pk: ln.location.store_id for ln in lines},
    )
    return Outcome(rows, shortfalls, warnings=warnings)


def reverse(
    *,
    posting: Posting,
    rows: list[dict],
    ref_type: str,
    reason: str = "",
    to_location_id: int | None = None,
) -> Outcome:
    """Post the opposite of ``rows`` (dicts with location_id, batch_id, product_id, qty_delta,
    unit_cost, ref_line), e.g. a void putting sold stock back where it came from.

    ``to_location_id`` sends positive reversals elsewhere (a refund into quarantine).
    """
    changes = [
        Change(
            to_location_id if (to_location_id and r["qty_delta"] < 0) else r["location_id"],
            r["batch_id"],
            r["product_id"],
            -r["qty_delta"],
            r["unit_cost"],
            ref_type,
            r["ref_line"],
            reason,
            unallocated=r.get("unallocated", False),
        )
        for r in rows
        if r["qty_delta"] != 0
    ]
    if not changes:
        return Outcome()
    pairs = {(c.location_id, c.batch_id) for c in changes}
    quants = lock_quants(
        org=posting.org,
        match=QuantFilter(locations={p[0] for p in pairs}, batches={p[1] for p in pairs}),
    )
    locked = {(q.location_id, q.batch_id): q for q in quants}
    written, warnings = _apply(posting, changes, locked, kind="reversal")
    return Outcome(written, warnings=warnings)
