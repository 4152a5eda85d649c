"""Upstock in the Django admin: par levels edited by managers through the baseline services
(their checks, their audit trail), runs shown read-only with their lines, and a store-limited
manager seeing their stores only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from inventory.models import AuditAction, AuditEvent, Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import loc, receive, sell
from upstock.models import Baseline, UpstockRun
from upstock.services import runs

pytestmark = pytest.mark.django_db
D = Decimal
PASSWORD = "upstock in the admin 1!"
BASELINES = "/admin/upstock/baseline/"
RUNS = "/admin/upstock/upstockrun/"


def as_role(org, role, **kwargs) -> Client:
    membership = MembershipFactory(org=org, role=role, **kwargs)
    membership.user.set_password(PASSWORD)
    membership.user.save()
    client = Client()
    assert client.login(username=membership.user.username, password=PASSWORD)
    client.user = membership.user
    return client


def listed(response) -> set[int]:
    assert response.status_code == 200, response.content[:300]
    return {row.pk for row in response.context["cl"].result_list}


@pytest.fixture
def world(org, store):
    second = StoreFactory(org=org, code="S2", time_zone="America/Toronto")
    gum = ProductFactory(org=org, sku="GUM", category="Edibles")
    for where in (store, second):
        receive(org, where, gum, 5, location="SF")
        receive(org, where, gum, 10, location="BR")
        sell(org, where, (gum, 2, "SF"))
    maker = MembershipFactory(org=org, role=Role.MANAGER).user
    here = runs.run_create(org=org, store=store, location=loc(store, "SF"), actor=maker)
    there = runs.run_create(org=org, store=second, location=loc(second, "SF"), actor=maker)
    par = Baseline.objects.create(
        org=org, store=second, location=loc(second, "SF"), category="Edibles", par_qty=D("4")
    )
    return {"second": second, "gum": gum, "here": here, "there": there, "par": par}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_have_no_admin(org, world, role):
    response = as_role(org, role).get(RUNS)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_runs_are_read_only_with_their_lines(org, store, world):
    admin = as_role(org, Role.ADMIN)
    assert listed(admin.get(RUNS)) == {world["here"].pk, world["there"].pk}
    page = admin.get(f"{RUNS}{world['here'].pk}/change/")
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert "GUM" in page.content.decode()  # the line, inline
    assert admin.get(f"{RUNS}add/").status_code == 403
    admin.post(f"{RUNS}{world['here'].pk}/change/", {"status": "completed"})
    assert UpstockRun.objects.get(pk=world["here"].pk).status == "in_progress"
    assert admin.post(f"{RUNS}{world['here'].pk}/delete/").status_code == 403


def test_a_store_limited_manager_sees_their_stores_only(org, store, world):
    limited = as_role(org, Role.MANAGER, stores=[store])
    assert listed(limited.get(RUNS)) == {world["here"].pk}
    assert limited.get(f"{RUNS}{world['there'].pk}/change/").status_code in (302, 404)
    assert listed(limited.get(BASELINES)) == set()
    assert limited.get(f"{BASELINES}{world['par'].pk}/change/").status_code in (302, 404)


def test_a_manager_adds_edits_and_deletes_par_levels_through_the_services(org, store, world):
    manager = as_role(org, Role.MANAGER)
    floor = loc(store, "SF")
    response = manager.post(
        f"{BASELINES}add/",
        {
            "store": store.pk,
            "location": floor.pk,
            "product": world["gum"].pk,
            "category": "",
            "subcategory": "",
            "par_qty": "9",
            "min_pull": "",
        },
    )
    assert response.status_code == 302, response.content[:500]
    par = Baseline.objects.get(location=floor, product=world["gum"])
    assert par.par_qty == 9 and par.updated_by == manager.user
    response = manager.post(f"{BASELINES}{par.pk}/change/", {"par_qty": "11", "min_pull": "2"})
    assert response.status_code == 302, response.content[:500]
    par.refresh_from_db()
    assert (par.par_qty, par.min_pull) == (11, 2)
    saved = AuditEvent.objects.filter(action=AuditAction.UPSTOCK_BASELINE_SAVED, object_id=par.pk)
    assert saved.count() == 2
    assert manager.post(f"{BASELINES}{par.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Baseline.objects.filter(pk=par.pk).exists()
    assert AuditEvent.objects.filter(action=AuditAction.UPSTOCK_BASELINE_DELETED).count() == 1


def test_a_refused_par_level_is_shown_not_saved(org, store, world):
    manager = as_role(org, Role.MANAGER)
    response = manager.post(
        f"{BASELINES}add/",
        {
            "store": store.pk,
            "location": loc(store, "BR").pk,  # a back room: not a sales floor
            "category": "Edibles",
            "subcategory": "",
            "par_qty": "3",
            "min_pull": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    shown = " ".join(str(m) for m in response.context["messages"])
    assert "sales floor" in shown
    assert not Baseline.objects.filter(location=loc(store, "BR")).exists()
