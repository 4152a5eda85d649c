"""Input shapes of stock documents: receipts, moves, adjustments, write-offs. Shapes and
ranges only; products, lots and locations are resolved, and the document rules checked, by
the services."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from core.fields import BusinessTimeField
from inventory.api.base import StoreField
from inventory.api.catalog.serializers import ProductRefSerializer

QTY = {"max_digits": 18, "decimal_places": 4}


MONEY = {"max_digits": 14, "decimal_places": 4}


POSITIVE = Decimal("0.0001")


# Far above any real line, far below what a quant can hold: repeated huge lines cannot overflow.
MAX_QTY = Decimal("1000000000")


MAX_LINES = 500


class DocumentSerializer(serializers.Serializer):
    store = StoreField()
    client_ref = f.CharField(kind=f.IDENTIFIER, max_length=128)
    occurred_at = BusinessTimeField(required=False)
    source_ref = f.CharField(
        kind=f.IDENTIFIER, max_length=128, required=False, default="", allow_blank=True
    )


class ReceiptLineSerializer(ProductRefSerializer):
    location = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    lot_code = f.CharField(
        kind=f.IDENTIFIER, max_length=64, required=False, default="", allow_blank=True
    )
    expiry_date = f.BusinessDateField(required=False, allow_null=True)
    unit_cost = f.DecimalField(**MONEY, min_value=Decimal("0"), required=False, allow_null=True)


class ReceiptSerializer(DocumentSerializer):
    reason = f.CharField(kind=f.TEXT, max_length=255, required=False, default="", allow_blank=True)
    lines = ReceiptLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class MoveLineSerializer(ProductRefSerializer):
    from_location = serializers.IntegerField(min_value=1)
    to_location = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    lot_code = f.CharField(
        kind=f.IDENTIFIER, max_length=64, required=False, default="", allow_blank=True
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["from_location"] == attrs["to_location"]:
            raise serializers.ValidationError({"to_location": ["Must differ from from_location."]})
        return attrs


class MoveSerializer(DocumentSerializer):
    reason = f.CharField(kind=f.TEXT, max_length=255, required=False, default="", allow_blank=True)
    lines = MoveLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class AdjustmentLineSerializer(ProductRefSerializer):
    location = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(
        **QTY, min_value=-MAX_QTY, max_value=MAX_QTY, help_text="Signed: + found, - missing."
    )
    lot_code = f.CharField(
        kind=f.IDENTIFIER, max_length=64, required=False, default="", allow_blank=True
    )
    expiry_date = f.BusinessDateField(required=False, allow_null=True)
    unit_cost = f.DecimalField(**MONEY, min_value=Decimal("0"), required=False, allow_null=True)

    def validate_quantity(self, value):
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


class AdjustmentSerializer(DocumentSerializer):
    reason = f.CharField(kind=f.TEXT, max_length=255)
    lines = AdjustmentLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class WriteOffLineSerializer(ProductRefSerializer):
    location = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    lot_code = f.CharField(
        kind=f.IDENTIFIER, max_length=64, required=False, default="", allow_blank=True
    )


class WriteOffSerializer(DocumentSerializer):
    type = serializers.ChoiceField(choices=["damage", "waste", "expiry"])
    reason = f.CharField(kind=f.TEXT, max_length=255)
    lines = WriteOffLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)
