"""The only place that takes row locks.

Global lock order (a transaction takes what it needs in this order, each kind by ascending id):

1. ``Sale`` (void/refund: the one sale being reversed)
2. ``StockQuant`` rows, by id — ``lock_quants``
3. new quants and batches are then written with upserts whose VALUES are sorted by key

Locks are taken once per transaction, by statements that run at once (a lazy
``select_for_update`` that is never iterated would lock nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from core import sql
from inventory.models import Batch, Location, Sale, StockQuant

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
_LOCK_SQL = (
    f"SELECT {sql.columns(_QUANT_FIELDS, 'q')}, {sql.columns(_BATCH_FIELDS, 'b')},"
    f" {sql.columns(_LOCATION_FIELDS, 'l')}"
    f" FROM {StockQuant._meta.db_table} q"
    f" JOIN {Batch._meta.db_table} b ON b.id = q.batch_id"
    f" JOIN {Location._meta.db_table} l ON l.id = q.location_id"
    " WHERE q.org_id = %s AND ({where}) ORDER BY q.id"
)


def lock_quants(*, org, where: str, params: Sequence = ()) -> list[StockQuant]:
    """Lock the org's quants matching ``where``, in id order, each with its batch and location
    loaded (the location's id, store, sort order, sellable and active flags).

    ``where`` is a SQL condition over the quant ``q``, its batch ``b`` and its location ``l``
    (build lists with ``core.sql.in_list``), with ``%s`` placeholders for ``params``.
    Only the quants are locked. ``ORDER BY q.id`` is what keeps concurrent documents with
    overlapping quants from deadlocking: every transaction waits for the same rows in the same
    order. Hand-written because this runs in every stock write, and compiling the equivalent
    queryset cost more than running it.
    """
    assert connection.in_atomic_block, "lock_quants must run inside the caller's transaction"
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL.format(where=where) + sql.for_update("q"), [org.pk, *params])
        rows = cursor.fetchall()
    quants = sql.instances(StockQuant, _QUANT_FIELDS, rows)
    batches = sql.instances(Batch, _BATCH_FIELDS, rows, start=len(_QUANT_FIELDS))
    start = len(_QUANT_FIELDS) + len(_BATCH_FIELDS)
    for quant, batch, row in zip(quants, batches, rows, strict=True):
        _QUANT_BATCH.set_cached_value(quant, batch)
        _QUANT_LOCATION.set_cached_value(
            quant, Location.from_db(connection.alias, _LOCATION_NAMES, row[start:])
        )
    return quants


def lock_sale(*, org, sale_id: int) -> Sale:
    assert connection.in_atomic_block, "lock_sale must run inside the caller's transaction"
    return Sale.objects.filter(org=org, pk=sale_id).select_for_update(of=("self",)).get()
