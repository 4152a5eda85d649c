"""Celery tasks of the discrepancies app. Tasks take ids and re-enter the tenant scope
themselves; the rules are in the services they call."""

from __future__ import annotations

import logging
from smtplib import SMTPException

from celery import shared_task
from django_scopes import scopes_disabled

from discrepancies.services.notifications import discrepancies_notify
from inventory.models import Organization
from inventory.tenancy.scope import tenant_scope

logger = logging.getLogger("discrepancies")


@shared_task(
    name="discrepancies.notify_serious",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=6,
)
def notify_serious_discrepancies(org_id: int, ids: list[int]) -> int:
    """E-mail the managers and admins about the open HIGH/CRITICAL discrepancies ``ids`` of
    one recording (``discrepancies_notify``); returns how many e-mails went out. A mail
    server that fails is retried with backoff; what was sent before is never sent again."""
    with scopes_disabled():
        org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # purged since: nobody left to tell
        return 0
    with tenant_scope(org):
        result = discrepancies_notify(org=org, ids=ids)
    if result.notified:
        logger.info(
            "discrepancies_notified %s rows, %s e-mails",
            len(result.notified),
            result.emails,
            extra={
                "event": "discrepancies_notified",
                "org_id": org.pk,
                "discrepancies": result.notified,
                "emails": result.emails,
            },
        )
    return result.emails
