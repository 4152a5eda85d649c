"""Run generation: the window, what "sold" counts, the suggested pull and the walking order."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from inventory.models import AuditEvent, Location, LocationKind
from inventory.sales import services as sales
from inventory.tenancy import services as tenancy
from tests.stock_helpers import loc, receive, sell
from tests.upstock.conftest import local
from upstock import selectors
from upstock.exceptions import LinesPending, NotASalesFloor, RunNotInProgress
from upstock.models import ExceptionReason, LineStatus, RunStatus, UpstockLine
from upstock.services import baselines, lines, runs

pytestmark = pytest.mark.django_db
D = Decimal


def by_sku(run) -> dict[str, UpstockLine]:
    return {line.product.sku: line for line in selectors.run_lines(run)}


def test_run_sold_net_of_voids_and_refunds(org, store, clock, new_run, product):
    a, b = product(sku="A"), product(sku="B")
    clock.set(local(2026, 6, 9, 9, 0))
    receive(org, store, a, 20, location="SF")
    receive(org, store, b, 20, location="SF")
    receive(org, store, a, 50, location="BR")
    receive(org, store, b, 50, location="BR")
    clock.set(local(2026, 6, 9, 10, 0))
    first = sell(org, store, (a, 5), (b, 2))
    sold_b = sell(org, store, (b, 3))
    sales.sale_void(org=org, sale=sold_b)
    sales.sale_refund(org=org, sale=first, lines=[sales.RefundLineInput(1, D(2))], client_ref="r1")
    clock.set(local(2026, 6, 9, 22, 0))
    run = new_run()
    lines_ = by_sku(run)
    assert lines_["A"].sold == 3  # 5 sold, 2 refunded to the floor
    assert lines_["B"].sold == 2  # 3 sold then voided
    assert lines_["A"].suggested == 3
    assert lines_["A"].floor_on_hand == 17


def test_refund_to_quarantine_does_not_reduce_sold(org, store, clock, new_run, product):
    quarantine = tenancy.location_create(
        org=org, store=store, code="Q", name="Quarantine", kind=LocationKind.QUARANTINE
    )
    a = product(sku="A")
    clock.set(local(2026, 6, 9, 9, 0))
    receive(org, store, a, 10, location="SF")
    receive(org, store, a, 10, location="BR")
    sale = sell(org, store, (a, 4))
    sales.sale_refund(
        org=org,
        sale=sale,
        lines=[sales.RefundLineInput(1, D(1))],
        client_ref="r-q",
        location=quarantine,
    )
    clock.set(local(2026, 6, 9, 22, 0))
    assert by_sku(new_run())["A"].sold == 4


def test_window_runs_from_the_last_run_and_a_late_synced_sale_counts_once(
    org, store, clock, new_run, product, manager
):
    a = product(sku="A")
    clock.set(local(2026, 6, 8, 9, 0))
    receive(org, store, a, 100, location="SF")
    receive(org, store, a, 100, location="BR")
    sell(org, store, (a, 2))
    clock.set(local(2026, 6, 8, 22, 0))
    first = new_run()
    assert first.window_start == local(2026, 6, 7, 22, 0)  # the 24 h look-back
    assert by_sku(first)["A"].sold == 2
    lines.line_skip(org=org, line=by_sku(first)["A"], actor=manager)
    runs.run_complete(org=org, run=first, actor=manager)
    # Recorded the next morning, though it happened (occurred_at) before the first run.
    clock.set(local(2026, 6, 9, 8, 0))
    sell(org, store, (a, 7), occurred_at=local(2026, 6, 8, 18, 0))
    clock.set(local(2026, 6, 9, 22, 0))
    second = new_run()
    assert second.window_start == first.window_end
    assert by_sku(second)["A"].sold == 7


def test_sale_at_2359_local_falls_in_the_next_nights_window(
    org, store, clock, new_run, product, manager
):
    a = product(sku="A")
    clock.set(local(2026, 6, 8, 9, 0))
    receive(org, store, a, 100, location="SF")
    receive(org, store, a, 100, location="BR")
    clock.set(local(2026, 6, 8, 22, 0))
    first = new_run()
    runs.run_complete(org=org, run=first, actor=manager)  # nothing sold: no lines
    clock.set(local(2026, 6, 8, 23, 59))
    sell(org, store, (a, 3))
    clock.set(local(2026, 6, 9, 22, 0))
    second = new_run()
    assert by_sku(second)["A"].sold == 3
    # one second after the run was made belongs to the run after it, not to this one
    clock.set(local(2026, 6, 9, 22, 0, 1))
    sell(org, store, (a, 1))
    runs.run_abandon(org=org, run=second, actor=manager)
    clock.set(local(2026, 6, 10, 22, 0))
    third = new_run()
    assert third.window_start == first.window_end  # an abandoned run does not end a window
    assert by_sku(third)["A"].sold == 4


@pytest.mark.parametrize(
    ("day", "hours"),
    [((2026, 3, 7), 23), ((2026, 10, 31), 25)],
    ids=["spring-forward", "fall-back"],
)
def test_dst_night_window_is_the_real_night(
    org, store, clock, new_run, product, manager, day, hours
):
    a = product(sku="A")
    clock.set(local(*day, 9, 0))
    receive(org, store, a, 100, location="SF")
    receive(org, store, a, 100, location="BR")
    clock.set(local(*day, 22, 0))
    first = new_run()
    runs.run_complete(org=org, run=first, actor=manager)
    # A sale at 01:30 and one at 03:30 on the night itself. On the fall-back night 01:30
    # happens twice: the second (fold=1) is an hour later, and both are in the window.
    night = datetime.date(*day) + datetime.timedelta(days=1)
    for hour, fold in ((1, 0), (1, 1), (3, 0)):
        clock.set(local(night.year, night.month, night.day, hour, 30).replace(fold=fold))
        sell(org, store, (a, 1))
    clock.set(local(night.year, night.month, night.day, 22, 0))
    second = new_run()
    assert second.window_start == first.window_end
    assert second.window_end - second.window_start == datetime.timedelta(hours=hours)
    assert by_sku(second)["A"].sold == 3


def test_par_caps_the_pull_and_lists_products_not_sold(
    org, store, floor, clock, new_run, product, manager
):
    a, b, c = product(sku="A"), product(sku="B"), product(sku="C")
    clock.set(local(2026, 6, 9, 9, 0))
    for item, on_floor in ((a, 10), (b, 3), (c, 12)):
        receive(org, store, item, on_floor, location="SF")
        receive(org, store, item, 4, location="BR")
    sell(org, store, (a, 9))
    for item in (a, b, c):
        baselines.baseline_upsert(
            org=org, store=store, location=floor, product=item, par_qty=D(8), actor=manager
        )
    clock.set(local(2026, 6, 9, 22, 0))
    found = by_sku(new_run())
    assert found["A"].suggested == 4  # par 8 − 1 on the floor = 7, capped by the back room's 4
    assert found["B"].suggested == 4  # not sold, but below par: 5 needed, 4 there
    assert found["B"].sold == 0
    assert "C" not in found  # above par: nothing to pull
    assert found["A"].par_qty == 8


def test_without_par_suggests_what_sold_capped_by_the_back_room(
    org, store, clock, new_run, product
):
    a = product(sku="A")
    clock.set(local(2026, 6, 9, 9, 0))
    receive(org, store, a, 20, location="SF")
    receive(org, store, a, 3, location="BR")
    sell(org, store, (a, 5))
    clock.set(local(2026, 6, 9, 22, 0))
    line = by_sku(new_run())["A"]
    assert (line.sold, line.suggested, line.back_room_available) == (5, 3, 3)
    assert line.par_qty is None


def test_category_defaults_and_product_par_precedence(
    org, store, floor, clock, new_run, product, manager
):
    own = product(sku="OWN", category="Flower", subcategory="Indica")
    sub = product(sku="SUB", category="Flower", subcategory="Indica")
    cat = product(sku="CAT", category="Flower", subcategory="Sativa")
    other = product(sku="OTHER", category="Edibles")
    clock.set(local(2026, 6, 9, 9, 0))
    for item in (own, sub, cat, other):
        receive(org, store, item, 50, location="BR")
    up = baselines.baseline_upsert
    up(org=org, store=store, location=floor, product=own, par_qty=D(2), actor=manager)
    up(org=org, store=store, location=floor, category="Flower", subcategory="Indica",
       par_qty=D(5), actor=manager)  # fmt: skip
    up(org=org, store=store, location=floor, category="Flower", par_qty=D(7), actor=manager)
    clock.set(local(2026, 6, 9, 22, 0))
    found = by_sku(new_run())
    assert found["OWN"].suggested == 2
    assert found["SUB"].suggested == 5
    assert found["CAT"].suggested == 7
    assert "OTHER" not in found  # no par, nothing sold


def test_min_pull_drops_small_pulls_unless_the_floor_is_empty(
    org, store, floor, clock, new_run, product, manager
):
    some, empty = product(sku="SOME"), product(sku="EMPTY")
    clock.set(local(2026, 6, 9, 9, 0))
    receive(org, store, some, 8, location="SF")
    for item in (some, empty):
        receive(org, store, item, 50, location="BR")
    baselines.baseline_upsert(
        org=org, store=store, location=floor, category="Flower", par_qty=D(10),
        min_pull=D(3), actor=manager,
    )  # fmt: skip
    baselines.baseline_upsert(
        org=org, store=store, location=floor, product=empty, par_qty=D(2), min_pull=D(3),
        actor=manager,
    )  # fmt: skip
    clock.set(local(2026, 6, 9, 22, 0))
    found = by_sku(new_run())
    assert "SOME" not in found  # 2 needed, below the minimum of 3, and the shelf is not empty
    assert found["EMPTY"].suggested == 2  # below the minimum, but the floor is out


def test_back_room_shortage_is_listed_as_back_room_short(
    org, store, floor, clock, new_run, product, manager
):
    a = product(sku="A")
    clock.set(local(2026, 6, 9, 9, 0))
    receive(org, store, a, 1, location="SF")
    baselines.baseline_upsert(
        org=org, store=store, location=floor, product=a, par_qty=D(6), actor=manager
    )
    clock.set(local(2026, 6, 9, 22, 0))
    run = new_run()
    line = by_sku(run)["A"]
    assert (line.status, line.exception_reason) == (LineStatus.EXCEPTION, "back_room_short")
    assert (line.suggested, line.exception_quantity, line.source_location_id) == (0, 5, None)
    runs.run_complete(org=org, run=run, actor=manager)  # a shortage needs no decision


def test_vault_is_not_a_source_unless_marked_and_expired_lots_are_not_available(
    org, store, floor, clock, new_run, product, manager
):
    vault = tenancy.location_create(
        org=org, store=store, code="V", name="Vault", kind=LocationKind.VAULT
    )
    a, b = product(sku="A", tracks_expiry=True), product(sku="B")
    clock.set(local(2026, 6, 1, 9, 0))
    receive(org, store, a, 5, location="BR", lot="OLD", expiry=datetime.date(2026, 6, 8))
    receive(org, store, a, 2, location="BR", lot="NEW", expiry=datetime.date(2026, 6, 9))
    receive(org, store, b, 9, location="V")
    for item in (a, b):
        baselines.baseline_upsert(
            org=org, store=store, location=floor, product=item, par_qty=D(4), actor=manager
        )
    clock.set(local(2026, 6, 9, 22, 0))
    found = by_sku(new_run())
    assert found["A"].back_room_available == 2  # OLD expired yesterday; NEW expires today
    assert found["B"].exception_reason == ExceptionReason.BACK_ROOM_SHORT
    tenancy.location_update(org=org, location=vault, changes={"upstock_source": True})
    clock.set(local(2026, 6, 9, 22, 5))
    found = by_sku(new_run())
    assert found["B"].suggested == 4
    assert found["B"].source_location_id == vault.pk


def test_lines_in_walking_order(org, store, floor, back, clock, new_run, product, manager):
    far = tenancy.location_create(
        org=org, store=store, code="BR2", name="Far back room", kind=LocationKind.BACK_ROOM,
        upstock_source=True, sort_order=90,
    )  # fmt: skip
    items = {
        "Z-near-edible": ("Edibles", "BR"),
        "A-far-flower": ("Flower", "BR2"),
        "B-near-flower": ("Flower", "BR"),
        "A-near-flower": ("Flower", "BR"),
    }
    clock.set(local(2026, 6, 9, 9, 0))
    for sku, (category, where) in items.items():
        item = product(sku=sku, category=category)
        receive(org, store, item, 3, location=where)
        baselines.baseline_upsert(
            org=org, store=store, location=floor, product=item, par_qty=D(2), actor=manager
        )
    clock.set(local(2026, 6, 9, 22, 0))
    run = new_run()
    assert [ln.product.sku for ln in selectors.run_lines(run)] == [
        "Z-near-edible", "A-near-flower", "B-near-flower", "A-far-flower",
    ]  # fmt: skip
    assert Location.objects.get(pk=far.pk).upstock_source


def test_run_category_filter(org, store, clock, new_run, product):
    a, b = product(sku="A", category="Flower"), product(sku="B", category="Edibles")
    clock.set(local(2026, 6, 9, 9, 0))
    for item in (a, b):
        receive(org, store, item, 5, location="SF")
        receive(org, store, item, 5, location="BR")
    sell(org, store, (a, 1), (b, 1))
    clock.set(local(2026, 6, 9, 22, 0))
    assert set(by_sku(new_run(category="Edibles"))) == {"B"}


def test_new_run_abandons_the_unfinished_one_and_does_not_pull_twice(
    org, store, clock, new_run, product, manager
):
    a, b = product(sku="A"), product(sku="B")
    clock.set(local(2026, 6, 9, 9, 0))
    for item in (a, b):
        receive(org, store, item, 10, location="SF")
        receive(org, store, item, 10, location="BR")
    sell(org, store, (a, 4), (b, 3))
    clock.set(local(2026, 6, 9, 22, 0))
    first = new_run()
    lines.line_done(org=org, line=by_sku(first)["A"], pulled=D(4), client_ref="p1", actor=manager)
    clock.set(local(2026, 6, 9, 22, 30))
    second = new_run()
    first.refresh_from_db()
    assert first.status == RunStatus.ABANDONED
    assert by_sku(first)["B"].status == LineStatus.PENDING
    again = by_sku(second)
    assert "A" not in again  # pulled by the abandoned run already
    assert again["B"].suggested == 3
    with pytest.raises(RunNotInProgress):
        lines.line_skip(org=org, line=by_sku(first)["B"], actor=manager)


def test_run_client_ref_answers_the_same_run(org, store, clock, new_run, product):
    clock.set(local(2026, 6, 9, 22, 0))
    first = new_run(client_ref="tablet-1")
    assert new_run(client_ref="tablet-1").pk == first.pk


def test_run_needs_a_sales_floor(org, store, back, manager):
    with pytest.raises(NotASalesFloor):
        runs.run_create(org=org, store=store, location=back, actor=manager)


def test_complete_needs_every_line_decided_and_summary(
    org, store, clock, new_run, product, manager
):
    a, b = product(sku="A"), product(sku="B")
    clock.set(local(2026, 6, 9, 9, 0))
    for item in (a, b):
        receive(org, store, item, 10, location="SF")
        receive(org, store, item, 10, location="BR")
    sell(org, store, (a, 4), (b, 3))
    clock.set(local(2026, 6, 9, 22, 0))
    run = new_run()
    found = by_sku(run)
    lines.line_done(org=org, line=found["A"], pulled=D(3), client_ref="x", actor=manager)
    with pytest.raises(LinesPending) as refused:
        runs.run_complete(org=org, run=run, actor=manager)
    assert refused.value.extra["pending"] == [found["B"].pk]
    lines.line_skip(org=org, line=found["B"], note="shelf full", actor=manager)
    runs.run_complete(org=org, run=run, actor=manager)
    summary = selectors.run_summary(run)
    assert summary["by_status"] == {"pending": 0, "done": 1, "skipped": 1, "exception": 0}
    assert (summary["suggested_total"], summary["pulled_total"]) == (7, 3)
    with pytest.raises(RunNotInProgress):
        runs.run_abandon(org=org, run=run, actor=manager)
    actions = set(AuditEvent.objects.filter(org=org).values_list("action", flat=True))
    assert {"upstock.run_created", "upstock.run_completed", "upstock.line_pulled"} <= actions


def test_run_abandon(org, store, clock, new_run, manager):
    clock.set(local(2026, 6, 9, 22, 0))
    run = runs.run_abandon(org=org, run=new_run(), actor=manager)
    assert run.status == RunStatus.ABANDONED and run.abandoned_at is not None


def test_nightly_job_run_has_no_person(org, store, floor, clock, product):
    clock.set(local(2026, 6, 9, 22, 0))
    run = runs.run_create(org=org, store=store, location=floor, actor=None, job="nightly_upstock")
    assert run.created_by is None and run.created_by_job == "nightly_upstock"


def test_unit_products_suggest_whole_units(org, store, floor, clock, new_run, product, manager):
    a = product(sku="A")
    clock.set(local(2026, 6, 9, 9, 0))
    receive(org, store, a, 10, location="BR")
    baselines.baseline_upsert(
        org=org, store=store, location=floor, category="Flower", par_qty=D("2.5"), actor=manager
    )
    clock.set(local(2026, 6, 9, 22, 0))
    assert by_sku(new_run())["A"].suggested == 2


def test_other_orgs_store_or_floor_is_refused(org, store, other_store, manager):
    with pytest.raises(ValidationFailed) as refused:
        runs.run_create(org=org, store=other_store, location=loc(other_store, "SF"), actor=manager)
    assert refused.value.code == "unknown_store"
    with pytest.raises(NotASalesFloor):
        runs.run_create(org=org, store=store, location=loc(other_store, "SF"), actor=manager)


def test_category_default_covers_only_products_the_store_carries(
    org, store, floor, clock, new_run, product, manager
):
    carried, elsewhere = product(sku="CARRIED"), product(sku="ELSEWHERE")
    clock.set(local(2026, 6, 9, 9, 0))
    receive(org, store, carried, 3, location="BR")
    baselines.baseline_upsert(
        org=org, store=store, location=floor, category="Flower", par_qty=D(2), actor=manager
    )
    clock.set(local(2026, 6, 9, 22, 0))
    found = by_sku(new_run())
    assert set(found) == {"CARRIED"}
    assert elsewhere.pk


def test_run_create_statements_do_not_grow_with_products(
    org, store, floor, clock, product, manager
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counted = []
    for size in (2, 20):
        clock.set(local(2026, 6, 9, 9, 0))
        items = [product(sku=f"N{size}-{n}") for n in range(size)]
        for item in items:
            receive(org, store, item, 3, location="BR")
        sell_items = [(item, 1) for item in items]
        receive(org, store, items[0], 50, location="SF")
        sell(org, store, *sell_items[:1])
        baselines.baseline_upsert(
            org=org, store=store, location=floor, category="Flower", par_qty=D(2), actor=manager
        )
        clock.set(local(2026, 6, 9, 22, size))
        with CaptureQueriesContext(connection) as captured:
            run = runs.run_create(org=org, store=store, location=floor, actor=manager)
        counted.append(len(captured))
        assert selectors.run_lines(run).count() >= size - 1  # the first is above par
        runs.run_abandon(org=org, run=run, actor=manager)
    assert counted[0] == counted[1]
