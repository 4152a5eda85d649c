"""Shapes of upstock answers that views build as dicts — a run with its lines, a line with
the lots its pulls took, a run's summary, an import's result — and the functions that build
them. Read-only: nothing here validates input; quantities are decimal strings, four places."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from rest_framework import serializers

from core.isotime import iso
from inventory.api.base import DecimalString
from inventory.models import Batch, StockDocument
from upstock.api.serializers import UpstockRunSerializer
from upstock.models import (
    ExceptionReason,
    LineStatus,
    RunStatus,
    UpstockLine,
    UpstockPull,
    UpstockRun,
)

QUANTUM = Decimal("0.0001")


def q(value) -> str | None:
    return None if value is None else str(Decimal(value).quantize(QUANTUM))


# --- a line -------------------------------------------------------------------------------------


class UpstockLotTakenSerializer(serializers.Serializer):
    batch = serializers.IntegerField(read_only=True)
    lot_code = serializers.CharField(read_only=True)
    expiry_date = serializers.DateField(read_only=True, allow_null=True)
    quantity = DecimalString(help_text="Moved onto the floor from this lot.")


class UpstockLineSerializer(serializers.Serializer):
    """One product of a run. ``sold``, ``floor_on_hand``, ``back_room_available``, ``par_qty``
    and ``suggested`` are the figures the run was computed from (frozen then); ``pulled`` and
    what follows are what staff did."""

    id = serializers.IntegerField(read_only=True)
    run = serializers.IntegerField(read_only=True)
    position = serializers.IntegerField(read_only=True, help_text="Walking order, from 1.")
    product = serializers.IntegerField(read_only=True)
    sku = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    subcategory = serializers.CharField(read_only=True)
    unit = serializers.CharField(read_only=True)
    source_location = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The back-room location to pull from; null when none holds the product.",
    )
    source_location_code = serializers.CharField(read_only=True, allow_null=True)
    sold = DecimalString(help_text="Sold at the floor in the run's window, net of refunds.")
    floor_on_hand = DecimalString()
    back_room_available = DecimalString(help_text="Sellable to the floor, not expired.")
    par_qty = DecimalString(allow_null=True, help_text="Null: no par, the line refills sales.")
    suggested = DecimalString()
    pulled = DecimalString(allow_null=True, help_text="Null until pulled.")
    status = serializers.ChoiceField(read_only=True, choices=LineStatus.choices)
    exception_reason = serializers.ChoiceField(
        read_only=True, choices=[("", "none"), *ExceptionReason.choices]
    )
    exception_quantity = DecimalString(allow_null=True)
    note = serializers.CharField(read_only=True)
    move_document = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The pull's move (the last one of several)."
    )
    discrepancy = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="What a missing/damaged exception recorded (/api/v1/discrepancies/{id}).",
    )
    lots = UpstockLotTakenSerializer(
        many=True, read_only=True, help_text="The lots the pulls took."
    )
    updated_by = serializers.EmailField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True)


def lots_taken(lines: list[UpstockLine]) -> dict[int, list[dict]]:
    """Per line, the lots its pulls moved onto the floor, read from the moves' stored answers
    (three queries whatever the number of lines)."""
    pulls = list(
        UpstockPull.objects.filter(line__in=[line.pk for line in lines], document_id__isnull=False)
        .order_by("id")
        .values_list("line_id", "document_id")
    )
    documents = {
        d.pk: d.result
        for d in StockDocument.objects.filter(pk__in={document for _, document in pulls}).only(
            "id", "result"
        )
    }
    floors = {line.pk: line.run.location_id for line in lines}
    taken: dict[int, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    seen: set[tuple[int, int]] = set()
    for line_id, document_id in pulls:
        if (line_id, document_id) in seen:
            continue
        seen.add((line_id, document_id))
        for row in (documents.get(document_id) or {}).get("rows", []):
            quantity = Decimal(str(row.get("quantity", "0")))
            if row.get("location") == floors[line_id] and quantity > 0 and row.get("batch"):
                taken[line_id][row["batch"]] += quantity
    batches = {
        b.pk: b
        for b in Batch.objects.filter(
            pk__in={batch for per_line in taken.values() for batch in per_line}
        ).only("id", "lot_code", "expiry_date")
    }
    return {
        line_id: [
            {
                "batch": batch,
                "lot_code": batches[batch].lot_code if batch in batches else "",
                "expiry_date": iso(batches[batch].expiry_date) if batch in batches else None,
                "quantity": q(quantity),
            }
            for batch, quantity in per_line.items()
        ]
        for line_id, per_line in taken.items()
    }


def line_body(line: UpstockLine, lots: list[dict] | None = None) -> dict:
    product = line.product
    source = line.source_location
    return {
        "id": line.pk,
        "run": line.run_id,
        "position": line.position,
        "product": line.product_id,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "subcategory": product.subcategory,
        "unit": product.unit,
        "source_location": line.source_location_id,
        "source_location_code": source.code if source is not None else None,
        "sold": q(line.sold),
        "floor_on_hand": q(line.floor_on_hand),
        "back_room_available": q(line.back_room_available),
        "par_qty": q(line.par_qty),
        "suggested": q(line.suggested),
        "pulled": q(line.pulled),
        "status": line.status,
        "exception_reason": line.exception_reason,
        "exception_quantity": q(line.exception_quantity),
        "note": line.note,
        "move_document": line.move_document_id,
        "discrepancy": line.discrepancy_id,
        "lots": lots or [],
        "updated_by": line.updated_by.email if line.updated_by_id else None,
        "updated_at": iso(line.updated_at),
    }


def lines_body(lines: list[UpstockLine]) -> list[dict]:
    lots = lots_taken(lines)
    return [line_body(line, lots.get(line.pk)) for line in lines]


# --- a run's summary ----------------------------------------------------------------------------


class UpstockLinesByStatusSerializer(serializers.Serializer):
    pending = serializers.IntegerField(read_only=True)
    done = serializers.IntegerField(read_only=True)
    skipped = serializers.IntegerField(read_only=True)
    exception = serializers.IntegerField(read_only=True)


class UpstockRunSummarySerializer(serializers.Serializer):
    run = serializers.IntegerField(read_only=True)
    status = serializers.ChoiceField(read_only=True, choices=RunStatus.choices)
    lines = serializers.IntegerField(read_only=True)
    by_status = UpstockLinesByStatusSerializer(read_only=True)
    suggested_total = DecimalString()
    pulled_total = DecimalString()


def summary_body(summary: dict) -> dict:
    return {
        **summary,
        "suggested_total": q(summary["suggested_total"]),
        "pulled_total": q(summary["pulled_total"]),
    }


# --- a run --------------------------------------------------------------------------------------


class UpstockRunDetailSerializer(UpstockRunSerializer):
    """A run with its lines in walking order and its summary."""

    summary = UpstockRunSummarySerializer(read_only=True)
    lines = UpstockLineSerializer(many=True, read_only=True)

    class Meta(UpstockRunSerializer.Meta):
        fields = [*UpstockRunSerializer.Meta.fields, "summary", "lines"]
        read_only_fields = fields


# --- baselines: bulk and import -----------------------------------------------------------------


class UpstockRowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(
        read_only=True, help_text="The file's line (CSV), or the row's position from 1 (JSON)."
    )
    field = serializers.CharField(read_only=True, help_text="The column; empty: the whole row.")
    code = serializers.CharField(read_only=True)
    detail = serializers.CharField(read_only=True)


class UpstockImportResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        read_only=True, help_text="True: checked only, nothing written."
    )
    rows = serializers.IntegerField(read_only=True, help_text="Data rows read.")
    created = serializers.IntegerField(read_only=True)
    updated = serializers.IntegerField(read_only=True)
    unchanged = serializers.IntegerField(read_only=True)
    errors = UpstockRowErrorSerializer(
        many=True, read_only=True, help_text="Every bad row; the good ones were applied."
    )
    ignored_columns = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Columns of the file the import does not read.",
    )


def import_body(result, *, dry_run: bool, rows: int, errors=(), ignored=()) -> dict:
    every = sorted([*errors, *result.errors], key=lambda e: (e["line"], e.get("field") or ""))
    return {
        "dry_run": dry_run,
        "rows": rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "errors": [
            {
                "line": e["line"],
                "field": e.get("field") or "",
                "code": e["code"],
                "detail": str(e["detail"]),
            }
            for e in every
        ],
        "ignored_columns": list(ignored),
    }


def run_body(run: UpstockRun) -> dict:
    return UpstockRunSerializer(run).data
