"""What every tenant API view shares: resolve the organisation, enter its scope, check the role.

``TenantAPIMixin`` runs after authentication and before permissions: it finds the caller's
membership (a token names its organisation; a session names it with the ``X-Organization``
header or ``?org=``, or has only one), stores it as ``request.tenant`` and enters
``tenant_scope`` for the rest of the request. ``HasCapability`` then checks the capability
matrix for the action the view declares. Views never filter by organisation by hand.

It is also where the query string is checked, once for every endpoint: each value is NFC and
holds no control character (``core.text``), and a parameter the view does not read answers
``400 unknown_parameter`` rather than being ignored — ``/stock/?product=7`` returning every
product would look like an answer. What a view reads is derived from what it declares (see
``query_param_names``), so the check and the OpenAPI description cannot drift apart.
"""

from __future__ import annotations

from contextlib import ExitStack
from functools import cache

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from core import text
from core.errors import UnknownParameter, ValidationFailed
from inventory.catalog.resolver import ItemRef
from inventory.models import (
    ApiToken,
    Store,
)
from inventory.tenancy.capabilities import Action
from inventory.tenancy.scope import ORG_HEADER, TenantContext, resolve_tenant, tenant_scope

#: Accepted by every endpoint: pagination (page or cursor), ordering, search, the renderer, and
#: the organisation of a browser session that belongs to several.
COMMON_QUERY_PARAMS = frozenset(
    {"page", "page_size", "cursor", "ordering", "search", "format", "org"}
)


class NotAMember(PermissionDenied):
    default_code = "not_a_member"
    default_detail = "You are not an active member of this organisation."


class TenantAPIMixin:
    #: the Action needed to read (safe methods) and to write, unless ``action_capabilities``
    #: names one for the viewset action.
    read_capability: Action = Action.STOCK_VIEW
    write_capability: Action | None = None
    action_capabilities: dict[str, Action] = {}
    #: a serializer whose fields are the query parameters the view reads (besides its
    #: ``filterset_class`` and ``COMMON_QUERY_PARAMS``); ``action_query_classes`` per action.
    query_class = None
    action_query_classes: dict[str, type] = {}

    permission_classes = [permissions.IsAuthenticated]

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as stack:
            self._tenant_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        self.perform_authentication(request)
        request.tenant = None
        if request.user and request.user.is_authenticated:
            clean_query_values(request)  # before ?org= is looked up
            request.tenant = self._resolve_tenant(request)
            if request.tenant is not None:
                self._tenant_stack.enter_context(tenant_scope(request.tenant.org))
                request._request.tenant = request.tenant  # for logs and metrics
        super().initial(request, *args, **kwargs)
        unknown = sorted(set(request.query_params) - self.query_param_names())
        if unknown:
            raise UnknownParameter(
                f"Unknown query parameter: {', '.join(unknown)}.",
                fields={name: ["Unknown query parameter."] for name in unknown},
            )

    def query_param_names(self) -> frozenset[str]:
        """The query parameters this view (and action) reads."""
        action = getattr(self, "action", None)
        query_class = self.action_query_classes.get(action, self.query_class)
        return _param_names(getattr(self, "filterset_class", None), query_class)

    @staticmethod
    def _resolve_tenant(request) -> TenantContext | None:
        if isinstance(request.auth, ApiToken):
            return resolve_tenant(request.user, org_id=request.auth.org_id)
        header = request.headers.get(ORG_HEADER)
        slug = header or request.query_params.get("org")
        problem = text.problem(slug, text.IDENTIFIER) if slug else None
        if problem:  # a slug never holds one; NUL would reach the query
            raise ValidationFailed(
                "Invalid organisation.", fields={ORG_HEADER if header else "org": [problem]}
            )
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


def clean_query_values(request) -> None:
    """Replace the request's query string with its NFC form, or refuse it (400 ``invalid``
    naming each parameter) when a value holds a control character. Views and filters then read
    only clean text; narrower rules (a barcode's) are their query serializers' business."""
    problems: dict[str, list[str]] = {}
    cleaned = QueryDict(mutable=True)
    for name, values in request.query_params.lists():
        for value in values:
            try:
                cleaned.appendlist(name, text.clean(value, text.QUERY))
            except text.TextRefused as exc:
                problems.setdefault(name, []).append(str(exc))
    if problems:
        raise ValidationFailed("Invalid query string.", fields=problems)
    cleaned._mutable = False
    request._request.GET = cleaned


@cache
def _param_names(filterset_class, query_class) -> frozenset[str]:
    names = set(COMMON_QUERY_PARAMS)
    if filterset_class is not None:
        for name, filter_ in filterset_class.base_filters.items():
            # range filters read name_min/name_max (or _after/_before...)
            suffixes = getattr(filter_.field.widget, "suffixes", None)
            names |= (
                {"_".join(filter(None, (name, suffix))) for suffix in suffixes}
                if suffixes
                else {name}
            )
    if query_class is not None:
        names |= set(query_class().fields)
    return frozenset(names)


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


@extend_schema_field({"type": "string", "format": "decimal", "pattern": r"^-?[0-9]+\.[0-9]{4}$"})
class DecimalString(serializers.CharField):
    """A quantity or an amount of money in an answer: a decimal string with four places
    (``"12.5000"``, as ``inventory.stock.write_path.fmt`` writes it), never a JSON number.
    Read-only: answer shapes (each API package's ``responses.py``) validate no input."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("help_text", "A decimal, four places.")
        super().__init__(**kwargs)


@extend_schema_field(OpenApiTypes.INT)
class TenantPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A related id resolved inside the request's tenant scope.

    The queryset is built per request (a class-level one would run unscoped at import time);
    another organisation's id is "does not exist", exactly like a missing id.
    """

    def __init__(self, model, **kwargs):
        self.model = model
        kwargs.setdefault("queryset", None)
        if kwargs.get("read_only"):
            kwargs.pop("queryset")
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.model.objects.all()


class StoreField(TenantPrimaryKeyField):
    """A store of the caller's organisation that their membership may use."""

    def __init__(self, **kwargs):
        super().__init__(Store, **kwargs)

    def get_queryset(self):
        stores = Store.objects.filter(is_active=True)
        tenant = getattr(self.context.get("request"), "tenant", None)
        if tenant is not None and tenant.store_ids is not None:
            stores = stores.filter(pk__in=tenant.store_ids)
        return stores


def created_or_replayed(body: dict, created: bool) -> Response:
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def item_ref(line: dict) -> ItemRef:
    """How a validated line (``ProductRefSerializer``) names its product, for the resolver."""
    return ItemRef(
        product=line.get("product"), sku=line.get("sku") or "", barcode=line.get("barcode") or ""
    )
