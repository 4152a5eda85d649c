"""Celery tasks. Tasks take ids and re-enter the tenant scope themselves."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django_scopes import scopes_disabled

from inventory import scheduling
from inventory.models import Membership, NightlyJobStatus, Organization, Role
from inventory.reports.reconciliation import ReconciliationReport, stock_reconciliation_run
from inventory.tenancy.scope import tenant_scope


@shared_task(name="inventory.ping")
def ping(payload: str = "pong") -> str:
    """Smoke task: proves a worker picks work off the broker and answers."""
    return payload


def reconciliation_recipients(org: Organization) -> list[str]:
    """The organisation's active admins: they own the stock records and can act on them."""
    with tenant_scope(org):
        emails = (
            Membership.objects.filter(role=Role.ADMIN, is_active=True, user__is_active=True)
            .exclude(user__email="")
            .order_by("user__email")
            .values_list("user__email", flat=True)
        )
        return list(dict.fromkeys(emails))


@shared_task(name="inventory.send_reconciliation_email")
def send_reconciliation_email(org_id: int, subject: str, body: str) -> int:
    """Mail a reconciliation report to the organisation's admins; returns how many got it."""
    with scopes_disabled():
        org = Organization.objects.get(pk=org_id)
    recipients = reconciliation_recipients(org)
    if not recipients:
        return 0
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    return len(recipients)


def reconciliation_email_queue(report: ReconciliationReport) -> None:
    """Queue the admins' e-mail for a report that is not ok (ids and text only: JSON-safe)."""
    send_reconciliation_email.delay(
        report.org.pk, f"[{report.org.slug}] {report.summary()}", report.as_text()
    )


@shared_task(name="inventory.reconcile_inventory_nightly")
def reconcile_inventory_nightly(org_ids: list[int] | None = None) -> dict[str, bool]:
    """Check invariants 1–2 for each organisation (all when ``org_ids`` is None).

    Each organisation is checked inside its own tenant scope (which sets its
    ``stock_out_of_sync_items{org=…,scope="all"}`` gauge); its admins are e-mailed when
    anything is off. Returns ``{org slug: ok}``.
    """
    with scopes_disabled():
        orgs = Organization.objects.order_by("pk")
        if org_ids is not None:
            orgs = orgs.filter(pk__in=org_ids)
        orgs = list(orgs)
    results: dict[str, bool] = {}
    for org in orgs:
        with tenant_scope(org):
            report = stock_reconciliation_run(org=org)
        if not report.ok:
            reconciliation_email_queue(report)
        results[org.slug] = report.ok
    return results


@shared_task(name="inventory.nightly_jobs")
def nightly_jobs() -> dict[str, int]:
    """The scheduler's tick (beat, every five minutes): run every store's due nightly jobs.

    Ticks are cheap when nothing is due and safe to overlap or repeat (each night runs once),
    so a tick that waited in the queue or ran on two workers does no harm. Returns how many
    nights this tick ran, by outcome.
    """
    runs = scheduling.nightly_jobs_run_due()
    return {
        "done": sum(run.status == NightlyJobStatus.DONE for run in runs),
        "failed": sum(run.status == NightlyJobStatus.FAILED for run in runs),
    }
