"""Refused or oversold stock moves are kept, so "blocked" never means "forgotten"."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from django.db import transaction

from inventory.models import Organization, StockShortfall, Store

if TYPE_CHECKING:
    from inventory.stock.write_path import Shortfall


def shortfalls_record(
    *,
    org: Organization,
    store: Store,
    shortfalls: list[Shortfall],
    outcome: str,
    ref_type: str,
    ref_id: int | None,
    client_ref: str,
    occurred_at: datetime.datetime,
    actor,
) -> None:
    """One row per short line: after a refused document rolled back (its own transaction),
    inside a sale that booked a shortfall to the unallocated batch, or inside a count's
    finalisation for the part of a shortage it could not post (``clamped``)."""
    with transaction.atomic():
        StockShortfall.objects.bulk_create(
            StockShortfall(
                org=org,
                store=store,
                location_id=s.location_id,
                product_id=s.product.pk,
                requested=s.requested,
                available=s.available,
                outcome=outcome,
                ref_type=ref_type,
                ref_id=ref_id,
                client_ref=client_ref,
                user=actor if getattr(actor, "pk", None) else None,
                occurred_at=occurred_at,
            )
            for s in shortfalls
        )
