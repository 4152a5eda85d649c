"""Shapes of catalog answers that views build as dicts, for the OpenAPI description only
(products, barcodes and the classification map answer their model serializers; the lookup,
``serializers.LookupSerializer``)."""

from __future__ import annotations

from rest_framework import serializers


class ProductBulkResultSerializer(serializers.Serializer):
    created = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="SKUs of the new products."
    )
    updated = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="SKUs of the products changed."
    )
