"""A Hypothesis state machine drives the write path with random documents and checks every
invariant after every step.

The machine keeps its own pure-Python model of the stock: quantity per (location, batch), each
batch's expiry, and what every sale took from where. For each document it predicts the outcome
(which lots a sale or a move takes, earliest expiry first; whether the document is refused) and
then posts it through ``inventory.stock.documents`` / ``sales`` inside the tenant scope,
exactly as the API does. After every step: ledger = quants, model = database per (location,
batch) and per (location, product), sellable non-expired stock agrees, no ordinary quant below
zero, and no SALE row ever points at a lot that was expired on the sale's store-local date.

The store's time zone is drawn too (far east and far west of UTC), so "expired" has to be
judged on the store's calendar, not the server's.
"""

from __future__ import annotations

import datetime
import itertools
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from core.errors import InvalidState, ValidationFailed
from inventory.exceptions import InsufficientStock
from inventory.models import (
    Batch,
    Location,
    RefType,
    Sale,
    StockLedger,
    StockQuant,
    StockShortfall,
    Store,
)
from inventory.sales import services as sales
from inventory.stock import documents
from inventory.stock import write_path as stock_service
from inventory.tenancy.scope import tenant_scope
from inventory.tenancy.services import location_create, store_create
from tests.factories import OrganizationFactory, ProductFactory
from tests.stock_helpers import (
    adjustment_inputs,
    assert_invariants,
    loc,
    move_inputs,
    receipt_inputs,
    ref,
    write_off_inputs,
)

D = Decimal
ZERO = D(0)
NEVER = datetime.date.max

TIME_ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Vancouver"]
SELLABLE = ("DSP", "SF")  # DSP (display case) sorts before SF
STOCK_ROOMS = ("SF", "BR", "DSP")
products = st.integers(min_value=0, max_value=2)
stock_rooms = st.sampled_from(STOCK_ROOMS)
UNITS = ("each", "g", "g")  # P0 is sold by the unit, P1 and P2 by the gram
# quantities per purpose; products sold by the unit draw only the whole ones
OPENING = [D(5), D(8), D(12), D("7.5")]
RECEIVED = [D(1), D(2), D(5), D(10), D("2.5"), D("0.75")]
ASKED = [D(1), D(1), D(1), D(2), D(3), D("0.5"), D("1.25"), D(40)]
SOLD = [D(1), D(1), D(2), D(3), D("0.5"), D("1.25")] * 3 + [D(40)]
expiry_offsets = st.sampled_from([None, None, -30, -1, 0, 1, 7, 90])


@dataclass
class ModelBatch:
    product: int
    lot_code: str
    expiry: datetime.date | None
    received_at: datetime.datetime


@dataclass
class SoldRow:
    line: int
    location: str
    batch: int
    quantity: Decimal
    returned: Decimal = ZERO

    @property
    def outstanding(self) -> Decimal:
        return self.quantity - self.returned


@dataclass
class ModelSale:
    pk: int
    rows: list[SoldRow]
    line_products: list[int]
    voided: bool = False

    def outstanding(self, line: int) -> Decimal:
        return sum((r.outstanding for r in self.rows if r.line == line), ZERO)


class StockMachine(RuleBasedStateMachine):
    """Random receipts, sales, voids, refunds, moves, adjustments and write-offs."""

    def __init__(self):
        super().__init__()
        self.org = OrganizationFactory()
        self.products = [
            ProductFactory(org=self.org, sku=f"P{i}", unit=unit) for i, unit in enumerate(UNITS)
        ]
        self.store: Store | None = None
        # (location code, batch id) -> quantity; an entry at zero is a quant that exists
        self.qty: dict[tuple[str, int], Decimal] = {}
        self.batches: dict[int, ModelBatch] = {}
        self.lots: dict[tuple[int, str], int] = {}
        self.sales: list[ModelSale] = []
        self.numbers = itertools.count(1)

    # --- set-up and helpers -------------------------------------------------------------------

    @initialize(time_zone=st.sampled_from(TIME_ZONES), data=st.data())
    def open_store(self, time_zone, data):
        """A store with a display case and a quarantine room, and some opening stock."""
        with tenant_scope(self.org):
            self.store = store_create(org=self.org, code="S1", name="Store", time_zone=time_zone)
            location_create(
                org=self.org,
                store=self.store,
                code="DSP",
                name="Display case",
                kind="sales_floor",
                sellable=True,
                sort_order=5,
            )
            location_create(
                org=self.org, store=self.store, code="QRN", name="Quarantine", kind="quarantine"
            )
            self.locations = {x.code: x for x in Location.objects.filter(store=self.store)}
        self.location_code = {x.pk: code for code, x in self.locations.items()}
        for product in range(len(self.products)):
            self.post_receipt(data, [product, product], quantities=OPENING)

    def today(self, moment: datetime.datetime | None = None) -> datetime.date:
        moment = moment or timezone.now()
        return timezone.localtime(moment, zoneinfo.ZoneInfo(self.store.time_zone)).date()

    def expired(self, batch_id: int, on: datetime.date) -> bool:
        expiry = self.batches[batch_id].expiry
        return expiry is not None and expiry < on

    def fefo(self, key: tuple[str, int]):
        """The write path's order: expiry (none last), received, batch id, room sort order."""
        location, batch_id = key
        batch = self.batches[batch_id]
        return (
            batch.expiry or NEVER,
            batch.received_at,
            batch_id,
            self.locations[location].sort_order,
            self.locations[location].pk,
        )

    def held(self, product: int, location: str) -> list[tuple[str, int]]:
        return [
            key
            for key, q in self.qty.items()
            if key[0] == location and self.batches[key[1]].product == product and q > 0
        ]

    def amount(self, data, product: int, choices: list[Decimal]) -> Decimal:
        """A quantity from ``choices``; whole numbers only for a product sold by the unit."""
        if UNITS[product] == "each":
            choices = [q for q in choices if q % 1 == 0]
        return data.draw(st.sampled_from(choices), label="quantity")

    def pick_stock(self, data, rooms=STOCK_ROOMS) -> tuple[int, str]:
        """Mostly a (product, room) that holds stock, sometimes any (to be refused)."""
        stocked = sorted(
            {
                (self.batches[b].product, room)
                for (room, b), q in self.qty.items()
                if q > 0 and room in rooms
            }
        )
        if stocked and data.draw(st.integers(0, 3), label="stocked?"):
            return data.draw(st.sampled_from(stocked), label="stocked product and room")
        return data.draw(products, label="product"), data.draw(st.sampled_from(rooms), "room")

    def learn_batches(self, batch_ids) -> None:
        """Record batches the database just created (identity only: quantities are modelled)."""
        new = set(batch_ids) - set(self.batches)
        if new:
            with tenant_scope(self.org):
                for batch in Batch.objects.filter(pk__in=new):
                    product = next(
                        i for i, p in enumerate(self.products) if p.pk == batch.product_id
                    )
                    self.batches[batch.pk] = ModelBatch(
                        product, batch.lot_code, batch.expiry_date, batch.received_at
                    )
                    if batch.lot_code:
                        self.lots[(product, batch.lot_code)] = batch.pk

    def apply(self, changes) -> None:
        for location, batch_id, delta in changes:
            key = (location, batch_id)
            self.qty[key] = self.qty.get(key, ZERO) + delta

    def take_fefo(self, left, keys, need, *, on=None, batch_id=None):
        """Take ``need`` from ``keys`` in FEFO order (skipping expired lots when ``on``)."""
        taken = []
        for key in sorted(keys, key=self.fefo):
            if need == 0:
                break
            if left.get(key, ZERO) <= 0 or (batch_id and key[1] != batch_id):
                continue
            if on is not None and self.expired(key[1], on):
                continue
            take = min(need, left[key])
            left[key] -= take
            need -= take
            taken.append((key, take))
        return taken, need

    def rows_of(self, result: dict) -> list[tuple]:
        return sorted(
            (
                r["line"],
                r["ref_type"],
                self.location_code[r["location"]],
                r["batch"],
                D(r["quantity"]),
            )
            for r in result["rows"]
        )

    def pick_lot(self, data, product: int, used: dict) -> tuple[str, datetime.date | None]:
        """A lot code for a document line: none, an existing lot of the product, one an earlier
        line of the same document named (a delivery split between rooms), or a new one.

        ``used`` maps (product, lot) to the expiry of lots named earlier in the document: the
        first line naming a new lot decides its expiry.
        """
        kind = data.draw(st.sampled_from(["none", "new", "existing", "again"]), label="lot")
        again = sorted(lot for (p, lot) in used if p == product)
        if kind == "again" and again:
            lot = data.draw(st.sampled_from(again), label="lot named before")
            return lot, used[(product, lot)]
        existing = sorted(lot for (p, lot) in self.lots if p == product)
        if kind in ("existing", "again") and existing:
            lot = data.draw(st.sampled_from(existing), label="existing lot")
            return lot, self.batches[self.lots[(product, lot)]].expiry
        if kind == "none":
            offset = data.draw(expiry_offsets, label="expiry in days")
            return "", None if offset is None else self.today() + datetime.timedelta(offset)
        offset = data.draw(expiry_offsets, label="expiry in days")
        return (
            f"LOT-{product}-{next(self.numbers)}",
            None if offset is None else self.today() + datetime.timedelta(offset),
        )

    # --- rules ----------------------------------------------------------------------------------

    @rule(data=st.data())
    def receive(self, data):
        count = data.draw(st.integers(1, 2), label="receipt lines")
        self.post_receipt(data, [data.draw(products, label="product") for _ in range(count)])

    def post_receipt(self, data, line_products: list[int], quantities=RECEIVED):
        lines, used = [], {}
        for n, product in enumerate(line_products, start=1):
            lot, expiry = self.pick_lot(data, product, used)
            if lot:
                used.setdefault((product, lot), expiry)
            lines.append(
                stock_service.ReceiveLine(
                    n,
                    self.products[product],
                    self.locations[data.draw(stock_rooms)],
                    self.amount(data, product, quantities),
                    lot_code=lot,
                    expiry_date=expiry,
                    unit_cost=data.draw(st.sampled_from([None, D("3.10"), D("7")]), label="cost"),
                )
            )
        known_lots = {
            ln.line: self.lots.get((self.product_index(ln.product), ln.lot_code)) for ln in lines
        }
        with tenant_scope(self.org):
            document, created = documents.receipt_record(
                org=self.org, store=self.store, lines=receipt_inputs(lines), client_ref=ref("rcv")
            )
        assert created
        rows = document.result["rows"]
        assert [r["line"] for r in rows] == [ln.line for ln in lines]
        self.learn_batches(r["batch"] for r in rows)
        for ln, row in zip(lines, rows, strict=True):
            if known_lots[ln.line]:
                assert row["batch"] == known_lots[ln.line], "an existing lot keeps its batch"
            batch = self.batches[row["batch"]]
            assert (batch.lot_code, batch.expiry) == (ln.lot_code, ln.expiry_date)
        self.apply(
            (ln.location.code, row["batch"], ln.quantity)
            for ln, row in zip(lines, rows, strict=True)
        )

    def product_index(self, product) -> int:
        return next(i for i, p in enumerate(self.products) if p.pk == product.pk)

    @rule(data=st.data())
    def sell(self, data):
        self.post_sale(data)

    @rule(data=st.data())
    def sell_then_return(self, data):
        """A customer comes back: a sale, then refunds of parts of it, perhaps a void last."""
        sale = self.post_sale(data)
        if sale is None:
            return
        for _ in range(data.draw(st.integers(1, 3), label="refunds")):
            if sale in self.still_out():
                self.return_some(data, sale)
        if data.draw(st.booleans(), label="void at the end?"):
            self.post_void(sale)

    def post_sale(self, data) -> ModelSale | None:
        """Sell 1–3 lines; the model predicts the lots taken or the refusal."""
        wanted = []
        for _ in range(data.draw(st.integers(1, 3), label="sale lines")):
            product = data.draw(products, label="product")
            wanted.append(
                (
                    product,
                    self.amount(data, product, SOLD),
                    data.draw(st.sampled_from([None, None, None, "SF", "DSP"]), label="named room"),
                )
            )
        now = timezone.now()
        today = self.today(now)
        left = dict(self.qty)
        planned, short = [], []
        for n, (product, quantity, room) in enumerate(wanted, start=1):
            keys = [
                k
                for k in self.qty
                if self.batches[k[1]].product == product and k[0] in ((room,) if room else SELLABLE)
            ]
            taken, need = self.take_fefo(left, keys, quantity, on=today)
            planned += [(n, key, q) for key, q in taken]
            if need:
                short.append((n, quantity - need))

        client_ref = ref("sale")
        lines = [
            sales.SaleLineInput(
                self.products[p], q, D("9.99"), self.locations[room] if room else None
            )
            for p, q, room in wanted
        ]
        with tenant_scope(self.org):
            if short:
                with pytest.raises(InsufficientStock) as error:
                    sales.sale_record(
                        org=self.org,
                        store=self.store,
                        lines=lines,
                        client_ref=client_ref,
                        occurred_at=now,
                    )
                got = sorted((x["line"], D(x["available"])) for x in error.value.extra["lines"])
                assert got == short
                assert not Sale.objects.filter(client_ref=client_ref).exists()
                kept = StockShortfall.objects.filter(
                    store=self.store, client_ref=client_ref, outcome="blocked"
                )
                assert sorted(kept.values_list("requested", "available")) == sorted(
                    (wanted[n - 1][1], available) for n, available in short
                ), "kept"
                return None
            sale, created = sales.sale_record(
                org=self.org, store=self.store, lines=lines, client_ref=client_ref, occurred_at=now
            )
        assert created
        consumed = sorted(
            (line["line"], self.location_code[c["location"]], c["batch"], D(c["quantity"]))
            for line in sale.result["lines"]
            for c in line["consumed"]
        )
        assert consumed == sorted((n, *key, q) for n, key, q in planned), "FEFO order"
        model = ModelSale(
            sale.pk,
            [SoldRow(n, key[0], key[1], q) for n, key, q in planned],
            [product for product, _, _ in wanted],
        )
        self.sales.append(model)
        self.apply((key[0], key[1], -q) for _, key, q in planned)
        return model

    def still_out(self) -> list[ModelSale]:
        return [x for x in self.sales if not x.voided and any(r.outstanding for r in x.rows)]

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def void(self, data):
        fresh = [x for x in self.sales if not x.voided]
        if fresh and data.draw(st.integers(0, 3), label="not voided yet?"):
            sale = data.draw(st.sampled_from(fresh), label="sale")
        else:
            sale = data.draw(st.sampled_from(self.sales), label="sale")
        self.post_void(sale)

    def post_void(self, sale: ModelSale):
        with tenant_scope(self.org):
            voided = sales.sale_void(
                org=self.org,
                sale=Sale.objects.get(pk=sale.pk),
                reason="customer changed their mind",
            )
        assert voided.status == "voided"
        if not sale.voided:  # voiding twice posts nothing
            self.apply((row.location, row.batch, row.outstanding) for row in sale.rows)
            for row in sale.rows:
                row.returned = row.quantity
            sale.voided = True

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def refund_anything(self, data):
        """Any sale, any line (even one it lacks), up to more than is still out."""
        sale = data.draw(st.sampled_from(self.sales), label="sale")
        wanted = []
        for _ in range(data.draw(st.integers(1, 2), label="refund lines")):
            line = data.draw(st.integers(1, len(sale.line_products) + 1), label="line")
            if line > len(sale.line_products):
                wanted.append(sales.RefundLineInput(line, D(1)))
                continue
            outstanding = sale.outstanding(line)
            wanted.append(
                sales.RefundLineInput(
                    line,
                    self.amount(
                        data,
                        sale.line_products[line - 1],
                        [q for q in (outstanding, outstanding + 1, D(1), D("0.5")) if q > 0],
                    ),
                )
            )
        self.post_refund(data, sale, wanted)

    @precondition(lambda self: self.still_out())
    @rule(data=st.data())
    def refund_goods_still_out(self, data):
        """Part or all of what a sale's line still has out."""
        self.return_some(data, data.draw(st.sampled_from(self.still_out()), label="sale"))

    def return_some(self, data, sale: ModelSale):
        line = data.draw(
            st.sampled_from(
                [n for n in range(1, len(sale.line_products) + 1) if sale.outstanding(n)]
            ),
            label="line",
        )
        outstanding = sale.outstanding(line)
        quantity = self.amount(
            data,
            sale.line_products[line - 1],
            [q for q in (outstanding, D(1), D(1), D("0.5")) if q <= outstanding],
        )
        self.post_refund(data, sale, [sales.RefundLineInput(line, quantity)])

    def post_refund(self, data, sale: ModelSale, wanted: list[sales.RefundLineInput]):
        room = data.draw(st.sampled_from([None, None, "QRN"]), label="refund into")
        per_line: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for ln in wanted:
            per_line[ln.line] += ln.quantity
        unknown = any(line > len(sale.line_products) for line in per_line)
        too_much = any(q > sale.outstanding(line) for line, q in per_line.items())

        call = dict(
            org=self.org,
            lines=wanted,
            client_ref=ref("refund"),
            reason="returned",
            location=self.locations[room] if room else None,
        )
        with tenant_scope(self.org):
            call["sale"] = Sale.objects.get(pk=sale.pk)
            expected = (
                (InvalidState, "sale_voided")
                if sale.voided
                else (ValidationFailed, "unknown_line")
                if unknown
                else (ValidationFailed, "refund_exceeds_sold")
                if too_much
                else None
            )
            if expected:
                with pytest.raises(expected[0]) as error:
                    sales.sale_refund(**call)
                assert error.value.code == expected[1]
                return
            sales.sale_refund(**call)
        for line, quantity in per_line.items():  # latest-consumed lots come back first
            for row in reversed([r for r in sale.rows if r.line == line]):
                take = min(quantity, row.outstanding)
                if take > 0:
                    row.returned += take
                    quantity -= take
                    self.apply([(room or row.location, row.batch, take)])

    @rule(data=st.data())
    def move(self, data):
        lines = []
        for n in range(1, data.draw(st.integers(1, 2), label="move lines") + 1):
            product, source = self.pick_stock(data)
            target = data.draw(stock_rooms.filter(lambda r, s=source: r != s), label="to")
            lines.append((n, product, source, target, self.amount(data, product, ASKED)))
        left = dict(self.qty)  # moved-in stock is not available to a later line
        planned, short = [], False
        for n, product, source, target, quantity in lines:
            taken, need = self.take_fefo(left, self.held(product, source), quantity)
            short |= need > 0
            for (_, batch_id), q in taken:
                planned += [
                    (n, RefType.MOVE_OUT, source, batch_id, -q),
                    (n, RefType.MOVE_IN, target, batch_id, q),
                ]
        move_lines = [
            stock_service.MoveLine(n, self.products[p], self.locations[s], self.locations[t], q)
            for n, p, s, t, q in lines
        ]
        with tenant_scope(self.org):
            if short:
                with pytest.raises(InsufficientStock):
                    documents.move_record(
                        org=self.org,
                        store=self.store,
                        lines=move_inputs(move_lines),
                        client_ref=ref("move"),
                        reason="restock",
                    )
                return
            document, _ = documents.move_record(
                org=self.org,
                store=self.store,
                lines=move_inputs(move_lines),
                client_ref=ref("move"),
                reason="restock",
            )
        assert self.rows_of(document.result) == sorted(planned)
        self.apply((location, batch_id, q) for _, _, location, batch_id, q in planned)

    def plan_removal(self, left, n, product, room, quantity, ref_type, batch_id=None):
        keys = self.held(product, room)
        taken, need = self.take_fefo(left, keys, quantity, batch_id=batch_id)
        return [(n, ref_type, room, key[1], -q) for key, q in taken], need > 0

    @rule(data=st.data())
    def adjust(self, data):
        lines, used = [], {}
        for n in range(1, data.draw(st.integers(1, 2), label="adjustment lines") + 1):
            product, room = self.pick_stock(data)
            quantity = self.amount(data, product, ASKED) * data.draw(st.sampled_from([1, -1]))
            lot, expiry = "", None
            if quantity > 0 and data.draw(st.booleans(), label="into a lot"):
                lot, expiry = self.pick_lot(data, product, used)
                if lot:
                    used.setdefault((product, lot), expiry)
            lines.append(
                stock_service.ReceiveLine(
                    n,
                    self.products[product],
                    self.locations[room],
                    quantity,
                    lot_code=lot,
                    expiry_date=expiry,
                )
            )
        left = dict(self.qty)
        planned, short, newest_of = [], False, {}
        for ln in lines:
            product, room = self.product_index(ln.product), ln.location.code
            if ln.quantity < 0:
                rows, is_short = self.plan_removal(
                    left, ln.line, product, room, -ln.quantity, RefType.ADJUSTMENT
                )
                planned += rows
                short |= is_short
            elif not ln.lot_code:
                # the product's newest batch already at that room (even at zero), else new
                here = [
                    k[1] for k in self.qty if k[0] == room and self.batches[k[1]].product == product
                ]
                newest_of[ln.line] = max(
                    here, key=lambda b: (self.batches[b].received_at, b), default=None
                )
        with tenant_scope(self.org):
            call = dict(
                org=self.org,
                store=self.store,
                lines=adjustment_inputs(lines),
                client_ref=ref("adj"),
                reason="count correction",
            )
            if short:
                with pytest.raises(InsufficientStock):
                    documents.adjustment_record(**call)
                return
            document, _ = documents.adjustment_record(**call)
        rows = document.result["rows"]
        self.learn_batches(r["batch"] for r in rows)
        for ln in lines:
            if ln.quantity < 0:
                continue
            (row,) = [r for r in rows if r["line"] == ln.line]
            if ln.lot_code:
                batch = self.batches[row["batch"]]
                assert (batch.lot_code, batch.expiry) == (ln.lot_code, ln.expiry_date)
            elif newest_of[ln.line] is not None:
                assert row["batch"] == newest_of[ln.line], "goes to the newest batch there"
            planned.append(
                (ln.line, RefType.ADJUSTMENT, ln.location.code, row["batch"], ln.quantity)
            )
        assert self.rows_of(document.result) == sorted(planned)
        self.apply((location, batch_id, q) for _, _, location, batch_id, q in planned)

    @rule(data=st.data())
    def write_off(self, data):
        kind = data.draw(st.sampled_from(["damage", "waste", "expiry"]), label="type")
        today = self.today()
        expired_here = sorted(k for k, q in self.qty.items() if q > 0 and self.expired(k[1], today))
        if kind == "expiry" and expired_here:  # the whole of one expired lot in one room
            room, batch_id = data.draw(st.sampled_from(expired_here), label="expired lot")
            product, quantity = self.batches[batch_id].product, self.qty[(room, batch_id)]
        else:
            product, room = self.pick_stock(data, STOCK_ROOMS + ("QRN",))
            quantity, batch_id = self.amount(data, product, ASKED), None
        ref_type = documents.WRITE_OFF_REF_TYPES[kind]
        planned, short = self.plan_removal(
            dict(self.qty), 1, product, room, quantity, ref_type, batch_id
        )
        line = stock_service.ReceiveLine(
            1, self.products[product], self.locations[room], quantity, batch_id=batch_id
        )
        with tenant_scope(self.org):
            call = dict(
                org=self.org,
                store=self.store,
                lines=write_off_inputs([line]),
                write_off_type=kind,
                client_ref=ref("wo"),
                reason=f"{kind} found on the shelf",
            )
            if short:
                with pytest.raises(InsufficientStock):
                    documents.write_off_record(**call)
                return
            document, _ = documents.write_off_record(**call)
        assert self.rows_of(document.result) == sorted(planned)
        self.apply((location, b, q) for _, _, location, b, q in planned)

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def stock_agrees_everywhere(self):
        if self.store is None:
            return
        assert_invariants()
        today = self.today()
        with tenant_scope(self.org):
            quants = list(
                StockQuant.objects.filter(store=self.store).values_list(
                    "location_id",
                    "batch_id",
                    "quantity",
                    "unallocated",
                    "location__sellable",
                    "batch__expiry_date",
                )
            )
        assert not any(q[3] for q in quants), "block mode books nothing to unallocated batches"
        assert not any(q[2] < 0 for q in quants)

        db = {(self.location_code[q[0]], q[1]): q[2] for q in quants if q[2]}
        model = {key: q for key, q in self.qty.items() if q}
        assert db == model, "quantity per (location, batch)"

        def per_room(pairs):
            totals: dict[tuple[str, int], Decimal] = defaultdict(lambda: ZERO)
            for (room, batch_id), q in pairs:
                totals[(room, self.batches[batch_id].product)] += q
            return {k: v for k, v in totals.items() if v}

        assert per_room(db.items()) == per_room(model.items()), "per (location, product)"

        sellable_db: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for _, batch_id, q, _, sellable, expiry in quants:
            if sellable and q > 0 and (expiry is None or expiry >= today):
                sellable_db[self.batches[batch_id].product] += q
        sellable_model: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for (room, batch_id), q in model.items():
            if room in SELLABLE and not self.expired(batch_id, today):
                sellable_model[self.batches[batch_id].product] += q
        assert dict(sellable_db) == dict(sellable_model), "sellable, not expired"

        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT l.id FROM {StockLedger._meta.db_table} l"
                f" JOIN {Batch._meta.db_table} b ON b.id = l.batch_id"
                f" JOIN {Store._meta.db_table} s ON s.id = l.store_id"
                f" WHERE l.org_id = %s AND l.ref_type = %s"
                f" AND b.expiry_date < (l.occurred_at AT TIME ZONE s.time_zone)::date",
                [self.org.pk, RefType.SALE],
            )
            assert cursor.fetchall() == [], "a sale consumed an expired lot"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_random_documents_keep_every_invariant():
    run_state_machine_as_test(
        StockMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture,
                HealthCheck.filter_too_much,
            ],
        ),
    )


@pytest.mark.parametrize("kind", ["receipt", "adjustment"])
def test_one_document_may_name_the_same_lot_on_two_lines(org, store, kind):
    """A delivery split between the sales floor and the back room names its lot twice.

    One batch, two quants: the batch upsert must name the lot once, since PostgreSQL refuses an
    ``ON CONFLICT DO UPDATE`` that touches one row twice (that was a 500).
    """
    product = ProductFactory(org=org, sku="SPLIT")
    lines = [
        stock_service.ReceiveLine(1, product, loc(store, "SF"), D(2), lot_code="L1"),
        stock_service.ReceiveLine(2, product, loc(store, "BR"), D(3), lot_code="L1"),
    ]
    with tenant_scope(org):
        if kind == "receipt":
            documents.receipt_record(
                org=org, store=store, lines=receipt_inputs(lines), client_ref=ref()
            )
        else:
            documents.adjustment_record(
                org=org,
                store=store,
                lines=adjustment_inputs(lines),
                client_ref=ref(),
                reason="found in the back",
            )
    assert Batch.objects.filter(product=product, lot_code="L1").count() == 1
    assert StockQuant.objects.filter(product=product).count() == 2
    assert_invariants()
