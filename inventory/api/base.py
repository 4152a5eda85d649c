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

Every app builds its API on this module only (the ``inventory-api-base`` import contract), so
what their requests and answers share lives here too: the fields of a stock document's request
(``DocumentSerializer``, ``ProductRefSerializer``, the quantity and money ranges) and a stock
document's answer (``StockDocumentSerializer``, ``document_body``, ``DOCUMENT_ANSWERS``) —
inventory answers receipts and moves with them, the discrepancies app adjustments and write-offs.
"""

from __future__ import annotations

from contextlib import ExitStack
from decimal import Decimal
from functools import cache

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from core import fields as f
from core import text
from core.errors import UnknownParameter, ValidationFailed

# How a line names its product (id, SKU or scan), re-exported for every app's document lines.
from inventory.api.catalog.serializers import ProductRefSerializer as ProductRefSerializer
from inventory.catalog.resolver import ItemRef
from inventory.models import (
    ApiToken,
    DocumentKind,
    RefType,
    StockDocument,
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


# --- what every stock document's request shares -------------------------------------------------
# Receipts and moves (inventory), sales (inventory), adjustments and write-offs (discrepancies'
# correction requests) are built from these, so every app's documents take the same ranges.

QTY = {"max_digits": 18, "decimal_places": 4}
MONEY = {"max_digits": 14, "decimal_places": 4}
POSITIVE = Decimal("0.0001")
# Far above any real line, far below what a quant can hold: repeated huge lines cannot overflow.
MAX_QTY = Decimal("1000000000")
MAX_LINES = 500


class DocumentSerializer(serializers.Serializer):
    """What every stock document's request carries besides its lines: the store, the device's
    retry key, the business time and an external reference."""

    store = StoreField()
    client_ref = f.CharField(kind=f.IDENTIFIER, max_length=128)
    occurred_at = f.BusinessTimeField(required=False)
    source_ref = f.CharField(
        kind=f.IDENTIFIER, max_length=128, required=False, default="", allow_blank=True
    )


# --- the answer of a stock document -------------------------------------------------------------
# One shape for receipts, moves, adjustments and write-offs: 201 when recorded and 200 with the
# very same bytes when a device replays its ``client_ref``. ``document_body`` renders the stored
# answer through ``StockDocumentSerializer``, so the keys come out in the documented order
# whatever order the stored JSON kept.


class DocumentRowSerializer(serializers.Serializer):
    """One ledger row the document posted (a move posts two per line: out and in)."""

    line = serializers.IntegerField(read_only=True, help_text="1-based, in the request's order.")
    ref_type = serializers.ChoiceField(read_only=True, choices=RefType.choices)
    product = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True)
    batch = serializers.IntegerField(read_only=True)
    quantity = DecimalString(help_text="Signed: + into the location, - out of it.")
    unit_cost = DecimalString()
    reason = serializers.CharField(read_only=True)


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "line": {"type": "integer", "nullable": True},
                "detail": {"type": "string"},
            },
            "required": ["code", "line", "detail"],
            # a policy adds what its warning is about (the held product, its discrepancies...)
            "additionalProperties": True,
        },
    }
)
class PolicyWarningsField(serializers.ListField):
    """What the stock policies said of a posting that went ahead (``inventory.stock.policy``'s
    ``PolicyWarning.as_dict``): each ``{code, line, detail}`` and whatever else the policy
    names, passed through as stored."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("child", serializers.DictField())
        super().__init__(**kwargs)

    def to_representation(self, data):
        return [dict(warning) for warning in data]


class StockDocumentSerializer(serializers.Serializer):
    #: absent from documents recorded before the stock policies could warn
    optional = ("warnings",)

    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(read_only=True, choices=DocumentKind.choices)
    store = serializers.IntegerField(read_only=True)
    client_ref = serializers.CharField(read_only=True)
    reason = serializers.CharField(read_only=True)
    type = serializers.ChoiceField(
        read_only=True,
        allow_null=True,
        choices=["damage", "waste", "expiry"],
        help_text="A write-off's type; null for the other kinds.",
    )
    source_ref = serializers.CharField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    rows = DocumentRowSerializer(many=True, read_only=True)
    warnings = PolicyWarningsField(
        required=False,
        help_text=(
            "What the stock policies said of the posting (e.g. a held product moved while the "
            "organisation warns): each code, line and detail, and what the warning is about."
        ),
    )


# Rendering only (to_representation keeps no state): built once.
_DOCUMENT = StockDocumentSerializer()


def document_body(document: StockDocument) -> dict:
    """The document's answer: the one the service stored, in the documented shape."""
    return _DOCUMENT.to_representation(document.result)


#: 201 when recorded; 200 with the very same body when a device replays its client_ref
DOCUMENT_ANSWERS = {
    201: OpenApiResponse(StockDocumentSerializer, description="Recorded."),
    200: OpenApiResponse(
        StockDocumentSerializer,
        description="A replay of the client_ref: the first answer, unchanged.",
    ),
}
