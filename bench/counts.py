"""Physical-count benchmark (issue 4): variance and finalisation of a 50,000-line full-store count.

Not a test: it prints figures to compare against the targets (``variance_compute`` <= 5 s and
``session_finalize`` <= 5 s on this machine) and checks the numbers it produced.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inventory_countbench \\
        .venv/bin/python bench/counts.py [--quick] [--keep] [--profile] [--seed N]

It drops and recreates its own database (the name in DATABASE_URL when it ends in ``bench``,
else ``inventory_countbench``; dropped again at the end unless ``--keep``), migrates it and
builds, through the real services:

* one organisation (zero tolerance for Flower, the default band elsewhere), one store with five
  locations (SF and BR from ``store_create``; vault, display — sellable — and overstock added);
* 20,000 products (``product_upsert_many``, 1,000 a call) and their stock, received three days
  ago with ``receipt_record`` (500 lines a document): every product at SF, the rest spread over
  the other four rooms, three lots for 2,500 of the (location, product) pairs;
* a FULL_STORE session with one pass per location, started (back-dated, like the tests do)
  four hours ago; 50,000 count lines — distinct (pass, product, lot) keys — reach the passes as
  ~55,000 scans (about one line in ten is scanned twice and adds up) through ``lines_add``,
  1,000 scans a call, their capture times spread over the four hours;
* 2,000 POS sales (``sale_record``, 1-3 lines each) interleaved with the scans: occurred_at
  inside the window, so some come before and some after the scan of the same product; the
  calls themselves run in simulated-time order with the ``lines_add`` chunks;
* designed variance on ~8% of the counted pairs, 300 pairs found with no stock (overage into a
  new batch), 1,000 stocked pairs left uncounted (counted as 0).

Then it measures, each with its statements counted (``CaptureQueriesContext``) and split into
database round trips and the rest (Python):

1. ``variance_compute(session)`` — the live preview — and ``variance_report`` (the API body);
2. ``session_submit`` + ``session_reconcile`` (which computes the variance again and stores it);
3. approving every pending row — a single ``UPDATE``, a bench shortcut: the API approves one
   row at a time through ``variance_decide``;
4. 200 more sales made after the count (occurred_at = now), then ``session_finalize``.

And checks: the preview equals the simulation (expected at the first scan, counted) for every
(location, product); after finalising, ledger = quants per (location, batch), no negative
quant, and per (location, product) quant = counted - sales after its first scan (or 0 when
that is negative: a clamped shortage); finalising again posts nothing.

``--profile`` adds cProfile of the two timed steps (so their times are inflated in that run).
Statement counts leave out BEGIN/COMMIT (they go through the connection, not a cursor).

Results (2026-11-22, this machine: 2 vCPUs, PostgreSQL 15 with default settings, shared with
other jobs — load average 1.7 to 8 during the runs, which moves every figure by up to 2x;
full mode, seed 4; 46,000 (location, product) items, 4,869 with variance, 4,224 pending):

    step                                   calm (load ~2)    loaded (load 4-8)   statements
    variance_compute (target <= 5 s)       2.1 s  met        4.4-5.9 s borderline    6
    variance_report (API body)             4.3 s             7.6-9.6 s               8
    session_submit + session_reconcile     7.7 s             15.8-17.8 s            16
    approve all pending (one UPDATE)       0.13 s            0.26 s                  1
    session_finalize (target <= 5 s)       45.6 s MISSED     78-83 s MISSED         11

Where finalise goes (calm run, 45.6 s; cProfile and the timed sections agree):

1. ``VarianceRow.objects.bulk_update(approved, ["posted_quantity"])`` over all 46,000 approved
   rows — though only 4,869 posted anything: 30.4 s. 21.1 s is the one ``UPDATE ... SET
   posted_quantity = CASE WHEN id = ... THEN ...`` with 46,000 branches, which PostgreSQL tries
   in order for every row (quadratic); ~9 s is Django building 46,000 ``When`` expressions.
2. ``stock.adjust``: 11.2 s. ~8.4 s is Python in the shortage loop: each of the ~4,500 negative
   lines walks the whole FEFO-ordered list of locked quants (``for quant in ordered: if
   quant.product_id != ln.product.pk or ...: continue``), lines x quants iterations (16 million
   ``.pk`` look-ups in the profile). ``_apply`` 2.0 s, of which the quant upsert 1.1 s: its
   ``(SELECT v.delta FROM v WHERE ...)`` scans the VALUES list once per conflicting row, also
   quadratic in the number of rows. ``lock_quants`` 0.8 s.
3. Loading all 46,000 rows with ``select_related("product", "location")``: 0.4 s in the
   database and ~2 s building 138,000 model instances.

Proposed (prototyped by monkeypatching in a scratch run, not in this repository: finalise
2.8 s calm / 7.5 s at load 5, every check above still passing):

a. ``session_finalize``: look for pending rows with a ``values_list`` query; load only rows
   that can post (``approved.exclude(mode=KEEP_DIFFERENCE, variance=0)``); write
   ``posted_quantity`` with ``approved.update(posted_quantity=0)`` plus one ``UPDATE
   counts_variancerow r SET posted_quantity = v.q FROM (VALUES ...) v (id, q) WHERE r.id = v.id``
   for the rows that posted, no ``bulk_update``. (Leaving posted_quantity NULL on the rows that
   cannot post would also drop the 46,000-row UPDATE: 0.5-2 s.)
b. ``stock.adjust`` (``stock.move`` has the same loop): group the FEFO-ordered quants by
   (location_id, product_id) once and walk only the line's group.
c. ``stock._apply``: quants already in ``locked`` (held FOR UPDATE) get ``UPDATE ... FROM
   (VALUES ...)`` (a hash join); only new quants go through the upsert. This also speeds up any
   large receipt or adjustment.

``variance_compute`` meets its target, but under load it nears it; 40% of it is avoidable: get
each item's unit cost (``Sum(quantity * batch__unit_cost)`` and ``Sum(quantity)`` filtered on
quantity > 0) and category from the balance query it already runs, and load products only for
items without stock on hand — instead of ``_unit_costs`` and a ``Product`` query, each with a
20,000-id ``IN`` list (prototyped: 1.9-2.4 s at load 5, against 4.4-5.9 s for the current code
at load 4-8; same results).
Reconcile is not a target, but 46,000 ``VarianceRow`` through ``bulk_create`` cost 4.5 s of its
7.7 s; a hand-built INSERT (or COPY) would cut most of that.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import os
import pstats
import random
import re
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.database import (  # noqa: E402
    bench_url,
    configure_environment,
    drop_database,
    recreate_database,
)

TARGET_SECONDS = 5.0
ZERO = Decimal("0")
PRICE = Decimal("12.5000")
CLASSIFICATIONS = (
    "Dried Flower",
    "Pre-Rolls",
    "Vapes",
    "Edibles",
    "Beverages",
    "Extracts",
    "Topicals",
    "Accessories",
)
# (code, name, kind, sellable, sort order) added to the store's SF and BR
EXTRA_LOCATIONS = (
    ("VT", "Vault", "vault", False, 30),
    ("DSP", "Display Case", "sales_floor", True, 15),
    ("OVR", "Overstock", "back_room", False, 40),
)
# share of the non-SF pairs per location: BR, VT, DSP, OVR
WEIGHTS = (10, 7, 5, 3)
#: the quant lock's hold column (``EXISTS (SELECT 1 FROM inventory_stockhold h ...)``)
HOLD_READ = re.compile(r"EXISTS \(SELECT 1 FROM \w+ h WHERE [^)]*\)")
TABLE = re.compile(r'"?((?:inventory|counts|discrepancies|auth|django)_\w+)"?')


@dataclass(frozen=True)
class Sizes:
    products: int
    lines: int
    lot_pairs: int  # (location, product) pairs counted lot by lot, three lots each
    found: int  # counted pairs with no stock on record
    uncounted: int  # stocked pairs nobody counted
    sales: int
    late_sales: int  # after the count, before finalising
    chunk: int = 1000  # scans per lines_add call
    repeat_share: float = 0.10
    variance_share: float = 0.08


FULL = Sizes(
    products=20_000,
    lines=50_000,
    lot_pairs=2_500,
    found=300,
    uncounted=1_000,
    sales=2_000,
    late_sales=200,
)
QUICK = Sizes(
    products=2_000, lines=5_000, lot_pairs=250, found=30, uncounted=100, sales=200, late_sales=20
)


# --- environment and database -----------------------------------------------------------------


# --- the simulated count ----------------------------------------------------------------------


@dataclass
class Pair:
    """One (location, product): what was received, sold, scanned, and what the clerk found."""

    location: int  # index into the location list
    product: int  # index into the product list
    lots: list[tuple[str, int]] = field(default_factory=list)  # (lot code, received)
    counted: bool = False
    lot_scan: bool = False
    delta: int = 0  # designed variance
    sales: list[tuple[datetime.datetime, int]] = field(default_factory=list)
    first_scan: datetime.datetime | None = None
    counted_qty: int = 0

    @property
    def received(self) -> int:
        return sum(q for _, q in self.lots)

    def sold_until(self, moment: datetime.datetime) -> int:
        return sum(q for at, q in self.sales if at <= moment)


@dataclass
class Plan:
    pairs: dict[tuple[int, int], Pair]
    # per location: [(captured_at, product index, lot code, quantity)] sorted by time
    scans: dict[int, list[tuple[datetime.datetime, int, str, int]]]
    # [(occurred_at, [(pair key, quantity)])] sorted by time
    sales: list[tuple[datetime.datetime, list[tuple[tuple[int, int], int]]]]
    start: datetime.datetime
    end: datetime.datetime


def plan_count(sizes: Sizes, rng: random.Random, now: datetime.datetime) -> Plan:
    """Decide everything up front: stock, sales, scans, and the count each clerk reports."""
    start, end = now - datetime.timedelta(hours=4), now - datetime.timedelta(minutes=15)
    counted_pairs = sizes.lines - 2 * sizes.lot_pairs
    extra = counted_pairs - sizes.products
    shares = [extra * w // sum(WEIGHTS) for w in WEIGHTS]
    shares[0] += extra - sum(shares)
    pairs: dict[tuple[int, int], Pair] = {}
    everyone = range(sizes.products)
    for p in everyone:
        pairs[(0, p)] = Pair(0, p, counted=True)
    for location, share in enumerate(shares, start=1):
        for p in rng.sample(everyone, share):
            pairs[(location, p)] = Pair(location, p, counted=True)
    counted = list(pairs.values())
    for pair in rng.sample(counted, sizes.lot_pairs):
        pair.lot_scan = True
    plain = [pair for pair in counted if not pair.lot_scan]
    found = {(pair.location, pair.product) for pair in rng.sample(plain, sizes.found)}
    while len(pairs) < counted_pairs + sizes.uncounted:
        key = (rng.randrange(5), rng.randrange(sizes.products))
        if key not in pairs:
            pairs[key] = Pair(*key)
    for key, pair in pairs.items():
        if key in found:
            continue
        if pair.lot_scan:
            pair.lots = [(f"L{pair.product}-{x}", rng.randint(10, 40)) for x in "ABC"]
        else:
            pair.lots = [(f"L{pair.product}-A", rng.randint(10, 60))]

    # sales at the sellable rooms (SF = 0, DSP = 3), each line 1-2 units of a stocked pair
    sellable = [pair for pair in pairs.values() if pair.location in (0, 3) and pair.lots]
    span = (end - start).total_seconds()
    sales = []
    for _ in range(sizes.sales):
        at = start + datetime.timedelta(seconds=rng.uniform(60, span))
        lines = []
        for pair in rng.sample(sellable, rng.randint(1, 3)):
            quantity = rng.randint(1, 2)
            if pair.received - sum(q for _, q in pair.sales) - quantity >= 0:
                pair.sales.append((at, quantity))
                lines.append(((pair.location, pair.product), quantity))
        if lines:
            sales.append((at, lines))
    sales.sort(key=lambda s: s[0])

    # scans: each pass walks its room once over the window; ~10% of lines are scanned twice
    scans: dict[int, list] = defaultdict(list)
    for location in range(5):
        mine = [pair for pair in counted if pair.location == location]
        rng.shuffle(mine)
        step = (span - 120) / max(len(mine), 1)
        for n, pair in enumerate(mine):
            first = start + datetime.timedelta(seconds=60 + n * step + rng.uniform(0, step / 2))
            pair.first_scan = first
            if (pair.location, pair.product) in found:
                pair.counted_qty = rng.randint(1, 4)
            else:
                if rng.random() < sizes.variance_share:
                    pair.delta = rng.choice((-5, -4, -3, -2, -1, 1, 2, 3, 4, 5))
                pair.counted_qty = max(0, pair.received - pair.sold_until(first) + pair.delta)
            if pair.lot_scan:
                third = pair.counted_qty // 3
                per_lot = [
                    (code, q)
                    for (code, _), q in zip(
                        pair.lots, (third, third, pair.counted_qty - 2 * third), strict=True
                    )
                ]
            else:
                per_lot = [("", pair.counted_qty)]
            for k, (lot, quantity) in enumerate(per_lot):
                at = first + datetime.timedelta(seconds=k)
                if quantity >= 2 and rng.random() < sizes.repeat_share:
                    again = min(at + datetime.timedelta(seconds=rng.uniform(30, 1800)), end)
                    scans[location].append((at, pair.product, lot, quantity // 2))
                    scans[location].append((again, pair.product, lot, quantity - quantity // 2))
                else:
                    scans[location].append((at, pair.product, lot, quantity))
        scans[location].sort(key=lambda s: s[0])
    return Plan(pairs, dict(scans), sales, start, end)


# --- building it through the services ---------------------------------------------------------


class Phase:
    """Prints how long each setup step took."""

    def __init__(self):
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        print(f"  {name} ...", end="", flush=True)
        began = time.perf_counter()
        yield
        self.times[name] = time.perf_counter() - began
        print(f" {self.times[name]:.1f} s", flush=True)


def build(sizes: Sizes, plan: Plan, phase: Phase) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from counts.models import CountPass, CountSession
    from counts.services import passes, sessions
    from discrepancies.models import VariancePolicy
    from inventory.catalog import services as catalog
    from inventory.models import Batch, Location, Membership, Product, Role
    from inventory.sales import services as sales
    from inventory.stock import documents
    from inventory.tenancy import services as org_services
    from inventory.tenancy.scope import tenant_scope

    org = org_services.org_create(slug="countbench", name="Count Bench Cannabis")
    scope = tenant_scope(org)
    scope.__enter__()
    # zero tolerance for Flower; the platform's default policy elsewhere
    VariancePolicy.objects.create(org=org, category="Flower", units=0, percent=0)
    store = org_services.store_create(org=org, code="CB1", name="Count Bench Store")
    for code, name, kind, sellable, order in EXTRA_LOCATIONS:
        org_services.location_create(
            org=org,
            store=store,
            code=code,
            name=name,
            kind=kind,
            sellable=sellable,
            sort_order=order,
        )
    by_code = {loc.code: loc for loc in Location.objects.filter(store=store)}
    locations = [by_code[c] for c in ("SF", "BR", "VT", "DSP", "OVR")]
    User = get_user_model()
    people = {}
    for role in (Role.MANAGER, Role.ADMIN, Role.OPERATOR):
        user = User.objects.create_user(
            username=f"{role}@countbench.example",
            email=f"{role}@countbench.example",
            password="not-used-1234",
        )
        Membership.objects.create(org=org, user=user, role=role)
        people[role] = user

    with phase(f"{sizes.products:,} products"):
        for begin in range(0, sizes.products, 1000):
            catalog.product_upsert_many(
                org=org,
                rows=[
                    {
                        "sku": f"CB-{n:05d}",
                        "name": f"Count bench product {n}",
                        "brand": "Bench",
                        "classification": CLASSIFICATIONS[n % len(CLASSIFICATIONS)],
                        "unit": "each",
                        "default_cost": Decimal(2 + n % 20),
                        "default_price": PRICE,
                    }
                    for n in range(begin, min(begin + 1000, sizes.products))
                ],
            )
        products = list(Product.objects.order_by("sku"))

    received_at = plan.start - datetime.timedelta(days=3)
    # 500 lines a receipt, room by room (a lot may be on two lines of one document)
    receive_lines = [
        (pair, code, quantity)
        for pair in sorted(plan.pairs.values(), key=lambda p: (p.location, p.product))
        for code, quantity in pair.lots
    ]
    documents_lines = [receive_lines[n : n + 500] for n in range(0, len(receive_lines), 500)]
    receive_count = sum(len(d) for d in documents_lines)
    with phase(f"{receive_count:,} receipt lines in {len(documents_lines)} receipts"):
        for n, chunk in enumerate(documents_lines):
            documents.receipt_record(
                org=org,
                store=store,
                client_ref=f"countbench-receipt-{n}",
                source="bench",
                reason="count bench opening stock",
                occurred_at=received_at + datetime.timedelta(seconds=n),
                lines=[
                    documents.ReceiptLineInput(
                        products[pair.product],
                        locations[pair.location],
                        Decimal(quantity),
                        lot_code=code,
                        expiry_date=(
                            plan.start.date()
                            + datetime.timedelta(days=60 + 30 * "ABC".index(code[-1]))
                        ),
                        unit_cost=Decimal(2 + (pair.product * 7 + ord(code[-1])) % 28),
                    )
                    for pair, code, quantity in chunk
                ],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh tables: give the planner statistics for the rest
    lot_products = [products[p.product].pk for p in plan.pairs.values() if p.lot_scan]
    batches = {
        (b.product_id, b.lot_code): b for b in Batch.objects.filter(product_id__in=lot_products)
    }

    session = sessions.session_create(
        org=org, store=store, scope="FULL_STORE", actor=people[Role.MANAGER], notes="count bench"
    )
    session = sessions.session_start(org=org, session=session, actor=people[Role.MANAGER])
    count_passes = [
        passes.pass_create(
            org=org,
            session=session,
            location=loc,
            actor=people[Role.OPERATOR],
            device_id=f"tablet-{n}",
        )
        for n, loc in enumerate(locations)
    ]
    # A bench cannot wait four hours: the passes started then (as the tests back-date them).
    CountSession.objects.filter(pk=session.pk).update(started_at=plan.start)
    CountPass.objects.filter(session=session).update(started_at=plan.start)
    for count_pass in count_passes:
        count_pass.refresh_from_db()

    events = []  # (moment, kind, payload): scan chunks and sales, in simulated-time order
    for location, scans in plan.scans.items():
        for begin in range(0, len(scans), sizes.chunk):
            chunk = scans[begin : begin + sizes.chunk]
            events.append((chunk[-1][0], "scans", (location, chunk)))
    events += [(at, "sale", lines) for at, lines in plan.sales]
    events.sort(key=lambda e: (e[0], e[1]))
    n_scans = sum(len(s) for s in plan.scans.values())
    with phase(
        f"{n_scans:,} scans ({len([e for e in events if e[1] == 'scans'])} lines_add "
        f"calls) interleaved with {len(plan.sales):,} sales"
    ):
        for n, (at, kind, payload) in enumerate(events):
            if kind == "scans":
                location, chunk = payload
                passes.lines_add(
                    org=org,
                    count_pass=count_passes[location],
                    actor=people[Role.OPERATOR],
                    device_id=f"tablet-{location}",
                    entries=[
                        passes.Entry(
                            products[p],
                            Decimal(quantity),
                            lot_code=lot,
                            batch=batches[(products[p].pk, lot)] if lot else None,
                            raw_scan=products[p].sku,
                            captured_at=moment,
                            client_line_id=f"{location}-{moment.timestamp():.6f}-{p}-{lot}",
                        )
                        for moment, p, lot, quantity in chunk
                    ],
                )
            else:
                sales.sale_record(
                    org=org,
                    store=store,
                    client_ref=f"countbench-sale-{n}",
                    source="bench",
                    occurred_at=at,
                    lines=[
                        sales.SaleLineInput(
                            products[key[1]], Decimal(quantity), PRICE, locations[key[0]]
                        )
                        for key, quantity in payload
                    ],
                )
    with phase("submitting the passes"):
        count_passes = [
            passes.pass_submit(org=org, count_pass=count_pass, actor=people[Role.OPERATOR])
            for count_pass in count_passes
        ]
    session.refresh_from_db()
    return {
        "org": org,
        "store": store,
        "scope": scope,
        "session": session,
        "locations": locations,
        "products": products,
        "people": people,
        "passes": count_passes,
    }


# --- measuring --------------------------------------------------------------------------------


def statement_label(sql: str) -> str:
    sql = HOLD_READ.sub("", sql)  # the quant lock reads the holds: label it by its own table
    words = sql.split(None, 1)
    verb = words[0].upper() if words else "?"
    if "ON CONFLICT" in sql:
        verb = "UPSERT"
    elif verb == "WITH":
        verb = "WITH"
    body = sql.split(" FROM ", 1)[1] if verb == "SELECT" and " FROM " in sql else sql
    match = TABLE.search(body)
    label = f"{verb} {match.group(1) if match else ''}".strip()
    return label + (" FOR UPDATE" if "FOR UPDATE" in sql else "")


@dataclass
class Measured:
    name: str
    seconds: float
    queries: int
    db_seconds: float
    statements: list[tuple[str, float]]
    sections: dict[str, float]
    profile: str = ""
    result: object = None

    @property
    def python_seconds(self) -> float:
        return self.seconds - self.db_seconds


SECTIONS = (
    # (label, module path, attribute): wrapped while a step is measured
    ("sessions._save_posted", "counts.services.sessions", "_save_posted"),
    ("sessions._rows_to_post", "counts.services.sessions", "_rows_to_post"),
    ("stock.count_post (the write path)", "inventory.stock.write_path", "count_post"),
    ("  stock.lock_quants", "inventory.stock.write_path", "lock_quants"),
    ("  stock._upsert_batches", "inventory.stock.write_path", "_upsert_batches"),
    ("  stock._apply", "inventory.stock.write_path", "_apply"),
)


@contextmanager
def sections_timed(spent: dict[str, float], sections=SECTIONS):
    """Wrap a few functions by module attribute and add up the time spent in each."""
    import importlib
    from functools import wraps

    from django.db.models.query import QuerySet

    patched = []

    def wrap(label, owner, name):
        original = getattr(owner, name)

        @wraps(original)
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - began

        setattr(owner, name, timed)
        patched.append((owner, name, original))

    for label, module, name in sections:
        wrap(label, importlib.import_module(module), name)
    wrap("QuerySet.bulk_create", QuerySet, "bulk_create")
    wrap("QuerySet.bulk_update", QuerySet, "bulk_update")
    try:
        yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def measure(name: str, call, *, profile: bool = False, sections=SECTIONS) -> Measured:
    """Run ``call`` once: wall time, statements (count and round-trip time), sections (the
    functions ``sections`` names, by module attribute)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings: list[tuple[str, float]] = []

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((statement_label(sql), time.perf_counter() - began))

    spent: dict[str, float] = {}
    profiler = cProfile.Profile() if profile else None
    with (
        CaptureQueriesContext(connection) as captured,
        connection.execute_wrapper(timed),
        sections_timed(spent, sections),
    ):
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        result = call()
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - began
    queries = len(captured.captured_queries)
    text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        out.write("\n-- by own time --\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        text = out.getvalue()
    return Measured(
        name, seconds, queries, sum(t for _, t in timings), timings, spent, text, result
    )


# --- checking ---------------------------------------------------------------------------------


def check_preview(items, plan: Plan, fx: dict) -> dict:
    """The live variance equals the simulation for every (location, product)."""
    location_index = {loc.pk: n for n, loc in enumerate(fx["locations"])}
    product_index = {p.pk: n for n, p in enumerate(fx["products"])}
    submitted = max(p.submitted_at for p in fx["passes"])
    seen, wrong = set(), []
    for item in items:
        key = (location_index[item.location_id], product_index[item.product_id])
        seen.add(key)
        pair = plan.pairs.get(key)
        if pair is None:
            wrong.append((key, "not in the plan"))
            continue
        moment = pair.first_scan if pair.counted else submitted
        expected = pair.received - pair.sold_until(moment)
        counted = pair.counted_qty if pair.counted else 0
        if item.expected != expected or item.counted != counted:
            wrong.append(
                (
                    key,
                    f"expected {item.expected} (plan {expected}), counted "
                    f"{item.counted} (plan {counted})",
                )
            )
    missing = [
        k
        for k, p in plan.pairs.items()
        if k not in seen and (p.counted or p.received - p.sold_until(submitted) != 0)
    ]
    assert not wrong, f"preview differs from the simulation: {wrong[:10]} ({len(wrong)} in all)"
    assert not missing, f"pairs missing from the preview: {missing[:10]} ({len(missing)})"
    straddling = sum(
        1
        for p in plan.pairs.values()
        if p.counted
        and p.sales
        and any(at <= p.first_scan for at, _ in p.sales)
        and any(at > p.first_scan for at, _ in p.sales)
    )
    return {"items": len(items), "straddling": straddling}


def check_after_finalize(plan: Plan, fx: dict, late: dict[tuple[int, int], int]) -> dict:
    """Ledger = quants; quant = counted - sales after the first scan (0 when clamped)."""
    from django.db import connection

    from inventory.models import StockLedger, StockQuant

    org = fx["org"]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COALESCE(l.location_id, q.location_id), COALESCE(l.batch_id, q.batch_id),
                   COALESCE(l.total, 0), COALESCE(q.quantity, 0)
            FROM (SELECT location_id, batch_id, SUM(qty_delta) AS total
                  FROM inventory_stockledger WHERE org_id = %s
                  GROUP BY location_id, batch_id) l
            FULL OUTER JOIN (SELECT * FROM inventory_stockquant WHERE org_id = %s) q
              ON q.location_id = l.location_id AND q.batch_id = l.batch_id
            WHERE COALESCE(l.total, 0) <> COALESCE(q.quantity, 0)
        """,
            [org.pk, org.pk],
        )
        mismatches = cursor.fetchall()
    assert mismatches == [], f"ledger != quants: {mismatches[:10]} ({len(mismatches)})"
    assert not StockQuant.objects.filter(quantity__lt=0, unallocated=False).exists()
    assert not StockLedger.objects.filter(qty_delta=0).exists()

    location_index = {loc.pk: n for n, loc in enumerate(fx["locations"])}
    product_index = {p.pk: n for n, p in enumerate(fx["products"])}
    on_hand: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for location_id, product_id, quantity in StockQuant.objects.filter(
        location_id__in=location_index
    ).values_list("location_id", "product_id", "quantity"):
        on_hand[(location_index[location_id], product_index[product_id])] += quantity
    wrong, clamped = [], 0
    for key, pair in plan.pairs.items():
        moment = (
            pair.first_scan if pair.counted else datetime.datetime.max.replace(tzinfo=datetime.UTC)
        )
        after = sum(q for at, q in pair.sales if at > moment) + late.get(key, 0)
        want = (pair.counted_qty if pair.counted else 0) - after
        if want < 0:
            clamped += 1
            want = 0
        if on_hand[key] != want:
            wrong.append((key, f"quant {on_hand[key]}, want {want}"))
    assert not wrong, f"quants != counted - later sales: {wrong[:10]} ({len(wrong)} in all)"
    return {"pairs": len(plan.pairs), "clamped": clamped}


# --- report -----------------------------------------------------------------------------------


def show(measured: Measured, target: float | None = None) -> None:
    verdict = ""
    if target is not None:
        verdict = "  OK" if measured.seconds <= target else f"  MISSED (target {target:g} s)"
    print(f"\n{measured.name}: {measured.seconds:.2f} s{verdict}")
    print(
        f"  {measured.queries} statements, {measured.db_seconds:.2f} s in database round "
        f"trips, {measured.python_seconds:.2f} s in Python"
    )
    by_label: dict[str, list[float]] = defaultdict(list)
    for label, seconds in measured.statements:
        by_label[label].append(seconds)
    for label, samples in sorted(by_label.items(), key=lambda kv: -sum(kv[1])):
        print(f"    {len(samples):>3} x {label:<48} {sum(samples):7.3f} s")
    if measured.sections:
        print("  inside (wall time, statements included):")
        order = list(measured.sections)  # in the order they were first left
        for label in order:
            if label in measured.sections:
                print(f"    {label:<54} {measured.sections[label]:7.3f} s")
    if measured.profile:
        print(measured.profile)


def server_facts(fx_connection) -> dict[str, str]:
    with fx_connection.cursor() as cursor:
        facts = {}
        for name in ("server_version", "shared_buffers", "work_mem", "synchronous_commit"):
            cursor.execute(f"SHOW {name}")
            facts[name] = cursor.fetchone()[0]
    return facts


def run(sizes: Sizes, seed: int, profile: bool) -> None:
    from django.utils import timezone

    rng = random.Random(seed)
    phase = Phase()
    plan = plan_count(sizes, rng, timezone.now())
    fx = build(sizes, plan, phase)
    try:
        measure_all(sizes, plan, fx, rng, phase, profile)
    finally:
        fx["scope"].__exit__(None, None, None)


def measure_all(
    sizes: Sizes, plan: Plan, fx: dict, rng: random.Random, phase: Phase, profile: bool
) -> None:
    from django.db import connection
    from django.db.models import Count

    from counts.models import CountLine, CountScan, VarianceRow, VarianceStatus
    from counts.selectors import variance_compute, variance_report
    from counts.services import sessions
    from discrepancies.services.decisions import BULK_LIMIT, Decision, discrepancies_decide
    from inventory.models import RefType, StockLedger
    from inventory.sales import services as sales
    from inventory.tenancy.scope import resolve_tenant

    org, session, people = fx["org"], fx["session"], fx["people"]
    lines = CountLine.objects.filter(count_pass__session=session).count()
    scans = CountScan.objects.filter(count_pass__session=session).count()
    products_counted = (
        CountLine.objects.filter(count_pass__session=session)
        .values("product_id")
        .distinct()
        .count()
    )
    sale_lines = sum(len(s[1]) for s in plan.sales)
    before = after = 0
    for pair in plan.pairs.values():
        for at, _ in pair.sales:
            if pair.counted and at > pair.first_scan:
                after += 1
            elif pair.counted:
                before += 1
    print(
        f"\ncount: {lines:,} lines ({scans:,} scans) over {products_counted:,} products in "
        f"{len(fx['locations'])} locations; {len(plan.sales):,} sales ({sale_lines:,} lines: "
        f"{before:,} before the scan of their product there, {after:,} after)"
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have by now on a real server

    # 1. the live preview, then the API body of it
    load = os.getloadavg()
    compute = measure(
        "variance_compute (live preview)", lambda: variance_compute(session), profile=profile
    )
    facts = check_preview(compute.result, plan, fx)
    # read-only, so it can be repeated: the machine may be shared, the best run says more
    repeats = [compute.seconds] + [
        measure("again", lambda: variance_compute(session)).seconds for _ in range(2)
    ]
    report = measure(
        "variance_report (API body, preview)",
        lambda: variance_report(session, ordering="-abs_value"),
    )

    # 2. submit and reconcile (variance computed again and stored)
    def reconcile():
        s = sessions.session_submit(org=org, session=session, actor=people["manager"])
        return sessions.session_reconcile(org=org, session=s, actor=people["manager"])

    reconciled = measure("session_submit + session_reconcile", reconcile)
    session = reconciled.result
    statuses = dict(
        VarianceRow.objects.filter(session=session)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )

    # 3. approve what needs approval: the rows' discrepancies, in bulk (one call per 5,000)
    pending = list(
        VarianceRow.objects.filter(session=session, status=VarianceStatus.PENDING)
        .order_by("discrepancy_id")
        .values_list("discrepancy_id", flat=True)
    )
    admin_tenant = resolve_tenant(people["admin"], org_id=org.pk)

    def approve_all():
        for begin in range(0, len(pending), BULK_LIMIT):
            outcome = discrepancies_decide(
                org=org,
                ids=pending[begin : begin + BULK_LIMIT],
                decision=Decision("approve"),
                tenant=admin_tenant,
                actor=people["admin"],
            )
            assert not outcome.refused, outcome.refusals()[:3]

    approved = measure(
        f"approve the {len(pending):,} pending rows' discrepancies (discrepancies_decide, bulk)",
        approve_all,
    )

    # sales after the count, before finalising: finalise must not take them twice
    late: dict[tuple[int, int], int] = defaultdict(int)
    sellable = [p for p in plan.pairs.values() if p.location in (0, 3) and p.lots]
    location_index = {0: fx["locations"][0], 3: fx["locations"][3]}
    for n in range(sizes.late_sales):
        pair = rng.choice(sellable)
        key = (pair.location, pair.product)
        left = pair.received - sum(q for _, q in pair.sales) - late[key]
        if left < 1:
            continue
        sales.sale_record(
            org=org,
            store=fx["store"],
            client_ref=f"countbench-late-{n}",
            source="bench",
            lines=[
                sales.SaleLineInput(
                    fx["products"][pair.product], Decimal(1), PRICE, location_index[pair.location]
                )
            ],
        )
        late[key] += 1

    # 4. finalise
    finalized = measure(
        "session_finalize",
        lambda: sessions.session_finalize(org=org, session=session, actor=people["admin"]),
        profile=profile,
    )
    posted = StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE, ref_id=session.pk).count()
    sessions.session_finalize(org=org, session=session, actor=people["admin"])
    assert (
        StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE, ref_id=session.pk).count()
        == posted
    ), "posted twice"
    final = check_after_finalize(plan, fx, late)

    body = report.result
    print("\n" + "=" * 100)
    print(f"sizes: {sizes}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} when measuring began, "
        f"{os.getloadavg()[0]:.1f} at the end; PostgreSQL {server_facts(connection)}"
    )
    print("setup: " + ", ".join(f"{k} {v:.1f} s" for k, v in phase.times.items()))
    print(
        f"preview: {facts['items']:,} (location, product) items; "
        f"{facts['straddling']:,} counted pairs had sales both before and after their scan; "
        f"totals {body['totals']}"
    )
    print(f"reconciled rows by status: {statuses}")
    print(
        f"finalise posted {posted:,} COUNT_RECONCILE ledger rows; {sizes.late_sales} sales "
        f"after the count were not taken twice"
    )
    show(compute, TARGET_SECONDS)
    print(f"  three runs: {', '.join(f'{t:.2f}' for t in repeats)} s")
    show(report)
    show(reconciled)
    show(approved)
    show(finalized, TARGET_SECONDS)
    print(
        f"\nchecks: preview = simulation for {facts['items']:,} items; ledger = quants; "
        f"quant = counted - later sales for {final['pairs']:,} (location, product) pairs "
        f"({final['clamped']} clamped at 0); second finalise posted nothing"
    )
    print("=" * 100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 5,000 lines over 2,000 products"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the two timed steps (inflates their times)"
    )
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    url = bench_url("inventory_countbench")
    configure_environment(url)
    began = time.perf_counter()
    name = recreate_database(url)
    print(
        f"database {name}: migrating, then building a count of {sizes.lines:,} lines over "
        f"{sizes.products:,} products",
        flush=True,
    )
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        run(sizes, args.seed, args.profile)
        print(f"whole run {time.perf_counter() - began:.0f} s")
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
