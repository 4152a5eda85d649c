"""Approvals in the Django admin: the list (filters, search, store limits), the read-only
detail page (numbers, source document, ledger rows, timeline), approve / reject / review for
one or a selection through the decisions service — each refusal shown with its reason — and
variance policies saved through their service."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from counts.services import sessions as S
from discrepancies.models import Discrepancy, Source, Status, VariancePolicy
from inventory.models import AuditEvent, RefType, Role, StockLedger
from tests.discrepancies.test_api import archive, reconciled_count, record, written
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import assert_invariants, on_hand

D = Decimal
PASSWORD = "approvals in the admin 1!"
LIST = "/admin/discrepancies/discrepancy/"


def signed_in(membership) -> Client:
    membership.user.set_password(PASSWORD)
    membership.user.save()
    client = Client()
    assert client.login(username=membership.user.username, password=PASSWORD)
    client.user = membership.user
    return client


def as_role(org, role, **kwargs) -> Client:
    return signed_in(MembershipFactory(org=org, role=role, **kwargs))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def listed(response) -> set[int]:
    assert response.status_code == 200, response.content[:300]
    return {d.pk for d in response.context["cl"].result_list}


@pytest.fixture
def policy(org):
    return VariancePolicy.objects.create(org=org, category="", units=2, percent=0)


@pytest.fixture
def world(org, store, policy):
    second = StoreFactory(org=org, code="S2")
    flower = ProductFactory(org=org, sku="FLOWER", name="Blue Dream")
    gummy = ProductFactory(org=org, sku="GUMMY", name="Sour Gummies")
    recorder = MembershipFactory(org=org, role=Role.MANAGER).user
    return {
        "second": second,
        "small": record(org, store, flower, actor=recorder),
        "big": record(org, store, flower, expected="100", actual="40", actor=recorder),
        "gummy": record(org, second, gummy, actor=recorder, source=Source.POS_SHORTFALL),
        "recorder": recorder,
    }


def select(client, action: str, ids, **extra):
    return client.post(
        LIST, {"action": action, "_selected_action": [str(pk) for pk in ids], **extra}
    )


# --- who gets in --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_have_no_admin(org, world, role):
    client = as_role(org, role)
    response = client.get(LIST)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_managers_list_filter_and_search(org, store, world):
    manager = as_role(org, Role.MANAGER)
    small, big, gummy = world["small"].pk, world["big"].pk, world["gummy"].pk
    assert listed(manager.get(LIST)) == {small, big, gummy}
    assert listed(manager.get(LIST, {"severity__exact": "CRITICAL"})) == {big}
    assert listed(manager.get(LIST, {"source__exact": "POS_SHORTFALL"})) == {gummy}
    assert listed(manager.get(LIST, {"store": str(world["second"].pk)})) == {gummy}
    assert listed(manager.get(LIST, {"status__exact": "NEW", "kind__exact": "DATA_ERROR"})) == {
        small,
        big,
        gummy,
    }
    assert listed(manager.get(LIST, {"q": "dream"})) == {small, big}


def test_nothing_is_edited_by_hand(org, world):
    admin = as_role(org, Role.ADMIN)
    d = world["small"]
    assert admin.get(f"{LIST}add/").status_code == 403
    page = admin.get(f"{LIST}{d.pk}/change/")
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    admin.post(f"{LIST}{d.pk}/change/", {"status": "ADJUSTED", "variance": "0"})
    assert Discrepancy.objects.get(pk=d.pk).status == Status.NEW
    assert admin.post(f"{LIST}{d.pk}/delete/").status_code == 403


def test_the_detail_page_shows_numbers_document_ledger_rows_and_timeline(org, store, policy):
    product = ProductFactory(org=org, sku="CNT", default_cost=D("1"))
    reconciler = MembershipFactory(org=org, role=Role.MANAGER).user
    session, d = reconciled_count(org, store, product, reconciler=reconciler)
    manager = as_role(org, Role.MANAGER)
    manager.post(f"{LIST}{d.pk}/decide/approve/", {"notes": "bin was empty", "mode": ""})
    S.session_finalize(org=org, session=session, actor=reconciler)
    page = manager.get(f"{LIST}{d.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    for text in ("-5.0000", "10.0000", "count_variance", f"count-{session.pk}", "COUNT_RECONCILE"):
        assert text in html, text
    assert "recorded" in html and "approved" in html and "adjusted" in html
    assert "bin was empty" in html and manager.user.email in html
    assert "/decide/" not in html  # adjusted: nothing left to decide


# --- deciding -----------------------------------------------------------------------------------


def test_a_selection_is_approved_after_its_note_page_and_refusals_are_shown(org, world):
    manager = as_role(org, Role.MANAGER)
    small, big, gummy = world["small"].pk, world["big"].pk, world["gummy"].pk
    before = written()
    page = select(manager, "approve_selected", [small, big, gummy])
    assert page.status_code == 200  # the note page: nothing decided yet
    assert page.templates[0].name == "admin/discrepancies/discrepancy/decide.html"
    assert written() == before
    done = select(manager, "approve_selected", [small, big, gummy], apply="1", notes="weekly")
    assert done.status_code == 302
    messages = messages_of(manager.get(LIST))
    assert f"2 approved: #{small}, #{gummy}." in messages, messages
    assert any("escalation_required" in m and f"#{big}" in m for m in messages), messages
    statuses = dict(Discrepancy.objects.values_list("pk", "status"))
    assert (statuses[small], statuses[big], statuses[gummy]) == ("APPROVED", "NEW", "APPROVED")
    assert Discrepancy.objects.get(pk=small).resolution_notes == "weekly"
    assert AuditEvent.objects.filter(action="discrepancy.approved").count() == 2


@pytest.mark.parametrize(
    "action,status", [("reject_selected", "REJECTED"), ("review_selected", "UNDER_REVIEW")]
)
def test_reject_and_review_a_selection(org, world, action, status):
    admin = as_role(org, Role.ADMIN)
    ids = [world["small"].pk, world["big"].pk]
    select(admin, action, ids, apply="1", notes="checked")
    assert set(Discrepancy.objects.filter(pk__in=ids).values_list("status", flat=True)) == {status}


def test_one_is_decided_from_its_page(org, world):
    admin = as_role(org, Role.ADMIN)
    d = world["big"]
    url = f"{LIST}{d.pk}/decide/approve/"
    form = admin.get(url)
    assert form.status_code == 200 and "Posting mode" in form.content.decode()
    response = admin.post(url, {"notes": "admin ok", "mode": ""}, follow=True)
    assert any(f"1 approved: #{d.pk}." in m for m in messages_of(response))
    assert Discrepancy.objects.get(pk=d.pk).status == Status.APPROVED


def test_only_an_undecided_one_offers_its_decisions(org, world):
    admin = as_role(org, Role.ADMIN)
    d = world["big"]
    page = admin.get(f"{LIST}{d.pk}/change/").content.decode()
    assert f"{d.pk}/decide/approve/" in page and f"{d.pk}/decide/reject/" in page
    admin.post(f"{LIST}{d.pk}/decide/reject/", {"notes": "recount", "mode": ""})
    page = admin.get(f"{LIST}{d.pk}/change/").content.decode()
    assert "/decide/" not in page


def test_bad_transitions_and_routing_are_messages_not_errors(org, world):
    manager, admin = as_role(org, Role.MANAGER), as_role(org, Role.ADMIN)
    d = world["small"]
    admin.post(f"{LIST}{d.pk}/decide/reject/", {"notes": "noise"})
    before = written()
    response = manager.post(f"{LIST}{d.pk}/decide/approve/", {"notes": ""}, follow=True)
    assert response.status_code == 200
    assert any("invalid_state" in m and f"#{d.pk}" in m for m in messages_of(response))
    response = manager.post(f"{LIST}{world['big'].pk}/decide/approve/", {}, follow=True)
    assert any("escalation_required" in m for m in messages_of(response))
    own = signed_in(_membership_of(org, world["recorder"]))
    response = own.post(f"{LIST}{world['gummy'].pk}/decide/reject/", {}, follow=True)
    assert any("self_approval" in m for m in messages_of(response))
    response = manager.post(f"{LIST}{d.pk}/decide/approve/", {"notes": "a\u0000b"})
    assert response.status_code == 200 and response.context["form"].errors["notes"]
    assert written() == before


def _membership_of(org, user):
    from inventory.models import Membership

    return Membership.objects.get(org=org, user=user)


def test_a_store_limited_manager_sees_and_decides_only_its_stores(org, store, world):
    limited = as_role(org, Role.MANAGER, stores=[store])
    mine = {world["small"].pk, world["big"].pk}
    assert listed(limited.get(LIST)) == mine
    filters = limited.get(LIST).context["cl"].filter_specs
    (store_filter,) = [f for f in filters if getattr(f, "parameter_name", "") == "store"]
    assert [value for value, _ in store_filter.lookup_choices] == [str(store.pk)]
    gummy = world["gummy"].pk
    assert limited.get(f"{LIST}{gummy}/change/").status_code == 302  # as a missing id
    before = written()
    response = limited.post(f"{LIST}{gummy}/decide/approve/", {"notes": "x"}, follow=True)
    assert any("does not exist" in m for m in messages_of(response))
    select(limited, "approve_selected", [gummy], apply="1")  # not in its queryset: ignored
    assert written() == before


def test_another_orgs_discrepancy_is_not_there(org, other_org, world):
    theirs = record(
        other_org, StoreFactory(org=other_org, code="X1"), ProductFactory(org=other_org)
    )
    admin = as_role(org, Role.ADMIN)
    before = written()
    assert admin.get(f"{LIST}{theirs.pk}/change/").status_code == 302
    admin.post(f"{LIST}{theirs.pk}/decide/approve/", {"notes": "x"})
    select(admin, "approve_selected", [theirs.pk], apply="1")
    assert written() == before


def test_a_counts_shortage_approved_in_the_admin_posts_once(org, store, policy):
    product = ProductFactory(org=org, sku="ONCE", default_cost=D("1"))
    reconciler = MembershipFactory(org=org, role=Role.MANAGER).user
    session, d = reconciled_count(org, store, product, reconciler=reconciler)
    manager = as_role(org, Role.MANAGER)
    select(manager, "approve_selected", [d.pk], apply="1")
    select(manager, "approve_selected", [d.pk], apply="1")  # again: unchanged
    S.session_finalize(org=org, session=session, actor=reconciler)
    S.session_finalize(org=org, session=session, actor=reconciler)
    rows = StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE, ref_id=session.pk)
    assert [r.qty_delta for r in rows] == [D("-5")]
    assert Discrepancy.objects.get(pk=d.pk).status == Status.ADJUSTED
    assert on_hand(product) == 5
    assert_invariants()


def test_an_archived_discrepancy_is_shown_read_only(org, world):
    admin = as_role(org, Role.ADMIN)
    d = world["small"]
    admin.post(f"{LIST}{d.pk}/decide/reject/", {"notes": "old"})
    archive(d.pk)
    assert d.pk not in listed(admin.get(LIST))
    page = admin.get(f"/admin/discrepancies/archiveddiscrepancy/{d.pk}/change/")
    assert page.status_code == 200
    assert "rejected" in page.content.decode() and "archived" in page.content.decode()


# --- variance policies --------------------------------------------------------------------------

POLICIES = "/admin/discrepancies/variancepolicy/"


def test_an_admin_saves_a_policy_through_the_service(org):
    admin = as_role(org, Role.ADMIN)
    response = admin.post(
        f"{POLICIES}add/", {"category": "Edible\u0301", "units": "1", "percent": "5", "value": ""}
    )
    assert response.status_code == 302, response.content[:500]
    policy = VariancePolicy.objects.get(org=org)
    assert (policy.category, policy.units, policy.percent, policy.value) == (
        "Edibl\u00e9",
        D("1"),
        D("5"),
        None,
    )
    event = AuditEvent.objects.get(action="variance_policy.saved")
    assert event.actor == admin.user and event.object_id == policy.pk
    admin.post(
        f"{POLICIES}{policy.pk}/change/", {"category": "Edibl\u00e9", "units": "1", "percent": "7"}
    )
    assert VariancePolicy.objects.get(pk=policy.pk).percent == 7
    assert AuditEvent.objects.filter(action="variance_policy.saved").count() == 2
    admin.post(f"{POLICIES}{policy.pk}/delete/", {"post": "yes"})
    assert not VariancePolicy.objects.filter(pk=policy.pk).exists()
    assert AuditEvent.objects.filter(action="variance_policy.deleted").count() == 1


@pytest.mark.parametrize(
    "data,field",
    [
        ({"category": "Flower", "units": "1", "percent": "150"}, "percent"),
        ({"category": "Flower\u0007", "units": "1", "percent": "1"}, "category"),
    ],
)
def test_a_refused_policy_is_a_message_and_nothing_is_saved(org, data, field):
    admin = as_role(org, Role.ADMIN)
    response = admin.post(f"{POLICIES}add/", data, follow=True)
    assert response.status_code == 200
    assert any(field in m for m in messages_of(response)), messages_of(response)
    assert not VariancePolicy.objects.filter(org=org).exists()


def test_a_duplicate_category_is_a_message(org, policy):
    admin = as_role(org, Role.ADMIN)
    response = admin.post(
        f"{POLICIES}add/", {"category": "", "units": "3", "percent": "1"}, follow=True
    )
    assert any("has a variance policy already" in m for m in messages_of(response))
    assert VariancePolicy.objects.filter(org=org).count() == 1


def test_managers_read_policies_but_do_not_change_them(org, policy):
    manager = as_role(org, Role.MANAGER)
    assert manager.get(POLICIES).status_code == 200
    assert manager.get(f"{POLICIES}add/").status_code == 403
    manager.post(f"{POLICIES}{policy.pk}/change/", {"category": "", "units": "9", "percent": "9"})
    assert VariancePolicy.objects.get(pk=policy.pk).units == 2
    assert manager.post(f"{POLICIES}{policy.pk}/delete/", {"post": "yes"}).status_code == 403
