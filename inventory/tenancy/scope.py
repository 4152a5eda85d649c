"""Which organisation a request acts for, and the scope every query runs in.

One mechanism for every entry point: API views, the admin, Celery tasks and management commands
all run their queries inside ``tenant_scope(org)``; a tenant-owned model's default manager raises
``ScopeError`` when no scope is active, so a forgotten filter fails loudly instead of leaking
another tenant's rows.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from django_scopes import scope, scopes_disabled

from inventory.exceptions import OrganizationRequired
from inventory.models import Membership, MembershipStore, Organization
from inventory.tenancy.capabilities import Action, role_can

ORG_HEADER = "X-Organization"


@contextmanager
def tenant_scope(org: Organization | int):
    """Run the block with every tenant-owned query limited to ``org``."""
    org_id = org if isinstance(org, int) else org.pk
    if org_id is None:  # django-scopes treats None as "no filter": never allow that
        raise ValueError("tenant_scope needs a saved organisation")
    with scope(org=org_id):
        yield


@dataclass(frozen=True)
class TenantContext:
    """The organisation a request acts for, and the caller's membership in it."""

    org: Organization
    membership: Membership
    # None means every store of the organisation.
    store_ids: frozenset[int] | None

    @property
    def role(self) -> str:
        return self.membership.role

    def can(self, action: Action) -> bool:
        return role_can(self.membership.role, action)

    def may_use_store(self, store_id: int) -> bool:
        return self.store_ids is None or store_id in self.store_ids


def membership_context(membership: Membership) -> TenantContext:
    with scopes_disabled():
        store_ids = frozenset(
            MembershipStore.unscoped.filter(membership=membership).values_list(
                "store_id", flat=True
            )
        )
    return TenantContext(org=membership.org, membership=membership, store_ids=store_ids or None)


def resolve_tenant(
    user, *, org_slug: str | None = None, org_id: int | None = None
) -> TenantContext | None:
    """The caller's active membership in the named organisation, or in their only one.

    Returns None when the user has no active membership there (the caller answers 403/404 as it
    sees fit). A user with several memberships who names none gets ``OrganizationRequired``.
    """
    memberships = (
        Membership.unscoped.filter(user=user, is_active=True)
        .select_related("org")
        .order_by("org__slug")
    )
    if org_slug:
        memberships = memberships.filter(org__slug=org_slug)
    if org_id:
        memberships = memberships.filter(org_id=org_id)
    found = list(memberships[:2])
    if not found:
        return None
    if len(found) > 1:
        raise OrganizationRequired(fields={ORG_HEADER: ["Name one of your organisations."]})
    return membership_context(found[0])
