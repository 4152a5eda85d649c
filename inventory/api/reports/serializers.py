"""Shapes of answers that views build as dicts, for the OpenAPI description only.

Declaring a list answer with one of these (``many=True``) is also what makes drf-spectacular
document the page envelope and the ``page``/``page_size`` parameters. Every field is read-only
and nothing here validates input; quantities and money are decimal strings with four places.
"""

from __future__ import annotations

from rest_framework import serializers

from inventory.models import ShortfallOutcome


def _decimal(**kwargs):
    kwargs.setdefault("help_text", "A decimal, four places.")
    return serializers.CharField(read_only=True, **kwargs)


class StockRowSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    brand = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    subcategory = serializers.CharField(read_only=True)
    unit = serializers.CharField(read_only=True)
    store = serializers.IntegerField(read_only=True)
    store_code = serializers.CharField(read_only=True)
    on_hand = _decimal()
    sellable = _decimal()
    expired = _decimal()
    value = _decimal()
    reorder_point = _decimal(allow_null=True)
    reorder_qty = _decimal(allow_null=True)
    status = serializers.CharField(read_only=True)
    expiring_soon = _decimal()


class SummaryStoreSerializer(serializers.Serializer):
    store = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    on_hand = _decimal()
    sellable = _decimal()
    value = _decimal()


class SummaryRowSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    brand = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    subcategory = serializers.CharField(read_only=True)
    unit = serializers.CharField(read_only=True)
    on_hand = _decimal()
    value = _decimal()
    stores = SummaryStoreSerializer(many=True, read_only=True)


class PerUnitSerializer(serializers.Serializer):
    """A quantity per unit of measure: pieces, grams and millilitres are never added up."""

    each = _decimal()
    g = _decimal()
    ml = _decimal()


class StockKpisSerializer(serializers.Serializer):
    store = serializers.IntegerField(read_only=True, allow_null=True)
    expiring_within = serializers.IntegerField(read_only=True)
    skus = serializers.IntegerField(
        read_only=True,
        help_text="Distinct products whose on-hand is not zero in some store of"
        " the scope; a product stocked in two stores counts once.",
    )
    units = PerUnitSerializer(read_only=True, help_text="On hand, per unit of measure.")
    value = _decimal(help_text="On hand at cost.")
    low_stock_count = serializers.IntegerField(
        read_only=True,
        help_text="(product, store) pairs at or below the product's reorder"
        " point; a product low in two stores counts twice.",
    )
    expiring_soon_count = serializers.IntegerField(
        read_only=True, help_text="Distinct lots with stock expiring within expiring_within days."
    )
    expired_units = PerUnitSerializer(
        read_only=True, help_text="Stock of lots past expiry, per unit of measure."
    )


class ShortfallSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    store = serializers.IntegerField(read_only=True)
    store_code = serializers.CharField(read_only=True)
    location = serializers.IntegerField(read_only=True, allow_null=True)
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    requested = _decimal(help_text="Quantity the move wanted.")
    available = _decimal(help_text="Quantity there was (what posted, if any).")
    missing = _decimal(help_text="requested − available")
    outcome = serializers.ChoiceField(read_only=True, choices=ShortfallOutcome.choices)
    ref_type = serializers.CharField(read_only=True)
    ref_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The document; null when it was refused."
    )
    client_ref = serializers.CharField(read_only=True)
    user = serializers.EmailField(read_only=True, allow_null=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
