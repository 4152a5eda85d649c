"""Counts must never book one shrink twice, leave phantom sellable units, or lose a shortage.

Each test here failed before its fix (issue #8, items 1–3).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from counts.models import CountPass, SessionStatus, VarianceRow
from counts.services import passes as P
from counts.services import sessions as S
from inventory.models import (
    NegativeStockMode,
    RefType,
    ShortfallOutcome,
    StockLedger,
    StockQuant,
    StockShortfall,
)
from inventory.stock import documents
from inventory.tenancy.scope import resolve_tenant
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, ref, sell

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


def start(org, store, people, scope="FULL_STORE", **kw):
    session = S.session_create(org=org, store=store, scope=scope, actor=people["manager"], **kw)
    return S.session_start(org=org, session=session, actor=people["manager"])


def count(org, session, store, people, product, quantity, *, code="SF", minute=5):
    """One pass of ``code`` counting ``quantity`` of ``product``, submitted."""
    count_pass = P.pass_create(
        org=org, session=session, location=loc(store, code), actor=people["clerk"]
    )
    CountPass.objects.filter(pk=count_pass.pk).update(started_at=T0)
    P.lines_add(
        org=org,
        count_pass=count_pass,
        actor=people["clerk"],
        entries=[P.Entry(product, D(quantity), captured_at=at(minute))],
    )
    P.pass_submit(org=org, count_pass=count_pass, actor=people["clerk"])
    return count_pass


def reconcile(org, session, people):
    S.session_submit(org=org, session=session, actor=people["manager"])
    return S.session_reconcile(org=org, session=session, actor=people["manager"])


def approve_all(org, session, people, mode="keep_difference"):
    tenant = resolve_tenant(people["admin"], org_id=org.pk)
    for row in VarianceRow.objects.filter(session=session, status="pending"):
        S.variance_decide(
            org=org, row=row, approve=True, mode=mode, tenant=tenant, actor=people["admin"]
        )


def finalize(org, session, people):
    return S.session_finalize(org=org, session=session, actor=people["admin"])


def sellable(product, store) -> Decimal:
    """What a sale could take: positive quants at sellable rooms."""
    return sum(
        (
            q.quantity
            for q in StockQuant.objects.filter(
                product=product, store=store, location__sellable=True, quantity__gt=0
            )
        ),
        D(0),
    )


# --- 1. a reconciled session still holds its scope ---------------------------------------------


def test_a_reconciled_full_count_blocks_a_second_full_count(org, store, people):
    product = ProductFactory(org=org, sku="SHRINK")
    receive(org, store, product, 10, occurred_at=at(-60))
    first = start(org, store, people)
    count(org, first, store, people, product, 5)
    reconcile(org, first, people)

    second = S.session_create(org=org, store=store, scope="FULL_STORE", actor=people["manager"])
    with pytest.raises(Exception) as error:
        S.session_start(org=org, session=second, actor=people["manager"])
    assert error.value.code == "full_count_active"

    approve_all(org, first, people)
    finalize(org, first, people)
    assert on_hand(product) == 5
    # closed: the store may be counted again
    S.session_start(org=org, session=second, actor=people["manager"])


def test_a_reconciled_zone_count_blocks_an_overlapping_pass(org, store, people):
    product = ProductFactory(org=org, sku="ZONE")
    receive(org, store, product, 10, occurred_at=at(-60))
    zone = start(org, store, people, scope="ZONE", scope_locations=[loc(store, "SF")])
    count(org, zone, store, people, product, 5)
    reconcile(org, zone, people)

    other = start(org, store, people, scope="ZONE", scope_locations=[loc(store, "SF")])
    with pytest.raises(Exception) as error:
        P.pass_create(org=org, session=other, location=loc(store, "SF"), actor=people["clerk"])
    assert error.value.code == "scope_in_use"


def test_a_draft_holds_nothing_and_a_cancelled_count_frees_the_store(org, store, people):
    S.session_create(org=org, store=store, scope="FULL_STORE", actor=people["manager"])
    first = start(org, store, people)  # a forgotten draft does not stand in the way
    product = ProductFactory(org=org, sku="CANCEL")
    receive(org, store, product, 4, occurred_at=at(-60))
    count(org, first, store, people, product, 4)
    reconcile(org, first, people)
    S.session_cancel(org=org, session=first, actor=people["manager"])
    second = start(org, store, people)
    assert second.status == SessionStatus.IN_PROGRESS


# --- 2. a count settles the unallocated batch at the counted location --------------------------


@pytest.fixture
def negative_org(org):
    org.negative_stock_mode = NegativeStockMode.RECORD
    org.save(update_fields=["negative_stock_mode"])
    return org


def test_counting_an_empty_shelf_leaves_nothing_sellable(negative_org, store, people):
    org = negative_org
    product = ProductFactory(org=org, sku="EMPTY")
    sell(org, store, (product, 2), occurred_at=at(-30))  # none on hand: booked to unallocated
    assert on_hand(product) == -2
    session = start(org, store, people)
    count(org, session, store, people, product, 0)
    reconcile(org, session, people)
    approve_all(org, session, people)
    finalize(org, session, people)

    assert on_hand(product) == 0
    assert sellable(product, store) == 0
    assert not StockQuant.objects.filter(product=product).exclude(quantity=0).exists()
    assert_invariants()


def _ordinary_and_debt(org, store, product, ordinary, debt, *, minute):
    """Ordinary stock ``ordinary`` and an unallocated quant of ``-debt`` at the sales floor.

    The ordinary stock is received in the back room first (a receipt would settle the debt),
    the floor sells ``debt`` it does not have, then the stock is moved onto the floor (a move
    settles nothing)."""
    receive(org, store, product, ordinary, location="BR", occurred_at=at(minute))
    sell(org, store, (product, debt), occurred_at=at(minute + 1))
    documents.move_record(
        org=org,
        store=store,
        client_ref=ref("mv"),
        occurred_at=at(minute + 2),
        lines=[documents.MoveLineInput(product, loc(store, "BR"), loc(store, "SF"), D(ordinary))],
    )


def _floor(product, store) -> dict[bool, Decimal]:
    return {
        q.batch.is_unallocated: q.quantity
        for q in StockQuant.objects.filter(
            product=product, location=loc(store, "SF")
        ).select_related("batch")
        if q.quantity
    }


def test_variance_zero_with_debt_moves_the_debt_onto_the_counted_stock(negative_org, store, people):
    org = negative_org
    product = ProductFactory(org=org, sku="SETTLE")
    _ordinary_and_debt(org, store, product, 5, 2, minute=-60)
    assert _floor(product, store) == {False: D(5), True: D(-2)}
    session = start(org, store, people)
    count(org, session, store, people, product, 3)  # 5 - 2 = 3 expected, 3 counted
    reconcile(org, session, people)
    row = VarianceRow.objects.get(session=session, location=loc(store, "SF"), product=product)
    assert row.variance == 0
    finalize(org, session, people)

    assert _floor(product, store) == {False: D(3)}
    assert sellable(product, store) == 3
    settle = StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE, product=product)
    assert sorted(r.qty_delta for r in settle) == [-2, 2]
    assert_invariants()


@pytest.mark.parametrize("mode", ["keep_difference", "set_counted"])
def test_shrink_with_debt_ends_at_the_counted_quantity(negative_org, store, people, mode):
    org = negative_org
    product = ProductFactory(org=org, sku=f"SHRINK-{mode}")
    _ordinary_and_debt(org, store, product, 5, 2, minute=-60)
    session = start(org, store, people)
    count(org, session, store, people, product, 1)  # expected 3, counted 1
    reconcile(org, session, people)
    approve_all(org, session, people, mode=mode)
    finalize(org, session, people)
    assert _floor(product, store) == {False: D(1)}
    assert_invariants()


def test_a_count_settles_only_the_counted_location(negative_org, store, people):
    org = negative_org
    product = ProductFactory(org=org, sku="ELSEWHERE")
    sell(org, store, (product, 2), occurred_at=at(-30))  # debt at SF
    session = start(org, store, people, scope="ZONE", scope_locations=[loc(store, "BR")])
    count(org, session, store, people, product, 4, code="BR")
    reconcile(org, session, people)
    approve_all(org, session, people)
    finalize(org, session, people)
    assert _floor(product, store) == {True: D(-2)}  # the floor was not counted
    assert on_hand(product, loc(store, "BR")) == 4
    assert_invariants()


# --- 3. a clamped shortage is recorded, not lost -----------------------------------------------


def _clamped_count(org, store, people):
    """Count 2 of 10 (8 short), then sell 5 before finalising: only 5 can still go."""
    product = ProductFactory(org=org, sku="CLAMP")
    receive(org, store, product, 10, occurred_at=at(-60))
    session = start(org, store, people)
    count(org, session, store, people, product, 2)
    reconcile(org, session, people)
    sell(org, store, (product, 5))
    approve_all(org, session, people)
    finalize(org, session, people)
    return session, product


def test_the_part_of_a_shortage_that_cannot_post_is_a_clamped_shortfall(org, store, people):
    session, product = _clamped_count(org, store, people)
    assert on_hand(product) == 0
    row = VarianceRow.objects.get(session=session)
    assert (row.variance, row.posted_quantity, row.unposted_quantity) == (-8, -5, -3)
    shortfall = StockShortfall.objects.get(outcome=ShortfallOutcome.CLAMPED)
    assert (shortfall.requested, shortfall.available) == (8, 5)
    assert shortfall.ref_type == RefType.COUNT_RECONCILE
    assert shortfall.ref_id == session.pk
    assert shortfall.location_id == loc(store, "SF").pk
    assert shortfall.product_id == product.pk
    assert_invariants()


def test_shortfalls_api_lists_clamped_rows_for_managers(org, store, people, client_for):
    session, product = _clamped_count(org, store, people)
    manager = client_for("manager")
    body = manager.get("/api/v1/stock/shortfalls?outcome=clamped").json()
    assert [
        (r["product"], r["requested"], r["available"], r["missing"], r["ref_type"], r["ref_id"])
        for r in body["results"]
    ] == [(product.pk, "8.0000", "5.0000", "3.0000", "COUNT_RECONCILE", session.pk)]
    assert manager.get("/api/v1/stock/shortfalls?outcome=blocked").json()["results"] == []
    assert manager.get(f"/api/v1/stock/shortfalls?product={product.pk}").json()["count"] == 1
    variance = manager.get(f"/api/v1/counts/sessions/{session.pk}/variance").json()
    assert variance["rows"][0]["unposted_quantity"] == "-3.0000"


@pytest.mark.parametrize(
    "role,status", [("viewer", 403), ("operator", 403), ("manager", 200), ("admin", 200)]
)
def test_shortfalls_api_roles(client_for, role, status):
    assert client_for(role).get("/api/v1/stock/shortfalls").status_code == status


def test_shortfalls_api_another_orgs_store_and_bad_filters(
    org, store, other_org, other_store, people, client_for
):
    _clamped_count(org, store, people)
    theirs = client_for("manager", organisation=other_org)
    assert theirs.get("/api/v1/stock/shortfalls").json()["results"] == []
    mine = client_for("manager")
    response = mine.get(f"/api/v1/stock/shortfalls?store={other_store.pk}")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    limited = client_for("manager", stores=[StoreFactory(org=org, code="S2")])
    assert limited.get("/api/v1/stock/shortfalls").json()["results"] == []
    for query, field in (
        ("outcome=lost", "outcome"),
        ("product=abc", "product"),
        ("occurred_from=yesterday", "occurred_from"),
    ):
        response = mine.get(f"/api/v1/stock/shortfalls?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["fields"]
