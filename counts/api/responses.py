"""Shapes of count answers that views build as dicts or extend, and the answer of a variance
row (``variance_row_body``). Read-only: nothing here validates input; quantities and money are
decimal strings with four places."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core.isotime import iso
from counts.api.serializers import (
    LineSerializer,
    PassSerializer,
    SessionSerializer,
    UnresolvedSerializer,
)
from counts.models import PassStatus, PostingMode, SessionStatus, VarianceRow, VarianceStatus
from inventory.api.base import DecimalString

QUANTUM = Decimal("0.0001")


# --- GET sessions/{id} --------------------------------------------------------------------------


class PassProgressSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True)
    location_code = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    subcategory = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(read_only=True, choices=PassStatus.choices)
    recount_of = serializers.IntegerField(read_only=True, allow_null=True)
    started_by = serializers.EmailField(read_only=True)
    device_id = serializers.CharField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True)
    submitted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    lines = serializers.IntegerField(read_only=True, help_text="Lines of the pass.")
    units = DecimalString(help_text="Sum of the pass's counted quantities.")


class SessionProgressSerializer(serializers.Serializer):
    passes = PassProgressSerializer(many=True, read_only=True)
    locations_in_scope = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    locations_covered = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Locations with a submitted pass.",
    )
    lines = serializers.IntegerField(read_only=True, help_text="Lines of the passes not voided.")
    unresolved_scans = serializers.IntegerField(read_only=True)


class SessionDetailSerializer(SessionSerializer):
    progress = SessionProgressSerializer(read_only=True)

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "progress"]
        read_only_fields = fields


# --- GET passes/{id} ----------------------------------------------------------------------------


class PassDetailSerializer(PassSerializer):
    lines = LineSerializer(many=True, read_only=True)
    unresolved = UnresolvedSerializer(
        many=True, read_only=True, help_text="Scans of the pass nothing matched, not yet mapped."
    )

    class Meta(PassSerializer.Meta):
        fields = [*PassSerializer.Meta.fields, "lines", "unresolved"]
        read_only_fields = fields


# --- POST passes/{id}/lines/bulk ----------------------------------------------------------------


class UnresolvedIndexSerializer(serializers.Serializer):
    index = serializers.IntegerField(read_only=True, help_text="Position in the request's lines.")
    barcode = serializers.CharField(read_only=True)


class BulkScanResultSerializer(serializers.Serializer):
    applied = serializers.IntegerField(read_only=True)
    replayed = serializers.IntegerField(
        read_only=True, help_text="Scans skipped: their client_line_id was applied before."
    )
    lines = LineSerializer(many=True, read_only=True, help_text="The lines the scans touched.")
    unresolved = UnresolvedIndexSerializer(
        many=True, read_only=True, help_text="Scans nothing matched: kept on the pass."
    )


# --- GET sessions/{id}/variance -----------------------------------------------------------------


class VarianceReportRowSerializer(serializers.Serializer):
    """One (location, product). A live preview (before reconciling) has no decision yet: status,
    mode, reason, decided_by, posted_quantity and unposted_quantity come only with the frozen
    rows of a reconciled (or closed) session."""

    optional = (
        "status",
        "mode",
        "reason",
        "decided_by",
        "posted_quantity",
        "unposted_quantity",
        "discrepancy",
    )

    id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The variance row; null in a live preview."
    )
    location = serializers.IntegerField(read_only=True)
    location_code = serializers.CharField(read_only=True)
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    subcategory = serializers.CharField(read_only=True)
    expected = DecimalString()
    counted = DecimalString()
    variance = DecimalString(help_text="counted − expected")
    variance_pct = DecimalString(allow_null=True, help_text="Null when nothing was expected.")
    unit_cost = DecimalString()
    value = DecimalString(help_text="variance × unit_cost")
    expected_at = serializers.DateTimeField(read_only=True)
    status = serializers.ChoiceField(read_only=True, choices=VarianceStatus.choices)
    mode = serializers.ChoiceField(read_only=True, choices=PostingMode.choices)
    reason = serializers.CharField(read_only=True)
    decided_by = serializers.EmailField(read_only=True, allow_null=True)
    posted_quantity = DecimalString(
        allow_null=True, help_text="What finalising posted; null until then."
    )
    unposted_quantity = DecimalString(
        allow_null=True,
        help_text="The part of a shortage finalising could not post (stock gone meanwhile).",
    )
    discrepancy = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Outside its category's variance policy, the row is this discrepancy "
        "(/api/v1/discrepancies/{id}); null when approved by policy.",
    )


class VarianceProductSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    expected = DecimalString()
    counted = DecimalString()
    variance = DecimalString()
    value = DecimalString()


class VarianceTotalsSerializer(serializers.Serializer):
    items = serializers.IntegerField(read_only=True)
    items_counted = serializers.IntegerField(read_only=True)
    items_with_variance = serializers.IntegerField(read_only=True)
    positive_units = DecimalString()
    negative_units = DecimalString()
    positive_value = DecimalString()
    negative_value = DecimalString()
    absolute_value = DecimalString()


class VarianceReportSerializer(serializers.Serializer):
    session = serializers.IntegerField(read_only=True)
    status = serializers.ChoiceField(read_only=True, choices=SessionStatus.choices)
    frozen = serializers.BooleanField(
        read_only=True, help_text="Rows frozen at reconciling; false: a live preview."
    )
    rows = VarianceReportRowSerializer(many=True, read_only=True)
    by_product = VarianceProductSerializer(many=True, read_only=True)
    totals = VarianceTotalsSerializer(read_only=True)


# --- PATCH sessions/{id}/variance/{row}, approve, reject ----------------------------------------


class VarianceRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    session = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True)
    product = serializers.IntegerField(read_only=True)
    expected = DecimalString()
    counted = DecimalString()
    variance = DecimalString()
    value = DecimalString()
    status = serializers.ChoiceField(read_only=True, choices=VarianceStatus.choices)
    mode = serializers.ChoiceField(read_only=True, choices=PostingMode.choices)
    reason = serializers.CharField(read_only=True)
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True)
    discrepancy = serializers.IntegerField(read_only=True, allow_null=True)


def _q(value) -> str:
    return str(Decimal(value).quantize(QUANTUM))


def variance_row_body(row: VarianceRow) -> dict:
    """A variance row after a decision or a reason (``VarianceRowSerializer``)."""
    return {
        "id": row.pk,
        "session": row.session_id,
        "location": row.location_id,
        "product": row.product_id,
        "expected": _q(row.expected),
        "counted": _q(row.counted),
        "variance": _q(row.variance),
        "value": _q(row.value),
        "status": row.status,
        "mode": row.mode,
        "reason": row.reason,
        "decided_at": iso(row.decided_at),
        "discrepancy": row.discrepancy_id,
    }
