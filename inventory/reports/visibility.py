"""Stock a caller may not read yet: the places under an open blind count.

A blind count hides what the system expects from the people counting, so they count what is
there rather than confirm a number. That only works if no other read gives the number away: the
stock list, a product's lots, the summary, the KPIs, the ledger (its balance is the on-hand) and
the ``available`` figure of a refused sale. So the selectors that read stock leave these places
out for roles that may not see a blind count's expected quantities, and every read — and every
screen built on them — inherits it.

The counts app knows which counts are open; inventory imports no other app, so counts
registers a *provider* here (``register_hidden_stock``, called from its ``AppConfig.ready``)
and the selectors ask it through ``hidden_zones``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.db.models import Q

from inventory.models import Organization


@dataclass(frozen=True)
class HiddenZone:
    """Locations of one store (``None``: all of them) × product categories (empty: all).

    ``categories`` holds ``(category, subcategory)`` pairs; an empty subcategory covers the
    whole category. Names compare case-insensitively, as count scopes do.
    """

    store_id: int
    location_ids: frozenset[int] | None = None
    categories: tuple[tuple[str, str], ...] = ()

    def q(self, product: str = "product__") -> Q:
        """Rows (quants or ledger rows, which both carry store, location and product) inside
        the zone."""
        condition = Q(store_id=self.store_id)
        if self.location_ids is not None:
            condition &= Q(location_id__in=sorted(self.location_ids))
        if self.categories:
            condition &= reduce(
                or_,
                (
                    Q(**{f"{product}category__iexact": category})
                    & (Q(**{f"{product}subcategory__iexact": sub}) if sub else Q())
                    for category, sub in self.categories
                ),
            )
        return condition

    def covers(self, *, location_id: int | None, category: str, subcategory: str) -> bool:
        if (
            self.location_ids is not None
            and location_id is not None
            and (location_id not in self.location_ids)
        ):
            return False
        if not self.categories:
            return True
        return any(
            category.lower() == c.lower() and (not s or subcategory.lower() == s.lower())
            for c, s in self.categories
        )


#: (org, store ids or None for all) -> the zones hidden from roles without count.expected_view
Provider = Callable[[Organization, Iterable[int] | None], Iterable[HiddenZone]]
_providers: list[Provider] = []


def register_hidden_stock(provider: Provider) -> None:
    """Add a source of hidden places (idempotent: an app's ``ready`` may run twice in tests)."""
    if provider not in _providers:
        _providers.append(provider)


def hidden_zones(
    *, org: Organization, store_ids: Iterable[int] | None = None
) -> tuple[HiddenZone, ...]:
    """Every zone hidden right now in the organisation's stores (or only ``store_ids``)."""
    ids = None if store_ids is None else sorted(store_ids)
    return tuple(zone for provider in _providers for zone in provider(org, ids))


def hidden_q(zones: Iterable[HiddenZone], product: str = "product__") -> Q | None:
    """One condition matching rows inside any of ``zones``; None when there are none."""
    parts = [zone.q(product) for zone in zones]
    return reduce(or_, parts) if parts else None


def products_hidden_in_store(*, org: Organization, store_id: int, skus: Iterable[str]) -> set[str]:
    """The SKUs among ``skus`` that an open blind count covers somewhere in the store: their
    availability there is not for the caller to see (a refused sale's ``available``, a
    warning's). No query when the store has no open blind count; one otherwise."""
    zones = hidden_zones(org=org, store_ids=[store_id])
    if not zones:
        return set()
    from inventory.models import Product

    products = Product.objects.filter(org=org, sku__in=[sku for sku in skus if sku])
    return {
        product.sku
        for product in products.only("sku", "category", "subcategory")
        if any(
            zone.covers(
                location_id=None,
                category=product.category or "",
                subcategory=product.subcategory or "",
            )
            for zone in zones
        )
    }
