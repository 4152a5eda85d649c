"""Upstock benchmark (issue 11): generating tonight's run for a sales floor with 5,000 products
and 30 days of sales, and that its statement count does not grow with the products.

Not a test: it prints figures to compare against the target (``run_create`` <= 1 s for 5,000
products) and checks what the run found.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inventory_upstockbench \\
        .venv/bin/python bench/upstock.py [--quick] [--keep] [--profile]

It drops and recreates its own database (the name in DATABASE_URL when it ends in ``bench``,
else ``inventory_upstockbench``; dropped again at the end unless ``--keep``), migrates it and
builds, through the real services, two stores (SF and BR from ``store_create``) in one
organisation: one with 500 products, one with 5,000 (``--quick``: 50 and 500). For each store:

* its products (``product_upsert_many``) in 10 categories of 3 subcategories; every product
  received onto the floor (10 units) and into the back room (12 units, two lots: one expiring
  in a week, one in a year; one product in 20 only an expired lot);
* par levels: one product in three its own (``baselines_import``), every category a default
  (``baseline_upsert``), some with a minimum pull;
* 30 days of POS sales (``sale_record``, baskets of 20 lines, one product in four sold each
  day, the ledger rows' ``created_at`` spread over the days by setting ``timezone.now``), a
  void and a refund a day;
* the floor's last run, completed yesterday at closing: tonight's window is one day of 30.

Then it measures, with its statements counted (``CaptureQueriesContext``), ``run_create`` for
each store's floor — twice: the first run of the night, then a second one that abandons it
(the tablet's "new run"). The statement counts of the two stores must be equal.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.counts import Phase, measure, server_facts, show  # noqa: E402
from bench.database import (  # noqa: E402
    bench_url,
    configure_environment,
    drop_database,
    recreate_database,
)

TARGET_SECONDS = 1.0
DAYS = 30
BASKET = 20
CATEGORIES = [f"Category {c}" for c in range(10)]
SUBCATEGORIES = ["Indica", "Sativa", "Hybrid"]

#: (label, module, attribute) wrapped while a step is measured: where the time goes
SECTIONS = (
    ("runs._window_start", "upstock.services.runs", "_window_start"),
    ("runs._compute_lines", "upstock.services.runs", "_compute_lines"),
    ("runs._par_lookup", "upstock.services.runs", "_par_lookup"),
    ("audit_record", "upstock.services.runs", "audit_record"),
)


class Clock:
    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


def build_store(org, code: str, products_wanted: int, manager, clock: Clock, phase: Phase):
    from inventory.catalog import services as catalog
    from inventory.models import Location, Product
    from inventory.sales import services as sales
    from inventory.stock import documents
    from inventory.tenancy import services as org_services
    from upstock.services import baselines, runs

    store = org_services.store_create(org=org, code=code, name=f"Upstock bench {code}")
    floor = Location.objects.get(store=store, code="SF")
    back = Location.objects.get(store=store, code="BR")
    end = clock.now
    start = end - datetime.timedelta(days=DAYS)
    clock.now = start - datetime.timedelta(days=1)
    with phase(f"{code}: {products_wanted:,} products"):
        for begin in range(0, products_wanted, 1000):
            catalog.product_upsert_many(
                org=org,
                rows=[
                    {
                        "sku": f"{code}-{n:05d}",
                        "name": f"Upstock bench product {n}",
                        "brand": "Bench",
                        "category": CATEGORIES[n % len(CATEGORIES)],
                        "subcategory": SUBCATEGORIES[n % len(SUBCATEGORIES)],
                        "unit": "each",
                        "tracks_expiry": True,
                        "default_cost": Decimal("4"),
                        "default_price": Decimal("12.5"),
                    }
                    for n in range(begin, min(begin + 1000, products_wanted))
                ],
            )
        products = list(Product.objects.filter(org=org, sku__startswith=f"{code}-").order_by("sku"))
    soon = (start + datetime.timedelta(days=DAYS + 7)).date()
    later = (start + datetime.timedelta(days=400)).date()
    gone = (start + datetime.timedelta(days=2)).date()
    with phase(f"{code}: stock on the floor and in the back room"):
        for begin in range(0, len(products), 250):
            chunk = products[begin : begin + 250]
            lines = []
            for n, p in enumerate(chunk, start=begin):
                lots = [(floor, 10, "F", later)]
                if n % 20 == 19:
                    lots.append((back, 12, "X", gone))  # only an expired lot in the back room
                else:
                    lots += [(back, 5, "S", soon), (back, 7, "L", later)]
                lines += [
                    documents.ReceiptLineInput(
                        p, room, Decimal(qty), lot_code=f"{lot}-{p.sku}", expiry_date=expiry
                    )
                    for room, qty, lot, expiry in lots
                ]
            documents.receipt_record(
                org=org, store=store, client_ref=f"{code}-receipt-{begin}", source="bench",
                reason="upstock bench opening stock", lines=lines,
            )  # fmt: skip
    with phase(f"{code}: par levels"):
        rows = [
            {"line": i + 2, "sku": p.sku, "par_qty": str(4 + i % 5),
             "min_pull": "2" if i % 2 else ""}
            for i, p in enumerate(products[::3])
        ]  # fmt: skip
        result = baselines.baselines_import(
            org=org, store=store, location=floor, rows=rows, dry_run=False, actor=manager
        )
        assert not result.errors, result.errors[:3]
        for category in CATEGORIES:
            baselines.baseline_upsert(
                org=org, store=store, location=floor, category=category, par_qty=Decimal(5),
                actor=manager,
            )  # fmt: skip
    sold_lines = 0
    with phase(f"{code}: {DAYS} days of sales"):
        per_day = max(len(products) // 4, BASKET)
        for day in range(DAYS):
            today = start + datetime.timedelta(days=day)
            first_sale = None
            offset = (day * per_day) % len(products)
            picked = [products[(offset + k) % len(products)] for k in range(per_day)]
            for basket_no, begin in enumerate(range(0, len(picked), BASKET)):
                clock.now = today + datetime.timedelta(minutes=10 + basket_no)
                sale, _ = sales.sale_record(
                    org=org, store=store, client_ref=f"{code}-sale-{day}-{begin}",
                    occurred_at=clock.now,
                    lines=[sales.SaleLineInput(p, Decimal(1), location=floor)
                           for p in picked[begin : begin + BASKET]],
                )  # fmt: skip
                sold_lines += len(picked[begin : begin + BASKET])
                first_sale = first_sale or sale
            clock.now = today + datetime.timedelta(hours=10)
            sales.sale_refund(
                org=org, sale=first_sale, lines=[sales.RefundLineInput(1, Decimal(1))],
                client_ref=f"{code}-refund-{day}",
            )  # fmt: skip
            if day % 2:
                sales.sale_void(org=org, sale=first_sale)
    clock.now = end - datetime.timedelta(days=1)
    with phase(f"{code}: yesterday's run, completed"):
        yesterday = runs.run_create(
            org=org, store=store, location=floor, now=clock.now, actor=manager
        )
        from upstock.models import LineStatus, UpstockLine

        UpstockLine.objects.filter(run=yesterday).update(status=LineStatus.SKIPPED)
        runs.run_complete(org=org, run=yesterday, actor=manager)
    clock.now = end
    return {"store": store, "floor": floor, "products": len(products), "sold_lines": sold_lines}


def run(sizes: tuple[int, int], profile: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from inventory.models import Membership, Role
    from inventory.tenancy import services as org_services
    from inventory.tenancy.scope import tenant_scope
    from upstock.models import UpstockLine
    from upstock.services import runs

    phase = Phase()
    real_now = timezone.now
    end = real_now().replace(microsecond=0) - datetime.timedelta(hours=1)
    clock = Clock(end)
    timezone.now = clock
    org = org_services.org_create(slug="upstockbench", name="Upstock Bench Cannabis")
    with tenant_scope(org):
        user = get_user_model().objects.create_user(
            username="manager@upstockbench.example",
            email="manager@upstockbench.example",
            password="not-used-1234",
        )
        Membership.objects.create(org=org, user=user, role=Role.MANAGER)
        stores = [build_store(org, f"U{size}", size, user, clock, phase) for size in sizes]
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        timezone.now = real_now
        print(f"\nserver: {server_facts(connection)}")
        counts = {}
        for fx in stores:
            for attempt in ("first run tonight", "a second run (abandons the first)"):
                now = end + datetime.timedelta(minutes=1 if attempt.startswith("a") else 0)
                measured = measure(
                    f"run_create, {fx['products']:,} products, {attempt}",
                    lambda fx=fx, now=now: runs.run_create(
                        org=org, store=fx["store"], location=fx["floor"], now=now, actor=user
                    ),
                    profile=profile,
                    sections=SECTIONS,
                )
                show(measured, TARGET_SECONDS if fx["products"] == max(sizes) else None)
                made = measured.result
                by_status = dict(
                    UpstockLine.objects.filter(run=made)
                    .values_list("status")
                    .annotate(n=Count("id"))
                    .values_list("status", "n")
                )
                print(
                    f"  window {made.window_start:%Y-%m-%d %H:%M} → {made.window_end:%H:%M} UTC;"
                    f" lines {by_status}"
                )
                counts[(fx["products"], attempt)] = measured.queries
        print("\nstatements per run_create:")
        for (products, attempt), queries in counts.items():
            print(f"  {products:>6,} products, {attempt:<36} {queries}")
        small, large = sizes
        for attempt in ("first run tonight", "a second run (abandons the first)"):
            same = counts[(small, attempt)] == counts[(large, attempt)]
            print(f"  {attempt}: {'constant' if same else 'GROWS with products'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 and 500 products")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the timed steps (inflates their times)"
    )
    args = parser.parse_args(argv)
    sizes = (50, 500) if args.quick else (500, 5000)
    url = bench_url("inventory_upstockbench")
    configure_environment(url)
    began = time.perf_counter()
    name = recreate_database(url)
    print(f"database {name}: migrating, then building stores of {sizes[0]:,} and {sizes[1]:,}")
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        run(sizes, args.profile)
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
