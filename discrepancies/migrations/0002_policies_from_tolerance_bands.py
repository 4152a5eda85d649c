"""Each organisation's count tolerance bands become its variance policies (same units and
percent, no value limit), before inventory drops the column (run_before)."""

from decimal import Decimal, InvalidOperation

from django.db import migrations


def _decimal(value, default: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return Decimal(default)
    return number if number.is_finite() and number >= 0 else Decimal(default)


def copy_bands(apps, schema_editor):
    Organization = apps.get_model("inventory", "Organization")
    VariancePolicy = apps.get_model("discrepancies", "VariancePolicy")
    policies = []
    for org in Organization.objects.exclude(tolerance_bands={}).iterator():
        for category, band in (org.tolerance_bands or {}).items():
            if not isinstance(band, dict):
                continue
            policies.append(
                VariancePolicy(
                    org_id=org.pk,
                    category="" if category == "default" else category[:120],
                    units=_decimal(band.get("units", "1"), "1"),
                    percent=min(_decimal(band.get("percent", "2"), "2"), Decimal("100")),
                )
            )
    VariancePolicy.objects.bulk_create(policies, ignore_conflicts=True)


def copy_back(apps, schema_editor):
    Organization = apps.get_model("inventory", "Organization")
    VariancePolicy = apps.get_model("discrepancies", "VariancePolicy")
    bands: dict[int, dict] = {}
    for policy in VariancePolicy.objects.all():
        bands.setdefault(policy.org_id, {})[policy.category or "default"] = {
            "units": str(policy.units),
            "percent": str(policy.percent),
        }
    for org_id, org_bands in bands.items():
        Organization.objects.filter(pk=org_id).update(tolerance_bands=org_bands)


class Migration(migrations.Migration):
    dependencies = [
        ("discrepancies", "0001_initial"),
        ("inventory", "0008_audit_count_line_corrections"),
    ]
    run_before = [("inventory", "0009_stock_hold_variance_policies")]

    operations = [migrations.RunPython(copy_bands, copy_back)]
