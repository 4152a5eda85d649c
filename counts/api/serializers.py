"""Count request and response shapes."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from counts.models import (
    CountLine,
    CountPass,
    CountSession,
    PostingMode,
    ScanMode,
    Scope,
    UnresolvedScan,
)
from inventory.api.base import StoreField
from inventory.api.stock.serializers import QTY


class CategoryScopeSerializer(serializers.Serializer):
    category = f.CharField(max_length=120)
    subcategory = f.CharField(max_length=120, required=False, allow_blank=True, default="")


class SessionCreateSerializer(serializers.Serializer):
    store = StoreField()
    scope = serializers.ChoiceField(choices=Scope.choices)
    blind = serializers.BooleanField(default=False)
    notes = f.CharField(kind=f.TEXT, required=False, allow_blank=True, default="", max_length=2000)
    scope_locations = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=200
    )
    scope_categories = CategoryScopeSerializer(many=True, required=False, default=list)


class SessionSerializer(serializers.ModelSerializer):
    scope_locations = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, help_text="Empty: every location."
    )
    scope_categories = CategoryScopeSerializer(
        many=True, read_only=True, help_text="Empty: every category."
    )
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    reconciled_by = serializers.EmailField(
        source="reconciled_by.email", read_only=True, default=None, allow_null=True
    )  # until reconciled

    class Meta:
        model = CountSession
        fields = [
            "id",
            "store",
            "scope",
            "scope_locations",
            "scope_categories",
            "blind",
            "notes",
            "status",
            "created_by",
            "created_at",
            "started_at",
            "submitted_at",
            "reconciled_at",
            "reconciled_by",
            "closed_at",
            "cancelled_at",
        ]
        read_only_fields = fields


class PassCreateSerializer(serializers.Serializer):
    location = serializers.IntegerField(min_value=1)
    category = f.CharField(max_length=120, required=False, allow_blank=True, default="")
    subcategory = f.CharField(max_length=120, required=False, allow_blank=True, default="")
    device_id = f.CharField(
        kind=f.IDENTIFIER, max_length=100, required=False, allow_blank=True, default=""
    )
    scan_mode = serializers.ChoiceField(choices=ScanMode.choices, default=ScanMode.SCANNER)
    recount_of = serializers.IntegerField(min_value=1, required=False, allow_null=True)


class LineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    name = serializers.CharField(source="product.name", read_only=True)
    unit = serializers.CharField(source="product.unit", read_only=True)
    captured_by = serializers.EmailField(source="captured_by.email", read_only=True)
    count_pass = serializers.IntegerField(source="count_pass_id", read_only=True)

    class Meta:
        model = CountLine
        fields = [
            "id",
            "count_pass",
            "product",
            "sku",
            "name",
            "unit",
            "batch",
            "lot_code",
            "raw_scan",
            "quantity",
            "confidence",
            "notes",
            "captured_by",
            "device_id",
            "captured_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PassSerializer(serializers.ModelSerializer):
    started_by = serializers.EmailField(source="started_by.email", read_only=True)

    class Meta:
        model = CountPass
        fields = [
            "id",
            "session",
            "location",
            "category",
            "subcategory",
            "recount_of",
            "status",
            "scan_mode",
            "device_id",
            "started_by",
            "started_at",
            "submitted_at",
            "voided_at",
        ]
        read_only_fields = fields


class ScanSerializer(serializers.Serializer):
    """One scan or typed entry. Name the product by ``barcode`` (as scanned), ``sku`` or id."""

    one_of = ("barcode", "sku", "product")  # documented as oneOf (core.schema)

    barcode = f.CharField(kind=f.SCAN, max_length=200, required=False)
    sku = f.CharField(kind=f.IDENTIFIER, max_length=64, required=False)
    product = serializers.IntegerField(min_value=1, required=False)
    quantity = f.DecimalField(
        **QTY, min_value=Decimal("0"), default=Decimal("1"), max_value=Decimal("1000000000")
    )
    lot_code = f.CharField(
        kind=f.IDENTIFIER, max_length=64, required=False, allow_blank=True, default=""
    )
    client_line_id = f.CharField(
        kind=f.IDENTIFIER, max_length=100, required=False, allow_blank=True, default=""
    )
    # when the scan happened, as the tablet says (a time ahead of the server is clamped to now)
    captured_at = f.BusinessMomentField(required=False)
    confidence = serializers.ChoiceField(choices=["scanned", "typed"], required=False)
    notes = f.CharField(kind=f.TEXT, max_length=500, required=False, allow_blank=True, default="")
    device_id = f.CharField(
        kind=f.IDENTIFIER, max_length=100, required=False, allow_blank=True, default=""
    )

    def validate(self, attrs):
        given = [k for k in ("barcode", "sku", "product") if attrs.get(k) not in (None, "")]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"barcode": ["Name the product once: barcode, sku or product (id)."]}
            )
        return attrs


class BulkScanSerializer(serializers.Serializer):
    device_id = f.CharField(
        kind=f.IDENTIFIER, max_length=100, required=False, allow_blank=True, default=""
    )
    lines = ScanSerializer(many=True, allow_empty=False, max_length=2000)


class LineUpdateSerializer(serializers.Serializer):
    quantity = f.DecimalField(
        **QTY, min_value=Decimal("0"), required=False, max_value=Decimal("1000000000")
    )
    notes = f.CharField(kind=f.TEXT, max_length=500, required=False, allow_blank=True)


class UnresolvedSerializer(serializers.ModelSerializer):
    captured_by = serializers.EmailField(source="captured_by.email", read_only=True)

    class Meta:
        model = UnresolvedScan
        fields = [
            "id",
            "count_pass",
            "raw_scan",
            "quantity",
            "client_line_id",
            "captured_by",
            "device_id",
            "captured_at",
            "resolved_line",
            "resolved_at",
        ]
        read_only_fields = fields


class ResolveSerializer(serializers.Serializer):
    product = serializers.IntegerField(min_value=1)


class DecisionSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=PostingMode.choices, default=PostingMode.KEEP_DIFFERENCE)
    reason = f.CharField(kind=f.TEXT, max_length=255, required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = f.CharField(kind=f.TEXT, max_length=255)
