"""The demo, assembled from each app's demo builder: inventory's organisations, catalogue,
people and stock history (``inventory.demo``), then counts (``counts.demo``). The only module
(with the ``seed_demo`` command) that may import every app."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Count
from django_scopes import scopes_disabled

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
    Store,
)
from inventory.tenancy.purge import org_purge
from inventory.tenancy.scope import tenant_scope

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
                            admin=users[demo_email("admin", org.slug)],
                        )
        result["superuser"] = create_platform_admin(password_hash)
    return result


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
    lines.append("  (* = sellable room)")
    if stock:
        lines += ["", "Stock (store-local today):", *stock]
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
