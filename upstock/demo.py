"""Demo upstock: par levels on every sales floor, last night's pull list worked and completed,
and tonight's waiting for the closing staff.

Built after the demo stock, through the upstock services only, so the demo shows what a
closing shift sees:

* **sources** — the vault, where the demo keeps most reserve stock, is marked by the manager
  as an upstock source (the back room is one by default);
* **par levels** — a category default for a third of the categories each floor carries (the
  floor's typical stock of such a product, rounded up), so those products are refilled to
  their par whatever sold; the other categories have none and are refilled by what sold;
* **last night's run** — computed at yesterday's closing time (store-local), then worked by the
  operator: most lines pulled as suggested (moves back room → floor, earliest expiry first),
  one skipped, one marked *already stocked*, and completed;
* **tonight's run** — computed now and left pending. Its window starts at last night's
  closing, and the demo's sales history was all *recorded* while the demo was built, so the
  products without a par show everything the history sold (capped by the back room).

Everything is deterministic for a seed (the choices come from ``random.Random`` seeded with the
store's code), and every pull goes through the stock write path, so the ledger still equals the
quants.
"""

from __future__ import annotations

import datetime
import math
import random
import zoneinfo
from decimal import Decimal

from django.db.models import Avg
from django.utils import timezone

from inventory.models import Location, LocationKind, StockQuant, Store
from inventory.tenancy.services import location_update
from upstock.models import ExceptionReason, LineStatus, UpstockRun
from upstock.selectors import run_lines
from upstock.services import baselines, lines, runs


def last_closing(store: Store, now: datetime.datetime) -> datetime.datetime:
    """Yesterday's closing time on the store's clock, as an instant."""
    tz = zoneinfo.ZoneInfo(store.time_zone)
    yesterday = timezone.localtime(now, tz).date() - datetime.timedelta(days=1)
    return datetime.datetime.combine(yesterday, store.closing_time, tzinfo=tz)


def sales_floors(store: Store) -> list[Location]:
    return list(
        Location.objects.filter(
            store=store, kind=LocationKind.SALES_FLOOR, sellable=True, is_active=True
        ).order_by("sort_order", "id")
    )


def build_pars(*, store: Store, floor: Location, rng: random.Random, actor) -> int:
    """Category defaults for a third of the floor's categories that the back room (or a marked
    vault) holds, chosen by ``rng``: the floor's average stock of a product of that category,
    rounded up, at least 2."""
    rows = (
        StockQuant.objects.filter(location=floor, quantity__gt=0, unallocated=False)
        .values("product__category")
        .annotate(average=Avg("quantity"))
        .order_by("product__category")
    )
    # a third of the categories the sources can refill (a par nothing can reach only lists
    # shortages), at least one
    stocked = set(
        StockQuant.objects.filter(
            store=store,
            location__upstock_source=True,
            location__is_active=True,
            quantity__gt=0,
            unallocated=False,
        ).values_list("product__category", flat=True)
    )
    categories = [
        (row["product__category"], row["average"])
        for row in rows
        if row["product__category"] in stocked
    ]
    chosen = sorted(rng.sample(categories, k=max(1, len(categories) // 3))) if categories else []
    for category, average in chosen:
        baselines.baseline_upsert(
            org=store.org,
            store=store,
            location=floor,
            category=category,
            par_qty=Decimal(max(2, math.ceil(average))),
            actor=actor,
        )
    return len(chosen)


def work_run(*, run: UpstockRun, rng: random.Random, operator) -> None:
    """Pull most lines as suggested; skip one, mark one already stocked; complete the run."""
    pending = [line for line in run_lines(run) if line.status == LineStatus.PENDING]
    rng.shuffle(pending)
    # one skipped and one already stocked, when there are enough lines to show all three
    settled = 2 if len(pending) >= 4 else 0
    skip, stocked, pull = pending[:1][:settled], pending[1:settled], pending[settled:]
    org = run.org
    for line in skip:
        lines.line_skip(org=org, line=line, note="Shelf being reset (demo)", actor=operator)
    for line in stocked:
        lines.line_exception(
            org=org,
            line=line,
            reason=ExceptionReason.ALREADY_STOCKED,
            note="Faced up from the overstock shelf (demo)",
            tenant=None,
            actor=operator,
        )
    for line in pull:
        lines.line_done(
            org=org,
            line=line,
            pulled=line.suggested,
            client_ref=f"demo:upstock:{run.pk}:{line.pk}",
            actor=operator,
        )
    runs.run_complete(org=org, run=run, actor=operator)


def build_upstock(*, stores: list[Store], seed: int, stdout, manager, operator) -> dict:
    """Par levels, last night's completed run and tonight's pending one on every sales floor
    of ``stores``. Returns ``{store code: {"completed": run id, "pending": run id}}`` (the
    first floor's, for the demo's summary)."""
    now = timezone.now()
    built: dict = {}
    for store in sorted(stores, key=lambda s: s.code):
        rng = random.Random(f"{seed}:{store.code}:upstock")
        # The demo keeps most reserve stock in the vault: its manager marks it as a source of
        # the nightly pull (the back room is one by default).
        for vault in Location.objects.filter(store=store, kind=LocationKind.VAULT, is_active=True):
            location_update(
                org=store.org, location=vault, changes={"upstock_source": True}, actor=manager
            )
        for floor in sales_floors(store):
            pars = build_pars(store=store, floor=floor, rng=rng, actor=manager)
            last_night = runs.run_create(
                org=store.org,
                store=store,
                location=floor,
                now=last_closing(store, now),
                notes="Last night's pull list (demo)",
                actor=operator,
            )
            work_run(run=last_night, rng=rng, operator=operator)
            tonight = runs.run_create(
                org=store.org,
                store=store,
                location=floor,
                now=now,
                notes="Tonight's pull list (demo)",
                actor=manager,
            )
            built.setdefault(store.code, {"completed": last_night.pk, "pending": tonight.pk})
            stdout.write(
                f"  {store.code} {floor.code}: {pars} category par level(s); last night's run "
                f"#{last_night.pk} completed, tonight's #{tonight.pk} pending "
                f"({tonight.lines.count()} lines)"
            )
    return built


def upstock_summary_lines(orgs) -> list[str]:
    """Per store, its latest runs and their state."""
    out = []
    for org in orgs:
        for store in Store.unscoped.filter(org=org).order_by("code"):
            latest = UpstockRun.unscoped.filter(store=store).order_by("-created_at", "-id")[:2]
            if not latest:
                continue
            states = ", ".join(
                f"#{run.pk} {run.status.replace('_', ' ')} ({run.lines.count()} lines)"
                for run in latest
            )
            out.append(f"  {org.slug:<16} {store.code:<7} {states}")
    return out
