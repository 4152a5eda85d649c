"""Input shapes of stock documents: receipts and moves (adjustments and write-offs are the
discrepancies app's correction requests). Shapes and ranges only; products, lots and locations
are resolved, and the document rules checked, by the services.

The pieces every document shares (``DocumentSerializer``, the quantity and money ranges) live in
``inventory.api.base``, where every app builds on them; they are imported here under their old
names for inventory's own API packages."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from inventory.api.base import (
    MAX_LINES,
    MAX_QTY,
    MONEY,
    POSITIVE,
    QTY,
    DocumentSerializer,
    ProductRefSerializer,
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


class OverrideReasonField(f.CharField):
    """Why a manager posts despite a hold (enforcement mode ``block``); audited."""

    def __init__(self, **kwargs):
        super().__init__(
            kind=f.TEXT,
            max_length=255,
            required=False,
            default="",
            allow_blank=True,
            help_text=(
                "A manager's or admin's reason to sell or move a product held by an open HIGH"
                " or CRITICAL discrepancy when the organisation blocks that (audited); from"
                " anyone else it changes nothing."
            ),
            **kwargs,
        )


class MoveSerializer(DocumentSerializer):
    reason = f.CharField(kind=f.TEXT, max_length=255, required=False, default="", allow_blank=True)
    lines = MoveLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)
    override_reason = OverrideReasonField()
