"""Stock documents over HTTP: receipts and moves (adjustments and write-offs are correction
requests, served by the discrepancies app).

Each view parses the request's shape and calls one service, which resolves what the request
names (``inventory.catalog.resolver``) and checks every rule of the document; it answers 201 with
the result — or 200 with the very same body when a device replays
a ``client_ref``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from inventory.api.base import TenantAPIMixin, created_or_replayed, item_ref
from inventory.api.stock import serializers as s
from inventory.api.stock.responses import StockDocumentSerializer, document_body
from inventory.stock import documents
from inventory.tenancy.capabilities import Action

#: 201 when recorded; 200 with the very same body when a device replays its client_ref
DOCUMENT_ANSWERS = {
    201: OpenApiResponse(StockDocumentSerializer, description="Recorded."),
    200: OpenApiResponse(
        StockDocumentSerializer,
        description="A replay of the client_ref: the first answer, unchanged.",
    ),
}


class StockDocumentApi(TenantAPIMixin, APIView):
    """Shared by receipts, moves, adjustments and write-offs: parse the request's shape; the
    service resolves what it names and checks every rule of the document."""

    serializer_class: type = s.DocumentSerializer

    def parse(self, request) -> dict:
        serializer = self.serializer_class(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def common(self, data, request) -> dict:
        return {
            "org": self.org,
            "store": data["store"],
            "client_ref": data["client_ref"],
            "occurred_at": data.get("occurred_at"),
            "source_ref": data["source_ref"],
            "reason": data["reason"],
            "actor": request.user,
        }

    def answer(self, recorded) -> object:
        document, created = recorded
        return created_or_replayed(document_body(document), created)


class ReceiptApi(StockDocumentApi):
    """Receive stock into lots (new or existing, with expiry and cost)."""

    serializer_class = s.ReceiptSerializer
    write_capability = Action.STOCK_RECEIVE

    @extend_schema(request=s.ReceiptSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data = self.parse(request)
        lines = [
            documents.ReceiptLineInput(
                item_ref(ln),
                ln["location"],
                ln["quantity"],
                ln["lot_code"],
                ln.get("expiry_date"),
                ln.get("unit_cost"),
            )
            for ln in data["lines"]
        ]
        return self.answer(documents.receipt_record(lines=lines, **self.common(data, request)))


class MoveApi(StockDocumentApi):
    """Move stock between rooms of one store, earliest expiry first (or a named lot)."""

    serializer_class = s.MoveSerializer
    write_capability = Action.STOCK_MOVE

    @extend_schema(request=s.MoveSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data = self.parse(request)
        lines = [
            documents.MoveLineInput(
                item_ref(ln),
                ln["from_location"],
                ln["to_location"],
                ln["quantity"],
                ln["lot_code"],
            )
            for ln in data["lines"]
        ]
        return self.answer(
            documents.move_record(
                lines=lines,
                override_reason=data["override_reason"],
                tenant=self.tenant,
                **self.common(data, request),
            )
        )
