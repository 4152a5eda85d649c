"""Refused or oversold stock moves are kept, so "blocked" never means "forgotten"."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import transaction

from inventory.models import Organization, StockShortfall, Store


def shortfalls_record(*, org: Organization, store: Store, shortfalls: list[dict],
                      outcome: str, ref_type: str, ref_id: int | None, client_ref: str,
                      occurred_at: datetime.datetime, actor) -> None:
    """One row per short line. Called after a refused document rolled back (its own
    transaction), or inside a sale that booked a shortfall to the unallocated batch."""
    with transaction.atomic():
        StockShortfall.objects.bulk_create(
            StockShortfall(
                org=org, store=store, location_id=s.get("location"), product_id=s["product"],
                requested=Decimal(s["requested"]), available=Decimal(s["available"]),
                outcome=outcome, ref_type=ref_type, ref_id=ref_id, client_ref=client_ref,
                user=actor if getattr(actor, "pk", None) else None, occurred_at=occurred_at,
            )
            for s in shortfalls
        )
