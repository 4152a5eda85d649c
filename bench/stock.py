"""Stock write-path benchmark (issue 3): what one POS sale costs, alone and under contention.

Not a test: it prints figures to compare against the targets (on a 2-core machine: service
p50 <= 5 ms, API p50 <= 15 ms, hot-SKU throughput >= 30% of the same transaction in raw SQL)
and to record in ``bench/README.md``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inventory_bench \\
        .venv/bin/python bench/stock.py [--quick] [--keep]

It drops and recreates its own database (the name in DATABASE_URL when it ends in ``bench``,
else ``inventory_bench``, so it never touches a real database), migrates it, builds one
organisation with one store and 20,000 products each received as one lot through the real
receipt service, then measures:

1. latency of a one-line sale through the service (``sale_record``) and through the whole HTTP
   stack (DRF in-process with a real token), and the queries each takes;
2. throughput with 1, 4 and 16 client *processes* (threads would measure the GIL) selling one
   hot SKU and random SKUs over the catalogue;
3. the same sale as hand-written SQL with psycopg (lock the quant, update it, insert the sale
   and one ledger row, commit), in the same run, and the platform/raw ratio for every cell.

Afterwards it checks invariant 1 (ledger sum = quant) over everything the run wrote.

``--enforcement record|warn|block`` (or ``BENCH_ENFORCEMENT``) sets the organisation's
discrepancy enforcement mode and holds ``--holds`` products (default 200; a CRITICAL
discrepancy each, recorded through ``discrepancies_record``) that the bench then never sells:
the sales run with the policy registered and holds present, as a store in ``block`` mode would
(a held product's own sale is refused, and checked once).
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import os
import queue
import random
import re
import statistics
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.database import (  # noqa: E402
    bench_url,
    configure_environment,
    drop_database,
    psycopg_url,
    recreate_database,
)

ONE = Decimal("1")
PRICE = Decimal("12.5000")
COST = Decimal("4.2500")
HOT_QUANTITY = Decimal("10000000")
SPREAD_QUANTITY = Decimal("1000")
CLIENTS = (1, 4, 16)
TARGET_SERVICE_P50_MS = 5.0
TARGET_API_P50_MS = 15.0
TARGET_HOT_RATIO = 0.30
#: the quant lock's hold column (``EXISTS (SELECT 1 FROM inventory_stockhold h ...)``)
HOLD_READ = re.compile(r"EXISTS \(SELECT 1 FROM \w+ h WHERE [^)]*\)")
TABLE = re.compile(r'"?(inventory_\w+|auth_\w+|django_\w+)"?')


@dataclass(frozen=True)
class Sizes:
    products: int
    service_sales: int
    api_sales: int
    warmup: int
    duration: float  # seconds per throughput cell and side (platform, raw SQL)
    rounds: int  # the duration is cut into this many alternating slices


FULL = Sizes(
    products=20_000, service_sales=2_000, api_sales=1_000, warmup=100, duration=8.0, rounds=4
)
QUICK = Sizes(products=2_000, service_sales=200, api_sales=100, warmup=20, duration=1.5, rounds=1)


# --- environment and database -----------------------------------------------------------------


def server_settings(url: str) -> dict[str, str]:
    import psycopg

    names = ("server_version", "shared_buffers", "synchronous_commit", "fsync", "max_connections")
    with psycopg.connect(psycopg_url(url)) as conn:
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


# --- fixture ----------------------------------------------------------------------------------


def build_fixture(sizes: Sizes, enforcement: str | None = None, holds: int = 0) -> dict:
    """One org, one store, ``sizes.products`` products, one lot each received at the floor;
    with ``enforcement``, that mode and ``holds`` products held."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from inventory.catalog import services as catalog
    from inventory.models import Location, Membership, Product, Role
    from inventory.stock import documents
    from inventory.tenancy import services as org_services
    from inventory.tenancy.scope import tenant_scope
    from inventory.tenancy.tokens import api_token_create

    org = org_services.org_create(slug="bench", name="Bench Cannabis")
    with tenant_scope(org):
        store = org_services.store_create(org=org, code="B1", name="Bench Store")
        floor = Location.objects.get(store=store, code="SF")
        user = get_user_model().objects.create_user(
            username="pos@bench.example", email="pos@bench.example", password="not-used-1234"
        )
        Membership.objects.create(org=org, user=user, role=Role.OPERATOR)
        _, key = api_token_create(org=org, user=user, name="bench till")

        for start in range(0, sizes.products, 1000):
            catalog.product_upsert_many(
                org=org,
                rows=[
                    {
                        "sku": f"BENCH-{n:05d}",
                        "name": f"Bench product {n}",
                        "brand": "Bench",
                        "classification": "Dried Flower",
                        "unit": "each",
                        "default_cost": COST,
                        "default_price": PRICE,
                    }
                    for n in range(start, min(start + 1000, sizes.products))
                ],
            )
        products = list(Product.objects.order_by("id"))
        hot = products[len(products) // 2]
        expiry = datetime.date.today() + datetime.timedelta(days=365)
        for start in range(0, len(products), 500):
            chunk = products[start : start + 500]
            documents.receipt_record(
                org=org,
                store=store,
                client_ref=f"bench-opening-{start}",
                source="bench",
                reason="bench opening stock",
                lines=[
                    documents.ReceiptLineInput(
                        p,
                        floor,
                        HOT_QUANTITY if p.pk == hot.pk else SPREAD_QUANTITY,
                        lot_code=f"LOT-{p.sku}",
                        expiry_date=expiry,
                        unit_cost=COST,
                    )
                    for p in chunk
                ],
            )
    held = hold_products(org, store, products, hot, enforcement, holds)
    # What autovacuum does soon after a bulk load. Without statistics the planner reads the
    # quant lock through (org, location, batch) and filters every quant of the sales floor:
    # 2.5 ms at 20,000 SKUs instead of 0.05 ms, growing with the catalogue.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "org": org.pk,
        "store": store.pk,
        "floor": floor.pk,
        "user": user.pk,
        "hot": hot.pk,
        "products": [p.pk for p in products if p.pk not in held],
        "held": sorted(held),
        "enforcement": enforcement,
        "token": key,
    }


def hold_products(org, store, products, hot, enforcement: str | None, holds: int) -> set[int]:
    """With an enforcement mode: set it, and hold ``holds`` products (never the hot one) with
    a CRITICAL discrepancy each, through the real recording service. Returns their ids."""
    if not enforcement:
        return set()

    from django.db import transaction

    from discrepancies.models import DocumentType, Kind, Source
    from discrepancies.services.record import Finding, discrepancies_record
    from inventory.models import Organization, StockHold
    from inventory.tenancy.scope import tenant_scope

    Organization.objects.filter(pk=org.pk).update(discrepancy_enforcement=enforcement)
    chosen = [p for p in products if p.pk != hot.pk][-holds:] if holds else []
    with tenant_scope(org), transaction.atomic():
        discrepancies_record(
            org=org,
            findings=[
                Finding(
                    store_id=store.pk,
                    product_id=p.pk,
                    category=p.category,
                    expected=SPREAD_QUANTITY,
                    actual=SPREAD_QUANTITY / 2,
                    unit_cost=COST,
                    source=Source.INVARIANT,
                    document_type=DocumentType.INVARIANT_CHECK,
                    kind=Kind.DATA_ERROR,
                    corrective=False,
                )
                for p in chosen
            ],
            actor=None,
        )
        assert StockHold.objects.filter(store=store).count() == len(chosen)
    return {p.pk for p in chosen}


def held_sale_refused(fx: dict, url: str) -> str:
    """What selling a held product answers (once): ``open_discrepancy`` in block mode."""
    if not fx["held"]:
        return "-"
    seller = Seller(fx, url)
    try:
        seller.service(fx["held"][0])
        return "posted"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return getattr(exc, "code", type(exc).__name__)
    finally:
        seller.close()


# --- measuring --------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": cuts[49] * 1000,
        "p95": cuts[94] * 1000,
        "p99": cuts[98] * 1000,
        "n": len(samples),
    }


class Seller:
    """One client: sells one unit at a time, through the service or as raw SQL."""

    def __init__(self, fx: dict, url: str):
        from inventory.models import Organization, Product, Store
        from inventory.tenancy.scope import tenant_scope

        self.fx, self.url = fx, url
        self._scope = tenant_scope(fx["org"])
        self._scope.__enter__()
        self.org = Organization.objects.get(pk=fx["org"])
        self.store = Store.objects.get(pk=fx["store"])
        self.products = {p.pk: p for p in Product.objects.all()}
        self.raw = None

    def service(self, product_id: int) -> None:
        from inventory.sales import services as sales

        sales.sale_record(
            org=self.org,
            store=self.store,
            client_ref=f"svc-{uuid.uuid4().hex}",
            source="bench",
            lines=[sales.SaleLineInput(self.products[product_id], ONE, PRICE)],
        )

    def raw_sql(self, product_id: int) -> None:
        """The same sale by hand: lock, update, two inserts, commit — nothing else."""
        import psycopg

        if self.raw is None:
            self.raw = psycopg.connect(psycopg_url(self.url))
        fx, now = self.fx, datetime.datetime.now(datetime.UTC)
        with self.raw.cursor() as cur:
            cur.execute(
                "SELECT q.id, q.batch_id, q.quantity, b.unit_cost"
                " FROM inventory_stockquant q JOIN inventory_batch b ON b.id = q.batch_id"
                " WHERE q.org_id = %s AND q.location_id = %s AND q.product_id = %s"
                " AND q.quantity > 0 ORDER BY q.id FOR UPDATE OF q",
                (fx["org"], fx["floor"], product_id),
            )
            quant_id, batch_id, _, unit_cost = cur.fetchone()
            cur.execute(
                "UPDATE inventory_stockquant SET quantity = quantity - 1,"
                " updated_at = %s WHERE id = %s",
                (now, quant_id),
            )
            cur.execute(
                "INSERT INTO inventory_sale (org_id, store_id, client_ref, request_hash, status,"
                " source, source_ref, occurred_at, warnings, result, created_at)"
                " VALUES (%s, %s, %s, '', 'completed', 'bench', '', %s, '[]', '{}', %s)"
                " RETURNING id",
                (fx["org"], fx["store"], f"raw-{uuid.uuid4().hex}", now, now),
            )
            (sale_id,) = cur.fetchone()
            cur.execute(
                "INSERT INTO inventory_stockledger (org_id, store_id, location_id, product_id,"
                " batch_id, qty_delta, ref_type, ref_id, ref_line, source, source_ref, reason,"
                " unit_cost, occurred_at, created_at)"
                " VALUES (%s, %s, %s, %s, %s, -1, 'SALE', %s, 1, 'bench', '', '', %s, %s, %s)",
                (
                    fx["org"],
                    fx["store"],
                    fx["floor"],
                    product_id,
                    batch_id,
                    sale_id,
                    unit_cost,
                    now,
                    now,
                ),
            )
        self.raw.commit()

    def close(self) -> None:
        from django.db import connections

        if self.raw is not None:
            self.raw.close()
        self._scope.__exit__(None, None, None)
        connections.close_all()


def time_calls(call, product_ids: list[int]) -> list[float]:
    samples = []
    for product_id in product_ids:
        start = time.perf_counter()
        call(product_id)
        samples.append(time.perf_counter() - start)
    return samples


def measure_latency(fx: dict, url: str, sizes: Sizes, rng: random.Random) -> dict:
    """Single-client latency: service (random SKUs, hot SKU) and the API (random SKUs)."""
    from rest_framework.test import APIClient

    seller = Seller(fx, url)
    pick = fx["products"]
    try:
        time_calls(seller.service, rng.choices(pick, k=sizes.warmup))
        results = {
            "service, random SKU": percentiles(
                time_calls(seller.service, rng.choices(pick, k=sizes.service_sales))
            ),
            "service, hot SKU": percentiles(
                time_calls(seller.service, [fx["hot"]] * (sizes.service_sales // 2))
            ),
        }
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {fx['token']}")

        def post(product_id: int) -> None:
            response = client.post("/api/v1/sales/", api_body(fx, product_id), format="json")
            if response.status_code != 201:
                raise RuntimeError(f"API sale failed: {response.status_code} {response.content}")

        time_calls(post, rng.choices(pick, k=sizes.warmup))
        results["API, random SKU"] = percentiles(
            time_calls(post, rng.choices(pick, k=sizes.api_sales))
        )
        results["raw SQL, random SKU"] = percentiles(
            time_calls(seller.raw_sql, rng.choices(pick, k=sizes.service_sales))
        )
    finally:
        seller.close()
    return results


def api_body(fx: dict, product_id: int) -> dict:
    return {
        "store": fx["store"],
        "client_ref": f"api-{uuid.uuid4().hex}",
        "lines": [{"product": product_id, "quantity": "1", "unit_price": str(PRICE)}],
    }


def count_queries(fx: dict, url: str, rng: random.Random) -> dict:
    """Statements of one service sale (and of its write-path call) and of one API request.

    Transaction control (BEGIN/COMMIT) goes through the connection, not a cursor, so it is not
    in these counts.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from inventory.stock import write_path as stock

    seller = Seller(fx, url)
    # Captured lists are read at once: a later request_started signal resets the query log
    # that ``captured_queries`` slices lazily.
    inner: list[list[str]] = []
    original = stock.consume

    def consume(**kwargs):
        with CaptureQueriesContext(connection) as captured:
            outcome = original(**kwargs)
        inner.append([q["sql"] for q in captured.captured_queries])
        return outcome

    try:
        stock.consume = consume
        with CaptureQueriesContext(connection) as whole:
            seller.service(rng.choice(fx["products"]))
        service = [q["sql"] for q in whole.captured_queries]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {fx['token']}")
        client.post("/api/v1/sales/", api_body(fx, rng.choice(fx["products"])), format="json")
        with CaptureQueriesContext(connection) as api:
            response = client.post(
                "/api/v1/sales/", api_body(fx, rng.choice(fx["products"])), format="json"
            )
        assert response.status_code == 201, response.content
        api_statements = [q["sql"] for q in api.captured_queries]
    finally:
        stock.consume = original
        seller.close()
    return {"service": service, "write_path": inner[0], "api": api_statements}


def statement_label(sql: str) -> str:
    """``SELECT inventory_sale``, ``UPSERT inventory_stockquant``, ``... FOR UPDATE``."""
    sql = HOLD_READ.sub("", sql)  # the quant lock reads the holds: label it by its own table
    words = sql.split()
    verb = words[0].upper() if words else "?"
    if verb in ("WITH", "INSERT") and "ON CONFLICT" in sql:
        verb = "UPSERT"
    match = TABLE.search(sql.split(" WHERE ")[0] if verb == "SELECT" else sql)
    if verb == "SELECT" and " FROM " in sql:
        match = TABLE.search(sql.split(" FROM ", 1)[1])
    label = f"{verb} {match.group(1) if match else ''}".strip()
    return label + (" FOR UPDATE" if "FOR UPDATE" in sql else "")


def where_time_goes(fx: dict, url: str, sizes: Sizes, rng: random.Random) -> dict:
    """Where one sale's wall time goes: per statement, the Python before it and its round trip.

    ``python`` is the time since the previous statement returned (for the first, since the call
    began): building the query in the ORM, planning, serialising. ``db`` is the cursor call
    itself, a client round trip; the first statement of a transaction also carries psycopg's
    implicit BEGIN. COMMIT is timed the same way; ``after COMMIT`` is the rest of the call.
    Means per sale, in ms: ``{"service": {label: (python, db)}, "API": ...}``.
    """
    from django.db import connection
    from rest_framework.test import APIClient

    seller = Seller(fx, url)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {fx['token']}")
    spent: dict[str, list[float]] = {}
    last = [0.0]

    def book(label: str, began: float) -> None:
        now = time.perf_counter()
        row = spent.setdefault(label, [0.0, 0.0])
        row[0] += began - last[0]
        row[1] += now - began
        last[0] = now

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            book(statement_label(sql), began)

    commit = connection._commit

    def timed_commit():
        began = time.perf_counter()
        try:
            return commit()
        finally:
            book("COMMIT", began)

    def post(product_id: int) -> None:
        client.post("/api/v1/sales/", api_body(fx, product_id), format="json")

    n = max(sizes.service_sales // 4, 50)
    breakdown = {}
    connection._commit = timed_commit
    try:
        with connection.execute_wrapper(timed):
            for name, call in (("service", seller.service), ("API", post)):
                for product_id in rng.choices(fx["products"], k=sizes.warmup):
                    call(product_id)
                spent.clear()
                total = 0.0
                for product_id in rng.choices(fx["products"], k=n):
                    began = last[0] = time.perf_counter()
                    call(product_id)
                    ended = time.perf_counter()
                    book("after COMMIT", ended)  # python = the tail after the last statement
                    total += ended - began
                rows = {k: (v[0] / n * 1000, v[1] / n * 1000) for k, v in spent.items()}
                rows["total"] = (sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values()))
                breakdown[name] = rows
    finally:
        del connection._commit
        seller.close()
    return breakdown


# --- throughput: a pool of client processes ---------------------------------------------------


def worker(index: int, fx: dict, url: str, commands, results) -> None:
    """One client process: its own Django, its own connections; runs cells until told to stop."""
    try:
        import django

        configure_environment(url)
        django.setup()
        from django.db import DatabaseError

        seller = Seller(fx, url)
        seller.raw_sql(fx["hot"])  # opens the raw connection before any timing
        results.put(("ready", index))
        rng = random.Random(index)
        while (command := commands.get()) is not None:
            mode, scenario, start_at, duration = command
            call = seller.service if mode == "platform" else seller.raw_sql
            pick = (
                (lambda: fx["hot"]) if scenario == "hot" else (lambda: rng.choice(fx["products"]))
            )
            while time.time() < start_at:
                time.sleep(0.002)
            end, done, errors, samples = start_at + duration, 0, 0, []
            while time.time() < end:
                began = time.perf_counter()
                try:
                    call(pick())
                    done += 1
                    samples.append(time.perf_counter() - began)
                except DatabaseError:  # a deadlock or serialisation failure would land here
                    errors += 1
            results.put(("cell", index, done, errors, time.time() - start_at, samples))
        seller.close()
    except Exception:  # noqa: BLE001 - the parent must hear about it, not hang
        results.put(("error", index, traceback.format_exc()))


class Pool:
    """16 spawned client processes, started once and reused for every cell."""

    def __init__(self, size: int, fx: dict, url: str):
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(size)]
        self.processes = [
            ctx.Process(
                target=worker, args=(i, fx, url, self.commands[i], self.results), daemon=True
            )
            for i in range(size)
        ]
        for process in self.processes:
            process.start()
        for _ in range(size):
            self._get("ready", timeout=180)

    def _get(self, kind: str, timeout: float):
        try:
            message = self.results.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError("a client process did not answer in time") from None
        if message[0] == "error":
            raise RuntimeError(f"client {message[1]} failed:\n{message[2]}")
        assert message[0] == kind, message
        return message

    def run(self, mode: str, scenario: str, clients: int, duration: float) -> dict:
        """One slice: ``clients`` processes sell for ``duration`` seconds from the same start."""
        start_at = time.time() + 0.3
        for i in range(clients):
            self.commands[i].put((mode, scenario, start_at, duration))
        replies = [self._get("cell", timeout=duration + 120) for _ in range(clients)]
        return {
            "sales": sum(r[2] for r in replies),
            "errors": sum(r[3] for r in replies),
            "elapsed": max(r[4] for r in replies),
            "samples": [s for r in replies for s in r[5]],
        }

    def close(self) -> None:
        for commands in self.commands:
            commands.put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()


def measure_throughput(fx: dict, url: str, sizes: Sizes) -> dict:
    """Every cell alternates platform and raw SQL in ``sizes.rounds`` slices.

    Alternating slices give both sides the same share of whatever else the machine is doing,
    so the ratio holds up better than the absolute rates on a shared machine.
    """
    pool = Pool(max(CLIENTS), fx, url)
    cells = {}
    try:
        for scenario in ("hot", "spread"):
            for clients in CLIENTS:
                slices: dict[str, list[dict]] = {"platform": [], "raw": []}
                for _ in range(sizes.rounds):
                    for mode in slices:
                        slices[mode].append(
                            pool.run(mode, scenario, clients, sizes.duration / sizes.rounds)
                        )
                for mode, parts in slices.items():
                    samples = [x for part in parts for x in part["samples"]]
                    cells[(scenario, clients, mode)] = {
                        "rate": sum(p["sales"] for p in parts) / sum(p["elapsed"] for p in parts),
                        "sales": sum(p["sales"] for p in parts),
                        "errors": sum(p["errors"] for p in parts),
                        "p50": statistics.median(samples) * 1000 if samples else float("nan"),
                    }
                print(".", end="", flush=True)
    finally:
        pool.close()
    print()
    return cells


def check_ledger(fx: dict) -> tuple[int, int]:
    """Invariant 1 over the whole run: quants whose ledger sum differs, and ledger rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM inventory_stockquant q LEFT JOIN ("
            " SELECT location_id, batch_id, sum(qty_delta) AS total FROM inventory_stockledger"
            " WHERE org_id = %s GROUP BY location_id, batch_id) l"
            " ON l.location_id = q.location_id AND l.batch_id = q.batch_id"
            " WHERE q.org_id = %s AND q.quantity <> coalesce(l.total, 0)",
            [fx["org"], fx["org"]],
        )
        mismatches = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM inventory_stockledger WHERE org_id = %s", [fx["org"]])
        rows = cursor.fetchone()[0]
    return mismatches, rows


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements(captured: list[str]) -> list[str]:
    return [sql for sql in captured if not sql.lstrip().upper().startswith(TRANSACTION_CONTROL)]


# --- report -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(
    fx: dict,
    refused: str,
    latency: dict,
    queries: dict,
    breakdown: dict,
    cells: dict,
    sizes: Sizes,
    ledger: tuple[int, int],
    server: dict,
    elapsed: float,
) -> None:
    def heads(statements: list[str]) -> list[str]:
        return [" ".join(s.split())[:96] for s in statements]

    print()
    began, ended = (" / ".join(f"{x:.2f}" for x in server[k]) for k in ("load", "load_end"))
    busy = max(server["load"][0], server["load_end"][0]) > 1.5
    print(
        f"load average (1/5/15 min): {began} when measuring began, {ended} at the end"
        + ("  (others were using the CPUs: figures are pessimistic)" if busy else "")
    )
    print(
        f"PostgreSQL {server['server_version']}, {os.cpu_count()} CPUs, "
        f"synchronous_commit={server['synchronous_commit']}, fsync={server['fsync']}, "
        f"shared_buffers={server['shared_buffers']}; {sizes.products:,} SKUs, one lot each"
    )
    if fx["enforcement"]:
        print(
            f"discrepancy enforcement {fx['enforcement']}: {len(fx['held']):,} products held "
            f"(not sold by the bench; selling one answers {refused})"
        )
    else:
        print("discrepancy enforcement: the default (record), no product held")
    print()
    print("Latency of a one-line sale, one client (ms)")
    print(f"  {'':24}{'n':>6}{'p50':>9}{'p95':>9}{'p99':>9}")
    for name, stats in latency.items():
        print(
            f"  {name:24}{stats['n']:>6}{stats['p50']:>9.2f}{stats['p95']:>9.2f}"
            f"{stats['p99']:>9.2f}"
        )
    print()
    service, write_path, api = (statements(queries[k]) for k in ("service", "write_path", "api"))
    print("Queries per sale (statements besides BEGIN/COMMIT/SAVEPOINT)")
    print(
        f"  service sale_record: {len(service)}, of which the write path "
        f"(stock.consume): {len(write_path)}"
    )
    print(f"  API POST /api/v1/sales/: {len(api)}")
    print("  service statements:")
    for n, text in enumerate(heads(service), start=1):
        print(f"    {n}. {text}")
    print()
    print(
        "Where the time of one sale goes, one client (mean ms per sale over "
        f"{max(sizes.service_sales // 4, 50)} sales)"
    )
    print(
        "  py = Python since the previous statement (ORM, planning, serialising);"
        " db = the statement's round trip"
    )
    print(f"  {'':40}{'service py':>11}{'db':>7}{'API py':>9}{'db':>7}")
    labels = list(dict.fromkeys([*breakdown["API"], *breakdown["service"]]))
    order = [x for x in labels if x not in ("COMMIT", "after COMMIT", "total")]
    for label in [*order, "COMMIT", "after COMMIT", "total"]:
        shown = ""
        for k, width in (("service", 11), ("API", 9)):
            cell = breakdown[k].get(label)
            shown += f"{cell[0]:>{width}.2f}{cell[1]:>7.2f}" if cell else f"{'-':>{width}}{'-':>7}"
        print(f"  {label:40}{shown}")
    for k in ("service", "API"):
        py, db = breakdown[k]["total"]
        print(
            f"  {k}: {py + db:.2f} ms = {py:.2f} Python + {db:.2f} database "
            f"({py / (py + db):.0%} Python)"
        )
    print()
    print(
        f"Throughput, sales/s (client processes; {sizes.duration:g} s per side and cell, in "
        f"{sizes.rounds} alternating slices; p50 ms under load)"
    )
    print(
        f"  {'':22}{'clients':>8}{'platform':>10}{'p50':>8}{'raw SQL':>10}{'p50':>8}"
        f"{'ratio':>8}{'errors':>8}"
    )
    for scenario, label in (
        ("hot", "one hot SKU"),
        ("spread", f"random of {sizes.products:,} SKUs"),
    ):
        for clients in CLIENTS:
            platform = cells[(scenario, clients, "platform")]
            raw = cells[(scenario, clients, "raw")]
            print(
                f"  {label:22}{clients:>8}{platform['rate']:>10.0f}{platform['p50']:>8.2f}"
                f"{raw['rate']:>10.0f}{raw['p50']:>8.2f}"
                f"{platform['rate'] / raw['rate']:>7.0%} "
                f"{platform['errors'] + raw['errors']:>7}"
            )
    print()
    service_p50 = latency["service, random SKU"]["p50"]
    api_p50 = latency["API, random SKU"]["p50"]
    ratios = [
        cells[("hot", c, "platform")]["rate"] / cells[("hot", c, "raw")]["rate"] for c in CLIENTS
    ]
    print("Targets")
    print(
        f"  service p50 <= {TARGET_SERVICE_P50_MS:g} ms: {service_p50:.2f} ms "
        f"{verdict(service_p50 <= TARGET_SERVICE_P50_MS)}"
    )
    print(
        f"  API p50 <= {TARGET_API_P50_MS:g} ms: {api_p50:.2f} ms "
        f"{verdict(api_p50 <= TARGET_API_P50_MS)}"
    )
    print(
        f"  hot-SKU throughput >= {TARGET_HOT_RATIO:.0%} of raw SQL "
        f"({'/'.join(map(str, CLIENTS))} clients): "
        f"{' / '.join(f'{r:.0%}' for r in ratios)} "
        f"{verdict(min(ratios) >= TARGET_HOT_RATIO)}"
    )
    mismatches, rows = ledger
    print(
        f"  invariant 1 after the run: {mismatches} quants differ from their ledger sum "
        f"({rows:,} ledger rows) {verdict(mismatches == 0)}"
    )
    print(f"\nTotal run time {elapsed:.0f} s")


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 SKUs, short cells")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--enforcement",
        choices=["record", "warn", "block"],
        default=os.environ.get("BENCH_ENFORCEMENT") or None,
        help="the org's discrepancy enforcement mode, with --holds products held",
    )
    parser.add_argument("--holds", type=int, default=200, help="products held (--enforcement)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    url = bench_url("inventory_bench")
    configure_environment(url)
    began = time.perf_counter()
    name = recreate_database(url)
    print(f"database {name}: migrating and loading {sizes.products:,} products ...", flush=True)
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        fx = build_fixture(sizes, args.enforcement, args.holds if args.enforcement else 0)
        print(
            f"fixture ready in {time.perf_counter() - began:.0f} s; measuring latency ...",
            flush=True,
        )
        rng = random.Random(args.seed)
        load = os.getloadavg()
        latency = measure_latency(fx, url, sizes, rng)
        queries = count_queries(fx, url, rng)
        breakdown = where_time_goes(fx, url, sizes, rng)
        print(
            f"throughput: {2 * len(CLIENTS)} cells of 2 x {sizes.duration:g} s ", end="", flush=True
        )
        cells = measure_throughput(fx, url, sizes)
        ledger = check_ledger(fx)
        refused = held_sale_refused(fx, url)
        report(
            fx,
            refused,
            latency,
            queries,
            breakdown,
            cells,
            sizes,
            ledger,
            {**server_settings(url), "load": load, "load_end": os.getloadavg()},
            time.perf_counter() - began,
        )
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
