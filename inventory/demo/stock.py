"""Stock for the demo: deliveries with lots and expiries, nightly upstock, POS sales, shrink.

``build_stock`` plays a store's last weeks forward in business-time order, through the real
services only (``documents.receipt_record``/``move_record``/``adjustment_record``/
``write_off_record``, ``sales.sale_record``/``sale_refund``/``sale_void``), so the ledger tells
one consistent story and equals the quants at the end. Per day and store:

* **receiving** — cannabis twice a week (Tuesday and Friday, plus an opening delivery), grocery
  every morning: an order-up-to policy over the expected demand, many lines per document; lots
  carry Canadian-style lot codes or Metrc-like tags, expiry dates by category, and a cost within
  5% of the product's default. Most stock goes to the vault or back room; some packages are
  split, part straight onto the sales floor; fresh food goes straight to its sellable room.
* **sales** — docs/domain.md's shape scaled down (~40–60 invoices a day, not 180–320): weekday
  shares Mon 11.7% … Fri 18.8%, peaks 15–17 h and 18–20 h, ~1.8 lines an invoice with over half
  single-line (grocery baskets are bigger), Zipf-like popularity. A line the floor cannot serve
  (sold out, or only expired lots left) is dropped, as a customer would; an invoice left empty
  is not rung up.
* **upstock** — each evening one move document pulls the day's gap back to each product's par
  level from the vault/back room, earliest expiry first and never an expired lot.
* **problems** — a near-dated lot that expired unsold (another one written off the day before
  yesterday), lots expiring within two weeks, ~0.6% shrink as a "theft" and a "damage"
  adjustment, a few refunds (cannabis returns go to quarantine) and, at the end, two voids.

Everything random comes from ``random.Random(f"{seed}:{store code}:stock")`` and the store-local
date, so the same seed on the same day rebuilds the same stock.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import random
import re
import string
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

from django.db.models import Count, Q, Sum
from django.utils import timezone

from inventory.exceptions import InsufficientStock
from inventory.models import (
    Location,
    Organization,
    Product,
    RefType,
    Refund,
    Sale,
    SaleStatus,
    StockLedger,
    StockQuant,
    Store,
)
from inventory.sales import services as sales
from inventory.stock import documents
from inventory.stock import write_path as stock_service

ZERO = Decimal("0")
CENT = Decimal("0.01")
ONE_DAY = datetime.timedelta(days=1)

#: Receiving starts this many days before the first day of sales (the opening delivery).
LEAD_DAYS = 5
#: When the planted problems are booked (store-local time).
THEFT_AT, DAMAGE_AT, WRITE_OFF_AT = (
    datetime.time(16, 40),
    datetime.time(11, 10),
    datetime.time(9, 30),
)

# --- Demand shape (docs/domain.md) --------------------------------------------------------------

#: Share of a week's invoices per weekday, Monday first (Massachusetts cannabis figures).
CANNABIS_WEEKDAYS = (11.7, 11.9, 13.1, 14.8, 18.8, 16.9, 12.9)
#: Grocery: an assumption of the same kind with the peak on Saturday.
GROCERY_WEEKDAYS = (12.8, 12.4, 13.2, 13.9, 15.6, 17.4, 14.7)
#: Relative invoices per opening hour: peaks 15–17 h and 18–20 h.
CANNABIS_HOURS = {
    9: 2,
    10: 3,
    11: 4,
    12: 5.5,
    13: 5.5,
    14: 6,
    15: 9,
    16: 9.5,
    17: 7.5,
    18: 9,
    19: 9,
    20: 6.5,
    21: 4,
    22: 2.5,
}
GROCERY_HOURS = {
    7: 3,
    8: 5,
    9: 5,
    10: 5.5,
    11: 6,
    12: 7,
    13: 6,
    14: 5.5,
    15: 6.5,
    16: 8,
    17: 9.5,
    18: 8.5,
    19: 6,
    20: 4,
    21: 2,
}
#: (lines, weight): cannabis 1.76 lines an invoice, 55% single-line; grocery ~4.1 (scaled down
#: from 6–10 so the demo builds quickly).
CANNABIS_LINES = ((1, 55), (2, 25), (3, 12), (4, 5), (5, 3))
GROCERY_LINES = (
    (1, 10),
    (2, 13),
    (3, 16),
    (4, 17),
    (5, 15),
    (6, 12),
    (7, 8),
    (8, 5),
    (9, 3),
    (10, 1),
)
#: Units per line: (quantity, weight).
CANNABIS_QTY = ((1, 88), (2, 10), (3, 2))
GROCERY_QTY = ((1, 72), (2, 21), (3, 7))
GRAMS_QTY = ((Decimal("1"), 2), (Decimal("3.5"), 5), (Decimal("7"), 3), (Decimal("14"), 1))

#: How strongly a category tends towards the best-sellers (bread and milk lead a grocery's
#: sales; its slow tail is medicine and drinks, which keep).
POPULARITY = {
    "Flower": 2.5,
    "Pre-Rolls": 2.0,
    "Vapes": 1.6,
    "Edibles": 1.0,
    "Beverages": 0.7,
    "Extracts": 0.6,
    "Capsules & Oils": 0.4,
    "Accessories": 0.4,
    "Topicals": 0.3,
    "Seeds": 0.2,
    "Dairy": 4.0,
    "Bakery": 4.0,
    "Produce": 2.0,
    "OTC Medicine": 0.4,
}
#: Days from receipt to expiry for products that track it (docs/domain.md; capsules/oils
#: assumed).
SHELF_LIFE = {
    "Edibles": (182, 365),
    "Beverages": (182, 273),
    "Capsules & Oils": (365, 730),
    "Dairy": (7, 21),
    "Bakery": (3, 7),
    "OTC Medicine": (365, 1095),
}
#: Fresh food is delivered straight to its sellable room, and kept for fewer days.
DIRECT_TO_FLOOR = {"Dairy": "COOL", "Bakery": "SF", "Produce": "SF"}
COVER_DAYS = {"Dairy": 1.2, "Bakery": 0.3, "Produce": 1.0}


@dataclass(frozen=True)
class Profile:
    weekdays: tuple[float, ...]
    hours: dict[int, float]
    lines: tuple[tuple[int, int], ...]
    quantities: tuple[tuple[int, int], ...]
    zipf: float
    receipt_weekdays: frozenset[int]  # Monday = 0; empty means every day
    receipt_at: datetime.time
    upstock_at: datetime.time
    cover_days: float  # stock beyond the next delivery
    refunds_per_day: float
    sale_source: str


CANNABIS = Profile(
    CANNABIS_WEEKDAYS,
    CANNABIS_HOURS,
    CANNABIS_LINES,
    CANNABIS_QTY,
    0.9,
    frozenset({1, 4}),
    datetime.time(10, 30),
    datetime.time(21, 45),
    5.0,
    0.35,
    "cova",
)
GROCERY = Profile(
    GROCERY_WEEKDAYS,
    GROCERY_HOURS,
    GROCERY_LINES,
    GROCERY_QTY,
    0.7,
    frozenset(),
    datetime.time(6, 30),
    datetime.time(21, 30),
    4.0,
    0.45,
    "pos",
)
PROFILES = {"cannabis": CANNABIS, "grocery": GROCERY}


def _mean(weighted) -> float:
    return sum(float(v) * w for v, w in weighted) / sum(w for _, w in weighted)


def _pick(rng: random.Random, weighted):
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


@dataclass
class Item:
    """One product as a store stocks and sells it."""

    product: Product
    weight: float  # popularity
    rate: float = 0.0  # expected units (or grams) sold a day
    floor: Location | None = None  # where it is sold from
    reserve: Location | None = None  # where most of it is received; None: straight to floor
    par: Decimal = ZERO  # floor level the evening upstock restores
    cover: float = 0.0
    minimum: Decimal = ZERO

    @property
    def grams(self) -> bool:
        return self.product.unit == "g"

    @property
    def fresh(self) -> bool:
        return is_fresh(self.product)


def is_fresh(product: Product) -> bool:
    """Keeps for days, not months (dairy, bakery)."""
    return SHELF_LIFE.get(product.category, (365, 0))[0] < 30


@dataclass
class StoreStats:
    receipts: int = 0
    received: Decimal = ZERO
    moves: int = 0
    sales: int = 0
    lines_sold: int = 0
    units_sold: Decimal = ZERO
    lines_dropped: int = 0
    invoices_skipped: int = 0
    refunds: int = 0
    voids: int = 0
    shrink: Decimal = ZERO
    written_off: Decimal = ZERO


# --- Lot codes ----------------------------------------------------------------------------------

ALNUM = string.ascii_uppercase + string.digits


def metrc_tag(rng: random.Random) -> str:
    """A Metrc-like package tag: ``1A4`` and 21 upper-case letters and digits."""
    return "1A4" + "".join(rng.choice(ALNUM) for _ in range(21))


def lot_code(
    rng: random.Random, kind: str, product: Product, received: datetime.date, used: set[str]
) -> str:
    """A lot code in the style of the product's world, unique within the organisation."""
    if kind == "cannabis" and rng.random() < 0.25:
        return metrc_tag(rng)
    made = received - datetime.timedelta(
        days=rng.randint(7, 60) if kind == "cannabis" else rng.randint(0, 2)
    )
    initials = "".join(w[0] for w in re.findall(r"[A-Za-z]+", product.brand)).upper()[:3]
    for n in range(1, 1000):
        if kind == "cannabis" and len(product.brand) % 2:
            code = f"{initials}-{made:%y%m%d}-{n:02d}"
        elif kind == "cannabis":
            code = f"L{made:%y}{made.timetuple().tm_yday:03d}{rng.choice('ABCDEFGH')}{n}"
        else:
            code = f"L{made:%y}{made.timetuple().tm_yday:03d}{initials[:1]}{n:02d}"
        if code not in used:
            used.add(code)
            return code
    raise RuntimeError("no free lot code")


# --- One store's run ----------------------------------------------------------------------------


@dataclass
class StoreRun:
    org: Organization
    store: Store
    kind: str
    seed: int
    days: int
    actors: dict
    lots_used: set[str]
    today: datetime.date | None = None
    stats: StoreStats = field(default_factory=StoreStats)

    def __post_init__(self):
        self.profile = PROFILES[self.kind]
        self.rng = random.Random(f"{self.seed}:{self.store.code}:stock")
        self.tz = zoneinfo.ZoneInfo(self.store.time_zone)
        self.today = self.today or timezone.localtime(timezone.now(), self.tz).date()
        self.rooms = {loc.code: loc for loc in Location.objects.filter(store=self.store)}
        self.sellable_ids = [loc.pk for loc in self.rooms.values() if loc.sellable]
        self.first_day = self.today - datetime.timedelta(days=self.days + LEAD_DAYS)
        self.first_sale_day = self.today - datetime.timedelta(days=self.days)
        self.items = self._plan_items()
        self.by_product = {item.product.pk: item for item in self.items}
        self.cum_weights = []
        total = 0.0
        for item in self.items:
            total += item.weight
            self.cum_weights.append(total)
        self.shrink = self._shrink_target()  # units of theft and damage to book
        self.invoice_no = 0
        self.recent_sales: list[tuple[datetime.date, Sale]] = []
        self.refunded: set[int] = set()
        self.planted: dict[str, list] = {"expired": [], "expiring": []}
        # what the sales floor can sell on a date; re-read after anything but a sale moves stock
        self.floor_stock: tuple[datetime.date, dict[int, Decimal]] | None = None

    # -- planning ------------------------------------------------------------------------------

    def _plan_items(self) -> list[Item]:
        products = list(Product.objects.filter(org=self.org, is_active=True).order_by("sku"))
        # popularity rank: a random order in which popular categories tend to come first
        # (weighted shuffle: sort by u ** (1 / weight)), then Zipf-like by rank. What keeps only
        # days (bread, milk) is stocked because it sells every day: it ranks first.
        keys = {
            p.pk: self.rng.random() ** (1 / POPULARITY.get(p.category, 1.0)) + is_fresh(p)
            for p in products
        }
        products.sort(key=lambda p: -keys[p.pk])
        items = [Item(p, 1 / rank**self.profile.zipf) for rank, p in enumerate(products, start=1)]
        total = sum(i.weight for i in items)
        volume = self.volume()
        lines = _mean(self.profile.lines)
        for item in items:
            per_line = _mean(GRAMS_QTY) if item.grams else _mean(self.profile.quantities)
            item.rate = volume * lines * per_line * item.weight / total
            self._place(item)
        return items

    def volume(self) -> float:
        """Mean invoices a day: docs/domain.md's 180–320 (cannabis) divided by about five, its
        700–1,100 (grocery) by twenty, so the demo builds in well under two minutes."""
        return {"NL-TOR": 48, "NL-OTT": 40}.get(self.store.code, 42)

    def _place(self, item: Item) -> None:
        category = item.product.category
        if self.kind == "cannabis":
            item.floor = self.rooms["SF"]
            item.reserve = self.rooms["BR" if category == "Accessories" else "VLT"]
        elif category in DIRECT_TO_FLOOR:
            item.floor, item.reserve = self.rooms[DIRECT_TO_FLOOR[category]], None
        else:
            item.floor, item.reserve = self.rooms["SF"], self.rooms["BR"]
        item.cover = COVER_DAYS.get(category, self.profile.cover_days)
        if item.grams:
            item.minimum, item.par = Decimal(28), Decimal(max(14, math.ceil(item.rate * 3)))
        elif item.fresh:
            item.minimum, item.par = ZERO, ZERO
        else:
            item.minimum = Decimal(2)
            item.par = Decimal(max(2 if self.kind == "cannabis" else 3, math.ceil(item.rate * 2.5)))

    def at(self, day: datetime.date, moment: datetime.time) -> datetime.datetime:
        return datetime.datetime.combine(day, moment, tzinfo=self.tz)

    def is_receipt_day(self, day: datetime.date) -> bool:
        days = self.profile.receipt_weekdays
        return day == self.first_day or not days or day.weekday() in days

    def days_to_next_receipt(self, day: datetime.date) -> int:
        gap = 1
        while not self.is_receipt_day(day + datetime.timedelta(days=gap)):
            gap += 1
        return gap

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> StoreStats:
        day = self.first_day
        while day < self.today:
            for _, _, action, is_sale in sorted(self.events(day), key=lambda e: (e[0], e[1])):
                action()
                if not is_sale:  # sales keep floor_stock up to date themselves
                    self.floor_stock = None
            day += ONE_DAY
        self.void_some()
        return self.stats

    def events(self, day: datetime.date) -> list[tuple[datetime.datetime, int, Callable, bool]]:
        """What happens in the store on ``day``, as (when, tie-break, action, is a sale)."""
        events: list[tuple[datetime.datetime, int, Callable[[], None], bool]] = []

        def add(moment: datetime.datetime, action: Callable[[], None], sale=False) -> None:
            events.append((moment, len(events), action, sale))

        if self.is_receipt_day(day):
            add(self.at(day, self.profile.receipt_at), lambda: self.receive(day))
        if day >= self.first_sale_day:
            for moment in self.sale_times(day):
                add(moment, partial(self.sell, moment), sale=True)
            if self.rng.random() < self.profile.refunds_per_day:
                when = self.at(
                    day, datetime.time(self.rng.randint(11, 19), self.rng.randint(0, 59))
                )
                add(when, lambda: self.refund(when))
        ago = (self.today - day).days
        theft = self.shrink * 6 // 10
        if ago == max(1, round(self.days * 0.6)):
            add(self.at(day, THEFT_AT), lambda: self.adjust(day, "theft", theft, floor=True))
        if ago == max(1, round(self.days * 0.25)):
            add(
                self.at(day, DAMAGE_AT),
                lambda: self.adjust(day, "damage", self.shrink - theft, floor=False),
            )
        if ago == 2:
            add(self.at(day, WRITE_OFF_AT), lambda: self.write_off(day))
        add(self.at(day, self.profile.upstock_at), lambda: self.upstock(day))
        return events

    # -- receiving -----------------------------------------------------------------------------

    def on_hand(self, day: datetime.date, *, locations=None) -> dict[int, Decimal]:
        """Units per product still sellable on ``day`` (expired lots and quarantine left out)."""
        quants = StockQuant.objects.filter(
            org=self.org,
            store=self.store,
            quantity__gt=0,
            unallocated=False,
        ).filter(Q(batch__expiry_date__isnull=True) | Q(batch__expiry_date__gte=day))
        if locations is not None:
            quants = quants.filter(location_id__in=locations)
        else:
            quants = quants.exclude(location__kind="quarantine")
        rows = quants.values_list("product_id").annotate(total=Sum("quantity"))
        return {product: Decimal(total).quantize(stock_service.QUANTUM) for product, total in rows}

    def order_quantity(self, item: Item, position: Decimal, gap: int, opening: bool) -> Decimal:
        rate = Decimal(str(round(item.rate, 4)))
        target = rate * Decimal(str(gap + item.cover)) + item.minimum
        if opening and self.kind == "cannabis":
            target *= Decimal("1.5")
        elif position >= rate * Decimal(str(gap + item.cover / 2)) + item.minimum:
            return ZERO
        need = target - position
        if need <= 0:
            return ZERO
        if item.grams:
            return Decimal(math.ceil(need / 28) * 28)
        units = math.ceil(need)
        return Decimal(math.ceil(units / 6) * 6 if units >= 12 else units)

    def new_lot(
        self,
        item: Item,
        day: datetime.date,
        quantity: Decimal,
        location: Location,
        expiry: datetime.date | None = None,
    ) -> documents.ReceiptLineInput:
        product = item.product
        code = (
            ""
            if product.category == "Produce"
            else lot_code(self.rng, self.kind, product, day, self.lots_used)
        )
        if expiry is None and product.tracks_expiry:
            low, high = SHELF_LIFE.get(product.category, (180, 365))
            expiry = day + datetime.timedelta(days=self.rng.randint(low, high))
        cost = (product.default_cost or ZERO) * Decimal(str(self.rng.uniform(0.95, 1.05)))
        return documents.ReceiptLineInput(
            product,
            location,
            quantity,
            lot_code=code,
            expiry_date=expiry,
            unit_cost=cost.quantize(CENT),
        )

    def receive(self, day: datetime.date) -> None:
        opening = day == self.first_day
        position = self.on_hand(day + ONE_DAY)
        gap = self.days_to_next_receipt(day)
        lines: list[documents.ReceiptLineInput] = []
        for item in self.items:
            if item.fresh and day < self.first_sale_day - ONE_DAY:
                continue  # bread bought before the shop opens would only go stale
            qty = self.order_quantity(item, position.get(item.product.pk, ZERO), gap, opening)
            if qty <= 0:
                continue
            if item.reserve is None:
                lines.append(self.new_lot(item, day, qty, item.floor))
            elif not item.grams and qty >= 12 and self.rng.random() < 0.4:
                # the package is split: a third straight onto the sales floor, the rest stored
                on_floor = Decimal(math.ceil(qty / 3))
                floor_line = self.new_lot(item, day, on_floor, item.floor)
                lines += [
                    floor_line,
                    dataclasses.replace(floor_line, location=item.reserve, quantity=qty - on_floor),
                ]
            else:
                lines.append(self.new_lot(item, day, qty, item.reserve))
        lines += self.planted_lots(day, opening)
        if not lines:
            return
        documents.receipt_record(
            org=self.org,
            store=self.store,
            lines=lines,
            client_ref=f"demo:{self.store.code}:receipt:{day.isoformat()}",
            occurred_at=self.at(day, self.profile.receipt_at),
            source="demo",
            source_ref=f"{self.store.code}-ASN-{day:%Y%m%d}",
            actor=self.actors["manager"],
        )
        self.stats.receipts += 1
        self.stats.received += sum(line.quantity for line in lines)

    def planted_lots(self, day: datetime.date, opening: bool) -> list[documents.ReceiptLineInput]:
        """Near-dated lots from the supplier: two that expire unsold, three expiring soon."""
        slow = sorted(
            (i for i in self.items if i.product.tracks_expiry and not i.grams and not i.fresh),
            key=lambda i: (i.rate, i.product.sku),
        )
        lines = []
        if opening:
            for item in slow[:2]:
                expiry = self.today - datetime.timedelta(days=self.rng.randint(3, 8))
                # more than it can sell before expiry (baskets of distinct products lift the
                # tail above its expected rate, hence the margin)
                life = (expiry - day).days
                qty = Decimal(math.ceil(item.rate * life * 1.6) + self.rng.randint(5, 9))
                line = self.new_lot(item, day, qty, item.reserve or item.floor, expiry)
                self.planted["expired"].append(line)
                lines.append(line)
        soon = self.today - datetime.timedelta(days=7)
        if day >= soon and not self.planted["expiring"]:
            for item in slow[2:5]:
                expiry = self.today + datetime.timedelta(days=self.rng.randint(3, 13))
                line = self.new_lot(
                    item, day, Decimal(self.rng.randint(6, 12)), item.reserve or item.floor, expiry
                )
                self.planted["expiring"].append(line)
                lines.append(line)
        return lines

    # -- the sales floor -----------------------------------------------------------------------

    def upstock(self, day: datetime.date) -> None:
        """Pull each product back to its floor par from the reserve, earliest expiry first."""
        items = [i for i in self.items if i.reserve is not None]
        if not items:
            return
        tomorrow = day + ONE_DAY
        rooms = {i.floor.pk for i in items} | {i.reserve.pk for i in items}
        rows = (
            StockQuant.objects.filter(
                org=self.org, location_id__in=rooms, quantity__gt=0, unallocated=False
            )
            .filter(Q(batch__expiry_date__isnull=True) | Q(batch__expiry_date__gte=tomorrow))
            .values_list(
                "location_id",
                "product_id",
                "batch_id",
                "quantity",
                "batch__expiry_date",
                "batch__received_at",
            )
            .order_by("batch__expiry_date", "batch__received_at", "batch_id")
        )
        on_floor: dict[int, Decimal] = defaultdict(lambda: ZERO)
        in_reserve: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
        for location, product, batch, quantity, *_ in rows:
            item = self.by_product.get(product)
            if item is None or item.reserve is None:
                continue
            if location == item.floor.pk:
                on_floor[product] += quantity
            elif location == item.reserve.pk:
                in_reserve[product].append((batch, quantity))
        lines = []
        for item in items:
            need = item.par - on_floor[item.product.pk]
            for batch, quantity in in_reserve[item.product.pk]:
                if need <= 0:
                    break
                take = min(need, quantity)
                lines.append(
                    documents.MoveLineInput(
                        item.product, item.reserve, item.floor, take, batch=batch
                    )
                )
                need -= take
        if lines:
            documents.move_record(
                org=self.org,
                store=self.store,
                lines=lines,
                reason="upstock",
                client_ref=f"demo:{self.store.code}:upstock:{day.isoformat()}",
                occurred_at=self.at(day, self.profile.upstock_at),
                source="demo",
                actor=self.actors["operator"],
            )
            self.stats.moves += 1

    def sale_times(self, day: datetime.date) -> list[datetime.datetime]:
        share = self.profile.weekdays[day.weekday()] / 100
        count = round(self.volume() * 7 * share * self.rng.uniform(0.9, 1.1))
        hours = list(self.profile.hours)
        weights = list(self.profile.hours.values())
        return sorted(
            self.at(
                day,
                datetime.time(
                    self.rng.choices(hours, weights)[0],
                    self.rng.randrange(60),
                    self.rng.randrange(60),
                ),
            )
            for _ in range(count)
        )

    def basket(self) -> list[tuple[Item, Decimal]]:
        size = min(_pick(self.rng, self.profile.lines), len(self.items))
        chosen: list[Item] = []
        while len(chosen) < size:
            item = self.rng.choices(self.items, cum_weights=self.cum_weights)[0]
            if item not in chosen:
                chosen.append(item)
        return [
            (
                item,
                _pick(self.rng, GRAMS_QTY)
                if item.grams
                else Decimal(_pick(self.rng, self.profile.quantities)),
            )
            for item in chosen
        ]

    def sellable(self, day: datetime.date) -> dict[int, Decimal]:
        if self.floor_stock is None or self.floor_stock[0] != day:
            self.floor_stock = (day, self.on_hand(day, locations=self.sellable_ids))
        return self.floor_stock[1]

    def sell(self, moment: datetime.datetime) -> None:
        wanted = self.basket()
        available = self.sellable(moment.date())
        lines = []
        for item, qty in wanted:
            left = available.get(item.product.pk, ZERO)
            qty = min(qty, left if item.grams else Decimal(int(left)))
            if qty <= 0:
                self.stats.lines_dropped += 1
                continue
            price = item.product.default_price
            if price is not None and self.rng.random() < 0.05:  # a 10% promotion
                price = (price * Decimal("0.9")).quantize(CENT)
            lines.append(sales.SaleLineInput(item.product, qty, unit_price=price))
        if not lines:
            self.stats.invoices_skipped += 1
            return
        self.invoice_no += 1
        number = f"{self.store.cova_location_id or self.store.code}-{self.invoice_no:06d}"
        try:
            sale, _ = sales.sale_record(
                org=self.org,
                store=self.store,
                lines=lines,
                occurred_at=moment,
                client_ref=f"{self.store.code}-{self.invoice_no:06d}",
                source_ref=number,
                source=self.profile.sale_source,
                actor=self.actors["pos"],
            )
        except InsufficientStock:  # should not happen after the check; skip it if it does
            self.stats.invoices_skipped += 1
            return
        for line in lines:  # what the sale took (it was all there: checked above)
            available[line.product.pk] -= line.quantity
        self.stats.sales += 1
        self.stats.lines_sold += len(lines)
        self.stats.units_sold += sum(line.quantity for line in lines)
        self.recent_sales.append((moment.date(), sale))

    def refund(self, moment: datetime.datetime) -> None:
        """A customer brings back one unit of something bought in the last three days."""
        since = moment.date() - datetime.timedelta(days=3)
        candidates = [
            s
            for d, s in self.recent_sales[-400:]
            if since <= d < moment.date() and s.pk not in self.refunded
        ]
        if not candidates:
            return
        sale = self.rng.choice(candidates)
        first = sale.result["lines"][0]
        quantity = min(Decimal(first["quantity"]), Decimal(1))
        if self.kind == "cannabis":  # returned cannabis is held for the supplier or destruction
            location, reason = self.rooms["QRN"], "defective product"
        else:
            location, reason = None, "customer return"
        sales.sale_refund(
            org=self.org,
            sale=sale,
            lines=[sales.RefundLineInput(first["line"], quantity)],
            client_ref=f"demo:{self.store.code}:refund:{sale.pk}",
            location=location,
            reason=reason,
            occurred_at=moment,
            actor=self.actors["manager"],
        )
        self.refunded.add(sale.pk)
        self.stats.refunds += 1

    def void_some(self) -> None:
        """Two of the last day's invoices were rung up twice: the manager voids them (now)."""
        last_day = [
            s
            for d, s in self.recent_sales
            if d == self.today - ONE_DAY and s.pk not in self.refunded
        ]
        for sale in self.rng.sample(last_day, min(2, len(last_day))):
            sales.sale_void(
                org=self.org, sale=sale, reason="rung up twice", actor=self.actors["manager"]
            )
            self.stats.voids += 1

    # -- shrink and write-offs -----------------------------------------------------------------

    def _shrink_target(self) -> int:
        """About 0.6% of the units expected to sell (each-counted products only)."""
        units = sum(i.rate for i in self.items if not i.grams) * self.days
        return max(2, round(units * 0.006))

    def adjust(self, day: datetime.date, reason: str, units: int, *, floor: bool) -> None:
        """Book ``units`` missing units (theft on the floor, damage in the back) as shrink."""
        rooms = {(i.floor if floor or i.reserve is None else i.reserve) for i in self.items}
        rows = (
            StockQuant.objects.filter(
                org=self.org,
                location__in=rooms,
                quantity__gte=1,
                unallocated=False,
                product__unit="each",
            )
            .values_list("location_id", "product_id")
            .annotate(total=Sum("quantity"))
            .order_by("location_id", "product_id")
        )
        room_of = {loc.pk: loc for loc in rooms}
        candidates = [
            (room_of[loc], self.by_product[p], total)
            for loc, p, total in rows
            if p in self.by_product
        ]
        self.rng.shuffle(candidates)
        lines = []
        for room, item, total in candidates:
            if units <= 0:
                break
            qty = min(units, self.rng.randint(1, 2), int(total))
            lines.append(documents.AdjustmentLineInput(item.product, room, Decimal(-qty)))
            units -= qty
        if lines:
            documents.adjustment_record(
                org=self.org,
                store=self.store,
                lines=lines,
                reason=reason,
                client_ref=f"demo:{self.store.code}:{reason}:{day.isoformat()}",
                occurred_at=self.at(day, THEFT_AT if floor else DAMAGE_AT),
                source="demo",
                actor=self.actors["manager"],
            )
            self.stats.shrink -= sum(line.quantity for line in lines)

    def write_off(self, day: datetime.date) -> None:
        """The first near-dated lot, expired, is pulled and written off; the other is forgotten."""
        if not self.planted["expired"]:
            return
        planted = self.planted["expired"][0]
        quants = StockQuant.objects.filter(
            org=self.org,
            store=self.store,
            product=planted.product,
            batch__lot_code=planted.lot_code,
            quantity__gt=0,
        ).order_by("location_id")
        lines = [
            documents.WriteOffLineInput(planted.product, q.location, q.quantity, batch=q.batch_id)
            for q in quants.select_related("location")
        ]
        if lines:
            documents.write_off_record(
                org=self.org,
                store=self.store,
                lines=lines,
                write_off_type="expiry",
                reason=f"expired lot {planted.lot_code} pulled for destruction",
                client_ref=f"demo:{self.store.code}:expiry:{day.isoformat()}",
                occurred_at=self.at(day, WRITE_OFF_AT),
                source="demo",
                actor=self.actors["manager"],
            )
            self.stats.written_off += sum(line.quantity for line in lines)


def build_stock(
    *,
    org: Organization,
    kind: str,
    seed: int,
    days: int,
    actors: dict,
    stdout=None,
    today: datetime.date | None = None,
) -> dict[str, StoreStats]:
    """Play ``days`` days of business forward for every store of ``org`` (call in its scope).

    ``kind`` is ``"cannabis"`` or ``"grocery"``; ``actors`` maps ``manager``, ``operator`` and
    ``pos`` to the users who act; ``today`` (default: each store's local date) is the first day
    left unplayed. Returns each store's figures by store code.
    """
    lots_used: set[str] = set()
    result = {}
    for store in Store.objects.filter(org=org).order_by("code"):
        run = StoreRun(
            org=org,
            store=store,
            kind=kind,
            seed=seed,
            days=days,
            actors=actors,
            lots_used=lots_used,
            today=today,
        )
        result[store.code] = run.run()
        if stdout is not None:
            s = result[store.code]
            stdout.write(
                f"  {store.code}: {s.receipts} receipts, {s.moves} upstock moves, "
                f"{s.sales} sales ({s.lines_dropped} lines dropped: out of stock), "
                f"{s.refunds} refunds, {s.voids} voids."
            )
    return result


# --- Reading it back ----------------------------------------------------------------------------


def _n(value) -> str:
    value = Decimal(value or 0).quantize(Decimal("0.1"))
    return f"{value:,.0f}" if value == value.to_integral() else f"{value:,.1f}"


def _lots(n: int) -> str:
    return f"{n} lot" if n == 1 else f"{n} lots"


def stock_summary_lines(orgs: list[Organization]) -> list[str]:
    """Per store: units on hand, sales, refunds, expired and expiring lots (from the database)."""
    lines = []
    for org in orgs:
        for store in Store.unscoped.filter(org=org).order_by("code"):
            today = timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(store.time_zone)).date()
            quants = StockQuant.unscoped.filter(org=org, store=store, quantity__gt=0)
            if not quants.exists():
                continue
            by_unit = dict(
                quants.values_list("product__unit")
                .annotate(total=Sum("quantity"))
                .order_by("product__unit")
            )
            on_hand = " + ".join(
                f"{_n(total)} {'g' if unit == 'g' else 'units'}"
                for unit, total in sorted(by_unit.items(), reverse=True)
            )
            statuses = Counter(
                dict(
                    Sale.unscoped.filter(org=org, store=store)
                    .values_list("status")
                    .annotate(n=Count("id"))
                    .order_by("status")
                )
            )
            refunds = Refund.unscoped.filter(org=org, sale__store=store).count()
            expired = quants.filter(batch__expiry_date__lt=today).aggregate(
                lots=Count("batch", distinct=True), units=Sum("quantity")
            )
            soon = quants.filter(
                batch__expiry_date__gte=today,
                batch__expiry_date__lte=today + datetime.timedelta(days=14),
            )
            shrink = StockLedger.unscoped.filter(
                org=org,
                store=store,
                ref_type=RefType.ADJUSTMENT,
                qty_delta__lt=0,
            ).aggregate(units=Sum("qty_delta"))["units"]
            lines.append(
                f"  {store.code:<7} on hand {on_hand}; "
                f"{statuses[SaleStatus.COMPLETED] + statuses[SaleStatus.VOIDED]:,} sales "
                f"({statuses[SaleStatus.VOIDED]} voided, {refunds} refunded); "
                f"{_lots(expired['lots'])} expired ({_n(expired['units'])} units), "
                f"{_lots(soon.values('batch').distinct().count())} expiring within 14 days; "
                f"shrink {_n(-(shrink or 0))} units"
            )
    return lines
