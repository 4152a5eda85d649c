"""Movement-aware variance: the numbers a count must get right."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from counts.models import CountPass, SessionStatus, VarianceRow
from counts.selectors import variance_compute
from counts.services import passes as P
from counts.services import sessions as S
from inventory.models import Location, RefType, StockLedger
from tests.factories import MembershipFactory, ProductFactory
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, sell

D = Decimal
T0 = timezone.now() - datetime.timedelta(hours=3)


def at(minutes: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


@pytest.fixture
def people(org):
    return {
        "manager": MembershipFactory(org=org, role="manager").user,
        "admin": MembershipFactory(org=org, role="admin").user,
        "clerk": MembershipFactory(org=org, role="operator").user,
    }


@pytest.fixture
def session(org, store, people):
    s = S.session_create(org=org, store=store, scope="FULL_STORE", actor=people["manager"])
    return S.session_start(org=org, session=s, actor=people["manager"])


def open_pass(org, session, store, people, code="SF", **kw):
    count_pass = P.pass_create(
        org=org, session=session, location=loc(store, code), actor=people["clerk"], **kw
    )
    CountPass.objects.filter(pk=count_pass.pk).update(started_at=T0)
    count_pass.refresh_from_db()
    return count_pass


def scan(org, count_pass, people, product, quantity, minute, lot=""):
    P.lines_add(
        org=org,
        count_pass=count_pass,
        actor=people["clerk"],
        entries=[P.Entry(product, D(quantity), lot_code=lot, captured_at=at(minute))],
    )


def items_by_product(session):
    return {(i.location_id, i.product_id): i for i in variance_compute(session)}


def test_sales_during_a_pass_are_not_variance(org, store, session, people):
    gummies = ProductFactory(org=org, sku="G")
    receive(org, store, gummies, 10, occurred_at=at(-60))
    count_pass = open_pass(org, session, store, people)
    scan(org, count_pass, people, gummies, 10, minute=5)  # counted 10 at minute 5
    sell(org, store, (gummies, 3), occurred_at=at(20))  # sold while counting
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    item = items_by_product(session)[(loc(store, "SF").pk, gummies.pk)]
    assert (item.expected, item.counted, item.variance) == (10, 10, 0)


def test_a_sale_before_the_scan_counts_and_real_shrink_shows(org, store, session, people):
    flower = ProductFactory(org=org, sku="F")
    receive(org, store, flower, 10, occurred_at=at(-60))
    count_pass = open_pass(org, session, store, people)
    sell(org, store, (flower, 2), occurred_at=at(1))  # before the clerk reached it
    scan(org, count_pass, people, flower, 7, minute=10)  # 8 expected, 7 there: 1 missing
    sell(org, store, (flower, 1), occurred_at=at(30))
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    item = items_by_product(session)[(loc(store, "SF").pk, flower.pk)]
    assert (item.expected, item.counted, item.variance) == (8, 7, -1)


def test_a_sale_between_two_passes_of_one_session(org, store, session, people):
    product = ProductFactory(org=org, sku="P")
    receive(org, store, product, 5, occurred_at=at(-60))
    receive(org, store, product, 5, location="BR", occurred_at=at(-60))
    front = open_pass(org, session, store, people, "SF")
    scan(org, front, people, product, 5, minute=2)
    P.pass_submit(org=org, count_pass=front, actor=people["clerk"])
    sell(org, store, (product, 2), occurred_at=at(15))  # after SF, before BR was counted
    back = open_pass(org, session, store, people, "BR")
    scan(org, back, people, product, 5, minute=30)
    P.pass_submit(org=org, count_pass=back, actor=people["clerk"])
    items = items_by_product(session)
    assert items[(loc(store, "SF").pk, product.pk)].variance == 0
    assert items[(loc(store, "BR").pk, product.pk)].variance == 0


def test_uncounted_in_scope_items_count_as_zero_and_out_of_scope_are_excluded(org, store, people):
    edible = ProductFactory(org=org, sku="E", classification="Edibles")
    vape = ProductFactory(org=org, sku="V", classification="Vapes")
    other_edible = ProductFactory(org=org, sku="E2", classification="Edibles")
    for p in (edible, vape, other_edible):
        receive(org, store, p, 4, occurred_at=at(-60))
    session = S.session_start(
        org=org,
        actor=people["manager"],
        session=S.session_create(
            org=org,
            store=store,
            scope="ZONE",
            scope_categories=[{"category": "Edibles"}],
            actor=people["manager"],
        ),
    )
    count_pass = open_pass(org, session, store, people, "SF", category="Edibles")
    scan(org, count_pass, people, edible, 4, minute=3)
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    items = items_by_product(session)
    sf = loc(store, "SF").pk
    assert (sf, vape.pk) not in items  # outside the scope
    assert (items[(sf, other_edible.pk)].counted, items[(sf, other_edible.pk)].expected) == (0, 4)
    assert items[(sf, edible.pk)].variance == 0


def test_a_recount_supersedes_the_earlier_pass_for_what_it_counts(org, store, session, people):
    a, b = ProductFactory(org=org, sku="A"), ProductFactory(org=org, sku="B")
    receive(org, store, a, 6, occurred_at=at(-60))
    receive(org, store, b, 6, occurred_at=at(-60))
    first = open_pass(org, session, store, people)
    scan(org, first, people, a, 4, minute=1)
    scan(org, first, people, b, 6, minute=2)
    P.pass_submit(org=org, count_pass=first, actor=people["clerk"])
    recount = open_pass(org, session, store, people, recount_of=first)
    scan(org, recount, people, a, 6, minute=20)
    P.pass_submit(org=org, count_pass=recount, actor=people["clerk"])
    items = items_by_product(session)
    sf = loc(store, "SF").pk
    assert items[(sf, a.pk)].counted == 6  # the recount replaced 4
    assert items[(sf, b.pk)].counted == 6  # b kept from the first pass


def test_repeat_scans_add_up_and_replays_do_nothing(org, store, session, people):
    product = ProductFactory(org=org, sku="R")
    count_pass = open_pass(org, session, store, people)
    for client_id in ("t1-1", "t1-2", "t1-2", "t1-3"):
        P.lines_add(
            org=org,
            count_pass=count_pass,
            actor=people["clerk"],
            entries=[P.Entry(product, D(1), client_line_id=client_id)],
        )
    line = count_pass.lines.get()
    assert line.quantity == 3
    assert count_pass.scans.count() == 3


def test_lines_are_refused_after_submit(org, store, session, people):
    product = ProductFactory(org=org, sku="S")
    count_pass = open_pass(org, session, store, people)
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    with pytest.raises(Exception) as error:
        scan(org, count_pass, people, product, 1, minute=1)
    assert error.value.code == "pass_not_open"


def test_finalise_makes_quants_equal_counted_and_ledger_equal_quants(org, store, session, people):
    a = ProductFactory(org=org, sku="A", tracks_expiry=True)
    b = ProductFactory(org=org, sku="B")
    receive(
        org,
        store,
        a,
        5,
        lot="A-OLD",
        expiry=timezone.localdate() + datetime.timedelta(days=3),
        occurred_at=at(-60),
    )
    receive(
        org,
        store,
        a,
        5,
        lot="A-NEW",
        expiry=timezone.localdate() + datetime.timedelta(days=30),
        occurred_at=at(-50),
    )
    receive(org, store, b, 2, occurred_at=at(-60))
    count_pass = open_pass(org, session, store, people)
    scan(org, count_pass, people, a, 7, minute=3)  # 3 short: earliest expiry goes first
    scan(org, count_pass, people, b, 5, minute=4)  # 3 over: to the newest batch there
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    S.session_submit(org=org, session=session, actor=people["manager"])
    S.session_reconcile(org=org, session=session, actor=people["manager"])
    for row in VarianceRow.objects.filter(session=session, status="pending"):
        S.variance_decide(
            org=org,
            row=row,
            approve=True,
            tenant=_tenant(org, people["admin"]),
            actor=people["admin"],
        )
    S.session_finalize(org=org, session=session, actor=people["manager"])
    assert on_hand(a) == 7 and on_hand(b) == 5
    lots = {q.batch.lot_code: q.quantity for q in a.quants.select_related("batch")}
    assert lots == {"A-OLD": 2, "A-NEW": 5}
    rows = StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count()
    S.session_finalize(org=org, session=session, actor=people["manager"])  # twice
    assert StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count() == rows
    session.refresh_from_db()
    assert session.status == SessionStatus.CLOSED
    assert_invariants()


def _tenant(org, user):
    from inventory.tenancy.scope import resolve_tenant

    return resolve_tenant(user, org_id=org.pk)


def test_reconciler_cannot_approve_and_pending_rows_block_finalise(org, store, session, people):
    product = ProductFactory(org=org, sku="X")
    receive(org, store, product, 50, occurred_at=at(-60))
    count_pass = open_pass(org, session, store, people)
    scan(org, count_pass, people, product, 40, minute=3)
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    S.session_submit(org=org, session=session, actor=people["manager"])
    S.session_reconcile(org=org, session=session, actor=people["manager"])
    row = VarianceRow.objects.get(session=session)
    assert row.status == "pending"
    with pytest.raises(Exception) as error:
        S.session_finalize(org=org, session=session, actor=people["manager"])
    assert error.value.code == "approval_required"
    with pytest.raises(Exception) as error:
        S.variance_decide(
            org=org,
            row=row,
            approve=True,
            actor=people["manager"],
            tenant=_tenant(org, people["manager"]),
        )
    assert error.value.code == "self_approval"


def test_set_to_counted_mode_uses_the_balance_at_finalise(org, store, session, people):
    product = ProductFactory(org=org, sku="M")
    receive(org, store, product, 10, occurred_at=at(-60))
    count_pass = open_pass(org, session, store, people)
    scan(org, count_pass, people, product, 6, minute=3)
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    S.session_submit(org=org, session=session, actor=people["manager"])
    S.session_reconcile(org=org, session=session, actor=people["manager"])
    sell(org, store, (product, 1))  # after the count, before finalising
    row = VarianceRow.objects.get(session=session)
    S.variance_decide(
        org=org,
        row=row,
        approve=True,
        mode="set_counted",
        actor=people["admin"],
        tenant=_tenant(org, people["admin"]),
    )
    S.session_finalize(org=org, session=session, actor=people["admin"])
    assert on_hand(product) == 6
    assert_invariants()


def test_one_active_full_store_count_per_store(org, store, session, people):
    second = S.session_create(org=org, store=store, scope="FULL_STORE", actor=people["manager"])
    with pytest.raises(Exception) as error:
        S.session_start(org=org, session=second, actor=people["manager"])
    assert error.value.code == "full_count_active"


def test_overlapping_pass_of_another_session_is_refused(org, store, session, people):
    zone = S.session_start(
        org=org,
        actor=people["manager"],
        session=S.session_create(
            org=org,
            store=store,
            scope="ZONE",
            scope_locations=[loc(store, "SF")],
            actor=people["manager"],
        ),
    )
    open_pass(org, session, store, people, "SF")
    with pytest.raises(Exception) as error:
        P.pass_create(org=org, session=zone, location=loc(store, "SF"), actor=people["clerk"])
    assert error.value.code == "scope_in_use"
    assert Location.objects.filter(store=store).count() == 2
