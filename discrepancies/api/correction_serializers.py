"""Request shapes of ad-hoc corrections: adjustments and write-offs, as stock documents always
took them (an adjustment may now name the discrepancy's ``type``). Shapes and ranges only; the
correction service resolves the lines and checks every rule."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from discrepancies.services.corrections import ADJUSTMENT_TYPES, WRITE_OFF_KINDS
from inventory.api.base import (
    MAX_LINES,
    MAX_QTY,
    MONEY,
    POSITIVE,
    QTY,
    DocumentSerializer,
    ProductRefSerializer,
)


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
    type = serializers.ChoiceField(
        choices=[kind.value for kind in ADJUSTMENT_TYPES],
        required=False,
        default="OTHER",
        help_text="What kind of discrepancy this corrects (an expiry is a write-off).",
    )
    lines = AdjustmentLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class WriteOffLineSerializer(ProductRefSerializer):
    location = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    lot_code = f.CharField(
        kind=f.IDENTIFIER, max_length=64, required=False, default="", allow_blank=True
    )


class WriteOffSerializer(DocumentSerializer):
    type = serializers.ChoiceField(choices=list(WRITE_OFF_KINDS))
    reason = f.CharField(kind=f.TEXT, max_length=255)
    lines = WriteOffLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)
