"""``GET /api/v1/stock/shortfalls``: stock moves that wanted more than there was.

Managers review them: a refused sale or document (``blocked``), a sale booked to the unallocated
batch (``booked``), the part of a count's shortage that could no longer post (``clamped``).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from inventory.api.reports.views import ReadApi, StoreQuery, _id, _iso
from inventory.models import RefType, ShortfallOutcome, StockShortfall
from inventory.reports import selectors as reads
from inventory.stock.write_path import fmt
from inventory.tenancy.capabilities import Action


class ShortfallQuery(StoreQuery):
    product = _id()
    outcome = serializers.ChoiceField(choices=ShortfallOutcome.choices, required=False)
    ref_type = serializers.ChoiceField(choices=RefType.choices, required=False)
    occurred_from = serializers.DateTimeField(required=False)
    occurred_to = serializers.DateTimeField(required=False)


class ShortfallSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    store = serializers.IntegerField()
    store_code = serializers.CharField()
    location = serializers.IntegerField(allow_null=True)
    product = serializers.IntegerField()
    sku = serializers.CharField()
    requested = serializers.CharField(help_text="Quantity the move wanted.")
    available = serializers.CharField(help_text="Quantity there was (what posted, if any).")
    missing = serializers.CharField(help_text="requested − available")
    outcome = serializers.ChoiceField(choices=ShortfallOutcome.choices)
    ref_type = serializers.CharField()
    ref_id = serializers.IntegerField(allow_null=True,
                                      help_text="The document; null when it was refused.")
    client_ref = serializers.CharField()
    user = serializers.EmailField(allow_null=True)
    occurred_at = serializers.CharField()
    created_at = serializers.CharField()


def shortfall_row(row: StockShortfall) -> dict:
    return {
        "id": row.pk, "store": row.store_id, "store_code": row.store.code,
        "location": row.location_id, "product": row.product_id, "sku": row.product.sku,
        "requested": fmt(row.requested), "available": fmt(row.available),
        "missing": fmt(row.requested - row.available), "outcome": row.outcome,
        "ref_type": row.ref_type, "ref_id": row.ref_id, "client_ref": row.client_ref,
        "user": row.user.email if row.user else None,
        "occurred_at": _iso(row.occurred_at), "created_at": _iso(row.created_at),
    }


class ShortfallListApi(ReadApi):
    """Refused, oversold and partly posted stock moves of the caller's stores, newest first."""

    read_capability = Action.SHORTFALL_VIEW
    query_class = ShortfallQuery

    @extend_schema(parameters=[ShortfallQuery], responses={200: ShortfallSerializer(many=True)})
    def get(self, request):
        params = self.params()
        rows = reads.shortfall_list(
            scope=self.scope(params), product_id=params.get("product"),
            outcome=params.get("outcome"), ref_type=params.get("ref_type"),
            occurred_from=params.get("occurred_from"), occurred_to=params.get("occurred_to"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([shortfall_row(row) for row in page])
