"""The nightly scheduler (``inventory.scheduling``) with an injectable clock: each store's jobs
run once per local night after closing, in its own time zone (DST nights both ways), not on
closed weekdays or holidays, a missed night made up once, a failing job recorded without
stopping the others, two workers at once running a night once; the store schedule's API and
admin, checked by the tenancy service."""

from __future__ import annotations

import datetime
import logging
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from core.errors import ApplicationError
from inventory import scheduling
from inventory.models import (
    AuditAction,
    AuditEvent,
    Location,
    LocationKind,
    NightlyJobRun,
    NightlyJobStatus,
    Role,
    Store,
)
from inventory.tasks import nightly_jobs
from inventory.tenancy import services as org_services
from tests.factories import MembershipFactory, OrganizationFactory

UTC = datetime.UTC
TORONTO = "America/Toronto"
TOKYO = "Asia/Tokyo"
LONG_AGO = datetime.datetime(2020, 1, 1, tzinfo=UTC)
D = datetime.date


def utc(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def local(tz: str, *args, fold: int = 0) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=ZoneInfo(tz), fold=fold)


class Recorder:
    """A job that remembers what it was asked to do (and may be told to fail for a store)."""

    def __init__(self, fail_for: str | None = None, error: BaseException | None = None):
        self.calls: list[tuple[str, datetime.date, datetime.datetime, str]] = []
        self.fail_for = fail_for
        self.error = error or RuntimeError("the back room is on fire")
        self.lock = threading.Lock()

    def __call__(self, store, local_date, now, actor) -> None:
        with self.lock:
            self.calls.append((store.code, local_date, now, actor.username))
        if store.code == self.fail_for:
            raise self.error

    def nights(self) -> list[tuple[str, datetime.date]]:
        return [(code, day) for code, day, _, _ in self.calls]


@pytest.fixture
def registry(monkeypatch):
    """An empty job registry for the test (the apps' own jobs do not run here)."""
    monkeypatch.setattr(scheduling, "_registry", {})
    return scheduling._registry


@pytest.fixture
def job(registry):
    recorder = Recorder()
    scheduling.register_nightly_job("test_job", recorder)
    return recorder


def make_store(org, code: str, tz: str = TORONTO, closing=datetime.time(22, 0), **schedule):
    store = org_services.store_create(
        org=org, code=code, name=code, time_zone=tz, closing_time=closing, **schedule
    )
    Store.objects.filter(pk=store.pk).update(created_at=LONG_AGO)
    store.refresh_from_db()
    return store


def tick(now) -> list[tuple[str, datetime.date, str]]:
    return [
        (run.store.code, run.local_date, run.status)
        for run in scheduling.nightly_jobs_run_due(now=now)
    ]


def rows() -> list[tuple[str, datetime.date, str]]:
    return sorted(
        NightlyJobRun.objects.values_list("store__code", "local_date", "status").order_by()
    )


# --- when a night is due ------------------------------------------------------------------------


def test_a_store_runs_after_its_local_closing_time_once(org, job):
    make_store(org, "TOR")
    tick(local(TORONTO, 2026, 6, 14, 23, 0))  # last night, so tonight's is the one due
    assert tick(local(TORONTO, 2026, 6, 15, 21, 59)) == []
    assert tick(local(TORONTO, 2026, 6, 15, 22, 0)) == [("TOR", D(2026, 6, 15), "done")]
    assert tick(local(TORONTO, 2026, 6, 15, 22, 5)) == []
    assert tick(local(TORONTO, 2026, 6, 16, 1, 0)) == []  # after midnight: still that night
    assert job.nights() == [("TOR", D(2026, 6, 14)), ("TOR", D(2026, 6, 15))]
    run = NightlyJobRun.objects.get(local_date=D(2026, 6, 15))
    assert run.started_at == local(TORONTO, 2026, 6, 15, 22, 0)
    assert run.finished_at >= run.started_at and run.error == ""


def test_each_store_follows_its_own_time_zone(org, job):
    make_store(org, "TOR", TORONTO)
    make_store(org, "TYO", TOKYO)
    # 03:00 UTC on the 15th: 23:00 on the 14th in Toronto, noon on the 15th in Tokyo
    assert sorted(tick(utc(2026, 6, 15, 3, 0))) == [
        ("TOR", D(2026, 6, 14), "done"),
        ("TYO", D(2026, 6, 14), "done"),
    ]
    assert tick(utc(2026, 6, 15, 12, 59)) == []  # 21:59 in Tokyo
    assert tick(utc(2026, 6, 15, 13, 0)) == [("TYO", D(2026, 6, 15), "done")]  # 22:00 JST
    assert tick(utc(2026, 6, 16, 1, 59)) == []  # 21:59 EDT
    assert tick(utc(2026, 6, 16, 2, 0)) == [("TOR", D(2026, 6, 15), "done")]  # 22:00 EDT
    tokyo_call = next(call for call in job.calls if call[:2] == ("TYO", D(2026, 6, 15)))
    assert tokyo_call[2] == utc(2026, 6, 15, 13, 0)  # the job gets the tick's clock


def test_spring_forward_a_closing_time_the_clock_skips_runs_when_it_jumps(org, job):
    # 2026-03-08 in Toronto: 02:00 EST becomes 03:00 EDT; 02:30 does not exist that night
    make_store(org, "TOR", closing=datetime.time(2, 30))
    assert tick(utc(2026, 3, 7, 8, 0)) == [("TOR", D(2026, 3, 7), "done")]  # 03:00 EST
    assert tick(utc(2026, 3, 8, 6, 59)) == []  # 01:59 EST
    assert tick(utc(2026, 3, 8, 7, 0)) == [("TOR", D(2026, 3, 8), "done")]  # 03:00 EDT
    assert tick(utc(2026, 3, 8, 7, 5)) == []
    assert tick(utc(2026, 3, 9, 6, 29)) == []  # 02:29 EDT the next night
    assert tick(utc(2026, 3, 9, 6, 30)) == [("TOR", D(2026, 3, 9), "done")]


def test_spring_forward_an_evening_closing_follows_the_new_offset(org, job):
    make_store(org, "TOR")  # 22:00: 03:00 UTC in winter, 02:00 UTC after the change
    tick(utc(2026, 3, 8, 3, 0))  # 22:00 EST on the 7th
    assert tick(utc(2026, 3, 9, 1, 59)) == []
    assert tick(utc(2026, 3, 9, 2, 0)) == [("TOR", D(2026, 3, 8), "done")]


def test_fall_back_a_closing_time_that_happens_twice_runs_at_the_first(org, job):
    # 2026-11-01 in Toronto: 02:00 EDT becomes 01:00 EST; 01:30 happens twice
    make_store(org, "TOR", closing=datetime.time(1, 30))
    assert tick(utc(2026, 10, 31, 6, 0)) == [("TOR", D(2026, 10, 31), "done")]
    assert tick(local(TORONTO, 2026, 11, 1, 1, 29)) == []
    first = local(TORONTO, 2026, 11, 1, 1, 30, fold=0)
    second = local(TORONTO, 2026, 11, 1, 1, 30, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == datetime.timedelta(hours=1)
    assert tick(first) == [("TOR", D(2026, 11, 1), "done")]
    assert tick(local(TORONTO, 2026, 11, 1, 1, 0, fold=1)) == []  # the clock went back
    assert tick(second) == []
    assert tick(local(TORONTO, 2026, 11, 1, 3, 0)) == []
    assert job.nights() == [("TOR", D(2026, 10, 31)), ("TOR", D(2026, 11, 1))]


def test_fall_back_an_evening_closing_follows_the_new_offset(org, job):
    make_store(org, "TOR")
    tick(utc(2026, 11, 1, 2, 0))  # 22:00 EDT on the 31st
    assert tick(utc(2026, 11, 2, 2, 59)) == []  # 21:59 EST
    assert tick(utc(2026, 11, 2, 3, 0)) == [("TOR", D(2026, 11, 1), "done")]


def test_closed_weekdays_have_no_night(org, job):
    make_store(org, "TOR", closed_weekdays=[6])  # closed on Sundays
    assert D(2026, 6, 7).weekday() == 6
    assert tick(local(TORONTO, 2026, 6, 6, 22, 5)) == [("TOR", D(2026, 6, 6), "done")]  # Sat
    assert tick(local(TORONTO, 2026, 6, 7, 22, 5)) == []  # Sunday
    assert tick(local(TORONTO, 2026, 6, 8, 21, 0)) == []
    assert tick(local(TORONTO, 2026, 6, 8, 22, 5)) == [("TOR", D(2026, 6, 8), "done")]  # Mon


def test_holidays_have_no_night(org, job):
    make_store(org, "TOR", holidays=["2026-12-25", "2027-01-01"])
    assert tick(local(TORONTO, 2026, 12, 24, 22, 5)) == [("TOR", D(2026, 12, 24), "done")]
    assert tick(local(TORONTO, 2026, 12, 25, 22, 5)) == []
    assert tick(local(TORONTO, 2026, 12, 26, 22, 5)) == [("TOR", D(2026, 12, 26), "done")]


def test_a_missed_night_runs_at_the_next_tick_the_latest_only(org, job):
    make_store(org, "TOR")
    assert tick(local(TORONTO, 2026, 6, 1, 22, 5)) == [("TOR", D(2026, 6, 1), "done")]
    # no tick on Tuesday or Wednesday night (the worker was down); Thursday morning:
    assert tick(local(TORONTO, 2026, 6, 4, 9, 0)) == [("TOR", D(2026, 6, 3), "done")]
    assert tick(local(TORONTO, 2026, 6, 4, 9, 5)) == []
    assert tick(local(TORONTO, 2026, 6, 4, 22, 5)) == [("TOR", D(2026, 6, 4), "done")]
    assert [day for _, day, _ in rows()] == [D(2026, 6, 1), D(2026, 6, 3), D(2026, 6, 4)]


def test_a_missed_night_before_a_closed_day_is_still_made_up(org, job):
    make_store(org, "TOR", closed_weekdays=[6])
    # Saturday night missed; Sunday evening is closed: the latest night due is Saturday's
    assert tick(local(TORONTO, 2026, 6, 7, 22, 5)) == [("TOR", D(2026, 6, 6), "done")]


def test_nights_older_than_the_catch_up_window_are_not_made_up(org, job):
    days = [D(2026, 6, 10) - datetime.timedelta(days=n) for n in range(1, 5)]
    make_store(org, "TOR", holidays=[d.isoformat() for d in days])
    assert scheduling.CATCH_UP_DAYS == 3
    assert tick(local(TORONTO, 2026, 6, 10, 9, 0)) == []  # the 5th is four days back
    assert tick(local(TORONTO, 2026, 6, 10, 22, 0)) == [("TOR", D(2026, 6, 10), "done")]


def test_no_night_before_the_store_existed(org, job):
    store = make_store(org, "NEW")
    Store.objects.filter(pk=store.pk).update(created_at=local(TORONTO, 2026, 6, 10, 15, 0))
    assert tick(local(TORONTO, 2026, 6, 10, 16, 0)) == []  # yesterday's closing was before it
    assert tick(local(TORONTO, 2026, 6, 10, 22, 0)) == [("NEW", D(2026, 6, 10), "done")]


def test_an_archived_store_has_no_night(org, job):
    store = make_store(org, "OLD")
    org_services.store_update(org=org, store=store, changes={"is_active": False})
    assert tick(local(TORONTO, 2026, 6, 10, 22, 5)) == []


def test_a_job_at_a_fixed_local_time(org, registry):
    early = Recorder()
    scheduling.register_nightly_job("early_job", early, at=datetime.time(3, 0))
    make_store(org, "TOR", closed_weekdays=[0])
    assert tick(local(TORONTO, 2026, 6, 9, 3, 5)) == [("TOR", D(2026, 6, 9), "done")]  # Tue
    assert tick(local(TORONTO, 2026, 6, 9, 22, 5)) == []  # its time is 03:00, not closing


def test_every_organisation_every_job(org, registry):
    first, second = Recorder(), Recorder()
    scheduling.register_nightly_job("first", first)
    scheduling.register_nightly_job("second", second)
    other = OrganizationFactory(slug="other-org")
    make_store(org, "A1")
    make_store(other, "B1")
    ran = scheduling.nightly_jobs_run_due(now=local(TORONTO, 2026, 6, 10, 22, 5))
    assert sorted((r.job, r.store.code, r.org_id) for r in ran) == [
        ("first", "A1", org.pk),
        ("first", "B1", other.pk),
        ("second", "A1", org.pk),
        ("second", "B1", other.pk),
    ]


def test_a_tick_with_nothing_due_reads_two_queries(org, job, django_assert_num_queries):
    for n in range(5):
        make_store(org, f"S{n}")
    tick(local(TORONTO, 2026, 6, 10, 22, 5))
    with django_assert_num_queries(2):
        assert tick(local(TORONTO, 2026, 6, 10, 22, 10)) == []


def test_a_naive_clock_is_refused(job):
    with pytest.raises(ValueError):
        scheduling.nightly_jobs_run_due(now=datetime.datetime(2026, 6, 10, 22, 5))


# --- failures -----------------------------------------------------------------------------------


def failing_and_writing(store, local_date, now, actor):
    """Writes first (a location, with its audit event), then fails for store FAIL."""
    org_services.location_create(
        org=store.org,
        store=store,
        code=f"N{local_date:%m%d}",
        name="made by the job",
        kind=LocationKind.OTHER,
        actor=actor,
    )
    if store.code == "FAIL":
        raise ApplicationError("Nothing to pull from.", code="back_room_empty")


def test_a_failing_job_is_recorded_rolled_back_and_the_next_store_still_runs(org, registry, caplog):
    scheduling.register_nightly_job("writer", failing_and_writing)
    failing = make_store(org, "FAIL")
    fine = make_store(org, "FINE")
    with caplog.at_level(logging.INFO, logger="inventory.scheduling"):
        ran = tick(local(TORONTO, 2026, 6, 10, 22, 5))
    assert sorted(ran) == [("FAIL", D(2026, 6, 10), "failed"), ("FINE", D(2026, 6, 10), "done")]
    failed = NightlyJobRun.objects.get(store=failing)
    assert failed.status == NightlyJobStatus.FAILED
    assert failed.error == "ApplicationError: Nothing to pull from."
    assert failed.finished_at is not None
    # the failed night's writes are gone, the other store's kept, by the system actor
    assert not Location.objects.filter(store=failing, code="N0610").exists()
    assert Location.objects.filter(store=fine, code="N0610").exists()
    event = AuditEvent.objects.get(action=AuditAction.LOCATION_CREATED, store=fine)
    assert event.actor.username == scheduling.SYSTEM_USERNAME
    failure = next(r for r in caplog.records if getattr(r, "event", "") == "nightly_job_failed")
    assert failure.levelno == logging.ERROR
    assert (failure.job, failure.store_id, failure.local_date) == (
        "writer",
        failing.pk,
        "2026-06-10",
    )
    assert failure.exc_info is not None
    # a failed night is not retried by later ticks; the next night runs as usual
    assert tick(local(TORONTO, 2026, 6, 10, 23, 0)) == []
    assert sorted(tick(local(TORONTO, 2026, 6, 11, 22, 5))) == [
        ("FAIL", D(2026, 6, 11), "failed"),
        ("FINE", D(2026, 6, 11), "done"),
    ]


def test_a_long_error_is_cut(org, registry):
    scheduling.register_nightly_job(
        "long", Recorder(fail_for="TOR", error=RuntimeError("x" * 10_000))
    )
    make_store(org, "TOR")
    tick(local(TORONTO, 2026, 6, 10, 22, 5))
    error = NightlyJobRun.objects.get().error
    assert len(error) == scheduling.ERROR_MAX_CHARS and error.endswith("…")


class WorkerLost(BaseException):
    """What a worker killed mid-job looks like from inside: nothing catches it."""


def test_a_worker_dying_mid_job_leaves_no_row_and_the_next_tick_runs_the_night(org, registry):
    dying = Recorder(fail_for="TOR", error=WorkerLost())
    scheduling.register_nightly_job("dying", dying)
    make_store(org, "TOR")
    with pytest.raises(WorkerLost):
        tick(local(TORONTO, 2026, 6, 10, 22, 5))
    assert not NightlyJobRun.objects.exists()
    dying.fail_for = None
    assert tick(local(TORONTO, 2026, 6, 10, 22, 10)) == [("TOR", D(2026, 6, 10), "done")]


# --- two workers at once ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_ticking_at_once_run_each_night_once(registry):
    with_scope_off = OrganizationFactory(slug="concurrent")
    slow = Recorder()

    def slow_job(store, local_date, now, actor):
        slow(store, local_date, now, actor)
        time.sleep(0.3)  # both ticks are inside their transactions at once

    scheduling.register_nightly_job("slow", slow_job)
    for code in ("C1", "C2", "C3"):
        make_store(with_scope_off, code)
    now = local(TORONTO, 2026, 6, 10, 22, 5)
    barrier = threading.Barrier(2)
    results: list[list] = [[], []]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = scheduling.nightly_jobs_run_due(now=now)
        except BaseException as exc:  # noqa: BLE001 - asserted in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker is stuck"
    assert not errors, errors
    assert sorted(slow.nights()) == [(c, D(2026, 6, 10)) for c in ("C1", "C2", "C3")]
    assert sum(len(r) for r in results) == 3
    assert rows() == [(c, D(2026, 6, 10), "done") for c in ("C1", "C2", "C3")]
    assert get_user_model().objects.filter(username=scheduling.SYSTEM_USERNAME).count() == 1


# --- the system actor and the registry ----------------------------------------------------------


def test_the_system_actor_cannot_sign_in_and_is_made_once(db):
    actor = scheduling.system_actor()
    assert actor.username == "system"
    assert not actor.is_active and not actor.has_usable_password()
    assert not actor.is_staff and not actor.is_superuser
    assert scheduling.system_actor().pk == actor.pk
    assert Client().login(username="system", password="") is False


def test_a_person_named_system_is_not_acted_as(db, org, job):
    person = get_user_model().objects.create_user(username="system", password="pw 12345 long!")
    make_store(org, "TOR")
    with pytest.raises(scheduling.SystemActorUnavailable):
        tick(local(TORONTO, 2026, 6, 10, 22, 5))
    assert not NightlyJobRun.objects.exists()
    person.refresh_from_db()
    assert person.is_active and person.has_usable_password()


def test_jobs_act_as_the_system_actor(org, job):
    make_store(org, "TOR")
    tick(local(TORONTO, 2026, 6, 10, 22, 5))
    assert job.calls[0][3] == "system"


def test_registration_is_idempotent_and_names_are_not_shared(registry):
    def first(store, local_date, now, actor):
        pass

    def second(store, local_date, now, actor):
        pass

    one = scheduling.register_nightly_job("named", first)
    assert scheduling.register_nightly_job("named", first) is one
    assert list(scheduling.nightly_jobs()) == ["named"]
    with pytest.raises(ValueError, match="Another nightly job"):
        scheduling.register_nightly_job("named", second)
    with pytest.raises(ValueError, match="Another nightly job"):
        scheduling.register_nightly_job("named", first, at=datetime.time(3, 0))
    recorder = Recorder()
    scheduling.register_nightly_job("instance", recorder)
    assert scheduling.register_nightly_job("instance", recorder).run is recorder
    with pytest.raises(ValueError, match="Another nightly job"):  # no name to compare
        scheduling.register_nightly_job("instance", Recorder())
    with pytest.raises(ValueError):
        scheduling.register_nightly_job("bad_at", first, at="dawn")
    with pytest.raises(ValueError):
        scheduling.register_nightly_job("", first)
    with pytest.raises(ValueError):
        scheduling.register_nightly_job(
            "tz", first, at=datetime.time(3, 0, tzinfo=ZoneInfo(TORONTO))
        )


# --- the Celery task and the beat entry ---------------------------------------------------------


def test_the_task_runs_what_is_due_now(org, registry):
    scheduling.register_nightly_job("now_job", Recorder(fail_for="BAD"))
    # closing at midnight: due from the first minute of any day
    make_store(org, "OK", tz="UTC", closing=datetime.time(0, 0))
    make_store(org, "BAD", tz="UTC", closing=datetime.time(0, 0))
    assert nightly_jobs.apply().get() == {"done": 1, "failed": 1}
    assert nightly_jobs.apply().get() == {"done": 0, "failed": 0}


def test_the_beat_ticks_every_five_minutes_and_keeps_the_nightly_reconciliation():
    entry = settings.CELERY_BEAT_SCHEDULE["nightly-jobs"]
    assert entry["task"] == "inventory.nightly_jobs" == nightly_jobs.name
    assert entry["schedule"].minute == set(range(0, 60, 5))
    assert entry["options"]["expires"] < 300
    reconcile = settings.CELERY_BEAT_SCHEDULE["reconcile-inventory-nightly"]
    assert reconcile["task"] == "inventory.reconcile_inventory_nightly"


# --- the store schedule: service, API, admin ----------------------------------------------------


def test_a_new_store_closes_at_22_every_day_by_default(org):
    store = org_services.store_create(org=org, code="DEF", name="Default")
    store.refresh_from_db()
    assert (store.closing_time, store.closed_weekdays, store.holidays) == (
        datetime.time(22, 0),
        [],
        [],
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"closing_time": "25:00"}, "closing_time"),
        ({"closing_time": "22:00:30"}, "closing_time"),
        ({"closing_time": datetime.time(22, 0, 30)}, "closing_time"),
        ({"closing_time": None}, "closing_time"),
        ({"closing_time": datetime.time(22, 0, tzinfo=UTC)}, "closing_time"),
        ({"closed_weekdays": [7]}, "closed_weekdays.0"),
        ({"closed_weekdays": [0, -1]}, "closed_weekdays.1"),
        ({"closed_weekdays": [True]}, "closed_weekdays.0"),
        ({"closed_weekdays": ["6"]}, "closed_weekdays.0"),
        ({"closed_weekdays": [1, 1]}, "closed_weekdays"),
        ({"closed_weekdays": "6"}, "closed_weekdays"),
        ({"holidays": ["2026-13-01"]}, "holidays.0"),
        ({"holidays": ["20261225"]}, "holidays.0"),
        ({"holidays": ["2026-12-25T00:00"]}, "holidays.0"),
        ({"holidays": [datetime.datetime(2026, 12, 25, tzinfo=UTC)]}, "holidays.0"),
        ({"holidays": ["2026-12-25", datetime.date(2026, 12, 25)]}, "holidays"),
        ({"holidays": [20261225]}, "holidays.0"),
        ({"holidays": {"2026-12-25": True}}, "holidays"),
        ({"holidays": ["2026-01-01"] * 1001}, "holidays"),
    ],
)
def test_the_service_refuses_a_bad_schedule_naming_the_field(org, store, changes, field):
    with pytest.raises(ApplicationError) as refused:
        org_services.store_update(org=org, store=store, changes=changes)
    assert refused.value.status == 400 and refused.value.code == "invalid"
    assert list(refused.value.fields) == [field]
    store.refresh_from_db()
    assert (store.closing_time, store.closed_weekdays, store.holidays) == (
        datetime.time(22, 0),
        [],
        [],
    )
    if changes != {"closing_time": None}:  # on create, None is the default closing time
        with pytest.raises(ApplicationError):
            org_services.store_create(org=org, code="NEW", name="New", **changes)
        assert not Store.objects.filter(code="NEW").exists()


def test_the_service_stores_the_schedule_sorted_and_audits_it(org, store):
    org_services.store_update(
        org=org,
        store=store,
        changes={
            "closing_time": "23:30",
            "closed_weekdays": (6, 0),
            "holidays": [datetime.date(2027, 1, 1), "2026-12-25"],
        },
    )
    store.refresh_from_db()
    assert store.closing_time == datetime.time(23, 30)
    assert store.closed_weekdays == [0, 6]
    assert store.holidays == ["2026-12-25", "2027-01-01"]
    event = AuditEvent.objects.filter(action=AuditAction.STORE_UPDATED).latest("pk")
    assert event.after == {
        "closing_time": "23:30:00",
        "closed_weekdays": [0, 6],
        "holidays": ["2026-12-25", "2027-01-01"],
    }
    org_services.store_update(org=org, store=store, changes={"closed_weekdays": None})
    store.refresh_from_db()
    assert store.closed_weekdays == []


def test_the_api_reads_and_writes_the_schedule(org, admin_client):
    created = admin_client.post(
        "/api/v1/stores",
        {
            "code": "S9",
            "name": "Ninth",
            "closing_time": "21:15",
            "closed_weekdays": [6],
            "holidays": ["2026-12-25"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["closing_time"], body["closed_weekdays"], body["holidays"]) == (
        "21:15",
        [6],
        ["2026-12-25"],
    )
    changed = admin_client.patch(
        f"/api/v1/stores/{body['id']}",
        {"closed_weekdays": [6, 0], "holidays": ["2027-01-01", "2026-12-25"]},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["closed_weekdays"] == [0, 6]
    assert changed.json()["holidays"] == ["2026-12-25", "2027-01-01"]
    assert changed.json()["closing_time"] == "21:15"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"closing_time": "25:00"}, "closing_time"),
        ({"closing_time": "22:00:00"}, "closing_time"),
        ({"closing_time": "10pm"}, "closing_time"),
        ({"closing_time": None}, "closing_time"),
        ({"closed_weekdays": [7]}, "closed_weekdays.0"),
        ({"closed_weekdays": [2, 2]}, "closed_weekdays"),
        ({"closed_weekdays": [True]}, "closed_weekdays.0"),
        ({"closed_weekdays": [1.5]}, "closed_weekdays.0"),
        ({"closed_weekdays": list(range(8))}, "closed_weekdays"),
        ({"closed_weekdays": None}, "closed_weekdays"),
        ({"closed_weekdays": "6"}, "closed_weekdays"),
        ({"holidays": ["2026-02-30"]}, "holidays.0"),
        ({"holidays": ["2026-12-25", "2026-12-25"]}, "holidays"),
        ({"holidays": ["1900-01-01"]}, "holidays.0"),
        ({"holidays": "2026-12-25"}, "holidays"),
    ],
)
def test_the_api_refuses_a_bad_schedule_naming_the_field(org, store, admin_client, body, field):
    response = admin_client.patch(f"/api/v1/stores/{store.pk}", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    store.refresh_from_db()
    assert (store.closing_time, store.closed_weekdays, store.holidays) == (
        datetime.time(22, 0),
        [],
        [],
    )


def test_only_store_managers_change_the_schedule(org, store, client_for):
    response = client_for(Role.MANAGER).patch(
        f"/api/v1/stores/{store.pk}", {"closed_weekdays": [6]}, format="json"
    )
    assert response.status_code == 403
    store.refresh_from_db()
    assert store.closed_weekdays == []


ADMIN_PASSWORD = "schedule through the admin 1!"


def admin_signed_in(org) -> Client:
    boss = MembershipFactory(org=org, role=Role.ADMIN)
    boss.user.set_password(ADMIN_PASSWORD)
    boss.user.save()
    client = Client()
    assert client.login(username=boss.user.username, password=ADMIN_PASSWORD)
    return client


def admin_store_form(store, **schedule) -> dict:
    return {
        "code": store.code,
        "name": store.name,
        "time_zone": store.time_zone,
        "cova_location_id": "",
        "external_ids": "{}",
        "is_active": "on",
        "closing_time": "22:00",
        "closed_weekdays": "[]",
        "holidays": "[]",
        "locations-TOTAL_FORMS": "0",
        "locations-INITIAL_FORMS": "0",
        **schedule,
    }


def test_the_admin_edits_the_schedule_through_the_service(org, store):
    client = admin_signed_in(org)
    page = client.get(f"/admin/inventory/store/{store.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="closed_weekdays"' in content and 'name="holidays"' in content
    assert "nightly jobs (last two weeks)" in content.lower()
    response = client.post(
        f"/admin/inventory/store/{store.pk}/change/",
        admin_store_form(
            store, closing_time="21:00", closed_weekdays="[6, 0]", holidays='["2026-12-25"]'
        ),
        follow=True,
    )
    assert response.status_code == 200
    store.refresh_from_db()
    assert (store.closing_time, store.closed_weekdays, store.holidays) == (
        datetime.time(21, 0),
        [0, 6],
        ["2026-12-25"],
    )
    refused = client.post(
        f"/admin/inventory/store/{store.pk}/change/",
        admin_store_form(store, closed_weekdays="[9]"),
        follow=True,
    )
    assert refused.status_code == 200
    assert any("weekday" in str(m).lower() for m in refused.context["messages"])
    store.refresh_from_db()
    assert store.closed_weekdays == [0, 6]


def test_the_admin_lists_the_stores_recent_nights(org, store, job):
    Store.objects.filter(pk=store.pk).update(created_at=LONG_AGO)
    failing = Recorder(fail_for=store.code)
    scheduling.register_nightly_job("failing_job", failing)
    today = datetime.datetime.now(UTC).astimezone(ZoneInfo(store.time_zone)).date()
    moment = datetime.datetime.combine(today, datetime.time(23, 0), ZoneInfo(store.time_zone))
    scheduling.nightly_jobs_run_due(now=moment)
    page = admin_signed_in(org).get(f"/admin/inventory/store/{store.pk}/change/")
    content = page.content.decode()
    assert "failing_job" in content and "the back room is on fire" in content
    assert "test_job" in content
