"""Stock reads: the stock list, a product's batches, the ledger, COGS, the summary and KPIs.

Every read here is set-based: numbers are aggregated by the database (``SUM … GROUP BY`` with
``FILTER`` clauses), so a read costs the same few queries for two rows or twenty thousand.

Expiry is judged in each store's own calendar: a lot is *expired* when its expiry date is before
the store-local today (the same rule the write path applies to sales), and *expiring* when it
expires between today and today + N days. Stores in other time zones may be on another date, so
those conditions are built per group of stores sharing a date (usually one or two groups).

Every selector takes a ``StockScope``: the organisation and the stores the caller may see
(and chose). Nothing here filters by organisation implicitly.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import NotFound
from inventory.models import (
    Location,
    Organization,
    Product,
    ProductBarcode,
    RefType,
    StockLedger,
    StockQuant,
    StockShortfall,
    Store,
    Unit,
)
from inventory.reports.visibility import HiddenZone, hidden_q, hidden_zones

ZERO = Decimal("0")
DEFAULT_EXPIRING_WITHIN = 30
QTY_FIELD = DecimalField(max_digits=18, decimal_places=4)
VALUE_FIELD = DecimalField(max_digits=32, decimal_places=8)
COGS_REF_TYPES = (RefType.SALE, RefType.REFUND, RefType.VOID)

STATUS_LOW, STATUS_NORMAL, STATUS_HIGH = "low", "normal", "high"
STATUSES = (STATUS_LOW, STATUS_NORMAL, STATUS_HIGH)


def _zero(field=QTY_FIELD) -> Value:
    return Value(ZERO, output_field=field)


def _total(expression, *, filter=None, field=QTY_FIELD):  # noqa: A002 - Django's own name
    """``SUM`` that answers 0 rather than NULL when no row matches."""
    return Coalesce(
        Sum(expression, filter=filter, output_field=field), _zero(field), output_field=field
    )


STOCK_VALUE = ExpressionWrapper(F("quantity") * F("batch__unit_cost"), output_field=VALUE_FIELD)


# --- scope: which stores, and what day it is in each -------------------------------------------


@dataclass(frozen=True)
class StockScope:
    """The organisation, the stores a read covers, and each store's local date.

    ``limited`` is False when the read covers every store of the organisation (then no store
    filter is needed: the org filter says it all).
    """

    org: Organization
    stores: tuple[Store, ...]
    today: dict[int, datetime.date]
    limited: bool
    #: places under an open blind count that this caller may not read (``visibility``)
    hidden: tuple[HiddenZone, ...] = ()

    def visible(self, rows: QuerySet) -> QuerySet:
        """``rows`` (quants or ledger rows) without those in hidden places."""
        condition = hidden_q(self.hidden)
        return rows if condition is None else rows.exclude(condition)

    @property
    def store_ids(self) -> list[int]:
        return [store.pk for store in self.stores]

    def stores_q(self, prefix: str = "") -> Q:
        return Q(**{f"{prefix}store_id__in": self.store_ids}) if self.limited else Q()

    def by_date(self) -> dict[datetime.date, list[int]]:
        groups: dict[datetime.date, list[int]] = defaultdict(list)
        for store_id, day in self.today.items():
            groups[day].append(store_id)
        return groups

    def _per_date(self, make) -> Q:
        """OR over the groups of stores sharing a local date of ``make(day)``.

        When every store in scope is on the same date (the usual case) no store condition is
        needed: the rows read are already limited to these stores.
        """
        groups = sorted(self.by_date().items())
        if len(groups) == 1:
            return make(groups[0][0])
        parts = [Q(store_id__in=ids) & make(day) for day, ids in groups]
        return reduce(or_, parts) if parts else Q(pk__in=[])

    def expired_q(self) -> Q:
        return self._per_date(lambda day: Q(batch__expiry_date__lt=day))

    def not_expired_q(self) -> Q:
        return Q(batch__expiry_date__isnull=True) | self._per_date(
            lambda day: Q(batch__expiry_date__gte=day)
        )

    def expiring_q(self, within_days: int) -> Q:
        return self._per_date(
            lambda day: Q(
                batch__expiry_date__gte=day,
                batch__expiry_date__lte=day + datetime.timedelta(days=within_days),
            )
        )

    def local_today(self, store_ids) -> datetime.date | None:
        """The latest local date among ``store_ids``: a lot past expiry in any is expired."""
        days = [self.today[s] for s in store_ids if s in self.today]
        return max(days) if days else None


def stock_scope(
    *,
    org: Organization,
    store_ids: frozenset[int] | None = None,
    store_id: int | None = None,
    now: datetime.datetime | None = None,
    hide_blind_counts: bool = False,
) -> StockScope:
    """The stores a caller may read (``store_ids`` None = all), narrowed to ``store_id``.

    A ``store_id`` of another organisation, or one the caller may not use, raises ``NotFound``
    exactly like a missing one. One query; one more with ``hide_blind_counts`` (callers whose
    role may not see a blind count's expected quantities), which leaves the places under an
    open blind count out of every read through this scope.
    """
    stores = Store.objects.filter(org=org).only("pk", "code", "time_zone").order_by("code")
    if store_ids is not None:
        stores = stores.filter(pk__in=store_ids)
    if store_id is not None:
        stores = stores.filter(pk=store_id)
    found = tuple(stores)
    if store_id is not None and not found:
        raise NotFound()
    now = now or timezone.now()
    today = {s.pk: timezone.localtime(now, zoneinfo.ZoneInfo(s.time_zone)).date() for s in found}
    hidden = (
        hidden_zones(org=org, store_ids=[s.pk for s in found])
        if (hide_blind_counts and found)
        else ()
    )
    return StockScope(
        org=org,
        stores=found,
        today=today,
        limited=store_ids is not None or store_id is not None,
        hidden=hidden,
    )


def location_get(*, scope: StockScope, location_id: int) -> Location:
    location = Location.objects.filter(
        org=scope.org, pk=location_id, store_id__in=scope.store_ids
    ).first()
    if location is None:
        raise NotFound()
    return location


def product_get(*, scope: StockScope, product_id: int) -> Product:
    product = Product.objects.filter(org=scope.org, pk=product_id).first()
    if product is None:
        raise NotFound()
    return product


def _search_q(org: Organization, text: str, prefix: str = "product__") -> Q:
    """Name or SKU containing ``text``, or a barcode containing it (as a subquery: a join to
    barcodes would multiply the summed quant rows)."""
    barcodes = ProductBarcode.objects.filter(org=org, code__icontains=text).values("product_id")
    return (
        Q(**{f"{prefix}name__icontains": text})
        | Q(**{f"{prefix}sku__icontains": text})
        | Q(**{f"{prefix}{'id' if prefix else 'pk'}__in": barcodes})
    )


def _catalog_q(org, *, category=None, subcategory=None, search=None, prefix="product__") -> Q:
    q = Q()
    if category:
        q &= Q(**{f"{prefix}category__iexact": category})
    if subcategory:
        q &= Q(**{f"{prefix}subcategory__iexact": subcategory})
    if search:
        q &= _search_q(org, search, prefix)
    return q


def _quants(scope: StockScope) -> QuerySet:
    return scope.visible(StockQuant.objects.filter(org=scope.org).filter(scope.stores_q()))


# --- the stock list -----------------------------------------------------------------------------


def stock_list(
    *,
    scope: StockScope,
    location_id: int | None = None,
    product_id: int | None = None,
    category: str | None = None,
    subcategory: str | None = None,
    status: str | None = None,
    expiring: bool | None = None,
    search: str | None = None,
    expiring_within: int = DEFAULT_EXPIRING_WITHIN,
) -> QuerySet:
    """One row (a dict) per (product, store) with quants, numbers summed in SQL.

    ``on_hand`` sums every quant (a negative unallocated quant included); ``sellable`` only
    positive, unexpired quants at sellable locations; ``expired`` quants whose lot expired
    before the store-local today; ``value`` quantity × the lot's unit cost; ``expiring_soon``
    positive quants of lots expiring within ``expiring_within`` days. ``status`` is ``low`` at
    or below the reorder point, ``high`` above reorder point + reorder quantity (both set),
    else ``normal``. Ordered by SKU, then store code.
    """
    quants = _quants(scope).filter(
        _catalog_q(scope.org, category=category, subcategory=subcategory, search=search)
    )
    if location_id is not None:
        quants = quants.filter(location_id=location_id)
    if product_id is not None:
        quants = quants.filter(product_id=product_id)
    rows = (
        quants.values(
            "product_id",
            "store_id",
            sku=F("product__sku"),
            name=F("product__name"),
            brand=F("product__brand"),
            category=F("product__category"),
            subcategory=F("product__subcategory"),
            unit=F("product__unit"),
            reorder_point=F("product__reorder_point"),
            reorder_qty=F("product__reorder_qty"),
            store_code=F("store__code"),
        )
        .annotate(
            on_hand=_total("quantity"),
            sellable=_total(
                "quantity",
                filter=Q(location__sellable=True, quantity__gt=0) & scope.not_expired_q(),
            ),
            expired=_total("quantity", filter=scope.expired_q()),
            value=_total(STOCK_VALUE, field=VALUE_FIELD),
            expiring_soon=_total(
                "quantity", filter=Q(quantity__gt=0) & scope.expiring_q(expiring_within)
            ),
        )
        .annotate(
            status=Case(
                When(
                    Q(reorder_point__isnull=False, on_hand__lte=F("reorder_point")),
                    then=Value(STATUS_LOW),
                ),
                When(
                    Q(
                        reorder_point__isnull=False,
                        reorder_qty__isnull=False,
                        on_hand__gt=F("reorder_point") + F("reorder_qty"),
                    ),
                    then=Value(STATUS_HIGH),
                ),
                default=Value(STATUS_NORMAL),
                output_field=CharField(),
            ),
        )
    )
    if status:
        rows = rows.filter(status=status)
    if expiring is True:
        rows = rows.filter(expiring_soon__gt=0)
    elif expiring is False:
        rows = rows.filter(expiring_soon__lte=0)
    return rows.order_by("sku", "store_code", "product_id", "store_id")


# --- a product's batches ------------------------------------------------------------------------


def expiry_status(
    expiry_date: datetime.date | None, today: datetime.date | None, within_days: int
) -> str:
    if expiry_date is None:
        return "none"
    if today is None:
        return "ok"
    if expiry_date < today:
        return "expired"
    if expiry_date <= today + datetime.timedelta(days=within_days):
        return "expiring"
    return "ok"


def stock_batches(
    *, scope: StockScope, product: Product, expiring_within: int = DEFAULT_EXPIRING_WITHIN
) -> list[dict]:
    """The product's batches holding stock (non-zero quants) in the scope's stores, with their
    quantity per location, FEFO order (earliest expiry first, no expiry last). One query.

    A batch's expiry status is judged by the latest local date among the stores holding it.
    """
    quants = (
        _quants(scope)
        .filter(product=product)
        .exclude(quantity=0)
        .select_related("batch", "location")
        .order_by(
            F("batch__expiry_date").asc(nulls_last=True),
            "batch__received_at",
            "batch_id",
            "location__store_id",
            "location__sort_order",
            "location_id",
        )
    )
    batches: dict[int, dict] = {}
    stores_of: dict[int, set[int]] = defaultdict(set)
    for quant in quants:
        batch = quant.batch
        entry = batches.get(batch.pk)
        if entry is None:
            entry = batches[batch.pk] = {
                "batch": batch,
                "total": ZERO,
                "locations": [],
            }
        entry["total"] += quant.quantity
        entry["locations"].append(
            {
                "location": quant.location_id,
                "store": quant.store_id,
                "code": quant.location.code,
                "name": quant.location.name,
                "quantity": quant.quantity,
            }
        )
        stores_of[batch.pk].add(quant.store_id)
    for batch_id, entry in batches.items():
        entry["expiry_status"] = expiry_status(
            entry["batch"].expiry_date, scope.local_today(stores_of[batch_id]), expiring_within
        )
    return list(batches.values())


# --- the ledger ---------------------------------------------------------------------------------

#: Ledger columns in the order the CSV export writes them: (column name, key of the row dicts
#: ``ledger_list`` yields). Foreign keys are ids; SKU and lot code come from joins.
LEDGER_COLUMNS = (
    ("id", "id"),
    ("occurred_at", "occurred_at"),
    ("created_at", "created_at"),
    ("store", "store_id"),
    ("location", "location_id"),
    ("product", "product_id"),
    ("sku", "sku"),
    ("batch", "batch_id"),
    ("lot_code", "lot_code"),
    ("qty_delta", "qty_delta"),
    ("unit_cost", "unit_cost"),
    ("ref_type", "ref_type"),
    ("ref_id", "ref_id"),
    ("ref_line", "ref_line"),
    ("source", "source"),
    ("source_ref", "source_ref"),
    ("reason", "reason"),
    ("user", "user_id"),
)
_LEDGER_JOINED = {"sku": F("product__sku"), "lot_code": F("batch__lot_code")}

#: Exact-match ledger filters and the field each applies to (the store comes with the scope).
#: Each is backed by an index leading with the organisation (``StockLedger.Meta.indexes``) or by
#: a foreign key's own index.
LEDGER_FILTERS = {
    "product": "product_id",
    "location": "location_id",
    "batch": "batch_id",
    "ref_type": "ref_type",
    "ref_id": "ref_id",
    "source_ref": "source_ref",
    "user": "user_id",
    "occurred_from": "occurred_at__gte",
    "occurred_to": "occurred_at__lt",
}


def ledger_list(*, scope: StockScope, **filters) -> QuerySet:
    """Ledger rows of the scope's stores as dicts keyed by ``LEDGER_COLUMNS``, newest first.

    Only exact-match filters (and the ``occurred_at`` range), so every filter meets an index and
    keyset pagination over ``-id`` stays fast at millions of rows. SKU and lot code come from
    joins in the same query.
    """
    unknown = set(filters) - set(LEDGER_FILTERS)
    if unknown:
        raise TypeError(f"unknown ledger filters: {sorted(unknown)}")
    rows = scope.visible(StockLedger.objects.filter(org=scope.org).filter(scope.stores_q()))
    rows = rows.filter(
        **{LEDGER_FILTERS[name]: value for name, value in filters.items() if value is not None}
    )
    plain = [key for _, key in LEDGER_COLUMNS if key not in _LEDGER_JOINED]
    return rows.values(*plain, **_LEDGER_JOINED).order_by("-id")


# --- cost of goods sold -------------------------------------------------------------------------


def _period_q(scope: StockScope, date_from: datetime.date, date_to: datetime.date) -> Q:
    """``occurred_at`` within [date_from, date_to] in each store's own calendar."""
    by_zone: dict[str, list[int]] = defaultdict(list)
    for store in scope.stores:
        by_zone[store.time_zone].append(store.pk)
    parts = []
    for zone, ids in sorted(by_zone.items()):
        tz = zoneinfo.ZoneInfo(zone)
        start = datetime.datetime.combine(date_from, datetime.time.min, tzinfo=tz)
        end = datetime.datetime.combine(
            date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz
        )
        parts.append(Q(store_id__in=ids, occurred_at__gte=start, occurred_at__lt=end))
    return reduce(or_, parts) if parts else Q(pk__in=[])


def cogs_report(*, scope: StockScope, date_from: datetime.date, date_to: datetime.date) -> dict:
    """Cost of goods sold from the ledger's unit costs, by product and by lot (two GROUP BYs).

    SALE rows count as sold (quantity ``-qty_delta``, cost ``-qty_delta × unit_cost``); REFUND
    and VOID rows put stock back, so the same formula subtracts them. Lines that net to zero
    (a sale voided within the period) are left out. Ordered by cost, highest first.
    """
    rows = StockLedger.objects.filter(org=scope.org, ref_type__in=COGS_REF_TYPES).filter(
        _period_q(scope, date_from, date_to)
    )
    quantity = _total(ExpressionWrapper(-F("qty_delta"), output_field=QTY_FIELD))
    cost = _total(
        ExpressionWrapper(-F("qty_delta") * F("unit_cost"), output_field=VALUE_FIELD),
        field=VALUE_FIELD,
    )
    by_product = list(
        rows.values("product_id", sku=F("product__sku"), name=F("product__name"))
        .annotate(quantity=quantity, cost=cost)
        .exclude(quantity=0, cost=0)
        .order_by("-cost", "sku", "product_id")
    )
    by_lot = list(
        rows.values(
            "product_id",
            "batch_id",
            sku=F("product__sku"),
            lot_code=F("batch__lot_code"),
            expiry_date=F("batch__expiry_date"),
        )
        .annotate(quantity=quantity, cost=cost)
        .exclude(quantity=0, cost=0)
        .order_by("-cost", "sku", "batch_id")
    )
    return {
        "quantity": sum((r["quantity"] for r in by_product), ZERO),
        "cost": sum((r["cost"] for r in by_product), ZERO),
        "by_product": by_product,
        "by_lot": by_lot,
    }


# --- summary across stores ----------------------------------------------------------------------


def stock_summary_products(
    *,
    scope: StockScope,
    category: str | None = None,
    subcategory: str | None = None,
    search: str | None = None,
) -> QuerySet:
    """Products with quants in the scope's stores, by SKU (the page the summary is built for)."""
    held = scope.visible(
        StockQuant.objects.filter(org=scope.org, product_id=OuterRef("pk")).filter(scope.stores_q())
    )
    return (
        Product.objects.filter(org=scope.org)
        .filter(
            _catalog_q(
                scope.org, category=category, subcategory=subcategory, search=search, prefix=""
            )
        )
        .filter(Exists(held))
        .order_by("sku", "pk")
    )


def stock_summary(*, scope: StockScope, products: list[Product]) -> list[dict]:
    """Per product: totals and a per-store breakdown, from one grouped query over the page."""
    rows = (
        _quants(scope)
        .filter(product_id__in=[p.pk for p in products])
        .values("product_id", "store_id", code=F("store__code"))
        .annotate(
            on_hand=_total("quantity"),
            sellable=_total(
                "quantity",
                filter=Q(location__sellable=True, quantity__gt=0) & scope.not_expired_q(),
            ),
            value=_total(STOCK_VALUE, field=VALUE_FIELD),
        )
        .order_by("product_id", "code", "store_id")
    )
    stores: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        stores[row["product_id"]].append(row)
    return [
        {
            "product": product,
            "on_hand": sum((r["on_hand"] for r in stores[product.pk]), ZERO),
            "value": sum((r["value"] for r in stores[product.pk]), ZERO),
            "stores": stores[product.pk],
        }
        for product in products
    ]


# --- KPIs ---------------------------------------------------------------------------------------


def stock_kpis(*, scope: StockScope, expiring_within: int = DEFAULT_EXPIRING_WITHIN) -> dict:
    """Headline numbers for the scope's stores, in two aggregate queries.

    ``skus``: distinct products whose on-hand in some store of the scope is not zero (a product
    in two stores counts once); ``low_stock_count``: (product, store) pairs at or below the
    product's reorder point (a product low in two stores counts twice: each store reorders);
    ``units`` and ``expired_units``: quantities per unit of measure (``{"each": …, "g": …,
    "ml": …}``: pieces and grams do not add up); ``value``: on hand at cost;
    ``expiring_soon_count``: distinct lots with positive stock expiring within the window;
    ``expired_units``: positive stock of lots past expiry.
    """
    per_row = (
        _quants(scope)
        .values("product_id", "store_id")
        .annotate(
            on_hand=_total("quantity"),
            row_value=_total(STOCK_VALUE, field=VALUE_FIELD),
            expired=_total("quantity", filter=Q(quantity__gt=0) & scope.expired_q()),
            reorder_point=F("product__reorder_point"),
            unit=F("product__unit"),
        )
        .order_by()
    )
    per_unit = {}
    for unit in Unit.values:
        per_unit[f"units_{unit}"] = _total("on_hand", filter=Q(unit=unit))
        per_unit[f"expired_{unit}"] = _total("expired", filter=Q(unit=unit))
    totals = per_row.aggregate(
        skus=Count("product_id", distinct=True, filter=~Q(on_hand=0)),
        value=_total("row_value", field=VALUE_FIELD),
        low_stock_count=Count(
            "product_id", filter=Q(reorder_point__isnull=False, on_hand__lte=F("reorder_point"))
        ),
        **per_unit,
    )
    totals["units"] = {unit: totals.pop(f"units_{unit}") for unit in Unit.values}
    totals["expired_units"] = {unit: totals.pop(f"expired_{unit}") for unit in Unit.values}
    expiring = _quants(scope).filter(Q(quantity__gt=0) & scope.expiring_q(expiring_within))
    totals["expiring_soon_count"] = expiring.aggregate(n=Count("batch_id", distinct=True))["n"]
    return totals


# --- shortfalls ---------------------------------------------------------------------------------


def shortfall_list(
    *,
    scope: StockScope,
    product_id: int | None = None,
    outcome: str | None = None,
    ref_type: str | None = None,
    occurred_from: datetime.datetime | None = None,
    occurred_to: datetime.datetime | None = None,
) -> QuerySet:
    """Stock moves that wanted more than there was, newest first: refused documents
    (``blocked``), sales booked to the unallocated batch (``booked``) and count shortages that
    could only partly post (``clamped``). The discrepancy workflow turns them into cases."""
    rows = StockShortfall.objects.filter(org=scope.org).filter(scope.stores_q())
    if product_id is not None:
        rows = rows.filter(product_id=product_id)
    if outcome:
        rows = rows.filter(outcome=outcome)
    if ref_type:
        rows = rows.filter(ref_type=ref_type)
    if occurred_from is not None:
        rows = rows.filter(occurred_at__gte=occurred_from)
    if occurred_to is not None:
        rows = rows.filter(occurred_at__lt=occurred_to)
    return rows.select_related("store", "location", "product", "user").order_by("-id")
