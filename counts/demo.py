"""Demo counts: a finished full-store count in one store and an open zone count in another.

Built after the demo stock, through the count services, so the demo shows what a store manager
sees: a closed session with its variance decided and posted, and a count under way whose
variance preview has a few findings.
"""

from __future__ import annotations

import datetime
import random
from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from counts.models import CountPass, CountSession, VarianceRow, VarianceStatus
from counts.services import passes as P
from counts.services import sessions as S
from inventory.models import Location, Product, StockQuant, Store
from inventory.tenancy.scope import resolve_tenant


def _on_hand(store: Store, locations: list[Location], category: str = "") -> dict:
    quants = StockQuant.objects.filter(
        store=store, location__in=locations, quantity__gt=0, unallocated=False
    )
    if category:
        quants = quants.filter(product__category__iexact=category)
    rows = quants.values("location_id", "product_id").annotate(total=Sum("quantity"))
    return {(r["location_id"], r["product_id"]): r["total"] for r in rows}


def _entries(
    stock: dict,
    location: Location,
    products: dict,
    rng: random.Random,
    start: datetime.datetime,
    findings: list,
) -> list[P.Entry]:
    """What a clerk would count: the stock there, with a few planted findings."""
    entries = []
    keys = [k for k in stock if k[0] == location.pk]
    planted = set(rng.sample(keys, min(4, len(keys))))
    for offset, key in enumerate(sorted(keys)):
        quantity = stock[key]
        if key in planted:
            change = rng.choice([Decimal(-1), Decimal(-2), Decimal(1)])
            quantity = max(Decimal(0), quantity + change)
            findings.append((location.code, products[key[1]].sku, change))
        entries.append(
            P.Entry(
                products[key[1]],
                quantity,
                captured_at=start + datetime.timedelta(seconds=20 * offset),
            )
        )
    return entries


def build_counts(
    *, store_closed: Store, store_open: Store, manager, admin, operator, seed: int, stdout
) -> dict:
    rng = random.Random(seed * 7 + 3)
    org = store_closed.org
    now = timezone.now()

    # 1. a full-store count, finished an hour ago
    rooms = list(Location.objects.filter(store=store_closed, is_active=True).order_by("sort_order"))
    stock = _on_hand(store_closed, rooms)
    products = Product.objects.in_bulk({k[1] for k in stock})
    session = S.session_create(
        org=org,
        store=store_closed,
        scope="FULL_STORE",
        notes="Monthly full count (demo)",
        actor=manager,
    )
    session = S.session_start(org=org, session=session, actor=manager)
    start = now - datetime.timedelta(hours=2)
    CountSession.objects.filter(pk=session.pk).update(started_at=start)
    findings: list = []
    for room in rooms:
        if not any(k[0] == room.pk for k in stock):
            continue
        count_pass = P.pass_create(
            org=org, session=session, location=room, device_id="Tablet 1", actor=operator
        )
        CountPass.objects.filter(pk=count_pass.pk).update(started_at=start)
        count_pass.refresh_from_db()
        P.lines_add(
            org=org,
            count_pass=count_pass,
            actor=operator,
            device_id="Tablet 1",
            entries=_entries(stock, room, products, rng, start, findings),
        )
        P.pass_submit(org=org, count_pass=count_pass, actor=operator)
    S.session_submit(org=org, session=session, actor=manager)
    S.session_reconcile(org=org, session=session, actor=manager)
    approver = resolve_tenant(admin, org_id=org.pk)
    for row in VarianceRow.objects.filter(session=session, status=VarianceStatus.PENDING):
        S.variance_decide(
            org=org,
            row=row,
            approve=True,
            tenant=approver,
            actor=admin,
            reason=rng.choice(["shrink", "damage found", "mis-scan"]),
        )
    S.session_finalize(org=org, session=session, actor=manager)

    # 2. a zone count of edibles on the sales floor, still under way
    floor = Location.objects.get(store=store_open, code="SF")
    zone_stock = _on_hand(store_open, [floor], category="Edibles")
    zone_products = Product.objects.in_bulk({k[1] for k in zone_stock})
    zone = S.session_create(
        org=org,
        store=store_open,
        scope="ZONE",
        blind=True,
        scope_locations=[floor],
        scope_categories=[{"category": "Edibles"}],
        notes="Edibles spot check (demo)",
        actor=manager,
    )
    zone = S.session_start(org=org, session=zone, actor=manager)
    zone_start = now - datetime.timedelta(minutes=30)
    count_pass = P.pass_create(
        org=org,
        session=zone,
        location=floor,
        category="Edibles",
        device_id="Tablet 2",
        actor=operator,
    )
    CountPass.objects.filter(pk=count_pass.pk).update(started_at=zone_start)
    count_pass.refresh_from_db()
    open_findings: list = []
    entries = _entries(zone_stock, floor, zone_products, rng, zone_start, open_findings)
    P.lines_add(
        org=org,
        count_pass=count_pass,
        actor=operator,
        device_id="Tablet 2",
        entries=entries[: max(1, len(entries) * 2 // 3)],
    )  # two thirds done so far

    by_room = defaultdict(int)
    for room, _, _ in findings:
        by_room[room] += 1
    stdout.write(
        f"Counts: full count #{session.pk} at {store_closed.code} closed with "
        f"{len(findings)} findings posted; blind zone count #{zone.pk} of Edibles at "
        f"{store_open.code} under way (pass #{count_pass.pk})."
    )
    return {"closed": session, "open": zone, "open_pass": count_pass}
