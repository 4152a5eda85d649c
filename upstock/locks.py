"""Row locks of the upstock app. Their ranks are in the platform's one lock order,
``inventory.locks.LOCK_ORDER``: ``Store`` (creating a run) → ``UpstockRun`` (56) →
``UpstockLine`` (57) → stock quants (a pull's move, through the stock write path). The
discrepancy a missing/damaged exception records is created, not locked.
"""

from __future__ import annotations

from django.db import connection

from inventory.locks import lock_helper
from inventory.models import Store
from upstock.models import RunStatus, UpstockLine, UpstockRun


def _in_transaction() -> None:
    assert connection.in_atomic_block, "locks are taken inside the caller's transaction"


@lock_helper("inventory.Store")
def lock_store(*, org, store_id: int) -> Store:
    """The store: run creation for its floors takes it first, so two "create run" calls (a
    tablet and the nightly job) for one floor run one after the other, and the second finds
    the first's run."""
    _in_transaction()
    return Store.objects.filter(org=org, pk=store_id).select_for_update(of=("self",)).get()


@lock_helper("upstock.UpstockRun")
def lock_run(*, org, run_id: int) -> UpstockRun:
    _in_transaction()
    return (
        UpstockRun.objects.filter(org=org, pk=run_id)
        .select_related("store", "location")
        .select_for_update(of=("self",))
        .get()
    )


@lock_helper("upstock.UpstockRun")
def lock_open_runs(*, org, location_id: int) -> list[UpstockRun]:
    """The location's runs still in progress, by id: the ones a new run abandons."""
    _in_transaction()
    return list(
        UpstockRun.objects.filter(org=org, location_id=location_id, status=RunStatus.IN_PROGRESS)
        .order_by("pk")
        .select_for_update(of=("self",))
    )


@lock_helper("upstock.UpstockLine")
def lock_line(*, org, line_id: int) -> UpstockLine:
    _in_transaction()
    return (
        UpstockLine.objects.filter(org=org, pk=line_id)
        .select_related("run", "run__store", "run__location", "product")
        .select_for_update(of=("self",))
        .get()
    )
