"""The nightly upstock job on the scheduler: after the store's local closing time each active
sales floor gets one run, made by the ``system`` actor and named by the job; once per night
whatever ticks or workers; none on closed days; all the store's floors or none."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection

from inventory import scheduling
from inventory.models import (
    AuditAction,
    AuditEvent,
    Location,
    LocationKind,
    NightlyJobRun,
    NightlyJobStatus,
    Store,
)
from inventory.tenancy import services as org_services
from tests.factories import OrganizationFactory, ProductFactory, StoreFactory
from tests.stock_helpers import loc, receive, sell
from tests.upstock.conftest import local
from upstock import jobs
from upstock.models import RunStatus, UpstockRun

LONG_AGO = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
def only_upstock(monkeypatch):
    """The registry with the upstock job alone (as the app registered it)."""
    registered = scheduling.nightly_jobs()[jobs.JOB_NAME]
    monkeypatch.setattr(scheduling, "_registry", {jobs.JOB_NAME: registered})
    return registered


@pytest.fixture
def old_store(store):
    Store.objects.filter(pk=store.pk).update(created_at=LONG_AGO)
    store.refresh_from_db()
    return store


def test_the_app_registers_the_job_at_closing():
    job = scheduling.nightly_jobs()[jobs.JOB_NAME]
    assert job.run is jobs.nightly_upstock and job.at == "closing"
    jobs.register()  # again: a no-op
    assert scheduling.nightly_jobs()[jobs.JOB_NAME] is job


def test_each_active_sellable_sales_floor_gets_a_run_after_closing(
    org, old_store, only_upstock, clock
):
    store = old_store
    extra = {"store": store, "actor": None}
    org_services.location_create(
        org=org, code="SF2", name="Floor 2", kind=LocationKind.SALES_FLOOR, sellable=True, **extra
    )
    org_services.location_create(
        org=org,
        code="SF3",
        name="Closed floor",
        kind=LocationKind.SALES_FLOOR,
        sellable=True,
        is_active=False,
        **extra,
    )
    org_services.location_create(
        org=org, code="SF4", name="Not sellable", kind=LocationKind.SALES_FLOOR, **extra
    )
    org_services.location_create(
        org=org, code="DSP", name="Display", kind=LocationKind.OTHER, sellable=True, **extra
    )
    flower = ProductFactory(org=org, category="Flower")
    scheduling.nightly_jobs_run_due(now=local(2026, 6, 9, 22, 5))  # last night's runs
    clock.set(local(2026, 6, 10, 9, 0))
    receive(org, store, flower, 10, location="BR")
    receive(org, store, flower, 5, location="SF")
    clock.set(local(2026, 6, 10, 15, 0))
    sell(org, store, (flower, 3, "SF"))

    assert scheduling.nightly_jobs_run_due(now=local(2026, 6, 10, 21, 59)) == []
    now = local(2026, 6, 10, 22, 5)
    [night] = scheduling.nightly_jobs_run_due(now=now)
    assert (night.job, night.local_date, night.status) == (
        jobs.JOB_NAME,
        datetime.date(2026, 6, 10),
        NightlyJobStatus.DONE,
    )
    runs = UpstockRun.objects.filter(window_end=now).order_by("location__code")
    assert [run.location.code for run in runs] == ["SF", "SF2"]
    system = scheduling.system_actor()
    for run in runs:
        assert run.created_by_job == jobs.JOB_NAME
        assert run.created_by_id in (None, system.pk)
        assert run.status == RunStatus.IN_PROGRESS
    floor_run = runs[0]
    line = floor_run.lines.get(product=flower)
    assert (line.sold, line.suggested) == (3, 3)
    events = AuditEvent.objects.filter(
        action=AuditAction.UPSTOCK_RUN_CREATED, object_id__in=[run.pk for run in runs]
    )
    assert {event.actor_id for event in events} == {system.pk}


def test_one_run_per_floor_and_night_whatever_the_ticks(org, old_store, only_upstock, clock):
    floor = loc(old_store, "SF")
    for minute in (5, 10, 15):
        scheduling.nightly_jobs_run_due(now=local(2026, 6, 10, 22, minute))
    scheduling.nightly_jobs_run_due(now=local(2026, 6, 11, 3, 0))
    assert UpstockRun.objects.filter(location=floor).count() == 1
    scheduling.nightly_jobs_run_due(now=local(2026, 6, 11, 22, 5))
    first, second = UpstockRun.objects.filter(location=floor).order_by("created_at")
    assert second.window_end == local(2026, 6, 11, 22, 5)
    first.refresh_from_db()
    assert first.status == RunStatus.ABANDONED  # left unfinished: tonight's run replaces it
    assert NightlyJobRun.objects.filter(job=jobs.JOB_NAME).count() == 2


def test_no_run_on_a_closed_weekday_or_a_holiday(org, old_store, only_upstock, clock):
    org_services.store_update(
        org=org, store=old_store, changes={"closed_weekdays": [6], "holidays": ["2026-06-10"]}
    )
    floor = loc(old_store, "SF")
    scheduling.nightly_jobs_run_due(now=local(2026, 6, 9, 22, 5))  # Tuesday
    scheduling.nightly_jobs_run_due(now=local(2026, 6, 10, 22, 5))  # the holiday
    assert UpstockRun.objects.filter(location=floor).count() == 1
    scheduling.nightly_jobs_run_due(now=local(2026, 6, 14, 22, 5))  # Sunday: closed
    assert [r.local_date for r in NightlyJobRun.objects.order_by("local_date")] == [
        datetime.date(2026, 6, 9),
        datetime.date(2026, 6, 13),  # Saturday's missed night, made up
    ]


def test_a_floor_that_fails_fails_the_night_with_no_run_at_any_floor(
    org, old_store, only_upstock, clock, monkeypatch
):
    org_services.location_create(
        org=org,
        store=old_store,
        code="SF2",
        name="Floor 2",
        kind=LocationKind.SALES_FLOOR,
        sellable=True,
        actor=None,
    )
    real = jobs.runs.run_create

    def run_create(**kwargs):
        if kwargs["location"].code == "SF2":
            raise RuntimeError("the floor's tablet is on fire")
        return real(**kwargs)

    monkeypatch.setattr(jobs.runs, "run_create", run_create)
    [night] = scheduling.nightly_jobs_run_due(now=local(2026, 6, 10, 22, 5))
    assert night.status == NightlyJobStatus.FAILED
    assert "on fire" in night.error
    assert not UpstockRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_make_one_run_per_floor(only_upstock):
    org = OrganizationFactory(slug="two-workers")
    stores = [StoreFactory(org=org, code=code, time_zone="America/Toronto") for code in "AB"]
    Store.objects.filter(pk__in=[s.pk for s in stores]).update(created_at=LONG_AGO)
    now = local(2026, 6, 10, 22, 5)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            scheduling.nightly_jobs_run_due(now=now)
        except BaseException as exc:  # noqa: BLE001 - asserted in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    floors = Location.unscoped.filter(org=org, kind=LocationKind.SALES_FLOOR)
    assert sorted(
        UpstockRun.unscoped.filter(org=org).values_list("location_id", flat=True)
    ) == sorted(floors.values_list("pk", flat=True))
    assert NightlyJobRun.unscoped.filter(org=org, status=NightlyJobStatus.DONE).count() == 2
