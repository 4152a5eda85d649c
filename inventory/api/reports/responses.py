"""Shapes of the answers of stock reads and reports, which views build as dicts: for the OpenAPI
description only.

Declaring a list answer with one of these (``many=True``) is also what makes drf-spectacular
document the page envelope and the ``page``/``page_size`` parameters. Every field is read-only
and nothing here validates input; quantities and money are decimal strings with four places.
"""

from __future__ import annotations

from rest_framework import serializers

from inventory.api.base import DecimalString
from inventory.models import RefType, ShortfallOutcome


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
    on_hand = DecimalString()
    sellable = DecimalString()
    expired = DecimalString()
    value = DecimalString()
    reorder_point = DecimalString(allow_null=True)
    reorder_qty = DecimalString(allow_null=True)
    status = serializers.CharField(read_only=True)
    expiring_soon = DecimalString()


class SummaryStoreSerializer(serializers.Serializer):
    store = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    on_hand = DecimalString()
    sellable = DecimalString()
    value = DecimalString()


class SummaryRowSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    brand = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    subcategory = serializers.CharField(read_only=True)
    unit = serializers.CharField(read_only=True)
    on_hand = DecimalString()
    value = DecimalString()
    stores = SummaryStoreSerializer(many=True, read_only=True)


class PerUnitSerializer(serializers.Serializer):
    """A quantity per unit of measure: pieces, grams and millilitres are never added up."""

    each = DecimalString()
    g = DecimalString()
    ml = DecimalString()


class StockKpisSerializer(serializers.Serializer):
    store = serializers.IntegerField(read_only=True, allow_null=True)
    expiring_within = serializers.IntegerField(read_only=True)
    skus = serializers.IntegerField(
        read_only=True,
        help_text="Distinct products whose on-hand is not zero in some store of"
        " the scope; a product stocked in two stores counts once.",
    )
    units = PerUnitSerializer(read_only=True, help_text="On hand, per unit of measure.")
    value = DecimalString(help_text="On hand at cost.")
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
    requested = DecimalString(help_text="Quantity the move wanted.")
    available = DecimalString(help_text="Quantity there was (what posted, if any).")
    missing = DecimalString(help_text="requested − available")
    outcome = serializers.ChoiceField(read_only=True, choices=ShortfallOutcome.choices)
    ref_type = serializers.CharField(read_only=True)
    ref_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The document; null when it was refused."
    )
    client_ref = serializers.CharField(read_only=True)
    user = serializers.EmailField(read_only=True, allow_null=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


# --- GET /stock/{product}/batches ---------------------------------------------------------------


class BatchLocationSerializer(serializers.Serializer):
    location = serializers.IntegerField(read_only=True)
    store = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    quantity = DecimalString()


class BatchRowSerializer(serializers.Serializer):
    batch = serializers.IntegerField(read_only=True)
    lot_code = serializers.CharField(read_only=True)
    expiry_date = serializers.DateField(read_only=True, allow_null=True)
    received_at = serializers.DateTimeField(read_only=True)
    unit_cost = DecimalString()
    unallocated = serializers.BooleanField(
        read_only=True, help_text="The store's batch of stock sold without stock."
    )
    total = DecimalString(help_text="On hand over the locations listed.")
    expiry_status = serializers.ChoiceField(
        read_only=True,
        choices=["expired", "expiring", "ok", "none"],
        help_text="none: the lot has no expiry date.",
    )
    locations = BatchLocationSerializer(many=True, read_only=True)


class StockBatchesSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    unit = serializers.CharField(read_only=True)
    store = serializers.IntegerField(read_only=True, allow_null=True)
    expiring_within = serializers.IntegerField(read_only=True)
    results = BatchRowSerializer(many=True, read_only=True, help_text="FEFO order.")


# --- GET /ledger/ -------------------------------------------------------------------------------


class LedgerRowSerializer(serializers.Serializer):
    """One ledger row; the CSV has the same columns in the same order."""

    id = serializers.IntegerField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True, help_text="Business time.")
    created_at = serializers.DateTimeField(read_only=True, help_text="When it was written.")
    store = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True)
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    batch = serializers.IntegerField(read_only=True)
    lot_code = serializers.CharField(read_only=True)
    qty_delta = DecimalString(help_text="Signed: + into the location, - out of it.")
    unit_cost = DecimalString()
    ref_type = serializers.ChoiceField(read_only=True, choices=RefType.choices)
    ref_id = serializers.IntegerField(read_only=True, help_text="The document, of its ref_type.")
    ref_line = serializers.IntegerField(read_only=True)
    source = serializers.CharField(read_only=True)
    source_ref = serializers.CharField(read_only=True)
    reason = serializers.CharField(read_only=True)
    user = serializers.IntegerField(read_only=True, allow_null=True)


# --- GET /reports/cogs --------------------------------------------------------------------------


class CogsTotalsSerializer(serializers.Serializer):
    quantity = DecimalString()
    cost = DecimalString()


class CogsProductSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    quantity = DecimalString()
    cost = DecimalString()


class CogsLotSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    batch = serializers.IntegerField(read_only=True)
    lot_code = serializers.CharField(read_only=True)
    expiry_date = serializers.DateField(read_only=True, allow_null=True)
    quantity = DecimalString()
    cost = DecimalString()


class CogsReportSerializer(serializers.Serializer):
    store = serializers.IntegerField(read_only=True, allow_null=True)
    totals = CogsTotalsSerializer(read_only=True)
    by_product = CogsProductSerializer(many=True, read_only=True)
    by_lot = CogsLotSerializer(many=True, read_only=True)

    def get_fields(self):
        # "from" is a Python keyword: add the period's fields under their answer names
        fields = super().get_fields()
        period = {
            "from": serializers.DateField(read_only=True),
            "to": serializers.DateField(read_only=True, help_text="Inclusive."),
        }
        return {"store": fields.pop("store"), **period, **fields}


# --- GET /stock/reconciliation ------------------------------------------------------------------


class IdSlugSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    slug = serializers.CharField(read_only=True)


class IdCodeSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)


class IdLotSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    lot = serializers.CharField(read_only=True)


class IdSkuSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)


class MismatchSerializer(serializers.Serializer):
    """A (location, lot) whose ledger sum differs from its quant."""

    store_id = serializers.IntegerField(read_only=True)
    location = IdCodeSerializer(read_only=True)
    batch = IdLotSerializer(read_only=True)
    product = IdSkuSerializer(read_only=True)
    ledger_sum = DecimalString()
    quant = DecimalString()
    difference = DecimalString(help_text="quant − ledger_sum")


class NegativeQuantSerializer(serializers.Serializer):
    quant_id = serializers.IntegerField(read_only=True)
    store_id = serializers.IntegerField(read_only=True)
    location = IdCodeSerializer(read_only=True)
    batch = IdLotSerializer(read_only=True)
    product = IdSkuSerializer(read_only=True)
    quantity = DecimalString()


class FlaggedProductSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    on_hand = DecimalString()
    mismatch = DecimalString(help_text="Sum of the product's absolute mismatches.")


class ReconciliationSerializer(serializers.Serializer):
    org = IdSlugSerializer(read_only=True)
    store = IdCodeSerializer(read_only=True, allow_null=True, help_text="Null: every store.")
    checked_at = serializers.DateTimeField(read_only=True)
    ok = serializers.BooleanField(read_only=True, help_text="No mismatch and no negative quant.")
    mismatches = MismatchSerializer(many=True, read_only=True)
    negative_quants = NegativeQuantSerializer(
        many=True, read_only=True, help_text="Below zero outside the unallocated batch."
    )
    open_shortfalls = NegativeQuantSerializer(
        many=True,
        read_only=True,
        help_text="Unallocated (sold without stock): allowed, settled by a receipt or count.",
    )
    flagged_products = FlaggedProductSerializer(many=True, read_only=True)
