"""Stock writes over HTTP: sales (with voids and refunds) and stock documents.

Each view parses, authorises, resolves the request's names in a fixed number of queries, calls
one service, and answers 201 with the result — or 200 with the very same body when a device
replays a ``client_ref``.
"""

from __future__ import annotations

import django_filters as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import BusinessMomentFilter
from core.isotime import iso
from inventory.api import stock_serializers as s
from inventory.api.base import TenantAPIMixin
from inventory.catalog.resolver import (
    Problems,
    check_whole_numbers,
    resolve_locations,
    resolve_lots,
    resolve_products,
)
from inventory.exceptions import InsufficientStock
from inventory.models import Sale, SaleStatus
from inventory.reports.visibility import products_hidden_in_store
from inventory.sales import services as sales
from inventory.stock import documents
from inventory.stock import write_path as stock_service
from inventory.tenancy.capabilities import Action


def created_or_replayed(body: dict, created: bool) -> Response:
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SaleFilter(filters.FilterSet):
    store = filters.NumberFilter(field_name="store_id")
    status = filters.ChoiceFilter(field_name="status", choices=SaleStatus.choices)
    client_ref = filters.CharFilter(field_name="client_ref")
    source_ref = filters.CharFilter(field_name="source_ref")
    occurred_from = BusinessMomentFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_to = BusinessMomentFilter(field_name="occurred_at", lookup_expr="lt")


def sale_body(sale: Sale) -> dict:
    return {**sale.result, "status": sale.status,
            "voided_at": iso(sale.voided_at),
            "refunds": [refund.result for refund in sale.refunds.all()]}


class SaleViewSet(TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                  viewsets.GenericViewSet):
    """POS sales. A sale consumes earliest-expiry-first from the store's sellable locations."""

    queryset = Sale.objects.none()
    read_capability = Action.STOCK_VIEW
    action_capabilities = {"create": Action.SALE_RECORD, "void": Action.SALE_REVERSE,
                           "refunds": Action.SALE_REVERSE}
    filterset_class = SaleFilter
    ordering_fields = ["occurred_at", "id"]

    def get_queryset(self):
        sales_ = Sale.objects.prefetch_related("refunds").order_by("-id")
        if self.tenant.store_ids is not None:
            sales_ = sales_.filter(store_id__in=self.tenant.store_ids)
        return sales_

    def get_serializer_class(self):
        return s.SaleCreateSerializer

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([sale_body(sale) for sale in page])

    def retrieve(self, request, *args, **kwargs):
        return Response(sale_body(self.get_object()))

    @extend_schema(request=s.SaleCreateSerializer, responses={201: dict, 200: dict})
    def create(self, request):
        serializer = s.SaleCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        store = data["store"]
        problems = Problems()
        products = resolve_products(self.org, data["lines"], problems)
        check_whole_numbers(products, data["lines"], problems)
        locations = resolve_locations(store, data["lines"], ("location",), problems,
                                      sellable_only=True)
        problems.raise_if_any()
        lines = [sales.SaleLineInput(product, ln["quantity"], ln.get("unit_price"),
                                     locations.get(ln.get("location")))
                 for product, ln in zip(products, data["lines"], strict=True)]
        try:
            sale, created = sales.sale_record(
                org=self.org, store=store, lines=lines, client_ref=data["client_ref"],
                occurred_at=data.get("occurred_at"), source_ref=data["source_ref"],
                actor=request.user,
            )
        except InsufficientStock as exc:
            self.hide_blind_availability(store, products, exc.extra.get("lines", []))
            raise
        body = sale.result
        if body.get("warnings"):
            body = {**body, "warnings": [dict(w) for w in body["warnings"]]}
            self.hide_blind_availability(store, products, body["warnings"])
        return created_or_replayed(body, created)

    def hide_blind_availability(self, store, products, lines: list[dict]) -> None:
        """What a store holds of a product under an open blind count is not for operators to
        see, not even as the ``available`` of a refused sale (it is the count's expected)."""
        if self.tenant.can(Action.COUNT_EXPECTED_VIEW):
            return
        hidden = products_hidden_in_store(org=self.org, store_id=store.pk, products=products)
        skus = {p.sku for p in products if p is not None and p.pk in hidden}
        for line in lines:  # error lines name the product; warnings only its SKU
            if line.get("product") in hidden or line.get("sku") in skus:
                for figure in ("available", "expired"):
                    if figure in line:
                        line[figure] = None

    @extend_schema(request=s.VoidSerializer, responses={200: dict})
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        """Put back everything still out; voiding twice posts nothing."""
        sale = self.get_object()
        serializer = s.VoidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sale = sales.sale_void(org=self.org, sale=sale,
                               reason=serializer.validated_data["reason"],
                               occurred_at=serializer.validated_data.get("occurred_at"),
                               actor=request.user)
        return Response(sale_body(Sale.objects.prefetch_related("refunds").get(pk=sale.pk)))

    @extend_schema(request=s.RefundCreateSerializer, responses={201: dict, 200: dict})
    @action(detail=True, methods=["post"])
    def refunds(self, request, pk=None):
        """Take back part of a sale, per line; optionally into another location."""
        sale = self.get_object()
        serializer = s.RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        problems = Problems()
        found = resolve_locations(sale.store, [], (), problems,
                                  extra={"location": data.get("location")})
        problems.raise_if_any()
        refund, created = sales.sale_refund(
            org=self.org, sale=sale,
            lines=[sales.RefundLineInput(ln["line"], ln["quantity"]) for ln in data["lines"]],
            client_ref=data["client_ref"], location=found.get(data.get("location")),
            reason=data["reason"], occurred_at=data.get("occurred_at"), actor=request.user,
        )
        return created_or_replayed(refund.result, created)


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
        return {"org": self.org, "store": data["store"], "client_ref": data["client_ref"],
                "occurred_at": data.get("occurred_at"), "source_ref": data["source_ref"],
                "actor": request.user}


class ReceiptApi(StockDocumentApi):
    """Receive stock into lots (new or existing, with expiry and cost)."""

    serializer_class = s.ReceiptSerializer
    write_capability = Action.STOCK_RECEIVE

    @extend_schema(request=s.ReceiptSerializer, responses={201: dict, 200: dict})
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(data["store"], data["lines"], ("location",), problems)
        for index, ln in enumerate(data["lines"]):
            product = products[index]
            if product is not None and product.tracks_expiry and not ln.get("expiry_date"):
                problems.add(f"lines.{index}.expiry_date",
                             f"{product.sku} tracks expiry: give the lot's expiry date.",
                             "expiry_required")
        problems.raise_if_any()
        lines = [stock_service.ReceiveLine(
            n, product, locations[ln["location"]], ln["quantity"], ln["lot_code"],
            ln.get("expiry_date"), ln.get("unit_cost"))
            for n, (product, ln) in enumerate(zip(products, data["lines"], strict=True), 1)]
        document, created = documents.receipt_record(
            lines=lines, reason=data["reason"], **self.common(data, request))
        return created_or_replayed(document.result, created)


class MoveApi(StockDocumentApi):
    """Move stock between rooms of one store, earliest expiry first (or a named lot)."""

    serializer_class = s.MoveSerializer
    write_capability = Action.STOCK_MOVE

    @extend_schema(request=s.MoveSerializer, responses={201: dict, 200: dict})
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(data["store"], data["lines"],
                                      ("from_location", "to_location"), problems)
        lots = resolve_lots(self.org, products, data["lines"], problems)
        problems.raise_if_any()
        lines = [stock_service.MoveLine(
            n, product, locations[ln["from_location"]], locations[ln["to_location"]],
            ln["quantity"], lot)
            for n, (product, ln, lot) in enumerate(zip(products, data["lines"], lots,
                                                       strict=True), 1)]
        document, created = documents.move_record(
            lines=lines, reason=data["reason"], **self.common(data, request))
        return created_or_replayed(document.result, created)


class AdjustmentApi(StockDocumentApi):
    """Signed corrections with a reason: + goes to the named lot, else the newest batch."""

    serializer_class = s.AdjustmentSerializer
    write_capability = Action.STOCK_ADJUST

    @extend_schema(request=s.AdjustmentSerializer, responses={201: dict, 200: dict})
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(data["store"], data["lines"], ("location",), problems)
        # A negative line takes from a known lot; a positive one may start a new lot, which
        # for an expiry-tracked product needs its expiry date (a known lot has its own).
        lots = resolve_lots(self.org, products, data["lines"], problems,
                            must_exist=lambda index: data["lines"][index]["quantity"] < 0)
        for index, (product, ln, lot) in enumerate(zip(products, data["lines"], lots,
                                                       strict=True)):
            if (ln["quantity"] > 0 and product is not None and product.tracks_expiry
                    and ln["lot_code"].strip() and lot is None and not ln.get("expiry_date")):
                problems.add(f"lines.{index}.expiry_date",
                             f"{product.sku} tracks expiry: a new lot needs its expiry date.",
                             "expiry_required")
        problems.raise_if_any()
        lines = [stock_service.ReceiveLine(
            n, product, locations[ln["location"]], ln["quantity"],
            ln["lot_code"] if ln["quantity"] > 0 else "", ln.get("expiry_date"),
            ln.get("unit_cost"), batch_id=lot if ln["quantity"] < 0 else None)
            for n, (product, ln, lot) in enumerate(zip(products, data["lines"], lots,
                                                       strict=True), 1)]
        document, created = documents.adjustment_record(
            lines=lines, reason=data["reason"], **self.common(data, request))
        return created_or_replayed(document.result, created)


class WriteOffApi(StockDocumentApi):
    """Remove damaged, wasted or expired stock (type and reason required)."""

    serializer_class = s.WriteOffSerializer
    write_capability = Action.STOCK_ADJUST

    @extend_schema(request=s.WriteOffSerializer, responses={201: dict, 200: dict})
    def post(self, request):
        data, problems, products = self.parse(request)
        locations = resolve_locations(data["store"], data["lines"], ("location",), problems)
        lots = resolve_lots(self.org, products, data["lines"], problems)
        problems.raise_if_any()
        lines = [stock_service.ReceiveLine(n, product, locations[ln["location"]],
                                           ln["quantity"], batch_id=lot)
                 for n, (product, ln, lot) in enumerate(zip(products, data["lines"], lots,
                                                            strict=True), 1)]
        document, created = documents.write_off_record(
            lines=lines, write_off_type=data["type"], reason=data["reason"],
            **self.common(data, request))
        return created_or_replayed(document.result, created)

