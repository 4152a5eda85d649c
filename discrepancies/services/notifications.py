"""E-mail about serious discrepancies: who hears of which, and what the message says.

A recording (a count's reconciliation, a correction, a shortfall...) may find several open
HIGH or CRITICAL discrepancies at once; the people who must act on them — the managers of
their store (limited to that store or to none) and the organisation's admins — each get ONE
e-mail listing every one of theirs, never one e-mail per row. A person limited to other stores
hears nothing of a store they may not open.

``discrepancies_notify`` is what the Celery task calls (``discrepancies.tasks``). It is
idempotent: it locks the discrepancies, mails only those not yet notified, and sets their
``notified_at`` in the same transaction as the sending, so a retried task (or two workers
running the same task) never mails a discrepancy twice; a failure to send rolls the marks
back and the retry sends again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from discrepancies.locks import lock_discrepancies
from discrepancies.models import SERIOUS, Discrepancy, Severity
from inventory.models import Location, Membership, MembershipStore, Organization, Role
from inventory.models.stock import quantity_text

#: Who is told: the people who may decide serious discrepancies of a store.
NOTIFIED_ROLES = (Role.MANAGER, Role.ADMIN)


def discrepancy_admin_path(pk: int) -> str:
    """Where a discrepancy is decided in the Django admin (a path: the site's host varies)."""
    return f"/admin/discrepancies/discrepancy/{pk}/change/"


@dataclass
class Recipient:
    email: str
    name: str
    role: str
    store_ids: frozenset[int] | None  # None: every store of the organisation

    def may_see(self, store_id: int) -> bool:
        return self.store_ids is None or store_id in self.store_ids


def notification_recipients(*, org: Organization) -> list[Recipient]:
    """The organisation's active managers and admins with an e-mail address, with the stores
    each is limited to (two queries, whatever the number of people)."""
    people = list(
        Membership.objects.filter(
            org=org, is_active=True, user__is_active=True, role__in=NOTIFIED_ROLES
        )
        .exclude(user__email="")
        .order_by("user__email", "pk")
        .values_list("pk", "role", "user__email", "user__first_name", "user__last_name")
    )
    limits: dict[int, set[int]] = {}
    for membership_id, store_id in MembershipStore.objects.filter(
        org=org, membership_id__in=[p[0] for p in people]
    ).values_list("membership_id", "store_id"):
        limits.setdefault(membership_id, set()).add(store_id)
    recipients: dict[str, Recipient] = {}
    for pk, role, email, first, last in people:
        key = email.strip().lower()
        if key in recipients:  # one person, one e-mail (two accounts sharing an address)
            continue
        stores = limits.get(pk)
        recipients[key] = Recipient(
            email=email.strip(),
            name=f"{first} {last}".strip() or email,
            role=role,
            store_ids=frozenset(stores) if stores else None,
        )
    return list(recipients.values())


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + quantity_text(value)


def _line(d: Discrepancy, locations: dict[int, Location]) -> str:
    place = d.store.code
    location = locations.get(d.location_id) if d.location_id else None
    if location is not None:
        place += f" / {location.code} {location.name}"
    return "\n".join(
        (
            f"- {d.severity} #{d.pk}: {d.product.sku} {d.product.name}",
            f"  at {place} ({d.store.name})",
            f"  variance {_signed(d.variance)} (expected {quantity_text(d.expected)}, "
            f"actual {quantity_text(d.actual)}), value {_money(d.value)} at cost",
            f"  source {d.get_source_display()}"
            + (f" ({d.source_ref})" if d.source_ref else "")
            + f", type {d.get_kind_display()}, status {d.get_status_display()}",
            f"  decide it: {discrepancy_admin_path(d.pk)}",
        )
    )


def notification_message(
    *, org: Organization, recipient: Recipient, discrepancies: Sequence[Discrepancy], locations
) -> tuple[str, str]:
    """The subject and text of one recipient's e-mail about ``discrepancies`` (theirs)."""
    n = len(discrepancies)
    critical = sum(1 for d in discrepancies if d.severity == Severity.CRITICAL)
    stores = sorted({d.store.code for d in discrepancies})
    subject = (
        f"[{org.slug}] {n} serious stock discrepanc{'y' if n == 1 else 'ies'} to decide"
        + (f" ({critical} critical)" if critical else "")
        + f" at {', '.join(stores)}"
    )
    body = "\n".join(
        (
            f"Hello {recipient.name},",
            "",
            f"{n} open HIGH or CRITICAL stock discrepanc{'y was' if n == 1 else 'ies were'} "
            f"recorded in {org.name} ({org.slug}). While open, each holds its product at its "
            "store: an admin (or, below the escalation threshold, a manager) must approve or "
            "reject it.",
            "",
            *(_line(d, locations) for d in discrepancies),
            "",
            f"You are told because you are {'an' if recipient.role == Role.ADMIN else 'a'} "
            f"{recipient.role} of {'these stores' if len(stores) > 1 else 'this store'}.",
        )
    )
    return subject, body


@dataclass
class NotifyResult:
    notified: list[int] = field(default_factory=list)  # discrepancies marked notified
    emails: int = 0


def discrepancies_notify(*, org: Organization, ids: Iterable[int]) -> NotifyResult:
    """E-mail the people who must act on the open HIGH/CRITICAL discrepancies among ``ids``
    that were not notified yet — one e-mail per person listing every one of theirs — and mark
    them notified.

    One transaction: locks the discrepancies (``lock_discrepancies``, in id order), sends
    through one mail connection, sets ``notified_at``. A sending error rolls the marks back
    (the caller retries); a discrepancy decided before the task ran is not mailed. A
    discrepancy nobody may be told of (no manager or admin with an address) is still marked,
    so a retry does not look for them again.
    """
    result = NotifyResult()
    with transaction.atomic():
        locked = lock_discrepancies(org=org, ids=ids, with_names=True)
        due = sorted(
            (
                d
                for d in locked.values()
                if d.notified_at is None and d.is_open and d.severity in SERIOUS
            ),
            key=lambda d: (-d.severity_rank, d.pk),
        )
        if not due:
            return result
        locations = Location.objects.in_bulk({d.location_id for d in due if d.location_id})
        messages = []
        for recipient in notification_recipients(org=org):
            theirs = [d for d in due if recipient.may_see(d.store_id)]
            if not theirs:
                continue
            subject, body = notification_message(
                org=org, recipient=recipient, discrepancies=theirs, locations=locations
            )
            messages.append(
                EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email])
            )
        if messages:
            result.emails = get_connection(fail_silently=False).send_messages(messages) or 0
        result.notified = [d.pk for d in due]
        Discrepancy.objects.filter(org=org, pk__in=result.notified).update(
            notified_at=timezone.now()
        )
    return result
