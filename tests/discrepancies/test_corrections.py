"""Ad-hoc corrections (``/stock/adjustments``, ``/stock/write-offs``) are requests: within policy
they post at once and are recorded ADJUSTED; above it nothing moves until another person
approves (202), and approval posts each line exactly once.

Without a policy an organisation allows 1 unit or 2% (the larger); a drop of a product's stock
at a store by more than 20% is never within policy.
"""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from discrepancies.models import (
    CorrectionRequest,
    CorrectionStatus,
    Discrepancy,
    DocumentType,
    Kind,
    Severity,
    Source,
    Status,
)
from discrepancies.services.corrections import correction_request
from discrepancies.services.decisions import Decision, discrepancies_decide, discrepancy_decide
from inventory.models import (
    DocumentKind,
    RefType,
    Role,
    ShortfallOutcome,
    StockDocument,
    StockLedger,
    StockQuant,
    StockShortfall,
)
from inventory.stock import documents
from inventory.tenancy.scope import resolve_tenant, tenant_scope
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    StoreFactory,
    VariancePolicyFactory,
)
from tests.response_schema import AnswerChecker
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, ref


def days_from_today(n: int) -> datetime.date:
    """A date n days from the store's today (the test stores are in UTC)."""
    return timezone.now().date() + datetime.timedelta(days=n)


D = Decimal
ADJUSTMENTS = "/api/v1/stock/adjustments"
WRITE_OFFS = "/api/v1/stock/write-offs"


@pytest.fixture(scope="module")
def checker(django_db_blocker):
    with django_db_blocker.unblock():
        return AnswerChecker.served()


@pytest.fixture
def gum(org):
    return ProductFactory(org=org, sku="GUM", unit="each", default_cost=D("2"), category="Edibles")


@pytest.fixture
def sf(store):
    return loc(store, "SF")


@pytest.fixture
def br(store):
    return loc(store, "BR")


@pytest.fixture
def stocked(org, store, gum):
    """100 gummies on the sales floor, lot A at 2.50."""
    receive(org, store, gum, 100, lot="A", cost="2.5")
    return gum


@pytest.fixture
def manager(client_for):
    return client_for(Role.MANAGER)


@pytest.fixture
def boss(client_for):
    """A second person who may approve (an admin: any size)."""
    return client_for(Role.ADMIN)


def line(product, location, quantity, **extra) -> dict:
    return {"product": product.pk, "location": location.pk, "quantity": str(quantity), **extra}


def adjust(client, store, *lines, client_ref=None, reason="count: missing", **extra):
    body = {
        "store": store.pk,
        "client_ref": client_ref or ref("adj"),
        "reason": reason,
        "lines": list(lines),
        **extra,
    }
    return client.post(ADJUSTMENTS, body, format="json")


def write_off(client, store, kind, *lines, client_ref=None, reason="dropped a box"):
    body = {
        "store": store.pk,
        "client_ref": client_ref or ref("wo"),
        "type": kind,
        "reason": reason,
        "lines": list(lines),
    }
    return client.post(WRITE_OFFS, body, format="json")


def approve(client, pk, notes=""):
    return client.post(f"/api/v1/discrepancies/{pk}/approve", {"notes": notes}, format="json")


def reject(client, pk, notes=""):
    return client.post(f"/api/v1/discrepancies/{pk}/reject", {"notes": notes}, format="json")


def stock_state():
    """Every ledger row and quant: what a correction that moves nothing leaves alone."""
    return (
        list(StockLedger.objects.order_by("id").values_list("id", flat=True)),
        sorted(StockQuant.objects.values_list("id", "quantity")),
    )


def corrections():
    """Adjustments and write-offs posted (receipts build the tests' stock)."""
    return StockDocument.objects.exclude(kind=DocumentKind.RECEIPT)


def written():
    return (
        CorrectionRequest.objects.count(),
        Discrepancy.objects.count(),
        corrections().count(),
    )


# --- within policy: posted at once, recorded ADJUSTED -------------------------------------------


def test_within_policy_posts_at_once_and_is_recorded_adjusted(
    org, store, stocked, sf, manager, checker
):
    response = adjust(manager, store, line(stocked, sf, -2), client_ref="fix-1", type="THEFT")
    assert response.status_code == 201, response.content
    body = checker.check(response, "/api/v1/stock/adjustments/")
    assert set(body) >= {"id", "kind", "rows"} and "status" not in body  # the document, as ever
    assert [(r["ref_type"], r["quantity"]) for r in body["rows"]] == [("ADJUSTMENT", "-2.0000")]
    assert on_hand(stocked) == 98
    request = CorrectionRequest.objects.get()
    assert (request.status, request.document_id, request.client_ref) == (
        CorrectionStatus.POSTED,
        body["id"],
        "fix-1",
    )
    d = Discrepancy.objects.get()
    assert (d.source, d.kind, d.status, d.within_policy, d.corrective) == (
        Source.AD_HOC,
        Kind.THEFT,
        Status.ADJUSTED,
        True,
        True,
    )
    assert (d.expected, d.actual, d.variance) == (D(100), D(98), D(-2))
    # no lot named: the product's default cost (a named lot's would be its own)
    assert (d.unit_cost, d.value, d.store_on_hand) == (D("2"), D("-4"), D(100))
    assert (d.document_type, d.document_id, d.document_line) == (
        DocumentType.CORRECTION,
        request.pk,
        1,
    )
    assert (d.ledger_ref_type, d.ledger_ref_id, d.ledger_ref_line) == ("ADJUSTMENT", body["id"], 1)
    assert d.posted_quantity == -2 and d.created_by == manager.user
    rows = StockLedger.objects.filter(ref_type="ADJUSTMENT", ref_id=d.ledger_ref_id, ref_line=1)
    assert [r.qty_delta for r in rows] == [D(-2)]
    assert_invariants()


def test_an_adjustment_is_of_type_other_unless_it_says(org, store, stocked, sf, manager):
    assert adjust(manager, store, line(stocked, sf, 1)).status_code == 201
    assert Discrepancy.objects.get().kind == Kind.OTHER
    refused = adjust(manager, store, line(stocked, sf, 1), type="EXPIRY")
    assert refused.status_code == 400 and list(refused.json()["fields"]) == ["type"]


@pytest.mark.parametrize(
    "kind,ref_type,discrepancy_type",
    [("damage", "DAMAGE", Kind.DAMAGE), ("waste", "WASTE", Kind.OTHER)],
)
def test_a_write_off_within_policy_posts_with_its_type(
    org, store, stocked, sf, manager, kind, ref_type, discrepancy_type
):
    response = write_off(manager, store, kind, line(stocked, sf, 1, lot_code="A"))
    assert response.status_code == 201, response.content
    assert [(r["ref_type"], r["quantity"]) for r in response.json()["rows"]] == [
        (ref_type, "-1.0000")
    ]
    d = Discrepancy.objects.get()
    assert (d.kind, d.status, d.ledger_ref_type, d.posted_quantity) == (
        discrepancy_type,
        Status.ADJUSTED,
        ref_type,
        D(-1),
    )
    # the named lot's quant and cost
    assert (d.batch.lot_code, d.expected, d.unit_cost, d.value) == (
        "A",
        D(100),
        D("2.5"),
        D("-2.5"),
    )
    assert_invariants()


def test_a_manager_within_policy_but_above_the_threshold_waits_for_an_admin(
    org, store, gum, sf, manager, boss
):
    VariancePolicyFactory(org=org, category="Edibles", units=1000, percent=100)
    org.escalation_threshold = D("50")
    org.save(update_fields=["escalation_threshold"])
    receive(org, store, gum, 1000, lot="A", cost="1")
    pending = adjust(manager, store, line(gum, sf, -100))  # 10%: within, but 100 at cost
    assert pending.status_code == 202, pending.content
    assert pending.json()["discrepancy"]["within_policy"] is True
    assert pending.json()["discrepancy"]["escalated"] is True
    assert on_hand(gum) == 1000
    assert adjust(boss, store, line(gum, sf, -100)).status_code == 201
    assert on_hand(gum) == 900
    assert_invariants()


# --- above policy: nothing moves until another person approves ----------------------------------


def test_above_policy_moves_nothing_and_answers_pending(org, store, stocked, sf, manager, checker):
    before = stock_state()
    response = adjust(manager, store, line(stocked, sf, -5), client_ref="big-1")
    assert response.status_code == 202, response.content
    body = checker.check(response, "/api/v1/stock/adjustments/")
    assert stock_state() == before and on_hand(stocked) == 100
    assert not corrections().exists()
    request = CorrectionRequest.objects.get()
    assert request.status == CorrectionStatus.PENDING and request.document_id is None
    d = Discrepancy.objects.get()
    assert body["status"] == "pending_approval"
    assert body["request"]["id"] == request.pk and body["request"]["status"] == "pending"
    assert body["request"]["lines"] == [
        {
            "line": 1,
            "product": stocked.pk,
            "location": sf.pk,
            "batch": None,
            "quantity": "-5.0000",
            "lot_code": "",
            "expiry_date": None,
            "unit_cost": None,
        }
    ]
    assert body["discrepancy"]["id"] == d.pk and [x["id"] for x in body["discrepancies"]] == [d.pk]
    assert (d.status, d.source, d.within_policy, d.severity) == (
        Status.NEW,
        Source.AD_HOC,
        False,
        Severity.MEDIUM,  # 5 of an allowance of 2 (2% of 100): 2.5×
    )
    assert (d.document_type, d.document_id, d.document_line) == (
        DocumentType.CORRECTION,
        request.pk,
        1,
    )
    assert d.created_by == manager.user and d.ledger_ref_id is None
    assert_invariants()


def test_approval_posts_the_line_once_and_replays_answer_the_same(
    org, store, stocked, sf, manager, boss, client_for, checker
):
    first = adjust(manager, store, line(stocked, sf, -5), client_ref="big-2")
    replay = adjust(manager, store, line(stocked, sf, -5), client_ref="big-2")
    assert (first.status_code, replay.status_code) == (202, 202)
    assert replay.content == first.content  # nothing changed meanwhile: the same bytes
    d = Discrepancy.objects.get()

    approved = approve(boss, d.pk)
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "ADJUSTED"
    assert on_hand(stocked, sf) == 95
    document = corrections().get()
    assert (document.kind, document.client_ref, document.source, document.reason) == (
        DocumentKind.ADJUSTMENT,
        f"discrepancy-{d.pk}",
        "approval",
        "count: missing",
    )
    d.refresh_from_db()
    assert (d.status, d.decided_by, d.ledger_ref_type, d.ledger_ref_id, d.ledger_ref_line) == (
        Status.ADJUSTED,
        boss.user,
        "ADJUSTMENT",
        document.pk,
        1,
    )
    assert d.posted_quantity == -5
    rows = StockLedger.objects.filter(ref_type="ADJUSTMENT", ref_id=document.pk)
    assert [(r.qty_delta, r.user_id, r.reason) for r in rows] == [
        (D(-5), boss.user.pk, "count: missing")
    ]
    assert CorrectionRequest.objects.get().status == CorrectionStatus.DECIDED

    # approving again (the same person, another) and replaying the request post nothing more
    assert approve(boss, d.pk).status_code == 200
    again = approve(client_for(Role.ADMIN), d.pk)
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    later = adjust(manager, store, line(stocked, sf, -5), client_ref="big-2")
    assert later.status_code == 202
    body = checker.check(later, "/api/v1/stock/adjustments/")
    assert body["request"]["status"] == "decided"
    assert body["discrepancy"]["status"] == "ADJUSTED"
    assert body["request"] == {**first.json()["request"], "status": "decided"}
    assert corrections().count() == 1 and on_hand(stocked) == 95
    assert_invariants()


def test_reject_posts_nothing(org, store, stocked, sf, manager, boss):
    adjust(manager, store, line(stocked, sf, -5))
    d = Discrepancy.objects.get()
    before = stock_state()
    response = reject(boss, d.pk, notes="found them in the back")
    assert response.status_code == 200, response.content
    d.refresh_from_db()
    assert d.status == Status.REJECTED and d.ledger_ref_id is None
    assert stock_state() == before and not corrections().exists()
    assert CorrectionRequest.objects.get().status == CorrectionStatus.DECIDED
    assert approve(boss, d.pk).status_code == 409  # a rejected one is closed
    assert stock_state() == before
    assert_invariants()


def test_a_request_is_decided_when_its_last_line_is(org, store, stocked, flower, sf, manager, boss):
    receive(org, store, flower, 50, cost="4")
    response = adjust(
        manager,
        store,
        line(stocked, sf, -1),  # within policy
        line(flower, sf, "-10"),  # 20%: 10 of an allowance of 1: HIGH
    )
    assert response.status_code == 202
    body = response.json()
    by_line = {x["document"]["line"]: x for x in body["discrepancies"]}
    assert body["discrepancy"]["id"] == by_line[2]["id"]  # the most severe
    assert by_line[2]["severity"] == "HIGH" and by_line[1]["severity"] == "LOW"
    assert on_hand(stocked) == 100 and on_hand(flower) == 50  # nothing moved, not even line 1
    assert approve(boss, by_line[1]["id"]).status_code == 200
    assert on_hand(stocked) == 99
    assert CorrectionRequest.objects.get().status == CorrectionStatus.PENDING
    assert reject(boss, by_line[2]["id"]).status_code == 200
    assert CorrectionRequest.objects.get().status == CorrectionStatus.DECIDED
    assert on_hand(flower) == 50
    assert_invariants()


@pytest.fixture
def flower(org):
    return ProductFactory(org=org, sku="FLOWER", unit="g", default_cost=D("4"))


def test_a_write_off_above_policy_waits_and_approval_posts_its_type(
    org, store, stocked, sf, manager, boss
):
    response = write_off(manager, store, "damage", line(stocked, sf, 30))
    assert response.status_code == 202, response.content
    d = Discrepancy.objects.get()
    assert (d.kind, d.variance, d.severity) == (Kind.DAMAGE, D(-30), Severity.CRITICAL)
    assert on_hand(stocked) == 100
    assert approve(boss, d.pk).status_code == 200
    document = corrections().get()
    assert (document.kind, document.write_off_type) == (DocumentKind.WRITE_OFF, "damage")
    assert [r.ref_type for r in StockLedger.objects.filter(ref_id=document.pk)] == ["DAMAGE"]
    assert on_hand(stocked) == 70
    assert_invariants()


def test_an_expiry_write_off_of_expired_lots_posts_and_above_policy_waits_to_be_acknowledged(
    org, store, gum, sf, manager, boss
):
    receive(org, store, gum, 30, lot="OLD", expiry=days_from_today(-2), cost="2")
    response = write_off(manager, store, "expiry", line(gum, sf, 20))
    assert response.status_code == 201, response.content  # expired stock goes regardless
    assert on_hand(gum) == 10
    d = Discrepancy.objects.get()
    assert (d.kind, d.status, d.corrective, d.within_policy) == (
        Kind.EXPIRY,
        Status.NEW,
        False,
        False,
    )
    assert (d.ledger_ref_type, d.ledger_ref_id) == ("EXPIRY", response.json()["id"])
    acknowledged = approve(boss, d.pk)
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "APPROVED"
    assert on_hand(gum) == 10 and corrections().count() == 1  # nothing posted again
    # within policy: recorded adjusted
    small = write_off(manager, store, "expiry", line(gum, sf, 1))
    assert small.status_code == 201
    assert Discrepancy.objects.get(status=Status.ADJUSTED).kind == Kind.EXPIRY
    assert_invariants()


@pytest.mark.parametrize(
    "lots",
    [
        [("FRESH", 30, 60)],  # nothing has expired
        [("OLD", 5, -1), ("FRESH", 25, 60)],  # 20 would take fresh stock past the 5 expired
        [("TODAY", 30, 0)],  # expires today: still good until tomorrow
    ],
)
def test_an_expiry_write_off_of_stock_not_expired_is_judged_like_any_correction(
    org, store, gum, sf, manager, boss, lots
):
    for lot, quantity, expires_in in lots:
        receive(org, store, gum, quantity, lot=lot, expiry=days_from_today(expires_in), cost="2")
    response = write_off(manager, store, "expiry", line(gum, sf, 20))
    assert response.status_code == 202, response.content  # the label alone approves nothing
    assert on_hand(gum) == 30 and corrections().count() == 0
    d = Discrepancy.objects.get()
    assert (d.kind, d.status, d.corrective) == (Kind.EXPIRY, Status.NEW, True)
    assert approve(boss, d.pk).json()["status"] == "ADJUSTED"  # approving posts it
    assert on_hand(gum) == 10
    assert_invariants()


def test_an_expiry_write_off_naming_an_expired_lot_may_take_only_what_it_holds(
    org, store, gum, sf, manager
):
    receive(org, store, gum, 4, lot="OLD", expiry=days_from_today(-3), cost="2")
    receive(org, store, gum, 26, lot="NEW", expiry=days_from_today(90), cost="2")
    named = write_off(manager, store, "expiry", line(gum, sf, 4, lot_code="OLD"))
    assert named.status_code == 201
    fresh = write_off(manager, store, "expiry", line(gum, sf, 20, lot_code="NEW"))
    assert fresh.status_code == 202 and on_hand(gum) == 26
    # two lines at one place add up: 3 + 3 of the 4 expired is more than there is
    receive(org, store, gum, 4, lot="OLD2", expiry=days_from_today(-1), cost="2")
    split = write_off(manager, store, "expiry", line(gum, sf, 3), line(gum, sf, 3))
    assert split.status_code == 202 and on_hand(gum) == 30
    assert_invariants()


# --- replays --------------------------------------------------------------------------------------


def test_replay_of_a_posted_correction_answers_the_same_bytes(org, store, stocked, sf, manager):
    first = adjust(manager, store, line(stocked, sf, -1), client_ref="same")
    second = adjust(manager, store, line(stocked, sf, -1), client_ref="same")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.content == first.content
    assert written() == (1, 1, 1) and on_hand(stocked) == 99
    assert_invariants()


def test_a_different_request_under_the_same_client_ref_is_a_conflict(
    org, store, stocked, sf, manager
):
    assert adjust(manager, store, line(stocked, sf, -1), client_ref="k").status_code == 201
    assert adjust(manager, store, line(stocked, sf, -9), client_ref="pending").status_code == 202
    before = (stock_state(), written())
    for client_ref, quantity in (("k", -2), ("pending", -8)):
        response = adjust(manager, store, line(stocked, sf, quantity), client_ref=client_ref)
        assert response.status_code == 409, response.content
        assert response.json()["code"] == "idempotency_conflict"
        assert list(response.json()["fields"]) == ["client_ref"]
    other_type = adjust(manager, store, line(stocked, sf, -1), client_ref="k", type="THEFT")
    assert other_type.status_code == 409
    assert (stock_state(), written()) == before


def test_a_document_posted_before_corrections_were_requests_replays_as_it_was(
    org, store, stocked, sf, manager
):
    inputs = [documents.AdjustmentLineInput(stocked, sf, D(-1))]
    document, _ = documents.adjustment_record(
        org=org, store=store, lines=inputs, client_ref="old-1", reason="count: missing"
    )
    response = adjust(manager, store, line(stocked, sf, -1), client_ref="old-1")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == document.pk
    assert not CorrectionRequest.objects.exists() and not Discrepancy.objects.exists()
    assert on_hand(stocked) == 99


# --- the 20% rule and products without cost --------------------------------------------------


def test_a_drop_of_more_than_20_percent_of_the_store_is_never_within_policy(
    org, store, gum, sf, manager
):
    VariancePolicyFactory(org=org, category="Edibles", units=1000, percent=100)
    receive(org, store, gum, 10, cost="1")
    assert adjust(manager, store, line(gum, sf, -2)).status_code == 201  # 20%: within
    pending = adjust(manager, store, line(gum, sf, -2))  # 2 of 8: 25%
    assert pending.status_code == 202
    assert pending.json()["discrepancy"]["severity"] == "MEDIUM"  # at least MEDIUM
    assert on_hand(gum) == 8
    assert adjust(manager, store, line(gum, sf, 5)).status_code == 201  # surpluses drop nothing
    assert_invariants()


def test_a_product_with_no_cost_is_judged_by_its_units(org, store, sf, manager, boss):
    VariancePolicyFactory(org=org, category="", units=2, percent=0, value=5)
    free = ProductFactory(org=org, sku="FREE", default_cost=None, category="")
    receive(org, store, free, 1000, cost="0")
    response = adjust(manager, store, line(free, sf, -50))  # worth 0, but 25× the units
    assert response.status_code == 202
    d = Discrepancy.objects.get()
    assert (d.value, d.severity, d.escalated) == (D(0), Severity.CRITICAL, True)
    refused = approve(manager, d.pk)
    assert refused.status_code == 403  # its own: and a manager never approves a CRITICAL one
    other_manager = MembershipFactory(org=org, role=Role.MANAGER).user
    tenant = resolve_tenant(other_manager, org_id=org.pk)
    with pytest.raises(Exception) as error:
        discrepancy_decide(
            org=org, discrepancy=d, decision=Decision("approve"), tenant=tenant, actor=other_manager
        )
    assert error.value.code == "escalation_required"
    assert approve(boss, d.pk).status_code == 200
    assert on_hand(free) == 950
    assert_invariants()


# --- self-approval ------------------------------------------------------------------------------


def test_a_lone_admin_approves_their_own_with_a_note(org, store, stocked, sf, admin_client):
    assert adjust(admin_client, store, line(stocked, sf, -10)).status_code == 202
    d = Discrepancy.objects.get()
    refused = approve(admin_client, d.pk)
    assert refused.status_code == 400 and refused.json()["code"] == "note_required"
    assert on_hand(stocked) == 100
    ok = approve(admin_client, d.pk, notes="nobody else runs this shop")
    assert ok.status_code == 200, ok.content
    assert ok.json()["self_approved"] is True and ok.json()["status"] == "ADJUSTED"
    d.refresh_from_db()
    assert d.self_approved and d.resolution_notes == "nobody else runs this shop"
    assert on_hand(stocked) == 90
    assert_invariants()


def test_nobody_approves_their_own_when_someone_else_may(
    org, store, stocked, sf, admin_client, manager, client_for
):
    assert adjust(manager, store, line(stocked, sf, -3)).status_code == 202  # MEDIUM
    mine = Discrepancy.objects.get()
    refused = approve(manager, mine.pk, notes="please")
    assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
    assert adjust(admin_client, store, line(stocked, sf, -10)).status_code == 202
    theirs = Discrepancy.objects.exclude(pk=mine.pk).get()
    client_for(Role.ADMIN)  # another admin exists
    refused = approve(admin_client, theirs.pk, notes="in a hurry")
    assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
    assert on_hand(stocked) == 100
    assert approve(admin_client, mine.pk).status_code == 200  # someone else's: fine
    assert on_hand(stocked) == 97
    assert_invariants()


# --- approval when the stock has gone meanwhile -------------------------------------------------


def test_approval_of_a_line_whose_stock_has_gone_is_refused_not_half_posted(
    org, store, stocked, sf, br, manager, boss
):
    response = adjust(
        manager, store, line(stocked, sf, -30), line(stocked, br, 1), reason="recount"
    )
    assert response.status_code == 202
    shortage, surplus = (
        Discrepancy.objects.get(document_line=1),
        Discrepancy.objects.get(document_line=2),
    )
    # the stock goes meanwhile: 80 sold off the floor
    documents.write_off_record(
        org=org,
        store=store,
        lines=[documents.WriteOffLineInput(stocked, sf, D(80))],
        write_off_type="waste",
        client_ref=ref(),
        reason="flood",
    )
    before = stock_state()
    tenant = resolve_tenant(boss.user, org_id=org.pk)
    outcome = discrepancies_decide(
        org=org,
        ids=[shortage.pk, surplus.pk],
        decision=Decision("approve"),
        tenant=tenant,
        actor=boss.user,
    )
    assert [d.pk for d in outcome.decided] == [surplus.pk]
    assert [(pk, error.code) for pk, error in outcome.refused] == [
        (shortage.pk, "insufficient_stock")
    ]
    shortage.refresh_from_db()
    assert shortage.status == Status.NEW and shortage.decided_by is None
    assert on_hand(stocked, br) == 1 and on_hand(stocked, sf) == 20  # only the surplus posted
    assert len(stock_state()[0]) == len(before[0]) + 1
    assert CorrectionRequest.objects.get().status == CorrectionStatus.PENDING
    single = approve(boss, shortage.pk)
    assert single.status_code == 409 and single.json()["code"] == "insufficient_stock"
    assert reject(boss, shortage.pk).status_code == 200
    assert CorrectionRequest.objects.get().status == CorrectionStatus.DECIDED
    assert on_hand(stocked, sf) == 20
    assert_invariants()


def test_a_pending_request_taking_more_than_there_is_is_refused_at_once(
    org, store, stocked, sf, manager
):
    before = (stock_state(), written())
    response = adjust(manager, store, line(stocked, sf, -101), client_ref="too-many")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "insufficient_stock"
    shortfall = StockShortfall.objects.get()
    assert (shortfall.outcome, shortfall.ref_type, shortfall.client_ref) == (
        ShortfallOutcome.BLOCKED,
        RefType.ADJUSTMENT,
        "too-many",
    )
    assert (shortfall.requested, shortfall.available) == (D(101), D(100))
    assert (stock_state(), written()) == before


def test_a_correction_posting_at_once_short_of_stock_is_refused_and_kept_once(
    org, store, stocked, sf, br, manager
):
    before = (stock_state(), written())
    # 1 from the back room, which holds none: within policy (1 unit, 1% of the store)
    response = adjust(manager, store, line(stocked, br, -1), client_ref="empty-room")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "insufficient_stock"
    assert (stock_state(), written()) == before
    shortfall = StockShortfall.objects.get()
    assert (shortfall.outcome, shortfall.client_ref, shortfall.location_id) == (
        ShortfallOutcome.BLOCKED,
        "empty-room",
        br.pk,
    )
    assert not Discrepancy.objects.exists()  # a refused adjustment is its caller's 409


# --- roles, tenants and ugly input --------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
@pytest.mark.parametrize("url", [ADJUSTMENTS, WRITE_OFFS])
def test_operators_and_viewers_may_not_correct(org, store, stocked, sf, client_for, role, url):
    body = {
        "store": store.pk,
        "client_ref": ref(),
        "reason": "x",
        "type": "damage",
        "lines": [line(stocked, sf, 1)],
    }
    response = client_for(role).post(url, body, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert written() == (0, 0, 0)


def test_operators_and_viewers_never_decide(org, store, stocked, sf, manager, client_for):
    adjust(manager, store, line(stocked, sf, -5))
    d = Discrepancy.objects.get()
    for role in (Role.VIEWER, Role.OPERATOR):
        assert approve(client_for(role), d.pk).status_code == 403
    assert on_hand(stocked) == 100


def test_another_organisations_discrepancy_is_not_found(
    org, other_org, store, stocked, sf, manager, client_for
):
    adjust(manager, store, line(stocked, sf, -5))
    d = Discrepancy.objects.get()
    rival = client_for(Role.ADMIN, organisation=other_org)
    assert approve(rival, d.pk).status_code == 404
    tenant = resolve_tenant(rival.user, org_id=other_org.pk)
    outcome = discrepancies_decide(
        org=other_org, ids=[d.pk], decision=Decision("approve"), tenant=tenant, actor=rival.user
    )
    assert [(pk, error.code) for pk, error in outcome.refused] == [(d.pk, "not_found")]
    assert on_hand(stocked) == 100 and Discrepancy.objects.get().status == Status.NEW


@pytest.mark.parametrize(
    "make_line,field,code",
    [
        (lambda w: line(w.gum, w.sf, "0"), "lines.0.quantity", None),
        (lambda w: line(w.gum, w.sf, "1.5"), "lines.0.quantity", "fractional_quantity"),
        (lambda w: {**line(w.gum, w.sf, 1), "product": 999999}, "lines.0.product", None),
        (lambda w: line(w.rival_product, w.sf, 1), "lines.0.product", "unknown_product"),
        (lambda w: line(w.gum, w.rival_location, 1), "lines.0.location", "unknown_location"),
        (lambda w: line(w.gum, w.sf, "abc"), "lines.0.quantity", "invalid"),
        (lambda w: line(w.gum, w.sf, "1e400"), "lines.0.quantity", "invalid"),
    ],
)
def test_ugly_adjustments_are_refused_and_write_nothing(
    org, other_org, store, stocked, sf, manager, make_line, field, code
):
    world = type("W", (), {})()
    world.gum, world.sf = stocked, sf
    rival_store = StoreFactory(org=other_org, code="R9")
    world.rival_product = ProductFactory(org=other_org, sku="RIVAL")
    world.rival_location = loc(rival_store, "SF")
    before = (stock_state(), written())
    response = adjust(manager, store, make_line(world))
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()
    if code:
        assert response.json()["code"] == code
    assert (stock_state(), written()) == before


@pytest.mark.parametrize("quantity", ["-1", "0", "0.5"])
def test_ugly_write_off_quantities_are_refused(org, store, stocked, sf, manager, quantity):
    before = (stock_state(), written())
    response = write_off(manager, store, "damage", line(stocked, sf, quantity))
    assert response.status_code == 400, response.content
    assert "lines.0.quantity" in response.json()["fields"]
    assert (stock_state(), written()) == before


def test_another_organisations_store_is_refused(org, other_org, store, stocked, sf, manager):
    rival_store = StoreFactory(org=other_org, code="R2")
    before = (stock_state(), written())
    body = {
        "store": rival_store.pk,
        "client_ref": ref(),
        "reason": "x",
        "lines": [line(stocked, sf, 1)],
    }
    response = manager.post(ADJUSTMENTS, body, format="json")
    assert response.status_code == 400 and "store" in response.json()["fields"]
    response = manager.post(WRITE_OFFS, {**body, "type": "damage"}, format="json")
    assert response.status_code == 400 and "store" in response.json()["fields"]
    assert (stock_state(), written()) == before


def test_missing_reason_and_type_are_refused_by_the_service(org, store, stocked, sf, manager):
    tenant = resolve_tenant(manager.user, org_id=org.pk)
    common = {
        "org": org,
        "store": store,
        "lines": [documents.WriteOffLineInput(stocked, sf, D(1))],
        "client_ref": ref(),
        "tenant": tenant,
        "actor": manager.user,
    }
    with pytest.raises(Exception) as error:
        correction_request(kind=DocumentKind.WRITE_OFF, reason=" ", write_off_type="lost", **common)
    assert error.value.code == "invalid" and set(error.value.fields) == {"reason", "type"}
    assert written() == (0, 0, 0)


def test_a_lot_with_another_expiry_is_refused_before_anything_waits(org, store, gum, sf, manager):
    receive(org, store, gum, 4, lot="L-7", expiry=None, cost="2")
    from inventory.models import Batch

    Batch.objects.filter(lot_code="L-7").update(expiry_date="2031-01-01")
    before = (stock_state(), written())
    response = adjust(
        manager, store, line(gum, sf, 3, lot_code="L-7", expiry_date="2031-02-01"), reason="found"
    )
    assert response.status_code == 400 and response.json()["code"] == "lot_expiry_mismatch"
    assert list(response.json()["fields"]) == ["lines.0.expiry_date"]
    assert (stock_state(), written()) == before


# --- concurrency (real threads, committed state) ------------------------------------------------


def together(org, workers: list) -> list:
    """Run each ``worker()`` in its own thread, released at once; ``(result, error)`` each."""
    barrier = threading.Barrier(len(workers))
    results: list = [(None, None)] * len(workers)

    def run(index, worker):
        try:
            with tenant_scope(org):
                connection.ensure_connection()
                barrier.wait(timeout=30)
                results[index] = (worker(), None)
        except BaseException as exc:  # noqa: BLE001 - reported to the test's thread
            results[index] = (None, exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


@pytest.mark.django_db(transaction=True)
def test_two_managers_approving_at_once_post_exactly_one_correction(org, store, gum):
    receive(org, store, gum, 100, cost="2")
    clerk = MembershipFactory(org=org, role=Role.MANAGER).user
    first, second = (MembershipFactory(org=org, role=Role.MANAGER).user for _ in range(2))
    answer = correction_request(
        org=org,
        store=store,
        kind=DocumentKind.ADJUSTMENT,
        lines=[documents.AdjustmentLineInput(gum, loc(store, "SF"), D(-4))],
        client_ref="race",
        reason="count",
        tenant=resolve_tenant(clerk, org_id=org.pk),
        actor=clerk,
    )
    assert not answer.posted
    d = answer.discrepancies[0]
    assert d.severity == Severity.MEDIUM  # managers may decide it

    def approver(user):
        def work():
            tenant = resolve_tenant(user, org_id=org.pk)
            return discrepancy_decide(
                org=org, discrepancy=d.pk, decision=Decision("approve"), tenant=tenant, actor=user
            )

        return work

    results = together(org, [approver(first), approver(second)])
    errors = [error for _, error in results if error is not None]
    assert len(errors) == 1 and errors[0].code == "invalid_state", results
    assert StockDocument.objects.filter(client_ref=f"discrepancy-{d.pk}").count() == 1
    assert StockLedger.objects.filter(ref_type="ADJUSTMENT").count() == 1
    assert on_hand(gum) == 96
    assert Discrepancy.objects.get().status == Status.ADJUSTED
    assert_invariants()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("quantity", ["-1", "-5"])  # posts at once / waits for approval
def test_two_identical_requests_at_once_make_one(org, store, gum, quantity):
    receive(org, store, gum, 100, cost="2")
    manager = MembershipFactory(org=org, role=Role.MANAGER).user

    def request():
        return correction_request(
            org=org,
            store=store,
            kind=DocumentKind.ADJUSTMENT,
            lines=[documents.AdjustmentLineInput(gum, loc(store, "SF"), D(quantity))],
            client_ref="twice",
            reason="count",
            tenant=resolve_tenant(manager, org_id=org.pk),
            actor=manager,
        )

    results = together(org, [request, request, request])
    assert [error for _, error in results] == [None, None, None]
    assert sorted(answer.created for answer, _ in results) == [False, False, True]
    assert len({answer.request.pk for answer, _ in results}) == 1
    assert CorrectionRequest.objects.count() == 1 and Discrepancy.objects.count() == 1
    assert on_hand(gum) == (99 if quantity == "-1" else 100)
    assert_invariants()
