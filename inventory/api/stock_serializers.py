"""Input shapes for stock writes: sales, refunds, receipts, moves, adjustments, write-offs.

Serializers check shapes and ranges only. Products named by id, SKU or barcode and lot codes are
resolved for the whole request at once by ``inventory.catalog.resolver``, which also checks the
rules that need the resolved rows (whole numbers for ``each`` products, locations of the store).
"""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from core.fields import BusinessTimeField
from inventory.api.serializers import TenantPrimaryKeyField
from inventory.models import Store

QTY = {"max_digits": 18, "decimal_places": 4}
MONEY = {"max_digits": 14, "decimal_places": 4}
POSITIVE = Decimal("0.0001")
# Far above any real line, far below what a quant can hold: repeated huge lines cannot overflow.
MAX_QTY = Decimal("1000000000")
MAX_LINES = 500


class StoreField(TenantPrimaryKeyField):
    """A store of the caller's organisation that their membership may use."""

    def __init__(self, **kwargs):
        super().__init__(Store, **kwargs)

    def get_queryset(self):
        stores = Store.objects.filter(is_active=True)
        tenant = getattr(self.context.get("request"), "tenant", None)
        if tenant is not None and tenant.store_ids is not None:
            stores = stores.filter(pk__in=tenant.store_ids)
        return stores


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


class DocumentSerializer(serializers.Serializer):
    store = StoreField()
    client_ref = f.CharField(kind=f.IDENTIFIER, max_length=128)
    occurred_at = BusinessTimeField(required=False)
    source_ref = f.CharField(kind=f.IDENTIFIER, max_length=128, required=False, default="",
                             allow_blank=True)


class SaleLineSerializer(ProductRefSerializer):
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    unit_price = f.DecimalField(**MONEY, min_value=Decimal("0"), required=False,
                                          allow_null=True)
    location = serializers.IntegerField(required=False, min_value=1, allow_null=True)


class SaleCreateSerializer(DocumentSerializer):
    lines = SaleLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


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


class ReceiptLineSerializer(ProductRefSerializer):
    location = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    lot_code = f.CharField(kind=f.IDENTIFIER, max_length=64, required=False, default="",
                           allow_blank=True)
    expiry_date = f.BusinessDateField(required=False, allow_null=True)
    unit_cost = f.DecimalField(**MONEY, min_value=Decimal("0"), required=False,
                                         allow_null=True)


class ReceiptSerializer(DocumentSerializer):
    reason = f.CharField(kind=f.TEXT, max_length=255, required=False, default="", allow_blank=True)
    lines = ReceiptLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class MoveLineSerializer(ProductRefSerializer):
    from_location = serializers.IntegerField(min_value=1)
    to_location = serializers.IntegerField(min_value=1)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY)
    lot_code = f.CharField(kind=f.IDENTIFIER, max_length=64, required=False, default="",
                           allow_blank=True)

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
    quantity = f.DecimalField(**QTY, min_value=-MAX_QTY, max_value=MAX_QTY,
                                        help_text="Signed: + found, - missing.")
    lot_code = f.CharField(kind=f.IDENTIFIER, max_length=64, required=False, default="",
                           allow_blank=True)
    expiry_date = f.BusinessDateField(required=False, allow_null=True)
    unit_cost = f.DecimalField(**MONEY, min_value=Decimal("0"), required=False,
                                         allow_null=True)

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
    lot_code = f.CharField(kind=f.IDENTIFIER, max_length=64, required=False, default="",
                           allow_blank=True)


class WriteOffSerializer(DocumentSerializer):
    type = serializers.ChoiceField(choices=["damage", "waste", "expiry"])
    reason = f.CharField(kind=f.TEXT, max_length=255)
    lines = WriteOffLineSerializer(many=True, allow_empty=False, max_length=MAX_LINES)
