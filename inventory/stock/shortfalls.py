"""Refused or oversold stock moves are kept, so "blocked" never means "forgotten".

Other apps learn of them through listeners (``register_shortfall_listener``, from their
``AppConfig.ready``): the discrepancies app turns a sale's oversell and a count's clamped
remainder into discrepancies. Inventory imports no other app; the listeners plug in here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import transaction

from inventory.models import Organization, StockShortfall, Store

if TYPE_CHECKING:
    from inventory.stock.write_path import Shortfall

#: listener(org, store, rows): the ``StockShortfall`` rows just recorded (with their ids, and
#: their products loaded), inside the recording transaction.
ShortfallListener = Callable[[Organization, Store, list[StockShortfall]], None]
_listeners: list[ShortfallListener] = []


def register_shortfall_listener(listener: ShortfallListener) -> None:
    """Call ``listener`` with every batch of shortfalls recorded (idempotent: ``ready`` may
    run twice). It runs inside the recording's transaction: what it writes commits or rolls
    back with the shortfalls, and an error it raises refuses the recording."""
    if listener not in _listeners:
        _listeners.append(listener)


def unregister_shortfall_listener(listener: ShortfallListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


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
    finalisation for the part of a shortage it could not post (``clamped``). The registered
    listeners hear of them in the same transaction."""
    with transaction.atomic():
        rows = StockShortfall.objects.bulk_create(
            StockShortfall(
                org=org,
                store=store,
                location_id=s.location_id,
                product=s.product,
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
        for listener in _listeners:
            listener(org, store, rows)
