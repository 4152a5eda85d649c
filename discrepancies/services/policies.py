"""Variance policies: what a correction of a category may be without anyone's approval.

One policy per product category (the blank category is the organisation's default); they
replace the organisation's tolerance bands. The API and the admin save through these two
services, so the same checks hold everywhere and every change is in the audit trail
(``variance_policy.saved`` / ``variance_policy.deleted``, organisation-wide: no store).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from core import text
from core.errors import Conflict, ValidationFailed
from discrepancies.models import VariancePolicy
from inventory.audit.services import audit_diff, audit_record, audit_snapshot
from inventory.models import AuditAction, Organization

FIELDS = ["category", "units", "percent", "value"]
ZERO = Decimal("0")
HUNDRED = Decimal("100")
#: The columns' limits (``QTY`` units, 7.3 percent, ``MONEY`` value).
MAX_UNITS = Decimal("99999999999999.9999")
MAX_VALUE = Decimal("9999999999.9999")
CATEGORY_LENGTH = VariancePolicy._meta.get_field("category").max_length


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the category as NFC text, or ``ValidationFailed`` naming every bad field.

    The API's serializer checks the shapes first (plain decimals, places); these are the rules
    themselves, so the admin and any other caller meet them too."""
    problems: dict[str, list[str]] = {}
    clean = dict(data)
    if "category" in data:
        category = data["category"] if data["category"] is not None else ""
        try:
            category = text.clean(str(category), text.NAME)
        except text.TextRefused as exc:
            problems["category"] = [str(exc)]
        else:
            if CATEGORY_LENGTH is not None and len(category) > CATEGORY_LENGTH:
                problems["category"] = [f"At most {CATEGORY_LENGTH} characters."]
            elif category != category.strip():
                # products' categories are trimmed: such a policy would judge nothing (and
                # " " would pass for the default policy without being it)
                problems["category"] = ["No spaces at either end: products' categories have none."]
            clean["category"] = category
    limits = {"units": (ZERO, MAX_UNITS), "percent": (ZERO, HUNDRED), "value": (ZERO, MAX_VALUE)}
    for name, (least, most) in limits.items():
        if name not in data:
            continue
        value = data[name]
        if value is None:
            if name != "value":
                problems[name] = ["Required."]
            continue
        if not isinstance(value, Decimal) or not value.is_finite():
            problems[name] = ["A decimal number."]
        elif not least <= value <= most:
            problems[name] = [f"Between {least} and {most}."]
    if problems:
        raise ValidationFailed(fields=problems)
    return clean


def variance_policy_save(
    *, org: Organization, policy: VariancePolicy | None = None, data: dict[str, Any], actor
) -> VariancePolicy:
    """Create a category's policy (``policy`` None: ``units`` and ``percent`` required, no
    ``category`` is the default policy) or change one (what ``data`` leaves out is kept). A
    category has one policy: a second is 409 ``duplicate``. Audited with the fields that
    changed."""
    data = _checked({k: v for k, v in data.items() if k in FIELDS})
    if policy is None:
        # a new policy without a category is the default; a change without one keeps its own
        data.setdefault("category", "")
        missing = {name: ["Required."] for name in ("units", "percent") if name not in data}
        if missing:
            raise ValidationFailed(fields=missing)
        policy = VariancePolicy(org=org)
    old = audit_snapshot(policy, FIELDS) if policy.pk else None
    for name, value in data.items():
        setattr(policy, name, value)
    new = audit_snapshot(policy, FIELDS)
    before, after = audit_diff(old, new) if old is not None else ({}, new)
    try:
        with transaction.atomic():
            policy.save()
            if after:
                audit_record(
                    org=org,
                    action=AuditAction.VARIANCE_POLICY_SAVED,
                    obj=policy,
                    before=before,
                    after=after,
                    actor=actor,
                )
    except IntegrityError as exc:
        raise Conflict(
            "This category has a variance policy already.",
            code="duplicate",
            fields={"category": ["Has a policy already; change that one."]},
        ) from exc
    return policy


def variance_policy_delete(*, org: Organization, policy: VariancePolicy, actor) -> None:
    """Remove a category's policy: its products fall back to the default policy (or, without
    one, the platform's 1 unit or 2%). Audited with what the policy was."""
    with transaction.atomic():
        audit_record(
            org=org,
            action=AuditAction.VARIANCE_POLICY_DELETED,
            obj=policy,
            before=audit_snapshot(policy, FIELDS),
            actor=actor,
        )
        policy.delete()
