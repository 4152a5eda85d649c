"""Products, barcodes, the scan lookup and the classification map over HTTP. Thin: parse,
authorise, call a service or selector, serialise."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from inventory.api.base import TenantAPIMixin
from inventory.api.catalog import responses
from inventory.api.catalog import serializers as s
from inventory.api.catalog.filters import ProductFilter
from inventory.catalog import resolver, selectors
from inventory.catalog import services as catalog_services
from inventory.models import (
    ClassificationMapping,
    Product,
)
from inventory.tenancy.capabilities import Action


class ProductViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """Products with their barcodes. DELETE archives the product (``is_active=false``)."""

    queryset = Product.objects.none()  # for the schema; requests use get_queryset
    serializer_class = s.ProductSerializer
    read_capability = Action.CATALOG_VIEW
    write_capability = Action.CATALOG_EDIT
    action_capabilities = {"lookup": Action.CATALOG_VIEW, "bulk": Action.CATALOG_EDIT}
    action_query_classes = {"lookup": s.LookupQuery}
    filterset_class = ProductFilter
    search_fields = ["name", "sku", "=barcodes__code"]
    ordering_fields = ["sku", "name", "brand", "category", "updated_at"]

    def get_queryset(self):
        products = selectors.product_list(org=self.org)
        if self.request.query_params.get("search"):
            products = products.distinct()
        return products

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        barcodes = data.pop("barcodes", None)
        serializer.instance = catalog_services.product_create(
            org=self.org, data=data, barcodes=barcodes, actor=self.request.user
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        barcodes = data.pop("barcodes", None)
        serializer.instance = catalog_services.product_update(
            org=self.org,
            product=serializer.instance,
            data=data,
            barcodes=barcodes,
            actor=self.request.user,
        )

    def perform_destroy(self, instance):
        catalog_services.product_update(
            org=self.org, product=instance, data={"is_active": False}, actor=self.request.user
        )

    @extend_schema(
        request=s.ProductBulkSerializer, responses={200: responses.ProductBulkResultSerializer}
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request):
        """Create or update up to 1,000 products by SKU, all or nothing."""
        serializer = s.ProductBulkSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        result = catalog_services.product_upsert_many(
            org=self.org, rows=serializer.validated_data["products"], actor=request.user
        )
        return Response(result, status=status.HTTP_200_OK)

    @extend_schema(parameters=[s.LookupQuery], responses={200: s.LookupSerializer})
    @action(detail=False, methods=["get"], url_path="lookup")
    def lookup(self, request):
        """Resolve a scan: SKU or stored code, GTIN-8/12/13/14, or GS1 with lot and expiry."""
        query = s.LookupQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)  # missing or blank: 400 naming barcode
        barcode = query.validated_data["barcode"]
        found = resolver.product_lookup(org=self.org, barcode=barcode)
        scan = found.scan
        return Response(
            s.LookupSerializer(
                {
                    "product": found.product,
                    "matched_by": found.matched_by,
                    "scanned": barcode,
                    "gtin": scan.gtin14 if scan else None,
                    "lot": found.lot,
                    "expiry": found.expiry,
                    "no_expiry": found.no_expiry,
                }
            ).data
        )


class ClassificationMappingViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """The editable POS classification -> category/subcategory map."""

    queryset = ClassificationMapping.objects.none()  # for the schema; requests use get_queryset
    serializer_class = s.ClassificationMappingSerializer
    read_capability = Action.CATALOG_VIEW
    write_capability = Action.CATALOG_EDIT
    search_fields = ["classification", "category", "subcategory"]

    def get_queryset(self):
        return ClassificationMapping.objects.order_by("classification")

    def perform_create(self, serializer):
        serializer.instance = catalog_services.classification_save(
            org=self.org, mapping=None, data=serializer.validated_data, actor=self.request.user
        )

    def perform_destroy(self, instance):
        catalog_services.classification_delete(
            org=self.org, mapping=instance, actor=self.request.user
        )

    def perform_update(self, serializer):
        serializer.instance = catalog_services.classification_save(
            org=self.org,
            mapping=serializer.instance,
            data=serializer.validated_data,
            actor=self.request.user,
        )
