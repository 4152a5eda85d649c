"""Shapes of the discrepancy answers, and the functions that build them as dicts.

Read-only: nothing here validates input. Quantities and money are decimal strings with four
places (``fmt``), times UTC with ``Z`` (``iso``), people ``{"id", "email"}`` or null.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.isotime import iso
from discrepancies.models import (
    CorrectionMode,
    DiscrepancyFields,
    DocumentType,
    Kind,
    Severity,
    Source,
    Status,
    VariancePolicy,
)
from discrepancies.selectors import DiscrepancyDetail, TimelineEntry, is_archived
from inventory.api.base import DecimalString
from inventory.stock.write_path import fmt

# --- the pieces ---------------------------------------------------------------------------------


class DiscrepancyPersonSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)


def person(user) -> dict | None:
    return None if user is None else {"id": user.pk, "email": user.email}


def _q(value) -> str | None:
    return None if value is None else fmt(value)


class DiscrepancyDocumentRefSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=DocumentType.choices, read_only=True)
    id = serializers.IntegerField(read_only=True, allow_null=True)
    line = serializers.IntegerField(read_only=True)


class DiscrepancyLedgerRefSerializer(serializers.Serializer):
    ref_type = serializers.CharField(read_only=True)
    ref_id = serializers.IntegerField(read_only=True)
    ref_line = serializers.IntegerField(read_only=True, allow_null=True)


# --- a discrepancy (list row, decision answer) --------------------------------------------------


class DiscrepancySerializer(serializers.Serializer):
    """One discrepancy: where, what, the numbers (variance = actual − expected, positive a
    surplus; value = variance × unit cost), the judgement, and who did what when."""

    id = serializers.IntegerField(read_only=True)
    archived = serializers.BooleanField(read_only=True)
    store = serializers.IntegerField(read_only=True)
    store_code = serializers.CharField(read_only=True)
    location = serializers.IntegerField(read_only=True, allow_null=True)
    location_code = serializers.CharField(read_only=True, allow_null=True)
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    unit = serializers.CharField(read_only=True)
    batch = serializers.IntegerField(read_only=True, allow_null=True)
    lot_code = serializers.CharField(read_only=True, allow_null=True)
    source = serializers.ChoiceField(choices=Source.choices, read_only=True)
    type = serializers.ChoiceField(choices=Kind.choices, read_only=True)
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    severity = serializers.ChoiceField(choices=Severity.choices, read_only=True)
    open = serializers.BooleanField(
        read_only=True, help_text="Undecided, or approved with a correction still to post."
    )
    expected = DecimalString()
    actual = DecimalString()
    variance = DecimalString(help_text="actual − expected: positive is a surplus.")
    unit_cost = DecimalString()
    value = DecimalString(help_text="variance × unit cost (signed).")
    store_on_hand = DecimalString(
        allow_null=True, help_text="The product's stock at the store when it was recorded."
    )
    within_policy = serializers.BooleanField(read_only=True)
    escalated = serializers.BooleanField(
        read_only=True, help_text="When recorded: HIGH/CRITICAL or above the threshold."
    )
    corrective = serializers.BooleanField(
        read_only=True, help_text="Approving it posts a correction (else: acknowledged)."
    )
    correction_mode = serializers.ChoiceField(choices=CorrectionMode.choices, read_only=True)
    document = DiscrepancyDocumentRefSerializer(read_only=True)
    source_ref = serializers.CharField(read_only=True)
    reason = serializers.CharField(read_only=True)
    resolution_notes = serializers.CharField(read_only=True)
    created_by = DiscrepancyPersonSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    reviewed_by = DiscrepancyPersonSerializer(read_only=True, allow_null=True)
    reviewed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    decided_by = DiscrepancyPersonSerializer(read_only=True, allow_null=True)
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True)
    self_approved = serializers.BooleanField(
        read_only=True, help_text="An admin approved their own: nobody else could."
    )
    adjusted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    ledger_ref = DiscrepancyLedgerRefSerializer(
        read_only=True, allow_null=True, help_text="The correction's ledger rows, once posted."
    )
    posted_quantity = DecimalString(allow_null=True)
    archived_at = serializers.DateTimeField(read_only=True, allow_null=True)


def discrepancy_body(d: DiscrepancyFields) -> dict[str, Any]:
    """One discrepancy as the API answers it (its related rows joined by the selector)."""
    archived = is_archived(d)
    return {
        "id": d.pk,
        "archived": archived,
        "store": d.store_id,
        "store_code": d.store.code,
        "location": d.location_id,
        "location_code": d.location.code if d.location_id else None,
        "product": d.product_id,
        "sku": d.product.sku,
        "name": d.product.name,
        "category": d.product.category,
        "unit": d.product.unit,
        "batch": d.batch_id,
        "lot_code": d.batch.lot_code if d.batch_id else None,
        "source": d.source,
        "type": d.kind,
        "status": d.status,
        "severity": d.severity,
        "open": d.is_open,
        "expected": fmt(d.expected),
        "actual": fmt(d.actual),
        "variance": fmt(d.variance),
        "unit_cost": fmt(d.unit_cost),
        "value": fmt(d.value),
        "store_on_hand": _q(d.store_on_hand),
        "within_policy": d.within_policy,
        "escalated": d.escalated,
        "corrective": d.corrective,
        "correction_mode": d.correction_mode,
        "document": {"type": d.document_type, "id": d.document_id, "line": d.document_line},
        "source_ref": d.source_ref,
        "reason": d.reason,
        "resolution_notes": d.resolution_notes,
        "created_by": person(d.created_by),
        "created_at": iso(d.created_at),
        "reviewed_by": person(d.reviewed_by),
        "reviewed_at": iso(d.reviewed_at),
        "decided_by": person(d.decided_by),
        "decided_at": iso(d.decided_at),
        "self_approved": d.self_approved,
        "adjusted_at": iso(d.adjusted_at),
        "ledger_ref": (
            {
                "ref_type": d.ledger_ref_type,
                "ref_id": d.ledger_ref_id,
                "ref_line": d.ledger_ref_line,
            }
            if d.ledger_ref_id is not None
            else None
        ),
        "posted_quantity": _q(d.posted_quantity),
        "archived_at": iso(getattr(d, "archived_at", None)) if archived else None,
    }


# --- the detail ---------------------------------------------------------------------------------


class SourceDocumentSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=DocumentType.choices, read_only=True)
    id = serializers.IntegerField(read_only=True, allow_null=True)
    line = serializers.IntegerField(read_only=True)
    source_ref = serializers.CharField(read_only=True)
    details = serializers.DictField(
        read_only=True,
        help_text="What the document's app shows of it: a count's session, variance row and "
        "location; a correction request's kind, client_ref, reason and lines; a shortfall's "
        "requested and available quantities. Empty when the document is not known.",
    )


class CorrectionLedgerRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    store = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True)
    location_code = serializers.CharField(read_only=True)
    product = serializers.IntegerField(read_only=True)
    batch = serializers.IntegerField(read_only=True)
    lot_code = serializers.CharField(read_only=True)
    qty_delta = DecimalString()
    unit_cost = DecimalString()
    ref_type = serializers.CharField(read_only=True)
    ref_id = serializers.IntegerField(read_only=True)
    ref_line = serializers.IntegerField(read_only=True)
    reason = serializers.CharField(read_only=True)
    user = DiscrepancyPersonSerializer(read_only=True, allow_null=True)


def ledger_row_body(row) -> dict[str, Any]:
    return {
        "id": row.pk,
        "occurred_at": iso(row.occurred_at),
        "store": row.store_id,
        "location": row.location_id,
        "location_code": row.location.code,
        "product": row.product_id,
        "batch": row.batch_id,
        "lot_code": row.batch.lot_code,
        "qty_delta": fmt(row.qty_delta),
        "unit_cost": fmt(row.unit_cost),
        "ref_type": row.ref_type,
        "ref_id": row.ref_id,
        "ref_line": row.ref_line,
        "reason": row.reason,
        "user": person(row.user),
    }


class DiscrepancyTimelineEntrySerializer(serializers.Serializer):
    event = serializers.CharField(
        read_only=True,
        help_text="recorded, reviewed, approved, rejected, adjusted or archived.",
    )
    at = serializers.DateTimeField(read_only=True)
    actor = DiscrepancyPersonSerializer(
        read_only=True, allow_null=True, help_text="None: the system."
    )
    before = serializers.DictField(read_only=True)
    after = serializers.DictField(read_only=True)
    notes = serializers.CharField(read_only=True)
    self_approved = serializers.BooleanField(read_only=True)
    request_id = serializers.CharField(read_only=True)


def timeline_entry_body(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "event": entry.event,
        "at": iso(entry.at),
        "actor": person(entry.actor),
        "before": entry.before,
        "after": entry.after,
        "notes": entry.notes,
        "self_approved": entry.self_approved,
        "request_id": entry.request_id,
    }


class DiscrepancyDetailSerializer(DiscrepancySerializer):
    source_document = SourceDocumentSerializer(read_only=True)
    ledger_rows = CorrectionLedgerRowSerializer(
        many=True, read_only=True, help_text="The rows that posted its correction."
    )
    timeline = DiscrepancyTimelineEntrySerializer(
        many=True, read_only=True, help_text="Oldest first."
    )


def detail_body(detail: DiscrepancyDetail) -> dict[str, Any]:
    return {
        **discrepancy_body(detail.discrepancy),
        "source_document": detail.source_document,
        "ledger_rows": [ledger_row_body(row) for row in detail.ledger_rows],
        "timeline": [timeline_entry_body(entry) for entry in detail.timeline],
    }


# --- bulk ---------------------------------------------------------------------------------------


class DiscrepancyDecidedSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)


class DiscrepancyRefusalSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    detail = serializers.CharField(read_only=True)
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), read_only=True
    )


class DiscrepancyBulkResultSerializer(serializers.Serializer):
    """What a selection's decision did: each id is in exactly one list."""

    decided = DiscrepancyDecidedSerializer(many=True, read_only=True)
    unchanged = DiscrepancyDecidedSerializer(
        many=True, read_only=True, help_text="The same person repeating the same decision."
    )
    refused = DiscrepancyRefusalSerializer(
        many=True, read_only=True, help_text="In the request's order."
    )


def bulk_body(outcome) -> dict[str, Any]:
    return {
        "decided": [{"id": d.pk, "status": d.status} for d in outcome.decided],
        "unchanged": [{"id": d.pk, "status": d.status} for d in outcome.unchanged],
        "refused": [
            {**refusal, "fields": {k: [str(m) for m in v] for k, v in refusal["fields"].items()}}
            for refusal in outcome.refusals()
        ],
    }


# --- variance policies --------------------------------------------------------------------------


class VariancePolicyAnswerSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    category = serializers.CharField(read_only=True, help_text='"": the default policy.')
    units = DecimalString()
    percent = DecimalString()
    value = DecimalString(allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True)


def policy_body(policy: VariancePolicy) -> dict[str, Any]:
    return {
        "id": policy.pk,
        "category": policy.category,
        "units": fmt(policy.units),
        "percent": fmt(policy.percent),
        "value": _q(policy.value),
        "updated_at": iso(policy.updated_at),
    }


# --- analytics ----------------------------------------------------------------------------------


StatusCountsSerializer = type(
    "DiscrepancyStatusCounts",
    (serializers.Serializer,),
    {value: serializers.IntegerField(read_only=True) for value in Status.values},
)
SourceCountsSerializer = type(
    "DiscrepancySourceCounts",
    (serializers.Serializer,),
    {value: serializers.IntegerField(read_only=True) for value in Source.values},
)


class DiscrepancyFiguresSerializer(serializers.Serializer):
    count = serializers.IntegerField(read_only=True)
    by_status = StatusCountsSerializer(read_only=True)
    by_source = SourceCountsSerializer(read_only=True)
    abs_variance = DecimalString(help_text="Σ |variance|, units.")
    abs_value = DecimalString(help_text="Σ |value| at cost.")
    self_approved = serializers.IntegerField(read_only=True)


class DiscrepancyMonthSerializer(DiscrepancyFiguresSerializer):
    month = serializers.CharField(read_only=True, help_text="YYYY-MM (UTC).")


class DiscrepancyTopProductSerializer(serializers.Serializer):
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    count = serializers.IntegerField(read_only=True)
    abs_variance = DecimalString()
    abs_value = DecimalString()
    self_approved = serializers.IntegerField(read_only=True)


class DiscrepancyTopStoreSerializer(serializers.Serializer):
    store = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    count = serializers.IntegerField(read_only=True)
    abs_variance = DecimalString()
    abs_value = DecimalString()
    self_approved = serializers.IntegerField(read_only=True)


class DiscrepancyTopProductsSerializer(serializers.Serializer):
    by_frequency = DiscrepancyTopProductSerializer(many=True, read_only=True)
    by_size = DiscrepancyTopProductSerializer(many=True, read_only=True)


class DiscrepancyTopStoresSerializer(serializers.Serializer):
    by_frequency = DiscrepancyTopStoreSerializer(many=True, read_only=True)
    by_size = DiscrepancyTopStoreSerializer(many=True, read_only=True)


class ShrinkFiguresSerializer(serializers.Serializer):
    shrink = DecimalString(help_text="Value at cost of the corrections' negative rows.")
    cogs = DecimalString(help_text="Cost of goods sold: sales net of voids and refunds.")
    rate = DecimalString(allow_null=True, help_text="shrink ÷ cogs; null without COGS.")


class CategoryShrinkFiguresSerializer(ShrinkFiguresSerializer):
    category = serializers.CharField(read_only=True)


class ShrinkReportSerializer(serializers.Serializer):
    categories = CategoryShrinkFiguresSerializer(many=True, read_only=True)
    total = ShrinkFiguresSerializer(read_only=True)


class DiscrepancyAnalyticsSerializer(serializers.Serializer):
    """Discrepancies recorded in the period (live and archived), and the shrink rate."""

    from_ = serializers.DateField(read_only=True)
    to = serializers.DateField(read_only=True)
    store = serializers.IntegerField(read_only=True, allow_null=True)
    months = DiscrepancyMonthSerializer(many=True, read_only=True)
    totals = DiscrepancyFiguresSerializer(read_only=True)
    top_products = DiscrepancyTopProductsSerializer(read_only=True)
    top_stores = DiscrepancyTopStoresSerializer(read_only=True)
    shrink = ShrinkReportSerializer(read_only=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


def _figures(row: dict) -> dict[str, Any]:
    return {
        "count": row["count"],
        "by_status": row["by_status"],
        "by_source": row["by_source"],
        "abs_variance": fmt(row["abs_variance"]),
        "abs_value": fmt(row["abs_value"]),
        "self_approved": row["self_approved"],
    }


def _measures(row: dict) -> dict[str, Any]:
    return {
        "count": row["count"],
        "abs_variance": fmt(row["abs_variance"]),
        "abs_value": fmt(row["abs_value"]),
        "self_approved": row["self_approved"],
    }


def _product(row: dict) -> dict[str, Any]:
    return {
        "product": row["product_id"],
        "sku": row["sku"],
        "name": row["name"],
        "category": row["category"],
        **_measures(row),
    }


def _store(row: dict) -> dict[str, Any]:
    return {
        "store": row["store_id"],
        "code": row["code"],
        "name": row["store_name"],
        **_measures(row),
    }


def _shrink(row: dict) -> dict[str, Any]:
    return {"shrink": fmt(row["shrink"]), "cogs": fmt(row["cogs"]), "rate": _q(row["rate"])}


def analytics_body(report: dict) -> dict[str, Any]:
    return {
        "from": report["from"].isoformat(),
        "to": report["to"].isoformat(),
        "store": report["store"],
        "months": [
            {"month": m["month"].strftime("%Y-%m"), **_figures(m)} for m in report["months"]
        ],
        "totals": _figures(report["totals"]),
        "top_products": {
            key: [_product(r) for r in rows] for key, rows in report["top_products"].items()
        },
        "top_stores": {
            key: [_store(r) for r in rows] for key, rows in report["top_stores"].items()
        },
        "shrink": {
            "categories": [
                {"category": r["category"], **_shrink(r)} for r in report["shrink"]["categories"]
            ],
            "total": _shrink(report["shrink"]["total"]),
        },
    }


#: The CSV's columns: one file, a ``section`` column saying what each row is.
CSV_COLUMNS = [
    "section",
    "key",
    "month",
    "store",
    "store_code",
    "product",
    "sku",
    "name",
    "category",
    "status",
    "source",
    "count",
    "abs_variance",
    "abs_value",
    "self_approved",
    "shrink",
    "cogs",
    "rate",
]


def analytics_csv_rows(report: dict) -> list[dict[str, Any]]:
    """Every figure of the report as rows of one table: ``month`` (one per month), then
    ``month_status`` and ``month_source`` (counts), ``total``, ``top_product`` and
    ``top_store`` (``key`` says by_frequency or by_size), ``shrink`` per category and
    ``shrink_total``."""
    body = analytics_body(report)
    rows: list[dict[str, Any]] = []
    for m in [*body["months"], {"month": "", **body["totals"]}]:
        section = "month" if m["month"] else "total"
        rows.append({"section": section, **{k: m[k] for k in _MEASURE_KEYS}, "month": m["month"]})
        for status, n in m["by_status"].items():
            rows.append(
                {"section": f"{section}_status", "month": m["month"], "status": status, "count": n}
            )
        for source, n in m["by_source"].items():
            rows.append(
                {"section": f"{section}_source", "month": m["month"], "source": source, "count": n}
            )
    for key, products in body["top_products"].items():
        rows += [{"section": "top_product", "key": key, **p} for p in products]
    for key, stores in body["top_stores"].items():
        for s in stores:
            rows.append(
                {
                    "section": "top_store",
                    "key": key,
                    "store": s["store"],
                    "store_code": s["code"],
                    "name": s["name"],
                    **{k: s[k] for k in _MEASURE_KEYS},
                }
            )
    for c in body["shrink"]["categories"]:
        rows.append({"section": "shrink", **c})
    rows.append({"section": "shrink_total", **body["shrink"]["total"]})
    return rows


_MEASURE_KEYS = ("count", "abs_variance", "abs_value", "self_approved")
