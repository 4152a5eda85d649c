"""The stock write path's row locks: quants (``lock_quants``, typed ``QuantFilter``s, one
statement, in id order) and the sale a void or refund reverses. Their place in the platform's
one lock order is in ``inventory.locks.LOCK_ORDER``.

The quant lock also reads whether each quant's product is held at its store (``StockHold``,
kept by the discrepancies app): the write path's policies judge a sale against it without a
statement of their own (``is_held``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db import connection

from core import sql
from inventory.locks import lock_helper
from inventory.models import Batch, Location, Sale, StockHold, StockQuant


@dataclass(frozen=True)
class QuantFilter:
    """Which quants a write-path step locks: every criterion given must hold.

    Typed, so no caller writes SQL against the lock's table aliases. ``places`` are
    (location id, product id) pairs; ``ordinary`` True/False keeps only ordinary/unallocated
    quants; ``in_debt`` only negative ones; ``held`` only what a sale may touch (positive, or
    unallocated); ``sellable_or_at`` keeps quants at an active sellable location or at one of
    the given locations.
    """

    store: int | None = None
    locations: Collection[int] | None = None
    products: Collection[int] | None = None
    batches: Collection[int] | None = None
    places: Collection[tuple[int, int]] | None = None
    ordinary: bool | None = None
    in_debt: bool = False
    held: bool = False
    sellable_or_at: Collection[int] | None = None

    def sql(self) -> tuple[str, list]:
        parts: list[str] = []
        params: list = []

        def add(condition: str, values: Iterable = ()) -> None:
            parts.append(condition)
            params.extend(values)

        if self.store is not None:
            add("q.store_id = %s", [self.store])
        for column, values in (
            ("q.location_id", self.locations),
            ("q.product_id", self.products),
            ("q.batch_id", self.batches),
        ):
            if values is not None:
                add(*sql.in_list(column, sorted(values)))
        if self.places is not None:
            add(
                *sql.pairs_in(
                    ("q.location_id", "q.product_id"), sorted(self.places), ("bigint", "bigint")
                )
            )
        if self.ordinary is True:
            add("NOT q.unallocated")
        elif self.ordinary is False:
            add("q.unallocated")
        if self.in_debt:
            add("q.quantity < 0")
        if self.held:
            add("(q.quantity > 0 OR q.unallocated)")
        if self.sellable_or_at is not None:
            named, named_params = sql.in_list("q.location_id", sorted(self.sellable_or_at))
            add(f"((l.sellable AND l.is_active) OR {named})", named_params)
        return " AND ".join(parts) or "1 = 1", params


_QUANT_FIELDS = StockQuant._meta.concrete_fields
_BATCH_FIELDS = Batch._meta.concrete_fields
# What the write path needs of a location; the rest is deferred.
_LOCATION_FIELDS = [
    field
    for field in Location._meta.concrete_fields  # in model order
    if field.name in ("id", "store", "sort_order", "sellable", "is_active")
]
_LOCATION_NAMES = [field.attname for field in _LOCATION_FIELDS]
_QUANT_BATCH = StockQuant._meta.get_field("batch")
_QUANT_LOCATION = StockQuant._meta.get_field("location")
# Whether the quant's product is held at its store: one index probe of
# ``stock_hold_store_product`` per locked quant, read (not locked) with the quants.
_HELD_SQL = (
    f"EXISTS (SELECT 1 FROM {StockHold._meta.db_table} h WHERE h.org_id = q.org_id"
    " AND h.store_id = q.store_id AND h.product_id = q.product_id)"
)
_LOCK_SQL = (
    f"SELECT {sql.columns(_QUANT_FIELDS, 'q')}, {sql.columns(_BATCH_FIELDS, 'b')},"
    f" {sql.columns(_LOCATION_FIELDS, 'l')}, {_HELD_SQL}"
    f" FROM {StockQuant._meta.db_table} q"
    f" JOIN {Batch._meta.db_table} b ON b.id = q.batch_id"
    f" JOIN {Location._meta.db_table} l ON l.id = q.location_id"
    " WHERE q.org_id = %s AND ({where}) ORDER BY q.id"
)


@lock_helper("inventory.StockQuant")
def lock_quants(*, org, match: QuantFilter | Iterable[QuantFilter]) -> list[StockQuant]:
    """Lock the org's quants that ``match`` (one filter, or several: any of them), in id
    order, each with its batch and location loaded (the location's id, store, sort order,
    sellable and active flags) and whether its product is held at its store (``is_held``), in
    one statement.

    Only the quants are locked. ``ORDER BY q.id`` is what keeps concurrent documents with
    overlapping quants from deadlocking: every transaction waits for the same rows in the same
    order. Hand-written because this runs in every stock write, and compiling the equivalent
    queryset cost more than running it.
    """
    assert connection.in_atomic_block, "lock_quants must run inside the caller's transaction"
    filters = [match] if isinstance(match, QuantFilter) else list(match)
    conditions, params = [], []
    for item in filters:
        condition, values = item.sql()
        conditions.append(f"({condition})")
        params += values
    where = " OR ".join(conditions) or "1 = 0"
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL.format(where=where) + sql.for_update("q"), [org.pk, *params])
        rows = cursor.fetchall()
    quants = sql.instances(StockQuant, _QUANT_FIELDS, rows)
    batches = sql.instances(Batch, _BATCH_FIELDS, rows, start=len(_QUANT_FIELDS))
    start = len(_QUANT_FIELDS) + len(_BATCH_FIELDS)
    end = start + len(_LOCATION_NAMES)
    locations: dict[int, Location] = {}  # one instance per room (a count: thousands of quants)
    for quant, batch, row in zip(quants, batches, rows, strict=True):
        _QUANT_BATCH.set_cached_value(quant, batch)
        location = locations.get(row[start])
        if location is None:
            location = locations[row[start]] = Location.from_db(
                connection.alias, _LOCATION_NAMES, row[start:end]
            )
        _QUANT_LOCATION.set_cached_value(quant, location)
        # not a column: what the lock read beside the row, as an annotation would be
        quant.on_hold = bool(row[end])  # type: ignore[attr-defined]
    return quants


def is_held(quant: StockQuant) -> bool | None:
    """Whether ``quant``'s product was held at its store when ``lock_quants`` locked it
    (``quant.on_hold``); None for a quant loaded some other way."""
    return getattr(quant, "on_hold", None)


@lock_helper("inventory.Sale")
def lock_sale(*, org, sale_id: int) -> Sale:
    assert connection.in_atomic_block, "lock_sale must run inside the caller's transaction"
    return Sale.objects.filter(org=org, pk=sale_id).select_for_update(of=("self",)).get()
