"""Row locks of the counts app. Their ranks are in the platform's one lock order,
``inventory.locks.LOCK_ORDER``: ``Store`` (pass creation: the scope-overlap check) →
``CountSession`` → ``CountPass`` → ``VarianceRow`` → ``UnresolvedScan`` → stock quants
(finalisation, through the stock write path).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from core.bulk import any_of
from counts.models import CountPass, CountSession, UnresolvedScan, VarianceRow
from inventory.locks import lock_helper
from inventory.models import Store


def _in_transaction() -> None:
    assert connection.in_atomic_block, "locks are taken inside the caller's transaction"


@lock_helper("inventory.Store")
def lock_store(*, org, store_id: int) -> Store:
    _in_transaction()
    return Store.objects.filter(org=org, pk=store_id).select_for_update(of=("self",)).get()


@lock_helper("counts.CountSession")
def lock_session(*, org, session_id: int) -> CountSession:
    _in_transaction()
    return CountSession.objects.filter(org=org, pk=session_id).select_for_update(of=("self",)).get()


@lock_helper("counts.CountPass")
def lock_pass(*, org, pass_id: int) -> CountPass:
    _in_transaction()
    return (
        CountPass.objects.filter(org=org, pk=pass_id)
        .select_related("session", "location")
        .select_for_update(of=("self",))
        .get()
    )


@lock_helper("counts.CountSession")
def lock_sessions(*, org, ids) -> dict[int, CountSession]:
    """Several sessions, in id order (deciding a selection of discrepancies from many counts)."""
    _in_transaction()
    return {
        s.pk: s
        for s in CountSession.objects.filter(org=org, pk__in=sorted(set(ids)))
        .order_by("pk")
        .select_for_update(of=("self",))
    }


@lock_helper("counts.VarianceRow")
def lock_variance_rows(*, org, ids, only: Sequence[str] = ()) -> dict[int, VarianceRow]:
    """Variance rows in id order; ``only`` loads just those fields (a bulk decision over
    thousands of rows reads five of them)."""
    _in_transaction()
    rows = VarianceRow.objects.filter(any_of("pk", sorted(set(ids))), org=org)
    if only:
        rows = rows.only(*only)
    return {r.pk: r for r in rows.order_by("pk").select_for_update(of=("self",))}


@lock_helper("counts.VarianceRow")
def lock_variance_row(*, org, row_id: int) -> VarianceRow:
    _in_transaction()
    return VarianceRow.objects.filter(org=org, pk=row_id).select_for_update(of=("self",)).get()


@lock_helper("counts.UnresolvedScan")
def lock_unresolved_scan(*, org, scan_id: int) -> UnresolvedScan:
    _in_transaction()
    return UnresolvedScan.objects.filter(org=org, pk=scan_id).select_for_update(of=("self",)).get()
