"""Shapes of catalog requests and answers: products, barcodes, the lookup, the
classification map. Field checks only; rules live in the services."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from inventory.models import (
    ClassificationMapping,
    Product,
    ProductBarcode,
    Unit,
)


class BarcodeSerializer(serializers.Serializer):
    code = f.CharField(kind=f.IDENTIFIER, max_length=100, trim_whitespace=True)
    kind = serializers.ChoiceField(
        choices=ProductBarcode.Kind.choices, default=ProductBarcode.Kind.GTIN
    )

    def validate(self, attrs):
        # A PATCH (partial=True) reaches nested serializers too and skips their required
        # fields and defaults; but a barcodes list given in a PATCH replaces them all, so each
        # barcode must be whole.
        if "code" not in attrs:
            raise serializers.ValidationError(
                {"code": [self.fields["code"].error_messages["required"]]}, code="required"
            )
        attrs.setdefault("kind", ProductBarcode.Kind.GTIN)
        return attrs

    def to_representation(self, instance):
        return {"code": instance.code, "kind": instance.kind}


class ProductSerializer(f.ModelSerializer):
    barcodes = BarcodeSerializer(many=True, required=False)
    unit = serializers.ChoiceField(choices=Unit.choices, required=False)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "brand",
            "classification",
            "category",
            "subcategory",
            "unit",
            "tracks_expiry",
            "image_url",
            "reorder_point",
            "reorder_qty",
            "default_cost",
            "default_price",
            "is_active",
            "barcodes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "sku": {"kind": f.IDENTIFIER},
            **{
                field: {"min_value": Decimal("0")}
                for field in ("reorder_point", "reorder_qty", "default_cost", "default_price")
            },
        }

    def validate_sku(self, value):
        value = value.strip()
        if not value:
            raise serializers.ValidationError("Required.", code="blank")
        return value

    def validate_barcodes(self, value):
        codes = [b["code"] for b in value]
        if len(set(codes)) != len(codes):
            raise serializers.ValidationError("A barcode is listed twice.", code="duplicate")
        return value


class ProductBulkSerializer(serializers.Serializer):
    products = ProductSerializer(many=True, allow_empty=False, max_length=1000)


class ClassificationMappingSerializer(f.ModelSerializer):
    class Meta:
        model = ClassificationMapping
        fields = ["id", "classification", "category", "subcategory"]


class LookupSerializer(serializers.Serializer):
    """The answer of ``products/lookup`` (output only)."""

    product = ProductSerializer(read_only=True)
    matched_by = serializers.CharField(read_only=True)
    scanned = serializers.CharField(read_only=True)
    gtin = serializers.CharField(allow_null=True, read_only=True)
    lot = serializers.CharField(allow_null=True, read_only=True)
    expiry = serializers.DateField(allow_null=True, read_only=True)
    no_expiry = serializers.BooleanField(read_only=True)


class LookupQuery(serializers.Serializer):
    """``GET products/lookup?barcode=``: exactly what the scanner sent."""

    barcode = f.CharField(
        kind=f.SCAN,
        max_length=200,
        help_text="Exactly what the scanner sent.",
        error_messages={
            "required": "This parameter is required.",
            "blank": "This parameter is required.",
        },
    )


class ProductRefSerializer(serializers.Serializer):
    """A line names its product one way: ``product`` (id), ``sku`` or ``barcode``."""

    one_of = ("product", "sku", "barcode")  # documented as oneOf (core.schema)
    product = serializers.IntegerField(required=False, min_value=1)
    sku = f.CharField(kind=f.IDENTIFIER, required=False, max_length=64)
    barcode = f.CharField(kind=f.SCAN, required=False, max_length=200)

    def validate(self, attrs):
        given = [k for k in ("product", "sku", "barcode") if attrs.get(k) not in (None, "")]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"product": ["Name the product once: product (id), sku or barcode."]}
            )
        return attrs
