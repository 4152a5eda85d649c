"""Par levels: one at a time, and a CSV file's rows (each bad row reported by its line)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from inventory.models import AuditEvent
from tests.factories import make_gtin
from tests.stock_helpers import loc
from upstock.exceptions import NotASalesFloor
from upstock.models import Baseline
from upstock.services import baselines as B

pytestmark = pytest.mark.django_db
D = Decimal


def test_upsert_creates_then_updates_one_par(org, store, floor, product, manager):
    a = product(sku="A")
    first = B.baseline_upsert(
        org=org, store=store, location=floor, product=a, par_qty=D(4), actor=manager
    )
    second = B.baseline_upsert(
        org=org, store=store, location=floor, product=a, par_qty=D(6), min_pull=D(2),
        actor=manager,
    )  # fmt: skip
    assert second.pk == first.pk and (second.par_qty, second.min_pull) == (6, 2)
    assert Baseline.objects.count() == 1
    events = AuditEvent.objects.filter(action="upstock.baseline_saved").order_by("id")
    assert [e.after.get("par_qty") for e in events] == ["4", "6"]
    # the same values again change nothing and record nothing
    B.baseline_upsert(
        org=org, store=store, location=floor, product=a, par_qty=D(6), min_pull=D(2),
        actor=manager,
    )  # fmt: skip
    assert events.count() == 2


def test_upsert_refuses_bad_values(org, store, floor, back, product, manager):
    a = product(sku="A")
    with pytest.raises(NotASalesFloor):
        B.baseline_upsert(
            org=org, store=store, location=back, product=a, par_qty=D(1), actor=manager
        )
    cases = [
        ({"product": a, "category": "Flower", "par_qty": D(1)}, "category"),
        ({"par_qty": D(1)}, "category"),
        ({"product": a, "par_qty": D(-1)}, "par_qty"),
        ({"product": a, "par_qty": D("1.5")}, "par_qty"),
        ({"category": "Flower", "par_qty": D(1), "min_pull": D(-2)}, "min_pull"),
    ]
    for values, field in cases:
        with pytest.raises(ValidationFailed) as refused:
            B.baseline_upsert(org=org, store=store, location=floor, actor=manager, **values)
        assert field in refused.value.fields, values
    assert not Baseline.objects.exists()


def test_update_and_delete(org, store, floor, product, manager):
    a, b = product(sku="A"), product(sku="B")
    par_a = B.baseline_upsert(
        org=org, store=store, location=floor, product=a, par_qty=D(4), actor=manager
    )
    B.baseline_upsert(org=org, store=store, location=floor, product=b, par_qty=D(4), actor=manager)
    changed = B.baseline_update(
        org=org, baseline=par_a, changes={"par_qty": D(9), "min_pull": None}, actor=manager
    )
    assert changed.par_qty == 9
    with pytest.raises(B.DuplicateBaseline):
        B.baseline_update(org=org, baseline=par_a, changes={"product": b}, actor=manager)
    default = B.baseline_update(
        org=org, baseline=par_a, changes={"category": "Flower"}, actor=manager
    )
    assert default.product_id is None and default.category == "Flower"
    with pytest.raises(ValidationFailed):
        B.baseline_update(org=org, baseline=par_a, changes={"store": 3}, actor=manager)
    B.baseline_delete(org=org, baseline=default, actor=manager)
    assert list(Baseline.objects.values_list("product__sku", flat=True)) == ["B"]
    assert AuditEvent.objects.filter(action="upstock.baseline_deleted").count() == 1


def test_import_applies_good_rows_and_reports_every_bad_one_by_line(
    org, store, floor, product, manager
):
    a, b, c = (
        product(sku="A"),
        product(sku="B"),
        product(sku="C", barcodes=[{"code": make_gtin(31)}]),
    )
    B.baseline_upsert(org=org, store=store, location=floor, product=a, par_qty=D(1), actor=manager)
    B.baseline_upsert(org=org, store=store, location=floor, product=b, par_qty=D(2), actor=manager)
    rows = [
        {"line": 2, "sku": "A", "par_qty": "5", "min_pull": ""},  # updated
        {"line": 3, "sku": "B", "par_qty": "2"},  # unchanged
        {"line": 4, "barcode": make_gtin(31), "par_qty": "3", "min_pull": "1"},  # created
        {"line": 5, "category": "Edibles", "subcategory": "Gummies", "par_qty": "8"},  # created
        {"line": 6, "sku": "NOPE", "par_qty": "1"},
        {"line": 7, "sku": "C", "par_qty": "lots"},
        {"line": 8, "sku": "A", "par_qty": "2"},  # A again
        {"line": 9, "par_qty": "2"},
        {"line": 10, "sku": "C", "par_qty": "-1"},
        {"line": 11, "sku": "B", "par_qty": "1.5"},
    ]
    result = B.baselines_import(
        org=org, store=store, location=floor, rows=rows, dry_run=False, actor=manager
    )
    assert (result.created, result.updated, result.unchanged) == (2, 1, 1)
    assert [(e["line"], e["field"], e["code"]) for e in result.errors] == [
        (6, "sku", "unknown_product"),
        (7, "par_qty", "invalid"),
        (8, "sku", "duplicate"),
        (9, "sku", "invalid"),
        (10, "par_qty", "invalid"),
        (11, "par_qty", "fractional_quantity"),
    ]
    pars = {
        (bl.product.sku if bl.product else bl.category): bl.par_qty
        for bl in Baseline.objects.select_related("product")
    }
    assert pars == {"A": 5, "B": 2, "C": 3, "Edibles": 8}
    assert AuditEvent.objects.filter(action="upstock.baselines_imported").count() == 1
    assert c.pk


def test_import_dry_run_writes_nothing(org, store, floor, product, manager):
    product(sku="A")
    result = B.baselines_import(
        org=org,
        store=store,
        location=floor,
        rows=[{"line": 2, "sku": "A", "par_qty": "5"}],
        dry_run=True,
        actor=manager,
    )
    assert result.created == 1 and result.dry_run
    assert not Baseline.objects.exists()
    assert not AuditEvent.objects.filter(action="upstock.baselines_imported").exists()


def test_import_to_another_stores_floor_is_refused(org, store, other_store, manager):
    with pytest.raises(NotASalesFloor):
        B.baselines_import(
            org=org,
            store=store,
            location=loc(other_store, "SF"),
            rows=[],
            dry_run=False,
            actor=manager,
        )
