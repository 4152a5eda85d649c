"""Input shapes of POS sales, voids and refunds. Shapes and ranges only."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from core.fields import BusinessTimeField
from inventory.api.catalog.serializers import ProductRefSerializer
from inventory.api.stock.serializers import (
    MAX_LINES,
    MAX_QTY,
    MONEY,
    POSITIVE,
    QTY,
    DocumentSerializer,
    OverrideReasonField,
)


class SaleLineSerializer(ProductRefSerializer):
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    unit_price = f.DecimalField(**MONEY, min_value=Decimal("0"), required=False, allow_null=True)
    location = serializers.IntegerField(required=False, min_value=1, allow_null=True)


class SaleCreateSerializer(DocumentSerializer):
    lines = SaleLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)
    override_reason = OverrideReasonField()


class RefundLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)


class RefundCreateSerializer(serializers.Serializer):
    client_ref = f.CharField(kind=f.IDENTIFIER, max_length=128)
    location = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    reason = f.CharField(kind=f.TEXT, max_length=255, required=False, default="", allow_blank=True)
    occurred_at = BusinessTimeField(required=False)
    lines = RefundLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class VoidSerializer(serializers.Serializer):
    reason = f.CharField(kind=f.TEXT, max_length=255, required=False, default="", allow_blank=True)
    # business time of the void (a POS sends its own); default now
    occurred_at = BusinessTimeField(required=False)
