"""``GET /api/v1/stock/reconciliation``: the reconciliation report the nightly job e-mails."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.api.base import TenantAPIMixin
from inventory.models import Store
from inventory.reports.reconciliation import stock_reconciliation_run
from inventory.tenancy.capabilities import Action


class ReconciliationQuery(serializers.Serializer):
    """The query parameters the view reads (for the OpenAPI description and the base's
    unknown-parameter check)."""

    store = serializers.IntegerField(required=False, min_value=1,
                                     help_text="store id (default: every store you may see)")


class StockReconciliationApi(TenantAPIMixin, APIView):
    """Ledger vs quants for the organisation or one store; 200 even when not ok (see ``ok``).

    A member limited to some stores sees only those stores' rows.
    """

    read_capability = Action.STOCK_VIEW
    query_class = ReconciliationQuery

    @extend_schema(parameters=[ReconciliationQuery], responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        store = None
        raw = request.query_params.get("store")
        if raw not in (None, ""):
            if not raw.isdigit():
                raise ValidationError({"store": ["A store id is a whole number."]})
            # Store.objects is scoped to the caller's organisation: another org's id is a 404
            store = Store.objects.filter(pk=int(raw)).first()
            if store is None:
                raise NotFound()
            self.check_store(store)
        report = stock_reconciliation_run(
            org=self.org, store=store,
            store_ids=self.tenant.store_ids if store is None else None,
        )
        return Response(report.as_dict())
