"""Hooks that tell people and monitoring about discrepancies.

* E-mail: when a recording finds open HIGH or CRITICAL discrepancies (``serious`` in the
  ``discrepancies_recorded`` signal), ONE Celery task is queued for the whole recording once
  its transaction commits (``transaction.on_commit``): a rolled-back recording mails nobody,
  and a count with a thousand serious rows is one task and one e-mail per person, not a
  thousand. The task calls ``discrepancies.services.notifications``.
* ``stock_discrepancies_open_total{org, severity}``: open discrepancies (``open_q``) per
  organisation and severity, counted when ``/metrics`` is scraped — one grouped statement over
  the ``(org, status, severity)`` index — so the figure is never stale and no service has to
  remember to publish it. Every organisation has its four series, zero included.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics import register_collector
from discrepancies.models import Discrepancy, Severity, open_q
from discrepancies.signals import discrepancies_recorded
from discrepancies.tasks import notify_serious_discrepancies
from inventory.models import Organization

logger = logging.getLogger("discrepancies")

OPEN_GAUGE = "stock_discrepancies_open_total"
OPEN_GAUGE_HELP = (
    "Open discrepancies (new, under review, or approved with a correction still to post) "
    "per organisation and severity"
)


def serious_recorded(sender, *, org, serious, **kwargs) -> None:
    """Queue the e-mail task for a recording's serious discrepancies, after the commit."""
    if not serious:
        return
    org_id, ids = org.pk, sorted(serious)
    # robust: a broker that is down must not turn a committed recording into an error for
    # the person who made it; the rows keep notified_at empty.
    transaction.on_commit(
        lambda: notify_serious_discrepancies.delay(org_id, ids),
        robust=True,
    )


def open_discrepancy_counts() -> list[tuple[str, str, int]]:
    """(org slug, severity, open discrepancies) for every organisation and severity.

    One statement: every organisation left-joined to the open discrepancies grouped by
    (org, severity); organisations without any get zeros."""
    grouped = (
        Discrepancy.unscoped.filter(open_q())
        .values("org_id", "severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    sql, params = grouped.query.sql_with_params()
    orgs = Organization._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.slug, g.severity, g.n FROM {orgs} o "  # noqa: S608 - table names only
            f"LEFT JOIN ({sql}) g ON g.org_id = o.id ORDER BY o.slug",
            params,
        )
        rows = cursor.fetchall()
    counts: dict[str, dict[str, int]] = {}
    for slug, severity, n in rows:
        per_severity = counts.setdefault(slug, dict.fromkeys(Severity.values, 0))
        if severity is not None:
            per_severity[severity] = int(n)
    return [(slug, sev, n) for slug, values in counts.items() for sev, n in values.items()]


class OpenDiscrepanciesCollector(Collector):
    """Serves ``stock_discrepancies_open_total`` from the database at scrape time."""

    def describe(self):
        # Registering asks for the names, possibly before there is a database: no query.
        yield GaugeMetricFamily(OPEN_GAUGE, OPEN_GAUGE_HELP, labels=["org", "severity"])

    def collect(self):
        try:
            rows = open_discrepancy_counts()
        except Exception as exc:  # noqa: BLE001 - a database outage must not take /metrics down
            logger.warning(
                "open discrepancies unavailable: %s: %s",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            return
        family = GaugeMetricFamily(OPEN_GAUGE, OPEN_GAUGE_HELP, labels=["org", "severity"])
        for slug, severity, n in rows:
            family.add_metric([slug, severity], n)
        yield family


_registered = False


def register() -> None:
    """Register this module's hooks (called once from ``DiscrepanciesConfig.ready``)."""
    global _registered
    discrepancies_recorded.connect(
        serious_recorded, sender=Discrepancy, dispatch_uid="discrepancies.notifications"
    )
    if not _registered:  # a second ready() (tests reloading apps) must not register twice
        register_collector(OpenDiscrepanciesCollector())
        _registered = True
