"""The demo, assembled from each app's demo builder: inventory's organisations, catalogue,
people and stock history (``inventory.demo``), variance policies (``discrepancies.demo``),
counts (``counts.demo``), then a count waiting for decisions and the discrepancies queue
(``discrepancies.demo``), and last the sales floors' par levels with last night's completed
pull list and tonight's pending one (``upstock.demo``). The only module (with the ``seed_demo``
command) that may import every app."""

from __future__ import annotations

import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Count, Sum
from django_scopes import scopes_disabled

from counts.models import VarianceRow
from counts.services import passes as count_passes
from counts.services import sessions as count_sessions
from discrepancies.demo import build_discrepancies, build_policies
from discrepancies.models import Discrepancy, Status
from inventory.catalog.services import product_upsert_many
from inventory.demo.catalog import (
    DEMO_ORGS,
    DEMO_PASSWORD,
    DEMO_SLUGS,
    PLATFORM_ADMIN_EMAIL,
    catalog_rows,
    create_devices,
    create_org,
    create_people,
    create_platform_admin,
    demo_email,
)
from inventory.demo.stock import build_stock, stock_summary_lines
from inventory.models import (
    Location,
    Membership,
    MembershipStore,
    Organization,
    Product,
    StockQuant,
    Store,
)
from inventory.tenancy.purge import org_purge
from inventory.tenancy.scope import tenant_scope
from upstock.demo import build_upstock, upstock_summary_lines

DEFAULT_SEED = 42


DEFAULT_DAYS = 30  # days of POS sales; receiving starts five days earlier


BASE_URL = "http://127.0.0.1:8000"


URLS = (f"{BASE_URL}/admin/", f"{BASE_URL}/api/docs/", f"{BASE_URL}/api/v1/")


def build_demo(seed: int, stdout, days: int = DEFAULT_DAYS) -> dict:
    """Create both demo organisations; the caller makes sure they do not exist yet.

    With ``days`` > 0 each store also gets stock and that many days of sales
    (``inventory.demo``), built after the catalog and the people.

    Returns ``{"seed", "orgs": {slug: Organization}, "stores": {code: Store},
    "locations": {store code: {room code: Location}}, "users": {email: User},
    "superuser": User, "tokens": [{"org", "device", "user", "key"}],
    "products": {slug: [sku, ...]}}``.
    """
    result: dict = {
        "seed": seed,
        "orgs": {},
        "stores": {},
        "locations": {},
        "users": {},
        "tokens": [],
        "products": {},
    }
    password_hash = make_password(DEMO_PASSWORD)
    with transaction.atomic():
        for spec in DEMO_ORGS:
            org, stores, locations = create_org(spec)
            groups, total, kind = spec["catalog"]
            rows = catalog_rows(seed, org.slug, groups, total, kind)
            with tenant_scope(org):
                created = product_upsert_many(org=org, rows=rows)["created"]
            users = create_people(org, spec["people"], stores, password_hash)
            admin = users[demo_email("admin", org.slug)]
            with tenant_scope(org):
                build_policies(org=org, policies=spec["variance_policies"], actor=admin)
            result["orgs"][org.slug] = org
            result["stores"].update(stores)
            result["locations"].update(locations)
            result["users"].update(users)
            result["products"][org.slug] = created
            result["tokens"] += create_devices(org, users)
            stdout.write(
                f"Created {org.slug}: {len(stores)} store(s), {len(created)} products, "
                f"{len(users)} members."
            )
            if days > 0:
                actors = {
                    role: users[demo_email(role, org.slug)]
                    for role in ("manager", "operator", "pos")
                }
                with tenant_scope(org):
                    build_stock(
                        org=org, kind=kind, seed=seed, days=days, actors=actors, stdout=stdout
                    )
                    if len(stores) > 1:
                        from counts.demo import build_counts

                        first, second = sorted(stores.values(), key=lambda s: s.code)[:2]
                        result["counts"] = build_counts(
                            store_closed=second,
                            store_open=first,
                            seed=seed,
                            stdout=stdout,
                            manager=actors["manager"],
                            operator=actors["operator"],
                            admin=admin,
                        )
                        waiting = build_waiting_count(
                            store=second,
                            seed=seed,
                            manager=actors["manager"],
                            operator=actors["operator"],
                        )
                    else:
                        waiting = []
                    result.setdefault("discrepancies", {})[org.slug] = build_discrepancies(
                        org=org,
                        seed=seed,
                        stdout=stdout,
                        admin=admin,
                        manager=actors["manager"],
                        correction_store=sorted(stores.values(), key=lambda s: s.code)[0],
                        count_discrepancies=waiting,
                    )
                    result.setdefault("upstock", {})[org.slug] = build_upstock(
                        stores=list(stores.values()),
                        seed=seed,
                        stdout=stdout,
                        manager=actors["manager"],
                        operator=actors["operator"],
                    )
        result["superuser"] = create_platform_admin(password_hash)
    return result


def build_waiting_count(*, store: Store, seed: int, manager, operator) -> list[int]:
    """A zone count of the vault (else the back room) at ``store``, reconciled by the manager
    and waiting for decisions: a few planted findings, and the fullest shelf found empty
    (CRITICAL: it holds its product until someone decides it).
    Returns the ids of the discrepancies its out-of-policy rows became."""
    rng = random.Random(f"{seed}:{store.code}:waiting-count")
    org = store.org
    room = (
        Location.objects.filter(store=store, code__in=("VLT", "BR"), is_active=True)
        .order_by("-code")
        .first()
    )
    if room is None:
        return []
    on_hand = {
        row["product_id"]: row["total"]
        for row in StockQuant.objects.filter(
            store=store, location=room, unallocated=False, quantity__gt=0
        )
        .values("product_id")
        .annotate(total=Sum("quantity"))
    }
    products = sorted(Product.objects.filter(pk__in=list(on_hand)), key=lambda p: p.sku)
    if len(products) < 5:
        return []
    session = count_sessions.session_start(
        org=org,
        session=count_sessions.session_create(
            org=org,
            store=store,
            scope="ZONE",
            scope_locations=[room],
            notes="Vault recount after the monthly count (demo)",
            actor=manager,
        ),
        actor=manager,
    )
    count_pass = count_passes.pass_create(
        org=org, session=session, location=room, device_id="Tablet 1", actor=operator
    )
    emptied = max(range(len(products)), key=lambda i: (on_hand[products[i].pk], -i))
    planted = set(rng.sample([i for i in range(len(products)) if i != emptied], 5))
    entries = []
    for i, product in enumerate(products):
        quantity = on_hand[product.pk]
        if i == emptied:
            quantity = Decimal(0)
        elif i in planted:
            quantity = max(Decimal(0), quantity + rng.choice([Decimal(n) for n in (-3, -2, 2)]))
        entries.append(count_passes.Entry(product, quantity))
    count_passes.lines_add(
        org=org, count_pass=count_pass, actor=operator, device_id="Tablet 1", entries=entries
    )
    count_passes.pass_submit(org=org, count_pass=count_pass, actor=operator)
    count_sessions.session_submit(org=org, session=session, actor=manager)
    count_sessions.session_reconcile(org=org, session=session, actor=manager)
    return sorted(
        VarianceRow.objects.filter(session=session, discrepancy__isnull=False).values_list(
            "discrepancy_id", flat=True
        )
    )


def reset_demo() -> int:
    """Delete the demo organisations, everything of theirs and the demo users they leave.

    ``org_purge`` removes each organisation with its ledger (append-only everywhere else).
    """
    User = get_user_model()
    with transaction.atomic(), scopes_disabled():
        orgs = list(Organization.objects.filter(slug__in=DEMO_SLUGS).order_by("slug"))
        user_ids = set(Membership.unscoped.filter(org__in=orgs).values_list("user_id", flat=True))
        for org in orgs:
            org_purge(org=org)
        # A demo user who also belongs to another organisation keeps their account.
        User.objects.filter(pk__in=user_ids, memberships__isnull=True, is_superuser=False).delete()
        User.objects.filter(email__iexact=PLATFORM_ADMIN_EMAIL).delete()
    return len(orgs)


def _table(rows: list[tuple], headers: tuple[str, ...]) -> list[str]:
    widths = [max(len(str(v)) for v in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [line.format(*row).rstrip() for row in (headers, tuple("-" * w for w in widths), *rows)]


def discrepancy_summary_lines(orgs: list[Organization]) -> list[str]:
    """Per organisation, its discrepancies per status (and how many open ones are serious)."""
    lines = []
    for org in orgs:
        rows = Discrepancy.unscoped.filter(org=org)
        by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
        if not by_status:
            continue
        serious = rows.filter(
            status__in=(Status.NEW, Status.UNDER_REVIEW), severity__in=("HIGH", "CRITICAL")
        ).count()
        counts = ", ".join(f"{by_status.get(s, 0)} {s.lower()}" for s in Status.values)
        lines.append(f"  {org.slug:<16} {counts}; {serious} open HIGH/CRITICAL (held)")
    return lines


def summary_lines(tokens: list[dict] | None) -> list[str]:
    """What exists for the demo organisations, read back from the database."""
    lines: list[str] = []
    logins: list[tuple] = []
    with scopes_disabled():
        orgs = {o.slug: o for o in Organization.objects.filter(slug__in=DEMO_SLUGS)}
        for org in (orgs[slug] for slug in DEMO_SLUGS if slug in orgs):
            stores = Store.unscoped.filter(org=org).order_by("code")
            by_category = dict(
                Product.unscoped.filter(org=org)
                .values_list("category")
                .annotate(n=Count("id"))
                .order_by("-n", "category")
            )
            lines.append(
                f"{org.name} ({org.slug}, {org.time_zone}): {sum(by_category.values())} products"
            )
            lines.append("  " + ", ".join(f"{cat or '-'} {n}" for cat, n in by_category.items()))
            for store in stores:
                rooms = ", ".join(
                    f"{loc.code}{'*' if loc.sellable else ''}"
                    for loc in Location.unscoped.filter(store=store).order_by("sort_order", "id")
                )
                lines.append(f"  {store.code:<7} {store.name:<14} rooms: {rooms}")
            memberships = Membership.unscoped.filter(org=org).select_related("user").order_by("id")
            for m in memberships:
                codes = MembershipStore.unscoped.filter(membership=m).values_list(
                    "store__code", flat=True
                )
                scope = ", ".join(codes) or "all stores"
                logins.append((m.user.email, m.role, org.slug, scope, DEMO_PASSWORD))
        stock = stock_summary_lines([orgs[slug] for slug in DEMO_SLUGS if slug in orgs])
        queue = discrepancy_summary_lines([orgs[slug] for slug in DEMO_SLUGS if slug in orgs])
        upstock = upstock_summary_lines([orgs[slug] for slug in DEMO_SLUGS if slug in orgs])
    lines.append("  (* = sellable room)")
    if stock:
        lines += ["", "Stock (store-local today):", *stock]
    if queue:
        lines += ["", "Discrepancies (decide them at /admin/discrepancies/discrepancy/):", *queue]
    if upstock:
        lines += ["", "Upstock runs (latest first; /api/v1/upstock/runs):", *upstock]
    logins.append((PLATFORM_ADMIN_EMAIL, "superuser", "(platform)", "everything", DEMO_PASSWORD))
    lines += ["", "Logins:", *_table(logins, ("e-mail", "role", "org", "stores", "password"))]
    if tokens:
        rows = [(t["org"], t["device"], t["user"], t["key"]) for t in tokens]
        lines += [
            "",
            "Device tokens (shown once; send as 'Authorization: Token <key>'):",
            *_table(rows, ("org", "device", "member", "key")),
        ]
    else:
        lines += [
            "",
            "Device tokens were shown when the demo was built; run with --reset for new ones.",
        ]
    lines += ["", "Open:", *(f"  {url}" for url in URLS)]
    return lines
