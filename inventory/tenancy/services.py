"""Writes for organisations, stores, locations and memberships.

Each service is one transaction, keyword-only, tenant first and acting user last, and records
what it changed and who changed it in the audit trail (``inventory.audit.services``) inside that
transaction; a change that changes nothing records nothing.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django_scopes import scopes_disabled

from core.errors import Conflict, ValidationFailed
from inventory.audit.services import audit_diff, audit_record, audit_snapshot
from inventory.locks import lock_admin_memberships, lock_organization
from inventory.models import (
    AuditAction,
    ClassificationMapping,
    Location,
    LocationKind,
    Membership,
    MembershipStore,
    Organization,
    Role,
    Store,
)
from inventory.tenancy.tokens import api_tokens_revoke_for_member

#: The classifications a new organisation starts with: Cova classification -> (category, sub).
DEFAULT_CLASSIFICATIONS: dict[str, tuple[str, str]] = {
    "Dried Flower": ("Flower", "Dried Flower"),
    "Milled Flower": ("Flower", "Milled Flower"),
    "Pre-Rolls": ("Pre-Rolls", "Pre-Rolls"),
    "Infused Pre-Rolls": ("Pre-Rolls", "Infused Pre-Rolls"),
    "Vapes": ("Vapes", "Vape Cartridges"),
    "510 Thread": ("Vapes", "510 Thread"),
    "Pods": ("Vapes", "Pods"),
    "Resin Vapes": ("Vapes", "Resin Vapes"),
    "Disposable Vapes": ("Vapes", "Disposables"),
    "Edibles": ("Edibles", "Edibles"),
    "Soft Chews": ("Edibles", "Soft Chews"),
    "Distillate Gummies/Chews": ("Edibles", "Gummies/Chews"),
    "Chocolate": ("Edibles", "Chocolate"),
    "Beverages": ("Beverages", "Beverages"),
    "Extracts": ("Extracts", "Extracts"),
    "Extracts - Inhaled": ("Extracts", "Inhaled Extracts"),
    "Topicals": ("Topicals", "Topicals"),
    "Capsules/Oils": ("Capsules & Oils", "Capsules/Oils"),
    "Oils": ("Capsules & Oils", "Oils"),
    "Capsules": ("Capsules & Oils", "Capsules"),
    "Seeds": ("Seeds", "Seeds"),
    "Accessories": ("Accessories", "Accessories"),
}

#: Rooms every new store starts with.
DEFAULT_LOCATIONS = (
    ("SF", "Sales Floor", LocationKind.SALES_FLOOR, True, 10),
    ("BR", "Back Room", LocationKind.BACK_ROOM, False, 20),
)
#: the default rooms that feed the sales floor's nightly upstock
UPSTOCK_SOURCE_KINDS = frozenset({LocationKind.BACK_ROOM})

STORE_AUDITED_FIELDS = (
    "code",
    "name",
    "time_zone",
    "cova_location_id",
    "external_ids",
    "is_active",
    "closing_time",
    "closed_weekdays",
    "holidays",
)

#: The schedule nightly jobs follow (``inventory.scheduling``): checked by ``store_schedule_clean``.
STORE_SCHEDULE_FIELDS = ("closing_time", "closed_weekdays", "holidays")
#: More than a few years of holidays is a mistake (a pasted calendar), not a schedule.
MAX_HOLIDAYS = 1000
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def org_create(
    *, slug: str, name: str, time_zone: str = "UTC", actor=None, **settings
) -> Organization:
    """Create a tenant with the default classification map preloaded. ``actor`` is None when
    the platform creates it (``create_org``, the demo)."""
    with transaction.atomic(), scopes_disabled():
        if Organization.objects.filter(slug=slug).exists():
            raise Conflict(
                f"An organisation '{slug}' exists already.",
                code="org_exists",
                fields={"slug": ["Already taken."]},
            )
        org = Organization(slug=slug, name=name, time_zone=time_zone, **settings)
        org.full_clean()
        org.save()
        ClassificationMapping.objects.bulk_create(
            ClassificationMapping(org=org, classification=c, category=cat, subcategory=sub)
            for c, (cat, sub) in DEFAULT_CLASSIFICATIONS.items()
        )
        audit_record(
            org=org,
            action=AuditAction.ORG_CREATED,
            obj=org,
            after=audit_snapshot(org, ["slug", "name", "time_zone", *settings]),
            actor=actor,
        )
    return org


def org_update_settings(*, org: Organization, changes: dict, actor) -> Organization:
    """Change the organisation's settings; records the fields that changed, before and after."""
    with transaction.atomic():
        org = lock_organization(org=org)
        old = audit_snapshot(org, changes)
        for field, value in changes.items():
            setattr(org, field, value)
        org.full_clean()
        org.save()
        before, after = audit_diff(old, audit_snapshot(org, changes))
        if after:
            audit_record(
                org=org,
                action=AuditAction.ORG_SETTINGS_CHANGED,
                obj=org,
                before=before,
                after=after,
                actor=actor,
            )
    return org


def _store_code_taken(code: str) -> Conflict:
    return Conflict(
        f"Store code '{code}' is taken.",
        code="duplicate",
        fields={"code": ["A store with this code exists."]},
    )


def _location_code_taken() -> Conflict:
    return Conflict(
        "Location code is taken in this store.",
        code="duplicate",
        fields={"code": ["A location with this code exists in the store."]},
    )


def _schedule_invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _clean_closing_time(value) -> datetime.time:
    if isinstance(value, str):
        try:
            value = datetime.datetime.strptime(value, "%H:%M").time()
        except ValueError:
            raise _schedule_invalid("closing_time", "Give the closing time as HH:MM.") from None
    if not isinstance(value, datetime.time) or value.tzinfo is not None:
        raise _schedule_invalid("closing_time", "Give the closing time as HH:MM.")
    if value.second or value.microsecond:
        raise _schedule_invalid("closing_time", "Give the closing time in hours and minutes.")
    return value


def _clean_closed_weekdays(value) -> list[int]:
    if value is None:  # the admin's empty JSON box
        return []
    if not isinstance(value, list | tuple):
        raise _schedule_invalid("closed_weekdays", "A list of weekdays, 0 (Monday) to 6 (Sunday).")
    days: list[int] = []
    for i, day in enumerate(value):
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            message = "A weekday is 0 (Monday) to 6 (Sunday)."
            raise ValidationFailed(message, fields={f"closed_weekdays.{i}": [message]})
        if day in days:
            raise _schedule_invalid("closed_weekdays", f"Weekday {day} is listed twice.")
        days.append(day)
    return sorted(days)


def _clean_holidays(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise _schedule_invalid("holidays", "A list of dates (YYYY-MM-DD).")
    if len(value) > MAX_HOLIDAYS:
        raise _schedule_invalid("holidays", f"At most {MAX_HOLIDAYS} holidays.")
    days: set[str] = set()
    for i, day in enumerate(value):
        if isinstance(day, datetime.datetime) or not isinstance(day, str | datetime.date):
            day = None
        elif isinstance(day, str):
            try:
                day = datetime.date.fromisoformat(day) if _ISO_DATE.match(day) else None
            except ValueError:
                day = None
        if day is None:
            message = "Not a date (YYYY-MM-DD)."
            raise ValidationFailed(message, fields={f"holidays.{i}": [message]})
        text = day.isoformat()
        if text in days:
            raise _schedule_invalid("holidays", f"{text} is listed twice.")
        days.add(text)
    return sorted(days)


def store_schedule_clean(changes: dict) -> dict:
    """The schedule fields of ``changes`` (closing time, closed weekdays, holidays) checked
    and in their stored form: ``closing_time`` a time in whole minutes (or ``HH:MM``),
    ``closed_weekdays`` distinct ints 0 (Monday) to 6 (Sunday), ``holidays`` distinct ISO dates
    (dates or ``YYYY-MM-DD``), both lists sorted; None for a list is empty. Other keys are
    returned as given. A bad value is ``invalid`` (400) naming the field (the list item for a
    bad item), before anything is written.

    A store closed on every weekday is allowed: its nightly jobs never run (archive a store
    that no longer trades with ``is_active`` instead).
    """
    cleaned = dict(changes)
    if "closing_time" in cleaned:
        cleaned["closing_time"] = _clean_closing_time(cleaned["closing_time"])
    if "closed_weekdays" in cleaned:
        cleaned["closed_weekdays"] = _clean_closed_weekdays(cleaned["closed_weekdays"])
    if "holidays" in cleaned:
        cleaned["holidays"] = _clean_holidays(cleaned["holidays"])
    return cleaned


def store_create(
    *,
    org: Organization,
    code: str,
    name: str,
    time_zone: str | None = None,
    cova_location_id: str = "",
    external_ids: dict | None = None,
    is_active: bool = True,
    closing_time: datetime.time | str | None = None,
    closed_weekdays: Sequence[int] | None = None,
    holidays: Sequence[datetime.date | str] | None = None,
    actor=None,
) -> Store:
    """Create a store with its default rooms: a sellable Sales Floor and a Back Room.

    Its schedule (``store_schedule_clean``) defaults to closing at 22:00, open every day."""
    schedule = store_schedule_clean(
        {
            "closed_weekdays": closed_weekdays,
            "holidays": holidays,
            **({} if closing_time is None else {"closing_time": closing_time}),
        }
    )
    try:
        with transaction.atomic():
            store = Store.objects.create(
                org=org,
                code=code,
                name=name,
                time_zone=time_zone or org.time_zone,
                cova_location_id=cova_location_id,
                external_ids=external_ids or {},
                is_active=is_active,
                **schedule,
            )
            Location.objects.bulk_create(
                Location(
                    org=org,
                    store=store,
                    code=c,
                    name=n,
                    kind=k,
                    sellable=s,
                    sort_order=o,
                    upstock_source=k in UPSTOCK_SOURCE_KINDS,
                )
                for c, n, k, s, o in DEFAULT_LOCATIONS
            )
            audit_record(
                org=org,
                action=AuditAction.STORE_CREATED,
                obj=store,
                after={
                    **audit_snapshot(store, STORE_AUDITED_FIELDS),
                    "locations": [code for code, *_ in DEFAULT_LOCATIONS],
                },
                store=store,
                actor=actor,
            )
    except IntegrityError as exc:
        raise _store_code_taken(code) from exc
    return store


def store_update(*, org: Organization, store: Store, changes: dict, actor=None) -> Store:
    """Change a store's fields; a code another store of the organisation has is ``duplicate``
    (409), as on create — the unique constraint decides, so two concurrent renames cannot both
    win. The schedule fields are checked as on create (``store_schedule_clean``)."""
    changes = store_schedule_clean(changes)
    old = audit_snapshot(store, changes)
    for field, value in changes.items():
        setattr(store, field, value)
    before, after = audit_diff(old, audit_snapshot(store, changes))
    try:
        with transaction.atomic():
            store.save()
            if after:
                audit_record(
                    org=org,
                    action=AuditAction.STORE_UPDATED,
                    obj=store,
                    before=before,
                    after=after,
                    store=store,
                    actor=actor,
                )
    except IntegrityError as exc:
        raise _store_code_taken(store.code) from exc
    return store


def location_create(*, org: Organization, store: Store, actor=None, **fields) -> Location:
    try:
        with transaction.atomic():
            location = Location.objects.create(org=org, store=store, **fields)
            audit_record(
                org=org,
                action=AuditAction.LOCATION_CREATED,
                obj=location,
                after=audit_snapshot(location, ["store", *fields]),
                store=store,
                actor=actor,
            )
            return location
    except IntegrityError as exc:
        raise _location_code_taken() from exc


def location_update(
    *, org: Organization, location: Location, changes: dict, actor=None
) -> Location:
    """Change a location's fields (never its store); a code taken in the store is ``duplicate``
    (409), as on create."""
    changes = {k: v for k, v in changes.items() if k not in ("org", "store")}
    old = audit_snapshot(location, changes)
    for field, value in changes.items():
        setattr(location, field, value)
    before, after = audit_diff(old, audit_snapshot(location, changes))
    try:
        with transaction.atomic():
            location.save()
            if after:
                audit_record(
                    org=org,
                    action=AuditAction.LOCATION_UPDATED,
                    obj=location,
                    before=before,
                    after=after,
                    store=location.store_id,
                    actor=actor,
                )
    except IntegrityError as exc:
        raise _location_code_taken() from exc
    return location


def _set_membership_stores(membership: Membership, stores) -> None:
    MembershipStore.objects.filter(membership=membership).delete()
    MembershipStore.objects.bulk_create(
        MembershipStore(org_id=membership.org_id, membership=membership, store=s) for s in stores
    )


def membership_create(
    *,
    org: Organization,
    email: str,
    role: str,
    stores=(),
    first_name: str = "",
    last_name: str = "",
    actor=None,
) -> Membership:
    """Give a person (created if the e-mail is new) a role in the organisation.

    The user is created without a usable password: they sign in with Google, or an admin sets a
    password for a shared tablet.
    """
    User = get_user_model()
    email = email.strip().lower()
    stores = list(stores)
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User(username=email, email=email, first_name=first_name, last_name=last_name)
            user.set_unusable_password()
            user.save()
        existing = Membership.objects.filter(org=org, user=user).first()
        if existing and existing.is_active:
            raise Conflict(
                "This person is already a member.",
                code="already_member",
                fields={"email": ["Already a member of this organisation."]},
            )
        if existing:
            # Tokens of the earlier membership never act for the new one (nor its new role).
            api_tokens_revoke_for_member(org=org, user=user, actor=actor)
            old = audit_snapshot(existing, ["role", "is_active"])
            existing.role, existing.is_active = role, True
            existing.save(update_fields=["role", "is_active"])
            membership = existing
        else:
            old = {}
            membership = Membership.objects.create(org=org, user=user, role=role)
        _set_membership_stores(membership, stores)
        audit_record(
            org=org,
            action=AuditAction.MEMBERSHIP_REACTIVATED
            if existing
            else AuditAction.MEMBERSHIP_CREATED,
            obj=membership,
            before=old,
            after={
                "user": user.pk,
                "email": email,
                **audit_snapshot(membership, ["role", "is_active"]),
                "stores": sorted(s.pk for s in stores),
            },
            actor=actor,
        )
    return membership


def _ensure_an_admin_remains(org: Organization, membership: Membership) -> None:
    others = Membership.objects.filter(org=org, role=Role.ADMIN, is_active=True).exclude(
        pk=membership.pk
    )
    if not others.exists():
        raise Conflict(
            "The organisation must keep at least one active admin.",
            code="last_admin",
            fields={"role": ["This is the last admin."]},
        )


def _membership_action(was_active: bool, is_active: bool, after: dict) -> AuditAction:
    if was_active and not is_active:
        return AuditAction.MEMBERSHIP_DEACTIVATED
    if is_active and not was_active:
        return AuditAction.MEMBERSHIP_REACTIVATED
    if "role" in after:
        return AuditAction.MEMBERSHIP_ROLE_CHANGED
    return AuditAction.MEMBERSHIP_UPDATED


def membership_update(
    *, org: Organization, membership: Membership, changes: dict, actor=None
) -> Membership:
    """Change a member's role, stores or active flag; an organisation always keeps an admin.

    Locks the organisation's admin memberships and this one, in id order, so two concurrent
    demotions cannot both pass the last-admin check (and cannot deadlock). Deactivating (and
    re-activating) revokes the person's tokens in the organisation in the same transaction; a
    role or store change needs nothing, since every request reads the membership afresh.
    Records one event: ``membership.deactivated`` / ``reactivated`` / ``role_changed``, else
    ``membership.updated`` (its stores), with every field that changed.
    """
    with transaction.atomic():
        locked = lock_admin_memberships(org=org, also=membership.pk)
        membership = locked[membership.pk]
        stays_admin = changes.get("role", membership.role) == Role.ADMIN and changes.get(
            "is_active", membership.is_active
        )
        if membership.role == Role.ADMIN and membership.is_active and not stays_admin:
            _ensure_an_admin_remains(org, membership)
        was_active = membership.is_active
        stores = changes.pop("stores", None)
        old = audit_snapshot(membership, changes)
        if stores is not None:
            stores = list(stores)
            old["stores"] = sorted(
                MembershipStore.objects.filter(membership=membership).values_list(
                    "store_id", flat=True
                )
            )
        for field, value in changes.items():
            setattr(membership, field, value)
        membership.save()
        if stores is not None:
            _set_membership_stores(membership, stores)
        new = audit_snapshot(membership, changes)
        if stores is not None:
            new["stores"] = sorted(s.pk for s in stores)
        before, after = audit_diff(old, new)
        if after:
            audit_record(
                org=org,
                action=_membership_action(was_active, membership.is_active, after),
                obj=membership,
                before=before,
                after=after,
                actor=actor,
            )
        if not (was_active and membership.is_active):
            api_tokens_revoke_for_member(org=org, user=membership.user_id, actor=actor)
    return membership
