"""Demo discrepancies: each organisation's variance policies, then discrepancies in every state.

Built through the services, after the demo stock and counts, so the admin's approval queue
looks like a store's: a count's out-of-policy rows (recorded by ``counts`` when the demo's
count is reconciled; ``demo.builders`` runs that count and hands their ids here) are taken
under review, approved or rejected by the admin — never by the manager who reconciled the
count — and one stays open CRITICAL, holding its product; ad-hoc corrections requested by the
manager post at once within policy (ADJUSTED), or wait for the admin above it (one approved,
which posts it, one rejected, one left NEW).

Everything random comes from ``random.Random(f"{seed}:{org slug}:discrepancies")`` and the
products are taken in SKU order, so the same seed on the same day builds the same queue.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from django.db.models import Sum

from discrepancies.judgement import Policies
from discrepancies.models import Discrepancy, Status, VariancePolicy
from discrepancies.services.corrections import correction_request
from discrepancies.services.decisions import Decision, discrepancies_decide
from discrepancies.services.policies import variance_policy_save
from inventory.models import DocumentKind, Location, Organization, Product, StockQuant, Store
from inventory.stock import documents
from inventory.tenancy.scope import resolve_tenant

#: What the demo's corrections are called (the demo's tests tell them from the shrink by it).
SOURCE_REF = "demo-correction"


def build_policies(*, org: Organization, policies: dict, actor) -> list[VariancePolicy]:
    """``policies``: category ("" = the default) → (units, percent, value at cost or None)."""
    return [
        variance_policy_save(
            org=org,
            data={
                "category": category,
                "units": Decimal(units),
                "percent": Decimal(percent),
                "value": None if value is None else Decimal(value),
            },
            actor=actor,
        )
        for category, (units, percent, value) in policies.items()
    ]


def _decide(org: Organization, ids: Sequence[int], action: str, notes: str, admin) -> None:
    outcome = discrepancies_decide(
        org=org,
        ids=list(ids),
        decision=Decision(action, notes=notes),
        tenant=resolve_tenant(admin, org_id=org.pk),
        actor=admin,
    )
    if outcome.refused:  # the demo's people may decide all of these: a refusal is a bug
        raise RuntimeError(f"demo decision refused: {outcome.refusals()}")


def decide_count(*, org: Organization, ids: Sequence[int], admin, rng: random.Random) -> None:
    """A count's discrepancies as an admin leaves them mid-way through the queue: the most
    severe stays NEW (it holds its product), one is under review, one approved (finalising
    the count will post it), one rejected after a recount; the rest wait."""
    rows = sorted(
        Discrepancy.objects.filter(org=org, pk__in=list(ids)).select_related("product"),
        key=lambda d: (-d.severity_rank, -abs(d.value), d.product.sku),
    )
    waiting = rows[1:]  # rows[0], the most severe, stays NEW
    rng.shuffle(waiting)
    for d, (action, notes) in zip(
        waiting,
        (
            ("review", "Asked the vault lead to recount this shelf."),
            ("approve", "Confirmed by a second count."),
            ("reject", "Recounted: the missing units were in the next bin."),
        ),
        strict=False,
    ):
        _decide(org, [d.pk], action, notes, admin)


def _stocked(store: Store, code: str, at_least: int) -> list[tuple[Product, Decimal]]:
    """(product, units) of unit products without lots' expiries (a shortage never takes an
    expired lot the demo keeps on show) with at least ``at_least`` units at room ``code``, in
    SKU order."""
    rows = (
        StockQuant.objects.filter(
            store=store,
            location__code=code,
            unallocated=False,
            product__unit="each",
            product__tracks_expiry=False,
        )
        .values("product_id", "product__sku")
        .annotate(total=Sum("quantity"))
        .filter(total__gte=at_least)
        .order_by("product__sku")
    )
    products = Product.objects.in_bulk([row["product_id"] for row in rows])
    return [(products[row["product_id"]], row["total"]) for row in rows]


def build_corrections(
    *, org: Organization, store: Store, manager, admin, rng: random.Random
) -> list[Discrepancy]:
    """The manager's ad-hoc corrections at one room of ``store`` (the vault, else the back
    room, else the floor: the first with enough stock): one unit within its policy (posts at
    once, ADJUSTED), and three of half a shelf, above it (the admin approves one, which posts
    it, and rejects one; one waits)."""
    policies = Policies(org)
    for room in ("VLT", "BR", "SF"):
        candidates = _stocked(store, room, at_least=5)  # one unit is then at most 20%
        small = [c for c in candidates if policies.for_category(c[0].category).units >= 1]
        if len(candidates) >= 4 and small:
            break
    else:
        return []
    within = rng.choice(small)
    others = rng.sample([c for c in candidates if c is not within], 3)
    location = Location.objects.get(store=store, code=room)
    tenant = resolve_tenant(manager, org_id=org.pk)
    asks = [  # (product, quantity, reason, type)
        (within[0], Decimal(-1), "damage", "DAMAGE"),
        *(
            (product, -max(Decimal(2), units // 2), reason, reason.upper())
            for (product, units), reason in zip(others, ("theft", "damage", "theft"), strict=True)
        ),
    ]
    answers = []
    for n, (product, quantity, reason, kind) in enumerate(asks, start=1):
        ref = f"{SOURCE_REF}-{store.code}-{n}"
        answers.append(
            correction_request(
                org=org,
                store=store,
                kind=DocumentKind.ADJUSTMENT,
                lines=[documents.AdjustmentLineInput(product, location, quantity)],
                client_ref=ref,
                reason=reason,
                discrepancy_type=kind,
                source_ref=ref,
                tenant=tenant,
                actor=manager,
            )
        )
    pending = [d.pk for a in answers if not a.posted for d in a.discrepancies]
    if len(pending) >= 2:
        _decide(org, pending[:1], "approve", "Checked the camera: it walked out.", admin)
        _decide(org, pending[1:2], "reject", "Found behind the display: no loss.", admin)
    return list(Discrepancy.objects.filter(org=org, store=store, source_ref__startswith=SOURCE_REF))


def build_discrepancies(
    *,
    org: Organization,
    seed: int,
    stdout,
    admin,
    manager,
    correction_store: Store,
    count_discrepancies: Sequence[int] = (),
) -> dict[str, int]:
    """Decide the demo count's discrepancies and request the ad-hoc corrections; returns the
    organisation's discrepancies per status."""
    rng = random.Random(f"{seed}:{org.slug}:discrepancies")
    if count_discrepancies:
        decide_count(org=org, ids=count_discrepancies, admin=admin, rng=rng)
    build_corrections(org=org, store=correction_store, manager=manager, admin=admin, rng=rng)
    by_status = Counter(Discrepancy.objects.filter(org=org).values_list("status", flat=True))
    statuses = {status: by_status.get(status, 0) for status in Status.values}
    stdout.write(
        f"Discrepancies of {org.slug}: "
        + ", ".join(f"{n} {status.lower()}" for status, n in statuses.items())
        + "."
    )
    return statuses
