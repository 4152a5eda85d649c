"""The only place that takes row locks.

Global lock order (a transaction takes what it needs in this order, each kind by ascending id):

1. ``Sale`` (void/refund: the one sale being reversed)
2. ``StockQuant`` rows, by id — ``lock_quants``
3. new quants and batches are then written with upserts whose VALUES are sorted by key

Locks are taken once per transaction and the queryset is evaluated here (a lazy
``select_for_update`` that is never iterated locks nothing).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q

from inventory.models import Sale, StockQuant


def lock_quants(*, org, condition: Q) -> list[StockQuant]:
    """Lock the org's quants matching ``condition``, in id order, with their batch loaded.

    ``order_by("id")`` is what keeps concurrent documents with overlapping quants from
    deadlocking: every transaction waits for the same rows in the same order.
    """
    assert connection.in_atomic_block, "lock_quants must run inside the caller's transaction"
    return list(
        StockQuant.objects.filter(org=org).filter(condition)
        .select_related("batch")
        .order_by("id")
        .select_for_update(of=("self",))
    )


def lock_sale(*, org, sale_id: int) -> Sale:
    assert connection.in_atomic_block, "lock_sale must run inside the caller's transaction"
    return Sale.objects.filter(org=org, pk=sale_id).select_for_update(of=("self",)).get()
