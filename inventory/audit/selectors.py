"""Reading the audit trail: set-based, one query per page, newest first.

Every filter meets an index leading with the organisation (``AuditEvent.Meta.indexes``) or a
foreign key's own index, so keyset pages over ``-id`` stay fast however long the trail grows.
"""

from __future__ import annotations

import datetime

from django.db.models import Model, Q, QuerySet

from inventory.models import AuditEvent, Organization

#: Filter name -> the lookup it applies (``occurred_to`` is exclusive, as in the ledger).
AUDIT_FILTERS = {
    "action": "action",
    "object_type": "object_type",
    "object_id": "object_id",
    "actor": "actor_id",
    "store": "store_id",
    "occurred_from": "occurred_at__gte",
    "occurred_to": "occurred_at__lt",
}


def audit_event_list(
    *,
    org: Organization,
    store_ids: frozenset[int] | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    actor: int | None = None,
    store: int | None = None,
    occurred_from: datetime.datetime | None = None,
    occurred_to: datetime.datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The organisation's events, newest first, with their person and token in the same query.

    ``store_ids`` limits a store-limited reader to the events of those stores and the
    organisation-wide ones (no store: settings, people, tokens, the catalogue) — the things a
    store-limited admin manages anyway. Filters are exact matches (``occurred_*`` a range).
    """
    values = {
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "actor": actor,
        "store": store,
        "occurred_from": occurred_from,
        "occurred_to": occurred_to,
    }
    events = AuditEvent.objects.filter(org=org)
    if store_ids is not None:
        events = events.filter(Q(store_id__in=sorted(store_ids)) | Q(store_id__isnull=True))
    events = events.filter(
        **{AUDIT_FILTERS[name]: value for name, value in values.items() if value is not None}
    )
    return events.select_related("actor", "token").order_by("-id")


def audit_event_timeline(*, org: Organization, obj: Model) -> QuerySet[AuditEvent]:
    """Every event of one row, oldest first: what happened to it, in order (the
    ``(org, object_type, object_id, id)`` index serves it)."""
    return (
        AuditEvent.objects.filter(org=org, object_type=obj._meta.label_lower, object_id=obj.pk)
        .select_related("actor", "token")
        .order_by("id")
    )
