"""POS sales, voids and refunds over HTTP.

A view parses, resolves the request's names in a fixed number of queries, calls one service,
and answers 201 with the result — or 200 with the very same body when a device replays a
``client_ref``."""

from __future__ import annotations

import django_filters as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import BusinessMomentFilter
from inventory.api.base import TenantAPIMixin, created_or_replayed, item_ref
from inventory.api.sales import serializers as s
from inventory.api.sales.responses import RefundSerializer, SaleSerializer, refund_body, sale_body
from inventory.exceptions import InsufficientStock
from inventory.models import Sale, SaleStatus
from inventory.reports.visibility import products_hidden_in_store
from inventory.sales import services as sales
from inventory.tenancy.capabilities import Action


class SaleFilter(filters.FilterSet):
    store = filters.NumberFilter(field_name="store_id")
    status = filters.ChoiceFilter(field_name="status", choices=SaleStatus.choices)
    client_ref = filters.CharFilter(field_name="client_ref")
    source_ref = filters.CharFilter(field_name="source_ref")
    occurred_from = BusinessMomentFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_to = BusinessMomentFilter(field_name="occurred_at", lookup_expr="lt")


REPLAYED = "A replay of the client_ref: the first answer, unchanged."


class SaleViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """POS sales. A sale consumes earliest-expiry-first from the store's sellable locations."""

    queryset = Sale.objects.none()
    read_capability = Action.STOCK_VIEW
    action_capabilities = {
        "create": Action.SALE_RECORD,
        "void": Action.SALE_REVERSE,
        "refunds": Action.SALE_REVERSE,
    }
    filterset_class = SaleFilter
    ordering_fields = ["occurred_at", "id"]

    def get_queryset(self):
        sales_ = Sale.objects.prefetch_related("refunds").order_by("-id")
        if self.tenant.store_ids is not None:
            sales_ = sales_.filter(store_id__in=self.tenant.store_ids)
        return sales_

    def get_serializer_class(self):
        return s.SaleCreateSerializer

    @extend_schema(responses={200: SaleSerializer(many=True)})
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.shown([(sale, sale_body(sale)) for sale in page]))

    @extend_schema(responses={200: SaleSerializer})
    def retrieve(self, request, *args, **kwargs):
        sale = self.get_object()
        (body,) = self.shown([(sale, sale_body(sale))])
        return Response(body)

    def shown(self, sales: list[tuple[Sale, dict]]) -> list[dict]:
        """Sales as this caller may read them: a warning's ``available`` is hidden while an
        open blind count covers its product in the sale's store (as on the sale's own answer)."""
        for sale, body in sales:
            if body["warnings"]:
                body["warnings"] = [dict(w) for w in body["warnings"]]
                self.hide_blind_availability(sale.store_id, body["warnings"])
        return [body for _, body in sales]

    @extend_schema(
        request=s.SaleCreateSerializer,
        responses={
            201: OpenApiResponse(SaleSerializer, description="Recorded."),
            200: OpenApiResponse(SaleSerializer, description=REPLAYED),
        },
    )
    def create(self, request):
        serializer = s.SaleCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        store = data["store"]
        lines = [
            sales.SaleLineInput(
                item_ref(ln), ln["quantity"], ln.get("unit_price"), ln.get("location")
            )
            for ln in data["lines"]
        ]
        try:
            sale, created = sales.sale_record(
                org=self.org,
                store=store,
                lines=lines,
                client_ref=data["client_ref"],
                occurred_at=data.get("occurred_at"),
                source_ref=data["source_ref"],
                actor=request.user,
                override_reason=data["override_reason"],
                tenant=self.tenant,
            )
        except InsufficientStock as exc:
            self.hide_blind_availability(store.pk, exc.extra.get("lines", []))
            raise
        body = sale_body(sale, as_recorded=True)
        if body["warnings"]:
            self.hide_blind_availability(store.pk, body["warnings"])
        return created_or_replayed(body, created)

    def hide_blind_availability(self, store_id: int, lines: list[dict]) -> None:
        """What a store holds of a product under an open blind count is not for operators to
        see, not even as the ``available`` of a refused sale (it is the count's expected)."""
        if self.tenant.can(Action.COUNT_EXPECTED_VIEW) or not lines:
            return
        hidden = products_hidden_in_store(
            org=self.org, store_id=store_id, skus={line.get("sku") for line in lines}
        )
        for line in lines:  # error lines and warnings both name the SKU
            if line.get("sku") in hidden:
                for figure in ("available", "expired"):
                    if figure in line:
                        line[figure] = None

    @extend_schema(
        request=s.VoidSerializer,
        responses={200: OpenApiResponse(SaleSerializer, description="The sale, voided.")},
    )
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        """Put back everything still out; voiding twice posts nothing."""
        sale = self.get_object()
        serializer = s.VoidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sale = sales.sale_void(
            org=self.org,
            sale=sale,
            reason=serializer.validated_data["reason"],
            occurred_at=serializer.validated_data.get("occurred_at"),
            actor=request.user,
        )
        return Response(sale_body(Sale.objects.prefetch_related("refunds").get(pk=sale.pk)))

    @extend_schema(
        request=s.RefundCreateSerializer,
        responses={
            201: OpenApiResponse(RefundSerializer, description="Recorded."),
            200: OpenApiResponse(RefundSerializer, description=REPLAYED),
        },
    )
    @action(detail=True, methods=["post"])
    def refunds(self, request, pk=None):
        """Take back part of a sale, per line; optionally into another location."""
        sale = self.get_object()
        serializer = s.RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refund, created = sales.sale_refund(
            org=self.org,
            sale=sale,
            lines=[sales.RefundLineInput(ln["line"], ln["quantity"]) for ln in data["lines"]],
            client_ref=data["client_ref"],
            location=data.get("location"),
            reason=data["reason"],
            occurred_at=data.get("occurred_at"),
            actor=request.user,
        )
        return created_or_replayed(refund_body(refund), created)
