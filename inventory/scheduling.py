"""The one scheduler of nightly jobs: each store's jobs run once per local night, after closing.

Apps register a job from their ``AppConfig.ready`` (``register_nightly_job``); a Celery beat
entry calls ``nightly_jobs_run_due`` every few minutes (``inventory.tasks.nightly_jobs``). The
tick itself decides what is due, so nothing has to be scheduled per store or per time zone, a
change of closing time or time zone applies from the next tick, and a tick that did not happen
(worker or beat down) is made up by the next one.

When a job is due for a store on local date D:

- the store is active, and its local wall-clock time has passed the job's time on D (its
  ``closing_time`` for ``at="closing"``): local times are compared, not UTC offsets, so the
  night a clock springs forward over the closing time the job runs at the first tick after
  the gap, and the night it falls back the job runs at the first pass of that time (the second
  finds the night done);
- D is not one of the store's closed weekdays nor one of its holidays;
- D is the latest such date (a missed night is made up once, not night after night), no older
  than ``CATCH_UP_DAYS`` and not before the store existed;
- no ``NightlyJobRun`` for (job, store, D) exists.

Exactly once: the run row is inserted first, in the same transaction as the job's work, under
a unique constraint on (job, store, local date). A second worker or beat inserting the same
row waits for the first to commit and then skips the night; a worker that dies mid-job rolls
both back and the next tick runs the night again. A job that raises is rolled back to a
savepoint, its row is kept as ``failed`` with the error, the failure is logged, and the other
stores and jobs still run. A failed night is not retried automatically (it may have failed for
a reason that needs a person); see docs/operations.md.

Jobs act as ``system_actor()``, an inactive user without a usable password, so the audit trail
names the nightly job rather than nobody.
"""

from __future__ import annotations

import datetime
import logging
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from inventory.models import NightlyJobRun, NightlyJobStatus, Store
from inventory.tenancy.scope import tenant_scope

logger = logging.getLogger(__name__)

#: The user nightly jobs act as (``system_actor``). People's usernames are e-mail addresses,
#: so this one cannot be a person's.
SYSTEM_USERNAME = "system"

#: A night older than this many days is not made up: after a longer outage the jobs start again
#: from the latest night.
CATCH_UP_DAYS = 3

#: The error kept on a failed run row is cut to this many characters (the log has it whole).
ERROR_MAX_CHARS = 2000

#: ``run(store, local_date, now, actor)``: what a job does for one store and night.
JobCallable = Callable[[Store, datetime.date, datetime.datetime, Any], None]


@dataclass(frozen=True)
class NightlyJob:
    name: str
    run: JobCallable
    #: "closing" (the store's closing time) or a local wall-clock time
    at: str | datetime.time = "closing"

    def time_for(self, store: Store) -> datetime.time:
        """The local time of ``store`` after which the job is due."""
        if isinstance(self.at, datetime.time):
            return self.at
        return store.closing_time


_registry: dict[str, NightlyJob] = {}


class SystemActorUnavailable(RuntimeError):
    """A user named ``system`` exists that can sign in: nightly jobs refuse to act as it."""


def _same_callable(a: Callable, b: Callable) -> bool:
    """The same function, or the same function of a module imported again."""
    name = getattr(a, "__qualname__", None)
    return a is b or (
        name is not None
        and name == getattr(b, "__qualname__", None)
        and getattr(a, "__module__", None) == getattr(b, "__module__", None)
    )


def register_nightly_job(
    name: str, run: JobCallable, *, at: str | datetime.time = "closing"
) -> NightlyJob:
    """Register ``run`` as nightly job ``name`` (call it from ``AppConfig.ready``).

    Registering the same job again is a no-op, so a ``ready()`` that runs twice (tests, a
    reloaded module) is harmless; another function under a taken name is a programming error
    and raises, since the run table keys nights by name and the two would share them.
    """
    if not name or len(name) > NightlyJobRun._meta.get_field("job").max_length:
        raise ValueError(f"A nightly job needs a name of 1-100 characters, not {name!r}.")
    if not (at == "closing" or isinstance(at, datetime.time)):
        raise ValueError(f"at must be 'closing' or a datetime.time, not {at!r}.")
    if isinstance(at, datetime.time) and at.tzinfo is not None:
        raise ValueError("at is a store's local wall-clock time: give it without a time zone.")
    job = NightlyJob(name=name, run=run, at=at)
    existing = _registry.get(name)
    if existing is not None:
        if not _same_callable(existing.run, run) or existing.at != at:
            raise ValueError(f"Another nightly job is registered as {name!r}.")
        return existing
    _registry[name] = job
    return job


def nightly_jobs() -> dict[str, NightlyJob]:
    """The registered jobs by name."""
    return dict(_registry)


def system_actor():
    """The user nightly jobs act as: ``system``, created inactive and without a usable
    password, so nobody can sign in as it and the audit trail names it.

    A user of that name who can sign in (active, with a password, staff) is someone's account:
    the jobs refuse it (``SystemActorUnavailable``) rather than act as that person.
    """
    User = get_user_model()
    user, _ = User.objects.get_or_create(
        **{User.USERNAME_FIELD: SYSTEM_USERNAME},
        defaults={
            "is_active": False,
            "first_name": "System",
            "last_name": "(nightly jobs)",
            "password": make_password(None),
        },
    )
    if user.is_active or user.has_usable_password() or user.is_staff or user.is_superuser:
        raise SystemActorUnavailable(
            f"The user '{SYSTEM_USERNAME}' can sign in: nightly jobs will not act as it. "
            "Rename that account (nightly jobs create their own)."
        )
    return user


def _closing_moment(store: Store, day: datetime.date, at: datetime.time, tz) -> datetime.datetime:
    return datetime.datetime.combine(day, at, tzinfo=tz)


def is_open_day(store: Store, day: datetime.date) -> bool:
    """Whether ``store`` opens on ``day`` (not a closed weekday nor a holiday)."""
    return day.weekday() not in (store.closed_weekdays or []) and day.isoformat() not in (
        store.holidays or []
    )


def night_due(job: NightlyJob, store: Store, now: datetime.datetime) -> datetime.date | None:
    """The local date whose night ``job`` should have run for ``store`` by ``now``, if any:
    the latest open day whose job time has passed on the store's wall clock, within
    ``CATCH_UP_DAYS`` and not before the store existed. Whether it ran is not looked at."""
    tz = zoneinfo.ZoneInfo(store.time_zone)
    local = now.astimezone(tz)
    at = job.time_for(store)
    # wall-clock compare: datetime.time ignores the fold, so 01:30 of a fall-back night is
    # passed at its first occurrence, and a time the clock skipped is passed once it jumps
    day = local.date()
    if local.time() < at:
        day -= datetime.timedelta(days=1)
    oldest = local.date() - datetime.timedelta(days=CATCH_UP_DAYS)
    while day >= oldest:
        if _closing_moment(store, day, at, tz) < store.created_at:
            return None
        if is_open_day(store, day):
            return day
        day -= datetime.timedelta(days=1)
    return None


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def _log(
    level: int, message: str, run: NightlyJobRun, seconds: float, exc_info=None, **extra
) -> None:
    logger.log(
        level,
        "%s %s store %s night %s (%.2f s)",
        message,
        run.job,
        run.store_id,
        run.local_date,
        seconds,
        extra={
            "event": message.replace(" ", "_"),
            "job": run.job,
            "org_id": run.org_id,
            "store_id": run.store_id,
            "local_date": run.local_date.isoformat(),
            "seconds": round(seconds, 3),
            **extra,
        },
        exc_info=exc_info,
    )


def nightly_job_run(
    *, job: NightlyJob, store: Store, local_date: datetime.date, now: datetime.datetime, actor
) -> NightlyJobRun | None:
    """Run ``job`` for ``store``'s night ``local_date`` unless it has run: the run row and the
    job's work commit together. None when another worker had the night."""
    started = time.monotonic()
    with tenant_scope(store.org_id), transaction.atomic():
        try:
            with transaction.atomic():
                run = NightlyJobRun.objects.create(
                    org_id=store.org_id,
                    job=job.name,
                    store=store,
                    local_date=local_date,
                    status=NightlyJobStatus.RUNNING,
                    started_at=now,
                )
        except IntegrityError:
            return None  # another tick has (had) this night: it waited for that one to commit
        try:
            with transaction.atomic():
                job.run(store, local_date, now, actor)
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop other nights
            seconds = time.monotonic() - started
            run.status, run.error = NightlyJobStatus.FAILED, _error_text(exc)
            _log(logging.ERROR, "nightly job failed", run, seconds, exc, error=run.error)
        else:
            seconds = time.monotonic() - started
            run.status = NightlyJobStatus.DONE
            _log(logging.INFO, "nightly job done", run, seconds)
        run.finished_at = now + datetime.timedelta(seconds=seconds)
        run.save(update_fields=["status", "error", "finished_at"])
    return run


def nightly_jobs_run_due(*, now: datetime.datetime | None = None) -> list[NightlyJobRun]:
    """Run every registered job that is due for every active store at ``now`` (the clock;
    tests pass their own), each store's night in its own transaction. Returns the runs this
    call made (done or failed); nights another worker had are not among them.

    Two queries when nothing is due (the stores, and the nights already run).
    """
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be an aware datetime")
    jobs = list(_registry.values())
    if not jobs:
        return []
    with scopes_disabled():
        stores = list(
            Store.unscoped.filter(is_active=True).select_related("org").order_by("org_id", "pk")
        )
        due = [
            (job, store, day)
            for store in stores
            for job in jobs
            if (day := night_due(job, store, now)) is not None
        ]
        if not due:
            return []
        ran = set(
            NightlyJobRun.unscoped.filter(
                store_id__in={store.pk for _, store, _ in due},
                local_date__gte=min(day for _, _, day in due),
            ).values_list("job", "store_id", "local_date")
        )
    due = [(job, store, day) for job, store, day in due if (job.name, store.pk, day) not in ran]
    if not due:
        return []
    actor = system_actor()
    runs: list[NightlyJobRun] = []
    for job, store, day in due:
        try:
            run = nightly_job_run(job=job, store=store, local_date=day, now=now, actor=actor)
        except Exception:  # recording the night failed (the database): the next tick retries
            logger.exception(
                "nightly job not recorded %s store %s night %s",
                job.name,
                store.pk,
                day,
                extra={
                    "event": "nightly_job_not_recorded",
                    "job": job.name,
                    "org_id": store.org_id,
                    "store_id": store.pk,
                    "local_date": day.isoformat(),
                },
            )
            continue
        if run is not None:
            runs.append(run)
    return runs
