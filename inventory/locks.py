"""The platform's one lock order, and the lock helpers of inventory's own rows.

``LOCK_ORDER`` is the order of every row lock of every app: a transaction takes what it needs
in that order, each kind by ascending id, so two transactions never wait for each other in a
circle. Every lock helper of every app (here, ``inventory.stock.locks``, ``counts.locks`` and
the apps to come) is declared with ``@lock_helper(row)`` naming its row in this table; a test
checks that each declared row is in it and that nothing outside the ``locks`` modules locks
rows. A new lockable row is added to the table first.

Locks are taken once per transaction, by statements that run at once (a lazy
``select_for_update`` that is never iterated would lock nothing), always ``ORDER BY`` id.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Q

from inventory.models import Membership, Organization, Product, Role

#: (rank, row as "app_label.Model", what takes it). Ranks ascend: a transaction that holds a
#: row of rank N only ever waits for rows of rank > N, or for rows of rank N with a higher id.
LOCK_ORDER: tuple[tuple[int, str, str], ...] = (
    (10, "inventory.Organization", "org settings (inventory.tenancy.services)"),
    (20, "inventory.Membership", "role changes: the org's admins and the target, by id"),
    (30, "inventory.Product", "catalog edits and bulk upserts, by id / sku"),
    (40, "inventory.Store", "count pass creation (the scope-overlap check)"),
    (50, "counts.CountSession", "every count service"),
    (51, "counts.CountPass", "pass and line services"),
    (52, "counts.VarianceRow", "variance decisions"),
    (53, "counts.UnresolvedScan", "mapping unknown scans"),
    (54, "discrepancies.CorrectionRequest", "deciding a line of an ad-hoc correction"),
    (55, "discrepancies.Discrepancy", "review, approve, reject; count finalisation, by id"),
    (56, "upstock.UpstockRun", "run create (the location's open runs), complete, abandon"),
    (57, "upstock.UpstockLine", "done, skip, exception, scan: the one line settled"),
    (60, "inventory.Sale", "voids and refunds: the one sale reversed"),
    (70, "inventory.Batch", "lot upserts of receipts and adjustments, VALUES sorted by key"),
    (80, "inventory.StockQuant", "every stock write: lock_quants, by id"),
    (90, "inventory.StockQuant (new)", "quant upserts after the lock, VALUES sorted by key"),
    (95, "inventory.StockHold", "holds kept by the discrepancies app after its postings"),
)

_registered: dict[str, str] = {}


def lock_helper(model_label: str):
    """Declare that the decorated function locks rows of ``model_label`` (which must be in
    ``LOCK_ORDER``): the test of the lock order reads this registry."""

    def register(function):
        _registered[f"{function.__module__}.{function.__name__}"] = model_label
        return function

    return register


def lock_helpers() -> dict[str, str]:
    """Every registered lock helper (dotted name) and the row it locks."""
    return dict(_registered)


def _in_transaction(name: str) -> None:
    assert connection.in_atomic_block, f"{name} must run inside the caller's transaction"


@lock_helper("inventory.Organization")
def lock_organization(*, org: Organization) -> Organization:
    _in_transaction("lock_organization")
    return Organization.objects.select_for_update().get(pk=org.pk)


@lock_helper("inventory.Membership")
def lock_admin_memberships(*, org: Organization, also: int) -> dict[int, Membership]:
    """The organisation's admin memberships and membership ``also``, by id: what the last-admin
    rule reads, locked so two demotions cannot both pass it."""
    _in_transaction("lock_admin_memberships")
    return {
        m.pk: m
        for m in Membership.objects.filter(org=org)
        .filter(Q(role=Role.ADMIN) | Q(pk=also))
        .order_by("pk")
        .select_for_update()
    }


@lock_helper("inventory.Product")
def lock_products(
    *, org: Organization, ids: Iterable[int] = (), skus: Iterable[str] = ()
) -> list[Product]:
    """Products by id or SKU, in id order (two bulk upserts of overlapping SKUs must meet their
    rows in one order)."""
    _in_transaction("lock_products")
    return list(
        Product.objects.filter(org=org)
        .filter(Q(pk__in=list(ids)) | Q(sku__in=list(skus)))
        .order_by("pk")
        .select_for_update()
    )
