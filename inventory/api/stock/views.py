"""Stock documents over HTTP: receipts, moves, adjustments and write-offs.

Each view parses, resolves the request's names in a fixed number of queries, calls one
service, and answers 201 with the result — or 200 with the very same body when a device replays
a ``client_ref``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from inventory.api.base import TenantAPIMixin, created_or_replayed
from inventory.api.stock import serializers as s
from inventory.api.stock.responses import StockDocumentSerializer, document_body
from inventory.catalog.resolver import (
    Problems,
    check_whole_numbers,
    resolve_locations,
    resolve_lots,
    resolve_products,
)
from inventory.stock import documents
from inventory.stock import write_path as stock_service
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
    """Shared by receipts, moves, adjustments and write-offs."""

    serializer_class: type = s.DocumentSerializer

    def parse(self, request):
        serializer = self.serializer_class(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        problems = Problems()
        products = resolve_products(self.org, data["lines"], problems)
        check_whole_numbers(products, data["lines"], problems)
        return data, problems, products

    def common(self, data, request) -> dict:
        return {
            "org": self.org,
            "store": data["store"],
            "client_ref": data["client_ref"],
            "occurred_at": data.get("occurred_at"),
            "source_ref": data["source_ref"],
            "actor": request.user,
        }


class ReceiptApi(StockDocumentApi):
    """Receive stock into lots (new or existing, with expiry and cost)."""

    serializer_class = s.ReceiptSerializer
    write_capability = Action.STOCK_RECEIVE

    @extend_schema(request=s.ReceiptSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(data["store"], data["lines"], ("location",), problems)
        for index, ln in enumerate(data["lines"]):
            product = products[index]
            if product is not None and product.tracks_expiry and not ln.get("expiry_date"):
                problems.add(
                    f"lines.{index}.expiry_date",
                    f"{product.sku} tracks expiry: give the lot's expiry date.",
                    "expiry_required",
                )
        problems.raise_if_any()
        lines = [
            stock_service.ReceiveLine(
                n,
                product,
                locations[ln["location"]],
                ln["quantity"],
                ln["lot_code"],
                ln.get("expiry_date"),
                ln.get("unit_cost"),
            )
            for n, (product, ln) in enumerate(zip(products, data["lines"], strict=True), 1)
        ]
        document, created = documents.receipt_record(
            lines=lines, reason=data["reason"], **self.common(data, request)
        )
        return created_or_replayed(document_body(document), created)


class MoveApi(StockDocumentApi):
    """Move stock between rooms of one store, earliest expiry first (or a named lot)."""

    serializer_class = s.MoveSerializer
    write_capability = Action.STOCK_MOVE

    @extend_schema(request=s.MoveSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(
            data["store"], data["lines"], ("from_location", "to_location"), problems
        )
        lots = resolve_lots(self.org, products, data["lines"], problems)
        problems.raise_if_any()
        lines = [
            stock_service.MoveLine(
                n,
                product,
                locations[ln["from_location"]],
                locations[ln["to_location"]],
                ln["quantity"],
                lot,
            )
            for n, (product, ln, lot) in enumerate(
                zip(products, data["lines"], lots, strict=True), 1
            )
        ]
        document, created = documents.move_record(
            lines=lines, reason=data["reason"], **self.common(data, request)
        )
        return created_or_replayed(document_body(document), created)


class AdjustmentApi(StockDocumentApi):
    """Signed corrections with a reason: + goes to the named lot, else the newest batch."""

    serializer_class = s.AdjustmentSerializer
    write_capability = Action.STOCK_ADJUST

    @extend_schema(request=s.AdjustmentSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(data["store"], data["lines"], ("location",), problems)
        # A negative line takes from a known lot; a positive one may start a new lot, which
        # for an expiry-tracked product needs its expiry date (a known lot has its own).
        lots = resolve_lots(
            self.org,
            products,
            data["lines"],
            problems,
            must_exist=lambda index: data["lines"][index]["quantity"] < 0,
        )
        for index, (product, ln, lot) in enumerate(zip(products, data["lines"], lots, strict=True)):
            if (
                ln["quantity"] > 0
                and product is not None
                and product.tracks_expiry
                and ln["lot_code"].strip()
                and lot is None
                and not ln.get("expiry_date")
            ):
                problems.add(
                    f"lines.{index}.expiry_date",
                    f"{product.sku} tracks expiry: a new lot needs its expiry date.",
                    "expiry_required",
                )
        problems.raise_if_any()
        lines = [
            stock_service.ReceiveLine(
                n,
                product,
                locations[ln["location"]],
                ln["quantity"],
                ln["lot_code"] if ln["quantity"] > 0 else "",
                ln.get("expiry_date"),
                ln.get("unit_cost"),
                batch_id=lot if ln["quantity"] < 0 else None,
            )
            for n, (product, ln, lot) in enumerate(
                zip(products, data["lines"], lots, strict=True), 1
            )
        ]
        document, created = documents.adjustment_record(
            lines=lines, reason=data["reason"], **self.common(data, request)
        )
        return created_or_replayed(document_body(document), created)


class WriteOffApi(StockDocumentApi):
    """Remove damaged, wasted or expired stock (type and reason required)."""

    serializer_class = s.WriteOffSerializer
    write_capability = Action.STOCK_ADJUST

    @extend_schema(request=s.WriteOffSerializer, responses=DOCUMENT_ANSWERS)
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(data["store"], data["lines"], ("location",), problems)
        lots = resolve_lots(self.org, products, data["lines"], problems)
        problems.raise_if_any()
        lines = [
            stock_service.ReceiveLine(
                n, product, locations[ln["location"]], ln["quantity"], batch_id=lot
            )
            for n, (product, ln, lot) in enumerate(
                zip(products, data["lines"], lots, strict=True), 1
            )
        ]
        document, created = documents.write_off_record(
            lines=lines,
            write_off_type=data["type"],
            reason=data["reason"],
            **self.common(data, request),
        )
        return created_or_replayed(document_body(document), created)
