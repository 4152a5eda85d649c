"""Running the invariant check and publishing what it found."""

from __future__ import annotations

from collections.abc import Iterable

from inventory.metrics import stock_out_of_sync_items
from inventory.models import Organization, Store
from inventory.selectors.reconciliation import ReconciliationReport, stock_reconciliation_get


def stock_reconciliation_run(*, org: Organization, store: Store | None = None,
                             store_ids: Iterable[int] | None = None) -> ReconciliationReport:
    """Check invariants 1–2 (``stock_reconciliation_get``) and publish the result.

    The ``stock_out_of_sync_items`` gauge of the organisation (``scope="all"``) or of the one
    store checked (its code) is set to the number of mismatching (location, batch) pairs, where
    every web process's ``/metrics`` reads it (``inventory.metrics.PublishedGauge``). A check
    of a set of stores (what a store-limited member sees) sees only part of the organisation
    and leaves the gauge alone.
    """
    report = stock_reconciliation_get(org=org, store=store, store_ids=store_ids)
    if store is not None or store_ids is None:
        stock_out_of_sync_items.set(len(report.mismatches), org=org.slug,
                                    scope=store.code if store else "all")
    return report
