"""Upstock runs: one night's pull list for one sales floor, computed when the run is created.

**Window.** From the end of the floor's last run that was not abandoned (a run filtered by a
category continues the last run of that category or of every category; a run of every
category continues the last such run) — else ``lookback`` before (default
``settings.UPSTOCK_LOOKBACK_HOURS``, 24 h) — up to the run's creation. Windows are instants
(UTC), so a DST night is as long as it really is, and a sale recorded at 23:59 local after
the run was made falls in the next run's window.

**Sold** = −Σ of the SALE, VOID and REFUND ledger rows at the floor whose recording time
(``created_at``, not ``occurred_at``) falls in the window: a sale synced late or imported
counts once, in the window it arrived in; a void puts its units back; a refund reduces it only
when the refund returned the goods to the floor (one sent to quarantine is at quarantine).

**Suggested pull.** A product with a par (its own baseline, else its category/subcategory
default, else its category-only default — a default covers the products the store carries,
i.e. has or had stock of on the floor or in a source): min(max(par − floor on hand, 0),
back-room available), sold or not. Without a par: min(sold, back-room available), less what a run
abandoned in this window already pulled of it. Back-room available = ordinary, unexpired stock
(expiry on or after the store's local date) at the store's active upstock sources (back rooms;
a vault only when a manager marked it). A suggestion below the par's ``min_pull`` is dropped
unless the floor is out. A product that needs stock but has none in the back room gets a line
already marked ``exception`` / ``back_room_short`` (staff see it; it needs no decision);
nothing-to-pull products get no line. Unit products are suggested whole units.

**Walking order** (``position``): the upstock source where the product is found first (by the
store's location order), then category, subcategory and SKU; shortages last.

**Set-based.** A run costs a fixed number of queries whatever the number of products: the
floor's baselines, the sales (one GROUP BY), the floor's and the back room's stock (one GROUP
BY each), the products concerned, one INSERT of every line (``bench/upstock.py``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from core.errors import NotFound, ValidationFailed
from inventory.audit.services import audit_record
from inventory.exceptions import IdempotencyConflict
from inventory.models import (
    AuditAction,
    Location,
    LocationKind,
    Product,
    RefType,
    StockLedger,
    StockQuant,
    Store,
    Unit,
)
from inventory.stock.write_path import local_date
from upstock.exceptions import LinesPending, RunNotInProgress
from upstock.locks import lock_open_runs, lock_run, lock_store
from upstock.models import (
    Baseline,
    ExceptionReason,
    LineStatus,
    RunStatus,
    UpstockLine,
    UpstockRun,
)
from upstock.services.baselines import check_floor

ZERO = Decimal("0")
ONE = Decimal("1")
SOLD_REF_TYPES = (RefType.SALE, RefType.VOID, RefType.REFUND)


def _lookback() -> datetime.timedelta:
    return datetime.timedelta(hours=settings.UPSTOCK_LOOKBACK_HOURS)


def _person(actor):
    return (
        actor if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", True) else None
    )


def run_create(
    *,
    org,
    store: Store,
    location: Location,
    category: str = "",
    client_ref: str = "",
    now: datetime.datetime | None = None,
    notes: str = "",
    lookback: datetime.timedelta | None = None,
    actor,
    job: str = "",
) -> UpstockRun:
    """Create the floor's run and compute its lines (see the module), abandoning the floor's
    unfinished run (its done lines stay done; its pending lines are what this run lists
    again). ``now`` is the clock (the nightly job passes its own); ``job`` names the nightly
    job when no person made the run. The same ``client_ref`` again answers the first run
    (409 ``idempotency_conflict`` for another floor).

    Locks the store (two creations for one floor — a tablet and the nightly job — run one
    after the other), then the floor's open runs. One transaction, a fixed number of queries.
    """
    category = (category or "").strip()
    client_ref = (client_ref or "").strip()
    check_floor(org=org, store=store, location=location)
    problems = {}
    if len(category) > 120:
        problems["category"] = ["At most 120 characters."]
    if len(client_ref) > 128:
        problems["client_ref"] = ["At most 128 characters."]
    if problems:
        raise ValidationFailed("This run cannot be created.", fields=problems)
    now = now or timezone.now()
    with transaction.atomic():
        lock_store(org=org, store_id=store.pk)
        if client_ref:
            existing = UpstockRun.objects.filter(org=org, client_ref=client_ref).first()
            if existing is not None:
                if existing.location_id != location.pk or existing.category != category:
                    raise IdempotencyConflict(fields={"client_ref": ["Used for another run."]})
                return existing
        for previous in lock_open_runs(org=org, location_id=location.pk):
            _abandon(org, previous, now, actor, reason=f"replaced by a new run at {now:%Y-%m-%d}")
        start = _window_start(org, location, category, now, lookback)
        run = UpstockRun.objects.create(
            org=org,
            store=store,
            location=location,
            category=category,
            window_start=start,
            window_end=now,
            created_by=_person(actor),
            created_by_job=job,
            notes=notes,
            created_at=now,
            client_ref=client_ref,
        )
        lines = _compute_lines(org, store, run, now)
        _lines_insert(org, run, lines, now)
        audit_record(
            org=org,
            action=AuditAction.UPSTOCK_RUN_CREATED,
            obj=run,
            after={
                "location": location.pk,
                "category": category,
                "window_start": start,
                "window_end": now,
                "lines": len(lines),
                "job": job,
            },
            store=store,
            actor=_person(actor),
        )
    return run


def runs_create_nightly(
    *, org, store: Store, now: datetime.datetime, actor, job: str
) -> list[UpstockRun]:
    """Tonight's run for every active, sellable sales floor of ``store``, in the store's order
    (a display case of another kind or a quarantine shelf gets none), each by ``run_create``.
    The caller's transaction makes it all the floors or none."""
    floors = Location.objects.filter(
        org=org, store=store, kind=LocationKind.SALES_FLOOR, sellable=True, is_active=True
    ).order_by("sort_order", "pk")
    return [
        run_create(org=org, store=store, location=floor, now=now, actor=actor, job=job)
        for floor in floors
    ]


def _window_start(org, location, category, now, lookback) -> datetime.datetime:
    """The end of the floor's last run that was not abandoned and covered this run's
    products, else ``lookback`` before ``now``."""
    covering = Q(category="") | Q(category=category) if category else Q(category="")
    last = (
        UpstockRun.objects.filter(org=org, location=location)
        .exclude(status=RunStatus.ABANDONED)
        .filter(covering, window_end__lte=now)
        .order_by("-window_end", "-id")
        .values_list("window_end", flat=True)
        .first()
    )
    return last if last is not None else now - (lookback or _lookback())


def _par_lookup(org, location) -> tuple[dict, dict]:
    """The floor's par levels: by product id, and by (category, subcategory) for defaults
    (``subcategory`` "" is the category-only default). Values are (par, min_pull)."""
    by_product: dict[int, tuple[Decimal, Decimal | None]] = {}
    by_category: dict[tuple[str, str], tuple[Decimal, Decimal | None]] = {}
    for product_id, category, subcategory, par, min_pull in Baseline.objects.filter(
        org=org, location=location
    ).values_list("product_id", "category", "subcategory", "par_qty", "min_pull"):
        if product_id is not None:
            by_product[product_id] = (par, min_pull)
        else:
            by_category[(category, subcategory)] = (par, min_pull)
    return by_product, by_category


def _compute_lines(org, store: Store, run: UpstockRun, now) -> list[_Line]:
    floor = run.location
    by_product, by_category = _par_lookup(org, floor)

    sold: dict[int, Decimal] = {
        row["product_id"]: -row["delta"]
        for row in StockLedger.objects.filter(
            org=org,
            location=floor,
            ref_type__in=SOLD_REF_TYPES,
            created_at__gte=run.window_start,
            created_at__lt=run.window_end,
        )
        .values("product_id")
        .annotate(delta=Sum("qty_delta"))
        .order_by()
    }
    # What runs abandoned in this window already pulled (their done lines): sold-based
    # suggestions leave it out, so a replaced run's pulls are not pulled twice.
    pulled_before: dict[int, Decimal] = {
        row["product_id"]: row["pulled"]
        for row in UpstockLine.objects.filter(
            org=org,
            run__location=floor,
            run__status=RunStatus.ABANDONED,
            run__created_at__gte=run.window_start,
            run__created_at__lt=run.window_end,
            pulled__gt=0,
        )
        .values("product_id")
        .annotate(pulled=Sum("pulled"))
        .order_by()
    }

    sources = {
        loc.pk: loc
        for loc in Location.objects.filter(
            org=org, store=store, upstock_source=True, is_active=True
        ).exclude(pk=floor.pk)
    }
    wanted = Q(pk__in=set(by_product) | {pid for pid, qty in sold.items() if qty > 0})
    categories = {category for category, _ in by_category}
    if categories:
        # A category default covers the products of the category this store carries (it has
        # or had stock of them on the floor or in a source), not the whole catalogue's.
        carried = StockQuant.objects.filter(org=org, location_id__in=[floor.pk, *sources]).values(
            "product_id"
        )
        wanted |= Q(category__in=categories, pk__in=carried)
    products = Product.objects.filter(org=org, is_active=True).filter(wanted)
    if run.category:
        products = products.filter(category=run.category)
    products = list(products.order_by().values_list("id", "sku", "category", "subcategory", "unit"))
    if not products:
        return []

    on_floor: dict[int, Decimal] = {
        row["product_id"]: row["qty"]
        for row in StockQuant.objects.filter(org=org, location=floor)
        .values("product_id")
        .annotate(qty=Sum("quantity"))
        .order_by()
    }
    walk = {pk: (loc.sort_order, pk) for pk, loc in sources.items()}
    today = local_date(store, now)
    back_room: dict[int, Decimal] = {}
    first_source: dict[int, int] = {}
    if sources:
        for row in (
            StockQuant.objects.filter(
                org=org, location_id__in=list(sources), unallocated=False, quantity__gt=0
            )
            .filter(Q(batch__expiry_date__isnull=True) | Q(batch__expiry_date__gte=today))
            .values("product_id", "location_id")
            .annotate(qty=Sum("quantity"))
            .order_by()
        ):
            product_id, location_id = row["product_id"], row["location_id"]
            back_room[product_id] = back_room.get(product_id, ZERO) + row["qty"]
            current = first_source.get(product_id)
            if current is None or walk[location_id] < walk[current]:
                first_source[product_id] = location_id

    lines: list[_Line] = []
    for product_id, sku, category, subcategory, unit in products:
        par, min_pull = (
            by_product.get(product_id)
            or by_category.get((category, subcategory))
            or by_category.get((category, ""))
            or (None, None)
        )
        product_sold = sold.get(product_id, ZERO)
        floor_qty = on_floor.get(product_id, ZERO)
        floor_qty = floor_qty if floor_qty > 0 else ZERO  # a sale's debt is not stock
        available = back_room.get(product_id, ZERO)
        if par is not None:
            need = max(par - floor_qty, ZERO)
        else:
            need = max(product_sold - pulled_before.get(product_id, ZERO), ZERO)
        if unit == Unit.EACH:
            need = need.quantize(ONE, rounding=ROUND_DOWN)
            available = available.quantize(ONE, rounding=ROUND_DOWN)
        if need <= 0:
            continue
        suggested = min(need, available)
        worth = suggested if available > 0 else need
        if min_pull is not None and worth < min_pull and floor_qty > 0:
            continue  # not worth the trip while the shelf still has some
        source = first_source.get(product_id)
        lines.append(
            _Line(
                walk=((0, *walk[source]) if source else (1, 0, 0), category, subcategory, sku),
                product_id=product_id,
                source_location_id=source,
                sold=product_sold,
                floor_on_hand=floor_qty,
                back_room_available=available,
                par_qty=par,
                suggested=suggested,
                need=need,
            )
        )
    lines.sort(key=lambda ln: ln.walk)
    return lines


@dataclass
class _Line:
    """A computed line, before it is written (plain values: 5,000 model instances cost more
    than the rest of the run)."""

    walk: tuple
    product_id: int
    source_location_id: int | None
    sold: Decimal
    floor_on_hand: Decimal
    back_room_available: Decimal
    par_qty: Decimal | None
    suggested: Decimal
    need: Decimal

    @property
    def short(self) -> bool:
        return self.back_room_available <= 0


_LINE_COLUMNS = (
    "product_id",
    "source_location_id",
    "sold",
    "floor_on_hand",
    "back_room_available",
    "par_qty",
    "suggested",
    "status",
    "exception_reason",
    "exception_quantity",
    "position",
)
_LINE_TYPES = (
    "bigint",
    "bigint",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
    "text",
    "text",
    "numeric",
    "integer",
)


def _lines_insert(org, run: UpstockRun, lines: list[_Line], now) -> None:
    """Every line of the run in one statement: ``INSERT … SELECT FROM unnest(…)`` on
    PostgreSQL (one array a column; Django's ``bulk_create`` prepares every value of every
    row in Python), ``bulk_create`` elsewhere. Positions follow the walking order."""
    values = [
        (
            ln.product_id,
            ln.source_location_id,
            ln.sold,
            ln.floor_on_hand,
            ln.back_room_available,
            ln.par_qty,
            ln.suggested,
            LineStatus.EXCEPTION.value if ln.short else LineStatus.PENDING.value,
            ExceptionReason.BACK_ROOM_SHORT.value if ln.short else "",
            ln.need if ln.short else None,
            position,
        )
        for position, ln in enumerate(lines, start=1)
    ]
    if not values:
        return
    if connection.vendor != "postgresql":
        UpstockLine.objects.bulk_create(
            UpstockLine(
                org=org, run=run, updated_at=now, **dict(zip(_LINE_COLUMNS, row, strict=True))
            )
            for row in values
        )
        return
    columns = list(zip(*values, strict=True))
    table = UpstockLine._meta.db_table
    arrays = ", ".join(f"%s::{kind}[]" for kind in _LINE_TYPES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (org_id, run_id, updated_at, note, {', '.join(_LINE_COLUMNS)})"
            f" SELECT %s::bigint, %s::bigint, %s::timestamptz, '', t.* FROM unnest({arrays})"
            f" AS t({', '.join(_LINE_COLUMNS)})",
            [org.pk, run.pk, now, *[list(column) for column in columns]],
        )


def _abandon(org, run: UpstockRun, now, actor, reason: str = "") -> None:
    run.status = RunStatus.ABANDONED
    run.abandoned_at = now
    run.save(update_fields=["status", "abandoned_at"])
    audit_record(
        org=org,
        action=AuditAction.UPSTOCK_RUN_ABANDONED,
        obj=run,
        before={"status": RunStatus.IN_PROGRESS},
        after={"status": RunStatus.ABANDONED, **({"why": reason} if reason else {})},
        store=run.store_id,
        actor=_person(actor),
    )


def _locked_in_progress(org, run: UpstockRun) -> UpstockRun:
    try:
        locked = lock_run(org=org, run_id=run.pk)
    except UpstockRun.DoesNotExist as exc:
        raise NotFound() from exc
    if locked.status != RunStatus.IN_PROGRESS:
        raise RunNotInProgress(run_status=locked.status)
    return locked


def run_complete(*, org, run: UpstockRun, actor) -> UpstockRun:
    """Close the run once every line is done, skipped or an exception (409 ``lines_pending``
    naming the pending lines' ids otherwise; 409 ``run_not_in_progress`` for a completed or
    abandoned run). Locks the run."""
    with transaction.atomic():
        locked = _locked_in_progress(org, run)
        pending = list(
            UpstockLine.objects.filter(org=org, run=locked, status=LineStatus.PENDING)
            .order_by("position", "id")
            .values_list("id", flat=True)
        )
        if pending:
            raise LinesPending(
                f"{len(pending)} line(s) still pending.",
                fields={"lines": [f"Line {pk} is pending." for pk in pending[:50]]},
                pending=pending,
            )
        locked.status = RunStatus.COMPLETED
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "completed_at"])
        audit_record(
            org=org,
            action=AuditAction.UPSTOCK_RUN_COMPLETED,
            obj=locked,
            before={"status": RunStatus.IN_PROGRESS},
            after={"status": RunStatus.COMPLETED},
            store=locked.store_id,
            actor=actor,
        )
    return locked


def run_abandon(*, org, run: UpstockRun, actor) -> UpstockRun:
    """Give the run up: its lines stay as they are (what was pulled was posted); the floor's
    next run starts its window where this one's started. Locks the run."""
    with transaction.atomic():
        locked = _locked_in_progress(org, run)
        _abandon(org, locked, timezone.now(), actor)
    return locked
