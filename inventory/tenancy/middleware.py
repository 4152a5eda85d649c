"""The admin's organisation scope."""

from __future__ import annotations

from django_scopes import scopes_disabled

from inventory.tenancy.scope import resolve_tenant, tenant_scope

ADMIN_ORG_SESSION_KEY = "admin_org_id"


class AdminTenantMiddleware:
    """The admin works inside one organisation, chosen in the session.

    A manager or admin sees only their organisation's rows (the scoped managers filter them);
    platform superusers see across organisations, explicitly, with scoping disabled.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        user = request.user
        if not user.is_authenticated:
            return self.get_response(request)
        org_id = request.session.get(ADMIN_ORG_SESSION_KEY)
        tenant = resolve_admin_tenant(user, org_id)
        request.tenant = tenant
        request.admin_org = tenant.org if tenant is not None else None
        if user.is_superuser:
            if request.admin_org is None and org_id:
                from inventory.models import Organization

                request.admin_org = Organization.objects.filter(pk=org_id).first()
            with scopes_disabled():
                return self.get_response(request)
        if tenant is None:
            return self.get_response(request)
        with tenant_scope(tenant.org):
            return self.get_response(request)


def resolve_admin_tenant(user, org_id):
    from inventory.models import Membership
    from inventory.tenancy.capabilities import Action

    if org_id:
        tenant = resolve_tenant(user, org_id=org_id)
        if tenant is not None and tenant.can(Action.ADMIN_SITE):
            return tenant
    for membership in Membership.unscoped.filter(user=user, is_active=True).order_by("org__slug"):
        tenant = resolve_tenant(user, org_id=membership.org_id)
        if tenant is not None and tenant.can(Action.ADMIN_SITE):
            return tenant
    return None
