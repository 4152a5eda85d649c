"""Request-wide middleware: request ids, the admin's tenant scope, HTTP metrics."""

from __future__ import annotations

import re
import time
import uuid

from django_scopes import scopes_disabled

from inventory.logging import current_request
from inventory.metrics import http_request_duration_seconds, http_requests_total
from inventory.tenancy import resolve_tenant, tenant_scope

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ADMIN_ORG_SESSION_KEY = "admin_org_id"


class RequestIdMiddleware:
    """Take the caller's ``X-Request-ID`` (when sane) or make one; echo it on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.tenant = None
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


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
    from inventory.capabilities import Action
    from inventory.models import Membership

    if org_id:
        tenant = resolve_tenant(user, org_id=org_id)
        if tenant is not None and tenant.can(Action.ADMIN_SITE):
            return tenant
    for membership in Membership.unscoped.filter(user=user, is_active=True).order_by("org__slug"):
        tenant = resolve_tenant(user, org_id=membership.org_id)
        if tenant is not None and tenant.can(Action.ADMIN_SITE):
            return tenant
    return None


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route if match else None) or "unmatched"
        http_requests_total.labels(request.method, route, str(response.status_code)).inc()
        http_request_duration_seconds.labels(request.method, route).observe(
            time.perf_counter() - started
        )
        return response
