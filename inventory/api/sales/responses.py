"""Answers of POS sales, voids and refunds: the one representation of a sale and of a refund.

A sale answers the same shape wherever it appears — ``POST /sales`` (201, and 200 with the very
same bytes when a device replays its ``client_ref``), ``GET /sales/{id}``, the items of
``GET /sales`` and ``POST /sales/{id}/void`` — and a refund the same shape as the answer of
``POST /sales/{id}/refunds`` and as an item of its sale's ``refunds``. ``sale_body`` and
``refund_body`` build them, and only they: each renders through its serializer, so the keys
come out in the documented order at every level whatever order the stored JSON kept
(PostgreSQL's ``jsonb`` keeps none), and the answer is exactly what the schema says.
"""

from __future__ import annotations

from rest_framework import serializers

from core.isotime import iso
from inventory.api.base import DecimalString
from inventory.models import Refund, Sale, SaleStatus


class ConsumedLotSerializer(serializers.Serializer):
    """What a sale line took from one lot in one location, at the lot's unit cost."""

    batch = serializers.IntegerField(read_only=True)
    lot_code = serializers.CharField(read_only=True)
    expiry_date = serializers.DateField(read_only=True, allow_null=True)
    unallocated = serializers.BooleanField(
        read_only=True, help_text="Sold without stock: booked to the store's unallocated batch."
    )
    location = serializers.IntegerField(read_only=True)
    quantity = DecimalString()
    unit_cost = DecimalString()


class SaleLineAnswerSerializer(serializers.Serializer):
    line = serializers.IntegerField(read_only=True, help_text="1-based, in the request's order.")
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    quantity = DecimalString()
    unit_price = DecimalString(allow_null=True)
    cost = DecimalString(help_text="Cost of goods sold of the line (sum of consumed at cost).")
    consumed = ConsumedLotSerializer(many=True, read_only=True)


class _WhenGiven:
    """A field of a warning answered only when the warning has it (DRF would answer a
    nullable field a warning lacks as null)."""

    def get_attribute(self, instance):
        if isinstance(instance, dict) and self.source not in instance:
            raise serializers.SkipField()
        return super().get_attribute(instance)


class _OptionalDecimal(_WhenGiven, DecimalString):
    pass


class _OptionalText(_WhenGiven, serializers.CharField):
    pass


class SaleWarningSerializer(serializers.Serializer):
    """Something the sale posted with but should be looked at: a line sold beyond the stock
    (``sold_without_stock``, negative-stock mode ``warn``: with sku, requested, available), or
    what a stock policy said — the discrepancy enforcement's ``open_discrepancy`` (mode
    ``warn``) or ``open_discrepancy_overridden`` (mode ``block``, a manager's override), with
    the held product, its store and the open discrepancies."""

    #: ``sold_without_stock`` names sku, requested, available; ``open_discrepancy`` and
    #: ``open_discrepancy_overridden`` product, store, discrepancies, severity; every warning
    #: code, line and detail
    optional = (
        "sku",
        "requested",
        "available",
        "product",
        "store",
        "discrepancies",
        "severity",
    )

    code = serializers.CharField(read_only=True)
    line = serializers.IntegerField(read_only=True, allow_null=True)
    sku = serializers.CharField(read_only=True)
    requested = DecimalString()
    available = _OptionalDecimal(
        allow_null=True, help_text="Null while a blind count hides the store's stock from you."
    )
    product = serializers.IntegerField(read_only=True, help_text="The held product.")
    store = serializers.IntegerField(read_only=True, help_text="Where it is held.")
    discrepancies = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="The open HIGH or CRITICAL discrepancies holding it, worst first.",
    )
    severity = _OptionalText(
        read_only=True, allow_null=True, help_text="The worst of them: HIGH or CRITICAL."
    )
    detail = serializers.CharField(read_only=True)


class RefundLineAnswerSerializer(serializers.Serializer):
    line = serializers.IntegerField(read_only=True, help_text="The sale's line.")
    batch = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True, help_text="Where the goods went back.")
    quantity = DecimalString()
    unit_cost = DecimalString()


class RefundSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    sale = serializers.IntegerField(read_only=True)
    client_ref = serializers.CharField(read_only=True)
    location = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The location named; null: where each came from."
    )
    reason = serializers.CharField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    lines = RefundLineAnswerSerializer(many=True, read_only=True)


class SaleSerializer(serializers.Serializer):
    """A sale as recorded — lines with the lots they consumed and their cost, the cost of goods
    sold, the warnings — and what happened to it since: status, void time, refunds."""

    id = serializers.IntegerField(read_only=True)
    store = serializers.IntegerField(read_only=True)
    client_ref = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(read_only=True, choices=SaleStatus.choices)
    occurred_at = serializers.DateTimeField(read_only=True)
    source_ref = serializers.CharField(read_only=True)
    lines = SaleLineAnswerSerializer(many=True, read_only=True)
    cogs = DecimalString(help_text="Cost of goods sold of the whole sale.")
    warnings = SaleWarningSerializer(many=True, read_only=True)
    voided_at = serializers.DateTimeField(read_only=True, allow_null=True)
    refunds = RefundSerializer(many=True, read_only=True)


# Rendering only (to_representation keeps no state): one instance each, built once.
_SALE = SaleSerializer()
_REFUND = RefundSerializer()


def refund_body(refund: Refund) -> dict:
    """The refund's answer: the one the service stored, in the documented shape."""
    return _REFUND.to_representation(refund.result)


def sale_body(sale: Sale, *, as_recorded: bool = False) -> dict:
    """The sale's answer.

    ``as_recorded``: the answer ``POST /sales`` gave when the sale was recorded (the service
    stores it in this shape), byte for byte, for the first answer and every replay — a device
    compares them; it reads nothing from the database. Otherwise: the same, with the sale's
    status, void time and refunds as they are now (``sale.refunds`` should be prefetched).
    """
    body = dict(sale.result)
    if as_recorded:
        # sales recorded before the answer carried these had neither been voided nor refunded
        body.setdefault("voided_at", None)
        body.setdefault("refunds", [])
    else:
        body["status"] = sale.status
        body["voided_at"] = iso(sale.voided_at)
        body["refunds"] = [refund.result for refund in sale.refunds.all()]
    return _SALE.to_representation(body)
