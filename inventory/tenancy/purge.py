"""Removing a whole organisation: the one way ledger rows may ever be deleted.

The ledger is append-only in the database itself (``inventory.stock.triggers``): its trigger lets a
row be deleted only while ``LedgerPurge`` names the row's organisation. ``org_purge`` inserts
that row, deletes everything the organisation owns and removes the row again, all in one
transaction, so the door is never open outside it and never for another organisation.

What an organisation owns is read from the models, not listed by hand: every model with a
foreign key to ``Organization`` (later apps' models too: counts, upstock, ...). They are deleted
children first, in the order their foreign keys give, each with one set-based ``DELETE``.
"""

from __future__ import annotations

from collections import defaultdict

from django.apps import apps
from django.db import models, transaction

from inventory.models import LedgerPurge, Organization


def _org_fields(model) -> list[str]:
    return [
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, models.ForeignKey) and f.related_model is Organization
    ]


def _label(model) -> str:
    return model._meta.label


def purge_order() -> list[type[models.Model]]:
    """Every model an organisation owns, referrers before the models they point to.

    Kahn's algorithm over the foreign keys between owned models, ties broken by label so the
    order is stable. A cycle (none today) would only matter for non-deferred constraints:
    Django declares foreign keys ``DEFERRABLE INITIALLY DEFERRED`` on PostgreSQL and SQLite, so
    the remaining models are appended by label.
    """
    owned = {
        m
        for m in apps.get_models()
        if m is not Organization and not m._meta.proxy and _org_fields(m)
    }
    points_to: dict[type, set[type]] = {m: set() for m in owned}
    referrers: dict[type, set[type]] = defaultdict(set)
    for model in owned:
        for field in model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target in owned and target is not model:
                points_to[model].add(target)
                referrers[target].add(model)
    waiting = {m: len(referrers[m]) for m in owned}  # referrers not yet deleted
    ready = sorted((m for m, n in waiting.items() if n == 0), key=_label)
    order: list[type[models.Model]] = []
    while ready:
        model = ready.pop(0)
        order.append(model)
        for target in sorted(points_to[model], key=_label):
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
        ready.sort(key=_label)
    order += sorted(owned - set(order), key=_label)
    return order


def _manager(model):
    # Tenant models: the explicit cross-tenant manager (``objects`` would raise ScopeError).
    return getattr(model, "unscoped", model._base_manager)


def _delete(queryset) -> int:
    """One ``DELETE … WHERE`` for the whole queryset.

    ``QuerySet.delete()`` would first load every row of a model that others point to, only to
    find that their referrers are gone already (children are deleted first); ``_raw_delete`` is
    the statement Django itself runs for such collector-free deletes.
    """
    return queryset._raw_delete(queryset.db)


def org_purge(*, org: Organization) -> dict[str, int]:
    """Delete ``org`` and every row it owns, in one transaction; rows deleted per model label.

    Children before parents; auto-created many-to-many tables with their owner. Other
    organisations are never touched: every statement is filtered by this organisation, and the
    ledger's guard opens only for it (``LedgerPurge(org_id=org.pk)``, removed again before the
    transaction ends). User accounts stay: people may belong to other organisations.
    A row elsewhere that still points at this organisation's data makes the whole purge fail
    (the foreign keys are checked at commit) and nothing is deleted.
    """
    deleted: dict[str, int] = {}
    with transaction.atomic():
        LedgerPurge.objects.get_or_create(org_id=org.pk)
        for model in purge_order():
            condition = models.Q()
            for name in _org_fields(model):
                condition |= models.Q(**{name: org.pk})
            owned = _manager(model).filter(condition)
            for field in model._meta.local_many_to_many:
                through = field.remote_field.through
                if through._meta.auto_created:
                    source = field.m2m_field_name()
                    _delete(through._base_manager.filter(**{f"{source}__in": owned.values("pk")}))
            deleted[model._meta.label] = _delete(owned)
        deleted[Organization._meta.label] = _delete(Organization._base_manager.filter(pk=org.pk))
        LedgerPurge.objects.filter(org_id=org.pk).delete()
    return deleted
