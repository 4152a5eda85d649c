"""Row locks of the discrepancies app. Their ranks are in the platform's one lock order,
``inventory.locks.LOCK_ORDER``: a source's own rows first (a count's session and variance
row), then ``CorrectionRequest`` → ``Discrepancy`` (by id) → stock quants (the correction's
posting, through the write path) → ``StockHold`` (kept after the postings).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection

from core.bulk import any_of
from discrepancies.models import CorrectionRequest, Discrepancy
from inventory.locks import lock_helper


def _in_transaction() -> None:
    assert connection.in_atomic_block, "locks are taken inside the caller's transaction"


@lock_helper("discrepancies.CorrectionRequest")
def lock_correction_request(*, org, request_id: int) -> CorrectionRequest:
    _in_transaction()
    return (
        CorrectionRequest.objects.filter(org=org, pk=request_id)
        .select_for_update(of=("self",))
        .get()
    )


@lock_helper("discrepancies.CorrectionRequest")
def lock_correction_requests(*, org, ids: Iterable[int]) -> dict[int, CorrectionRequest]:
    """The org's correction requests with these ids (with their stores), locked in id order:
    what deciding their lines takes first, so two people approving lines of one request
    queue here (missing ids are absent)."""
    _in_transaction()
    return {
        r.pk: r
        for r in CorrectionRequest.objects.filter(org=org, pk__in=sorted(set(ids)))
        .select_related("store")
        .order_by("pk")
        .select_for_update(of=("self",))
    }


@lock_helper("discrepancies.Discrepancy")
def lock_discrepancies(
    *, org, ids: Iterable[int], with_names: bool = False, only: Sequence[str] = ()
) -> dict[int, Discrepancy]:
    """The org's discrepancies with these ids, locked in id order (missing ids are absent).

    ``with_names`` loads each one's product and store too (what an e-mail shows); deciding
    and finalising need only the row — building 5,000 products along with it costs a bulk
    decision a quarter of a second. ``only`` loads just those fields of the row."""
    _in_transaction()
    rows = Discrepancy.objects.filter(any_of("pk", sorted(set(ids))), org=org)
    if with_names:
        rows = rows.select_related("product", "store")
    if only:
        rows = rows.only(*only)
    return {d.pk: d for d in rows.order_by("pk").select_for_update(of=("self",))}
