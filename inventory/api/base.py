"""What every tenant API view shares: resolve the organisation, enter its scope, check the role.

``TenantAPIMixin`` runs after authentication and before permissions: it finds the caller's
membership (a token names its organisation; a session names it with the ``X-Organization``
header or ``?org=``, or has only one), stores it as ``request.tenant`` and enters
``tenant_scope`` for the rest of the request. ``HasCapability`` then checks the capability
matrix for the action the view declares. Views never filter by organisation by hand.
"""

from __future__ import annotations

from contextlib import ExitStack

from rest_framework import permissions, routers
from rest_framework.exceptions import NotFound, PermissionDenied

from inventory.capabilities import Action
from inventory.models import ApiToken
from inventory.tenancy import ORG_HEADER, TenantContext, resolve_tenant, tenant_scope


class NotAMember(PermissionDenied):
    default_code = "not_a_member"
    default_detail = "You are not an active member of this organisation."


class TenantAPIMixin:
    #: the Action needed to read (safe methods) and to write, unless ``action_capabilities``
    #: names one for the viewset action.
    read_capability: Action = Action.STOCK_VIEW
    write_capability: Action | None = None
    action_capabilities: dict[str, Action] = {}

    permission_classes = [permissions.IsAuthenticated]

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as stack:
            self._tenant_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        self.perform_authentication(request)
        request.tenant = None
        if request.user and request.user.is_authenticated:
            request.tenant = self._resolve_tenant(request)
            if request.tenant is not None:
                self._tenant_stack.enter_context(tenant_scope(request.tenant.org))
                request._request.tenant = request.tenant  # for logs and metrics
        super().initial(request, *args, **kwargs)

    @staticmethod
    def _resolve_tenant(request) -> TenantContext | None:
        if isinstance(request.auth, ApiToken):
            return resolve_tenant(request.user, org_id=request.auth.org_id)
        slug = request.headers.get(ORG_HEADER) or request.query_params.get("org")
        return resolve_tenant(request.user, org_slug=slug)

    def get_permissions(self):
        return [*super().get_permissions(), HasCapability()]

    def required_capability(self, request) -> Action | None:
        action = getattr(self, "action", None)
        if action in self.action_capabilities:
            return self.action_capabilities[action]
        if request.method in permissions.SAFE_METHODS:
            return self.read_capability
        return self.write_capability

    @property
    def tenant(self) -> TenantContext:
        return self.request.tenant

    @property
    def org(self):
        return self.request.tenant.org

    def check_store(self, store) -> None:
        """A membership limited to some stores acts on no other (404, like a missing store)."""
        if store is not None and not self.tenant.may_use_store(store.pk):
            raise NotFound()


class HasCapability(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            raise NotAMember()
        needed = view.required_capability(request)
        if needed is None:
            return False
        if not tenant.can(needed):
            raise PermissionDenied(
                f"Your role ({tenant.role}) may not do this ({needed.value}).",
                code="permission_denied",
            )
        return True


class OptionalSlashRouter(routers.DefaultRouter):
    """Every route answers with and without a trailing slash: no redirect drops a POST body.

    No router adds a root view: the API has several routers, and one index lists them all
    (``inventory.api.root``); each router's own root would hide the others' under ``^$``.
    """

    include_root_view = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trailing_slash = "/?"
