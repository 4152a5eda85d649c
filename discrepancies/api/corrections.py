"""Ad-hoc corrections over HTTP: ``/stock/adjustments`` and ``/stock/write-offs``.

They keep the stock documents' request shapes; what happens to them is the correction
service's (``discrepancies.services.corrections``).
"""

from __future__ import annotations

from django.urls import re_path
from drf_spectacular.utils import extend_schema

from inventory.api.base import item_ref
from inventory.api.stock import serializers as s
from inventory.api.stock.views import DOCUMENT_ANSWERS, StockDocumentApi
from inventory.stock import documents
from inventory.tenancy.capabilities import Action


class AdjustmentApi(StockDocumentApi):
    """Signed corrections with a reason: + goes to the named lot, else the newest batch."""

    serializer_class = s.AdjustmentSerializer
    write_capability = Action.STOCK_ADJUST

    @extend_schema(request=s.AdjustmentSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data = self.parse(request)
        lines = [
            documents.AdjustmentLineInput(
                item_ref(ln),
                ln["location"],
                ln["quantity"],
                ln["lot_code"],
                ln.get("expiry_date"),
                ln.get("unit_cost"),
            )
            for ln in data["lines"]
        ]
        return self.answer(documents.adjustment_record(lines=lines, **self.common(data, request)))


class WriteOffApi(StockDocumentApi):
    """Remove damaged, wasted or expired stock (type and reason required)."""

    serializer_class = s.WriteOffSerializer
    write_capability = Action.STOCK_ADJUST

    @extend_schema(request=s.WriteOffSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data = self.parse(request)
        lines = [
            documents.WriteOffLineInput(
                item_ref(ln), ln["location"], ln["quantity"], ln["lot_code"]
            )
            for ln in data["lines"]
        ]
        return self.answer(
            documents.write_off_record(
                lines=lines, write_off_type=data["type"], **self.common(data, request)
            )
        )


urlpatterns = [
    re_path(r"^stock/adjustments/?$", AdjustmentApi.as_view(), name="stock-adjustments"),
    re_path(r"^stock/write-offs/?$", WriteOffApi.as_view(), name="stock-write-offs"),
]
