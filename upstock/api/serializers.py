"""Upstock requests (what a tablet or a manager's browser sends) and the answers that are rows
of one model. Every input field is one of ``core.fields``' (NFC, the characters its kind allows,
plain decimals); shapes the views build as dicts are in ``responses.py``."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core import fields as f
from inventory.api.base import MAX_QTY, POSITIVE, QTY, StoreField
from upstock.models import Baseline, ExceptionReason, RunStatus, UpstockRun

MAX_BULK_ROWS = 5_000
ZERO = Decimal("0")

CATEGORY = {"max_length": 120}


def _optional_text(**kwargs):
    return f.CharField(required=False, allow_blank=True, default="", **kwargs)


# --- baselines ----------------------------------------------------------------------------------


class UpstockBaselineQuery(serializers.Serializer):
    """``GET baselines``: every filter optional."""

    store = serializers.IntegerField(min_value=1, required=False)
    location = serializers.IntegerField(min_value=1, required=False)
    product = serializers.IntegerField(min_value=1, required=False)
    category = f.CharField(required=False, allow_blank=True, **CATEGORY)


class UpstockBaselineExportQuery(serializers.Serializer):
    """``GET baselines/export``: one store's par levels, or one floor's."""

    store = serializers.IntegerField(min_value=1)
    location = serializers.IntegerField(min_value=1, required=False)


class UpstockBaselineCreateSerializer(serializers.Serializer):
    """A par level for one product (named by ``product`` id, ``sku`` or ``barcode``) or, with
    no product, the default of a ``category`` (optionally narrowed to a ``subcategory``).
    Creating one that exists (same floor and product, or same category and subcategory)
    changes its par: a manager typing the par again is not a conflict."""

    store = StoreField()
    location = serializers.IntegerField(min_value=1)
    product = serializers.IntegerField(min_value=1, required=False)
    sku = f.CharField(kind=f.IDENTIFIER, max_length=64, required=False)
    barcode = f.CharField(kind=f.SCAN, max_length=200, required=False)
    category = _optional_text(**CATEGORY)
    subcategory = _optional_text(**CATEGORY)
    par_qty = f.DecimalField(**QTY, min_value=ZERO, max_value=MAX_QTY)
    min_pull = f.DecimalField(
        **QTY, min_value=ZERO, max_value=MAX_QTY, required=False, allow_null=True, default=None
    )

    def validate(self, attrs):
        named = [k for k in ("product", "sku", "barcode") if attrs.get(k) not in (None, "")]
        if len(named) > 1:
            raise serializers.ValidationError(
                {named[1]: ["Name the product once: product (id), sku or barcode."]}
            )
        if named and (attrs["category"] or attrs["subcategory"]):
            raise serializers.ValidationError(
                {"category": ["A product's par level has no category: give one or the other."]}
            )
        if not named and not attrs["category"]:
            raise serializers.ValidationError(
                {"category": ["Name a product (product, sku or barcode) or a category."]}
            )
        return attrs


class UpstockBaselineUpdateSerializer(serializers.Serializer):
    """What a par level's edit may change; what it is for (floor, product, category) stays."""

    par_qty = f.DecimalField(**QTY, min_value=ZERO, max_value=MAX_QTY, required=False)
    min_pull = f.DecimalField(
        **QTY, min_value=ZERO, max_value=MAX_QTY, required=False, allow_null=True
    )

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"par_qty": ["Nothing to change."]})
        return attrs


class UpstockBaselineBulkSerializer(serializers.Serializer):
    """Many par levels of one floor at once, as the CSV import takes them: each row names a
    product (``sku``, ``barcode`` or ``product``) or a ``category``; a bad row is reported by
    its position (``line``, 1-based) and the good ones are applied unless ``dry_run``."""

    store = StoreField()
    location = serializers.IntegerField(min_value=1)
    dry_run = serializers.BooleanField(default=False)
    rows = serializers.ListField(
        child=f.DictField(child=f.JSONField(kind=f.NAME, allow_null=True), allow_empty=True),
        allow_empty=False,
        max_length=MAX_BULK_ROWS,
    )


class UpstockImportQuery(serializers.Serializer):
    """``POST baselines/import``: which floor the file is for, and whether only to check it."""

    store = serializers.IntegerField(min_value=1)
    location = serializers.IntegerField(min_value=1)
    dry_run = serializers.BooleanField(default=False)


class UpstockBaselineSerializer(serializers.ModelSerializer):
    location_code = serializers.CharField(source="location.code", read_only=True)
    sku = serializers.CharField(source="product.sku", read_only=True, default=None, allow_null=True)
    name = serializers.CharField(
        source="product.name", read_only=True, default=None, allow_null=True
    )
    updated_by = serializers.EmailField(
        source="updated_by.email", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Baseline
        fields = [
            "id",
            "store",
            "location",
            "location_code",
            "product",
            "sku",
            "name",
            "category",
            "subcategory",
            "par_qty",
            "min_pull",
            "updated_by",
            "updated_at",
        ]
        read_only_fields = fields


# --- runs ---------------------------------------------------------------------------------------


class UpstockRunQuery(serializers.Serializer):
    """``GET runs``: newest first; ``date`` is the store-local day the run was created."""

    store = serializers.IntegerField(min_value=1, required=False)
    location = serializers.IntegerField(min_value=1, required=False)
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    date = f.BusinessDateField(required=False)


class UpstockRunCreateSerializer(serializers.Serializer):
    """A pull list for one sales floor now (the nightly job makes them at closing).
    ``client_ref``: a tablet retrying the request gets the run its first attempt made."""

    store = StoreField()
    location = serializers.IntegerField(min_value=1)
    category = _optional_text(**CATEGORY)
    client_ref = _optional_text(kind=f.IDENTIFIER, max_length=128)


class UpstockRunSerializer(serializers.ModelSerializer):
    location_code = serializers.CharField(source="location.code", read_only=True)
    created_by = serializers.EmailField(
        source="created_by.email",
        read_only=True,
        default=None,
        allow_null=True,
        help_text="Null when the nightly job made the run (created_by_job names it).",
    )

    class Meta:
        model = UpstockRun
        fields = [
            "id",
            "store",
            "location",
            "location_code",
            "category",
            "window_start",
            "window_end",
            "status",
            "created_by",
            "created_by_job",
            "notes",
            "client_ref",
            "created_at",
            "completed_at",
            "abandoned_at",
        ]
        read_only_fields = fields


# --- lines --------------------------------------------------------------------------------------


class UpstockLineDoneSerializer(serializers.Serializer):
    """The quantity pulled (posted as a move back room → floor, earliest expiry first unless
    ``batch`` names the lot). The same ``client_ref`` again posts nothing."""

    pulled = f.DecimalField(**QTY, min_value=ZERO, max_value=MAX_QTY)
    client_ref = f.CharField(kind=f.IDENTIFIER, max_length=128)
    batch = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


class UpstockLineSkipSerializer(serializers.Serializer):
    note = _optional_text(kind=f.TEXT, max_length=500)


class UpstockLineExceptionSerializer(serializers.Serializer):
    """Why the line cannot be pulled as suggested. ``missing`` or ``damaged`` with a
    ``quantity`` records a discrepancy for a manager."""

    # Checked by the service (400 naming reason); typed in the answers' exception_reason, as
    # one enum rather than the same choices under two names.
    reason = f.CharField(
        kind=f.IDENTIFIER, max_length=32, help_text=" | ".join(ExceptionReason.values)
    )
    quantity = f.DecimalField(
        **QTY, min_value=POSITIVE, max_value=MAX_QTY, required=False, allow_null=True, default=None
    )
    note = _optional_text(kind=f.TEXT, max_length=500)


class UpstockScanSerializer(serializers.Serializer):
    """A pull confirmed by scanning the pack: the code as the scanner sent it (an SKU, a GTIN,
    a GS1 string whose lot is pulled, a package tag). ``line``: the line the tablet shows, so a
    pack of another product is refused naming the one expected."""

    code = f.CharField(kind=f.SCAN, max_length=200)
    quantity = f.DecimalField(**QTY, min_value=POSITIVE, max_value=MAX_QTY, default=Decimal("1"))
    client_ref = f.CharField(kind=f.IDENTIFIER, max_length=128)
    line = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
