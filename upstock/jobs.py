"""The nightly upstock: after a store closes, each of its sales floors gets the night's run.

Registered with the platform's one scheduler (``inventory.scheduling``) from
``UpstockConfig.ready``. The scheduler decides when (the store's closing time in its time zone,
not on closed weekdays or holidays, once per night, a missed night made up at the next tick)
and calls ``nightly_upstock`` inside the store's tenant scope and the night's transaction,
acting as the ``system`` user, so the audit trail and the run's ``created_by_job`` name the job.
"""

from __future__ import annotations

import datetime

from inventory.models import Store
from inventory.scheduling import register_nightly_job
from upstock.services import runs

JOB_NAME = "nightly_upstock"


def nightly_upstock(store: Store, local_date: datetime.date, now: datetime.datetime, actor) -> None:
    """Create tonight's run for every sales floor of ``store`` (``run_create`` computes the
    window since the floor's last run and its lines, and abandons what is left of an
    unfinished run).

    All the store's floors or none: the scheduler runs this in one savepoint, so a floor that
    fails leaves the night ``failed`` with no run at the other floors either, rather than a
    night half done that the run table says is finished.
    """
    runs.runs_create_nightly(org=store.org, store=store, now=now, actor=actor, job=JOB_NAME)


def register() -> None:
    """Join the scheduler (idempotent: ``ready()`` may run more than once)."""
    register_nightly_job(JOB_NAME, nightly_upstock, at="closing")
