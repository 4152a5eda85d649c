"""The answer of a stock document — receipt, move, adjustment or write-off: one shape for all
four, 201 when recorded and 200 with the very same bytes when a device replays its
``client_ref``. ``document_body`` renders the stored answer through ``StockDocumentSerializer``,
so the keys come out in the documented order whatever order the stored JSON kept."""

from __future__ import annotations

from rest_framework import serializers

from inventory.api.base import DecimalString
from inventory.models import DocumentKind, RefType, StockDocument


class DocumentRowSerializer(serializers.Serializer):
    """One ledger row the document posted (a move posts two per line: out and in)."""

    line = serializers.IntegerField(read_only=True, help_text="1-based, in the request's order.")
    ref_type = serializers.ChoiceField(read_only=True, choices=RefType.choices)
    product = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True)
    batch = serializers.IntegerField(read_only=True)
    quantity = DecimalString(help_text="Signed: + into the location, - out of it.")
    unit_cost = DecimalString()
    reason = serializers.CharField(read_only=True)


class StockDocumentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(read_only=True, choices=DocumentKind.choices)
    store = serializers.IntegerField(read_only=True)
    client_ref = serializers.CharField(read_only=True)
    reason = serializers.CharField(read_only=True)
    type = serializers.ChoiceField(
        read_only=True,
        allow_null=True,
        choices=["damage", "waste", "expiry"],
        help_text="A write-off's type; null for the other kinds.",
    )
    source_ref = serializers.CharField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    rows = DocumentRowSerializer(many=True, read_only=True)


# Rendering only (to_representation keeps no state): built once.
_DOCUMENT = StockDocumentSerializer()


def document_body(document: StockDocument) -> dict:
    """The document's answer: the one the service stored, in the documented shape."""
    return _DOCUMENT.to_representation(document.result)
