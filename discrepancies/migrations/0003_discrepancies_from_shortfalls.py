"""The shortfalls recorded before the discrepancies' hooks become discrepancies, as the hook
records new ones (``discrepancies.hooks``): a sale's (SALE: booked or refused) is an
informational POS_SHORTFALL — expected = what was available, actual = what was sold; a count's
clamped remainder (COUNT_RECONCILE) an informational CYCLE_COUNT one — expected = the shortage
to post, actual = what was there. Other refused moves record nothing.

Judged by the organisation's variance policies with the same pure judgement
(``discrepancies.judgement``); products with an open HIGH or CRITICAL one are held, as the
recording service holds them. Idempotent: the unique (org, document type, document id, line)
constraint skips a shortfall already recorded (live or archived). Reversing deletes what this
created — a discrepancy dated like its shortfall (the hook dates its own when it records) —
and releases the holds nothing else keeps.
"""

from decimal import Decimal

from django.db import migrations
from django.db.models import OuterRef, Q, Subquery

from discrepancies.judgement import DEFAULT_ALLOWANCE, Allowance, judge

SALE, COUNT_RECONCILE = "SALE", "COUNT_RECONCILE"
SHORTFALL = "shortfall"
SERIOUS = ("HIGH", "CRITICAL")
MONEY_QUANTUM = Decimal("0.0001")
ZERO = Decimal("0")


def _open(prefix: str = "") -> Q:
    return Q(**{f"{prefix}status__in": ("NEW", "UNDER_REVIEW")}) | Q(
        **{f"{prefix}status": "APPROVED", f"{prefix}corrective": True}
    )


def _finding(shortfall) -> dict | None:
    if shortfall.ref_type == SALE:
        return {
            "expected": shortfall.available,
            "actual": shortfall.requested,
            "source": "POS_SHORTFALL",
            "kind": "DATA_ERROR",
            "source_ref": (
                f"sale-{shortfall.ref_id}" if shortfall.ref_id else shortfall.client_ref or ""
            )[:128],
            "reason": (
                "Sold more than the records held (booked to the unallocated batch)."
                if shortfall.outcome == "booked"
                else "A sale of more than the records held was refused."
            ),
        }
    if shortfall.ref_type == COUNT_RECONCILE:
        return {
            "expected": shortfall.requested,
            "actual": shortfall.available,
            "source": "CYCLE_COUNT",
            "kind": "COUNT",
            "source_ref": f"count-{shortfall.ref_id}" if shortfall.ref_id else "",
            "reason": "Finalising the count could not post all of its shortage: the stock had gone.",
        }
    return None


def shortfalls_to_discrepancies(apps, schema_editor):
    Organization = apps.get_model("inventory", "Organization")
    StockShortfall = apps.get_model("inventory", "StockShortfall")
    StockHold = apps.get_model("inventory", "StockHold")
    Discrepancy = apps.get_model("discrepancies", "Discrepancy")
    ArchivedDiscrepancy = apps.get_model("discrepancies", "ArchivedDiscrepancy")
    VariancePolicy = apps.get_model("discrepancies", "VariancePolicy")
    mapped = StockShortfall.objects.filter(ref_type__in=(SALE, COUNT_RECONCILE))
    for org in Organization.objects.filter(pk__in=mapped.values("org_id")).order_by("pk"):
        policies = {
            p.category: Allowance(p.units, p.percent, p.value)
            for p in VariancePolicy.objects.filter(org_id=org.pk)
        }
        default = policies.get("") or DEFAULT_ALLOWANCE
        recorded = set(
            Discrepancy.objects.filter(org_id=org.pk, document_type=SHORTFALL).values_list(
                "document_id", flat=True
            )
        ) | set(
            ArchivedDiscrepancy.objects.filter(org_id=org.pk, document_type=SHORTFALL).values_list(
                "document_id", flat=True
            )
        )
        rows, held = [], set()
        shortfalls = mapped.filter(org_id=org.pk).select_related("product").order_by("pk")
        for shortfall in shortfalls.iterator(chunk_size=2000):
            found = _finding(shortfall)
            if found is None or shortfall.pk in recorded:
                continue
            product = shortfall.product
            unit_cost = product.default_cost or ZERO
            variance = found["actual"] - found["expected"]
            value = (variance * unit_cost).quantize(MONEY_QUANTUM)
            judgement = judge(
                policies.get(product.category or "") or default,
                variance=variance,
                expected=found["expected"],
                value=value,
                threshold=org.escalation_threshold,
            )
            rows.append(
                Discrepancy(
                    org_id=org.pk,
                    store_id=shortfall.store_id,
                    location_id=shortfall.location_id,
                    product_id=product.pk,
                    source=found["source"],
                    kind=found["kind"],
                    status="NEW",
                    severity=judgement.severity,
                    expected=found["expected"],
                    actual=found["actual"],
                    variance=variance,
                    unit_cost=unit_cost,
                    value=value,
                    document_type=SHORTFALL,
                    document_id=shortfall.pk,
                    document_line=0,
                    source_ref=found["source_ref"],
                    reason=found["reason"],
                    corrective=False,
                    within_policy=judgement.within_policy,
                    escalated=judgement.escalated,
                    created_by_id=shortfall.user_id,
                    created_at=shortfall.created_at,
                )
            )
            if judgement.severity in SERIOUS:
                held.add((shortfall.store_id, product.pk))
        Discrepancy.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        StockHold.objects.bulk_create(
            [StockHold(org_id=org.pk, store_id=s, product_id=p) for s, p in sorted(held)],
            batch_size=1000,
            ignore_conflicts=True,
        )


def discrepancies_from_shortfalls_removed(apps, schema_editor):
    StockShortfall = apps.get_model("inventory", "StockShortfall")
    StockHold = apps.get_model("inventory", "StockHold")
    Discrepancy = apps.get_model("discrepancies", "Discrepancy")
    created_with = StockShortfall.objects.filter(pk=OuterRef("document_id")).values("created_at")
    ours = Discrepancy.objects.filter(
        document_type=SHORTFALL, source__in=("POS_SHORTFALL", "CYCLE_COUNT")
    )
    ours = ours.filter(created_at=Subquery(created_with[:1]))
    pairs = set(ours.values_list("org_id", "store_id", "product_id"))
    ours.delete()
    if not pairs:
        return
    still = set(
        Discrepancy.objects.filter(_open(), severity__in=SERIOUS).values_list(
            "org_id", "store_id", "product_id"
        )
    )
    for org_id, store_id, product_id in sorted(pairs - still):
        StockHold.objects.filter(org_id=org_id, store_id=store_id, product_id=product_id).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("discrepancies", "0002_policies_from_tolerance_bands"),
        ("inventory", "0009_stock_hold_variance_policies"),
    ]

    operations = [
        migrations.RunPython(shortfalls_to_discrepancies, discrepancies_from_shortfalls_removed)
    ]
