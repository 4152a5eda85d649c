"""Discrepancy benchmark (issue 10): a count's 5,000 out-of-policy rows approved in bulk and
finalised.

Not a test: it prints figures to compare against the target (bulk approve + finalise <= 5 s on
this machine) and checks what they did.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inventory_discbench \\
        .venv/bin/python bench/discrepancies.py [--quick] [--keep] [--profile] [--rows N]

It drops and recreates its own database (the name in DATABASE_URL when it ends in ``bench``,
else ``inventory_discbench``; dropped again at the end unless ``--keep``), migrates it and
builds, through the real services: one organisation (the default variance policy: 1 unit or
2%), one store, N products (5,000; ``product_upsert_many``) with 20 units each on the sales
floor (``receipt_record``, 500 lines a document), and a full-store count of the floor by a
manager in which every product is short: 3 units (MEDIUM) for nine products in ten, 8 units
(HIGH: the product is held at the store) for the tenth. Then it measures, each with its
statements counted and split into database round trips and Python:

1. ``session_submit`` + ``session_reconcile``: the N rows are outside policy and become N
   discrepancies (source CYCLE_COUNT) in one recording;
2. ``discrepancies_decide``: an admin approves all N in one call (one transaction), each row
   judged by the same rules as one at a time; the count's rows follow (its source handler);
3. ``session_finalize``: posts the approved shortages once (COUNT_RECONCILE) and marks the N
   discrepancies ADJUSTED, releasing the holds.

And checks: N discrepancies ADJUSTED, each linked to its ledger row; quant = counted for every
product; ledger = quants; no hold left; an audit event per discrepancy and decision.
"""

from __future__ import annotations

import argparse
import os
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

TARGET_SECONDS = 5.0
RECEIVED = Decimal("20")
SHORT, SERIOUSLY_SHORT = Decimal("3"), Decimal("8")
PRICE = Decimal("12.5000")

#: (label, module, attribute) wrapped while a step is measured: where the time goes
SECTIONS = (
    ("reconcile: discrepancies_record", "counts.services.sessions", "discrepancies_record"),
    ("record: holds_refresh", "discrepancies.services.record", "holds_refresh"),
    ("discrepancies: lock_discrepancies", "discrepancies.services.decisions", "lock_discrepancies"),
    ("counts: approvals._lock", "counts.services.approvals", "_lock"),
    ("counts: approvals._mirror", "counts.services.approvals", "_mirror"),
    ("discrepancies: decisions._save", "discrepancies.services.decisions", "_save"),
    ("audit: audit_record_many", "discrepancies.services.decisions", "audit_record_many"),
    ("decide: holds_refresh", "discrepancies.services.decisions", "holds_refresh"),
    ("decide: log_event (one per row)", "discrepancies.services.decisions", "log_event"),
    ("counts: finalise -> lock_discrepancies", "counts.services.sessions", "lock_discrepancies"),
    ("stock.count_post (the write path)", "inventory.stock.write_path", "count_post"),
    ("counts: finalise -> _save_posted", "counts.services.sessions", "_save_posted"),
    (
        "counts: finalise -> discrepancies_adjusted",
        "counts.services.sessions",
        "discrepancies_adjusted",
    ),
)


def build(rows: int, phase: Phase) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from counts.services import passes, sessions
    from inventory.catalog import services as catalog
    from inventory.models import Location, Membership, Product, Role
    from inventory.stock import documents
    from inventory.tenancy import services as org_services
    from inventory.tenancy.scope import resolve_tenant, tenant_scope

    org = org_services.org_create(slug="discbench", name="Discrepancy Bench Cannabis")
    scope = tenant_scope(org)
    scope.__enter__()
    store = org_services.store_create(org=org, code="DB1", name="Discrepancy Bench Store")
    floor = Location.objects.get(store=store, code="SF")
    people = {}
    for role in (Role.MANAGER, Role.ADMIN, Role.OPERATOR):
        user = get_user_model().objects.create_user(
            username=f"{role}@discbench.example",
            email=f"{role}@discbench.example",
            password="not-used-1234",
        )
        Membership.objects.create(org=org, user=user, role=role)
        people[role] = user

    with phase(f"{rows:,} products"):
        for begin in range(0, rows, 1000):
            catalog.product_upsert_many(
                org=org,
                rows=[
                    {
                        "sku": f"DB-{n:05d}",
                        "name": f"Discrepancy bench product {n}",
                        "brand": "Bench",
                        "classification": "Dried Flower",
                        "unit": "each",
                        "default_cost": Decimal(2 + n % 20),
                        "default_price": PRICE,
                    }
                    for n in range(begin, min(begin + 1000, rows))
                ],
            )
        products = list(Product.objects.order_by("sku"))
    with phase(f"{rows:,} receipt lines"):
        for begin in range(0, rows, 500):
            documents.receipt_record(
                org=org,
                store=store,
                client_ref=f"discbench-receipt-{begin}",
                source="bench",
                reason="discrepancy bench opening stock",
                lines=[
                    documents.ReceiptLineInput(
                        p, floor, RECEIVED, lot_code=f"L-{p.sku}", unit_cost=Decimal("4")
                    )
                    for p in products[begin : begin + 500]
                ],
            )
    counted = {
        p.pk: RECEIVED - (SERIOUSLY_SHORT if n % 10 == 9 else SHORT) for n, p in enumerate(products)
    }
    manager = people[Role.MANAGER]
    with phase(f"a count of {rows:,} lines"):
        session = sessions.session_start(
            org=org,
            actor=manager,
            session=sessions.session_create(
                org=org, store=store, scope="FULL_STORE", actor=manager, notes="discrepancy bench"
            ),
        )
        count_pass = passes.pass_create(
            org=org, session=session, location=floor, actor=people[Role.OPERATOR]
        )
        for begin in range(0, rows, 1000):
            passes.lines_add(
                org=org,
                count_pass=count_pass,
                actor=people[Role.OPERATOR],
                entries=[
                    passes.Entry(p, counted[p.pk], client_line_id=f"line-{p.pk}")
                    for p in products[begin : begin + 1000]
                ],
            )
        passes.pass_submit(org=org, count_pass=count_pass, actor=people[Role.OPERATOR])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have after the load
    session.refresh_from_db()
    return {
        "org": org,
        "store": store,
        "floor": floor,
        "scope": scope,
        "session": session,
        "products": products,
        "counted": counted,
        "people": people,
        "admin_tenant": resolve_tenant(people[Role.ADMIN], org_id=org.pk),
    }


def check(fx: dict, rows: int) -> dict:
    from django.db import connection
    from django.db.models import Count, Sum

    from discrepancies.models import Discrepancy, Status
    from inventory.models import (
        AuditAction,
        AuditEvent,
        RefType,
        StockHold,
        StockLedger,
        StockQuant,
    )

    session = fx["session"]
    ds = Discrepancy.objects.filter(source_ref=f"count-{session.pk}")
    statuses = dict(ds.values_list("status").annotate(n=Count("id")))
    assert statuses == {Status.ADJUSTED: rows}, statuses
    posted = StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE, ref_id=session.pk)
    refs = set(posted.values_list("ref_line", flat=True))
    unlinked = ds.exclude(ledger_ref_type=RefType.COUNT_RECONCILE, ledger_ref_id=session.pk)
    assert not unlinked.exists(), "a discrepancy not linked to its posting"
    assert set(ds.values_list("ledger_ref_line", flat=True)) <= refs
    on_hand = dict(
        StockQuant.objects.filter(location=fx["floor"])
        .values_list("product_id")
        .annotate(q=Sum("quantity"))
    )
    wrong = [p for p, want in fx["counted"].items() if on_hand.get(p) != want]
    assert not wrong, f"{len(wrong)} products not at their counted quantity"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM inventory_stockquant q LEFT JOIN ("
            " SELECT location_id, batch_id, sum(qty_delta) AS total FROM inventory_stockledger"
            " GROUP BY location_id, batch_id) l"
            " ON l.location_id = q.location_id AND l.batch_id = q.batch_id"
            " WHERE q.quantity <> coalesce(l.total, 0)"
        )
        mismatches = cursor.fetchone()[0]
    assert mismatches == 0, f"{mismatches} quants differ from their ledger"
    assert not StockHold.objects.exists(), "holds left after finalising"
    approved_events = AuditEvent.objects.filter(action=AuditAction.DISCREPANCY_APPROVED).count()
    adjusted_events = AuditEvent.objects.filter(action=AuditAction.DISCREPANCY_ADJUSTED).count()
    assert approved_events == adjusted_events == rows, (approved_events, adjusted_events)
    return {"ledger_rows": posted.count()}


def run(rows: int, profile: bool) -> None:
    from django.db import connection
    from django.db.models import Count

    from counts.services import sessions
    from discrepancies.models import Discrepancy, Severity
    from discrepancies.services.decisions import Decision, discrepancies_decide
    from inventory.models import Role, StockHold

    phase = Phase()
    fx = build(rows, phase)
    org, people, session = fx["org"], fx["people"], fx["session"]
    try:
        load = os.getloadavg()

        def reconcile():
            s = sessions.session_submit(org=org, session=session, actor=people[Role.MANAGER])
            return sessions.session_reconcile(org=org, session=s, actor=people[Role.MANAGER])

        reconciled = measure(
            "session_submit + session_reconcile (records the discrepancies)",
            reconcile,
            sections=SECTIONS,
        )
        ids = list(
            Discrepancy.objects.filter(source_ref=f"count-{session.pk}")
            .order_by("id")
            .values_list("id", flat=True)
        )
        severities = dict(
            Discrepancy.objects.filter(pk__in=ids).values_list("severity").annotate(n=Count("id"))
        )
        holds = StockHold.objects.count()
        assert len(ids) == rows, f"{len(ids)} discrepancies, not {rows}"
        assert severities.get(Severity.HIGH, 0) == holds > 0, (severities, holds)

        approved = measure(
            f"discrepancies_decide: approve {len(ids):,} at once",
            lambda: discrepancies_decide(
                org=org,
                ids=ids,
                decision=Decision("approve", notes="bench: recount agrees"),
                tenant=fx["admin_tenant"],
                actor=people[Role.ADMIN],
            ),
            sections=SECTIONS,
            profile=profile,
        )
        outcome = approved.result
        assert len(outcome.decided) == rows and not outcome.refused, outcome.refusals()[:3]
        finalized = measure(
            "session_finalize (posts, marks ADJUSTED, releases holds)",
            lambda: sessions.session_finalize(org=org, session=session, actor=people[Role.ADMIN]),
            sections=SECTIONS,
            profile=profile,
        )
        facts = check(fx, rows)

        both = approved.seconds + finalized.seconds
        print("\n" + "=" * 100)
        print(
            f"{rows:,} products, 20 each on the floor; a count finding 3 short (MEDIUM) or 8 "
            f"short (HIGH, held) of each: {severities}, {holds:,} holds"
        )
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} when measuring began, "
            f"{os.getloadavg()[0]:.1f} at the end; PostgreSQL {server_facts(connection)}"
        )
        print("setup: " + ", ".join(f"{k} {v:.1f} s" for k, v in phase.times.items()))
        show(reconciled)
        show(approved)
        show(finalized)
        verdict = "OK" if both <= TARGET_SECONDS else f"MISSED (target {TARGET_SECONDS:g} s)"
        print(
            f"\nbulk approve + finalise: {approved.seconds:.2f} + {finalized.seconds:.2f} = "
            f"{both:.2f} s  {verdict}"
        )
        print(
            f"checks: {rows:,} discrepancies ADJUSTED and linked to the "
            f"{facts['ledger_rows']:,} COUNT_RECONCILE rows; quant = counted for every product; "
            "ledger = quants; no hold left; one approved and one adjusted audit event each"
        )
        print("=" * 100)
    finally:
        fx["scope"].__exit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 rows")
    parser.add_argument("--rows", type=int, default=5000, help="products counted short")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the timed steps (inflates their times)"
    )
    args = parser.parse_args(argv)
    rows = 500 if args.quick else args.rows
    url = bench_url("inventory_discbench")
    configure_environment(url)
    began = time.perf_counter()
    name = recreate_database(url)
    print(f"database {name}: migrating, then building a count of {rows:,} short rows", flush=True)
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        run(rows, args.profile)
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
