"""Stock holds: which products are held at which stores, kept by the app that judges them.

Inventory only stores the flag (``StockHold``) and reads it in the write path's quant lock;
the discrepancies app decides when a hold starts and ends, and what it does (its enforcement
policy). Holds are written after a transaction's stock postings (``inventory.locks``,
rank 95), by the two statements below.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from core.bulk import any_of
from inventory.models import Organization, StockHold


def holds_sync(
    *,
    org: Organization,
    held: Iterable[tuple[int, int]],
    released: Iterable[tuple[int, int]],
) -> None:
    """Hold every (store id, product id) in ``held`` and release every one in ``released``
    (one upsert and one delete; holding what is held, or releasing what is not, changes
    nothing). Runs in the caller's transaction."""
    assert connection.in_atomic_block, "holds_sync runs inside the caller's transaction"
    held, released = sorted(set(held)), sorted(set(released) - set(held))
    if released:
        # one condition per store (a count releases thousands of products of one store: an OR
        # per pair took Django a second to compile)
        by_store: dict[int, list[int]] = defaultdict(list)
        for store_id, product_id in released:
            by_store[store_id].append(product_id)
        condition = Q()
        for store_id, product_ids in by_store.items():
            condition |= Q(any_of("product_id", product_ids), store_id=store_id)
        StockHold.objects.filter(org=org).filter(condition).delete()
    if held:
        now = timezone.now()
        StockHold.objects.bulk_create(
            [StockHold(org=org, store_id=s, product_id=p, since=now) for s, p in held],
            ignore_conflicts=True,
        )


def held_pairs(*, org: Organization, store_id: int, product_ids: Iterable[int]) -> set[int]:
    """The products among ``product_ids`` held at the store (for postings whose quants the
    write path did not read: a product with no stock there yet)."""
    return set(
        StockHold.objects.filter(
            org=org, store_id=store_id, product_id__in=sorted(set(product_ids))
        ).values_list("product_id", flat=True)
    )
