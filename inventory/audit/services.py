"""Recording changes in the audit trail: one service every changing service calls.

``audit_record`` writes one ``AuditEvent`` (one INSERT) in the caller's transaction, so a change
that rolls back leaves no event and an event never describes a change that did not happen. It
reads the request id and the API token from the request being served (``core.logging``'s
``current_request``, set by ``RequestIdMiddleware``; DRF puts the token on the Django request as
``auth``), so services need no request parameter and a nightly job or command records neither.

What is recorded is what changed: ``audit_snapshot`` before and after the change, then
``audit_diff`` keeps the fields whose values differ, as JSON-safe values (decimals as strings,
times in UTC with ``Z``, related rows by id). A bulk change records one event that lists ids
and counts, never one event per row.

Stock documents (sales, voids, refunds, receipts, moves, adjustments, write-offs, count
finalisation's postings) and count scans are not recorded here: the document row, its ledger
rows and the scan rows already say who, which device, when and what.
"""

from __future__ import annotations

import datetime
import enum
import json
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models
from django.utils import timezone

from core.isotime import iso
from core.logging import current_request
from inventory.models import ApiToken, AuditAction, AuditEvent, Organization


def json_safe(value: Any) -> Any:
    """``value`` as JSON the way the API writes it: decimals as strings (exact), datetimes in
    UTC with ``Z``, dates ``YYYY-MM-DD``, model rows by id, sets sorted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value) if isinstance(value, enum.Enum) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date):  # datetimes too
        return iso(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((json_safe(item) for item in value), key=repr)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def audit_snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The current values of ``fields`` of ``instance``, as Python values (compare them with
    ``audit_diff``). A foreign key is read by id, so a snapshot never runs a query; names that
    are not concrete fields of the model (many-to-many, extras) are left to the caller."""
    values: dict[str, Any] = {}
    for name in fields:
        try:
            field = instance._meta.get_field(name)
        except FieldDoesNotExist:  # not a column of the model: the caller's business
            continue
        if not getattr(field, "concrete", False) or field.many_to_many:
            continue
        values[name] = getattr(instance, field.attname)
    return values


def audit_diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict, dict]:
    """The keys whose values differ, before and after, JSON-safe. Values are compared before
    conversion, so ``Decimal("500.00")`` and ``Decimal("500")`` are one value, as in the
    database. A key missing on one side counts as None there."""
    changed = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    return (
        {key: json_safe(before.get(key)) for key in changed},
        {key: json_safe(after.get(key)) for key in changed},
    )


def _object_ref(obj) -> tuple[str, int | None]:
    """A saved row names itself (model label, id); a model class names a bulk change of its
    rows; ``(model class, id)`` names a row the caller holds only the id of."""
    if isinstance(obj, tuple):
        model, pk = obj
        return model._meta.label_lower, pk
    if isinstance(obj, type) and issubclass(obj, models.Model):
        return obj._meta.label_lower, None
    return obj._meta.label_lower, obj.pk


def _person_id(actor) -> int | None:
    if actor is None or isinstance(actor, int):
        return actor
    return actor.pk if getattr(actor, "is_authenticated", False) else None


def _request_context(org_id: int) -> tuple[str, ApiToken | None]:
    """The request id and API token of the request being served, if any."""
    request = current_request.get()
    if request is None:
        return "", None
    token = getattr(request, "auth", None)
    if not isinstance(token, ApiToken) or token.org_id != org_id:
        token = None
    return getattr(request, "request_id", "") or "", token


def audit_record(
    *,
    org: Organization | int,
    action: AuditAction | str,
    obj,
    before: dict | None = None,
    after: dict | None = None,
    store=None,
    actor,
) -> AuditEvent:
    """Record one change of ``obj`` in ``org`` (an organisation or its id).

    ``obj`` is the saved row that changed, a model class for a bulk change of its rows, or
    ``(model class, id)``.

    Call it inside the service's transaction, after the change: the event commits or rolls
    back with it. ``actor`` is the person (None for the system: nightly jobs, commands);
    ``store`` (a store or its id) is the store the object belongs to, None for an
    organisation-wide change — a store-limited admin reads its stores' events and those.
    One INSERT.
    """
    org_id = org if isinstance(org, int) else org.pk
    request_id, token = _request_context(org_id)
    change = (obj, before, after, store)
    event = _event(org_id, action, change, actor, token, request_id, timezone.now())
    event.save(force_insert=True)
    return event


def _event(org_id, action, change, actor, token, request_id, occurred_at) -> AuditEvent:
    """One unsaved event of ``change`` — ``(obj, before, after, store)``."""
    obj, before, after, store = change
    object_type, object_id = _object_ref(obj)
    return AuditEvent(
        org_id=org_id,
        actor_id=_person_id(actor),
        token=token,
        action=AuditAction(action),
        object_type=object_type,
        object_id=object_id,
        store_id=store.pk if isinstance(store, models.Model) else store,
        before=json_safe(before or {}),
        after=json_safe(after or {}),
        request_id=request_id[:64],
        occurred_at=occurred_at,
    )


def audit_record_many(
    *,
    org: Organization | int,
    action: AuditAction | str,
    changes: Iterable[tuple[Any, dict | None, dict | None, Any]],
    actor,
) -> None:
    """Record one event per changed row — ``(obj, before, after, store)`` each, as in
    ``audit_record`` — in one INSERT: a bulk decision over thousands of rows keeps a timeline
    per row without a statement per row."""
    org_id = org if isinstance(org, int) else org.pk
    request_id, token = _request_context(org_id)
    now = timezone.now()
    changes = list(changes)
    if len(changes) >= _JSON_FROM and connection.vendor == "postgresql":
        _insert_json(org_id, AuditAction(action), changes, actor, token, request_id, now)
        return
    events = [_event(org_id, action, c, actor, token, request_id, now) for c in changes]
    AuditEvent.objects.bulk_create(events, batch_size=1000)


#: From this many events on (a bulk decision, a count's finalisation), PostgreSQL gets the
#: varying columns of every event as one JSON document instead of ORM instances: building and
#: binding 5,000 AuditEvent rows cost a bulk approval more than a second of Python, and five
#: arrays of 5,000 values still cost a quarter of one to quote.
_JSON_FROM = 200


def _insert_json(org_id, action, changes, actor, token, request_id, now) -> None:
    """``audit_record_many``'s ``INSERT … SELECT FROM jsonb_array_elements(…)``: one JSON
    array of ``[object type, object id, store id, before, after]`` per event, in the order
    given. The table is named as ``AuditEvent._meta.db_table`` names it (a test checks they
    agree)."""
    events = []
    for obj, before, after, store in changes:
        object_type, object_id = _object_ref(obj)
        events.append(
            [
                object_type,
                object_id,
                store.pk if isinstance(store, models.Model) else store,
                json_safe(before or {}),
                json_safe(after or {}),
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_auditevent (org_id, actor_id, token_id, action,"
            " request_id, occurred_at, object_type, object_id, store_id, before, after)"
            " SELECT %s::bigint, %s::bigint, %s::bigint, %s, %s, %s::timestamptz,"
            " e->>0, (e->>1)::bigint, (e->>2)::bigint, e->3, e->4"
            " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n",
            [
                org_id,
                _person_id(actor),
                token.pk if token is not None else None,
                str(action),
                request_id[:64],
                now,
                json.dumps(events),
            ],
        )
