"""The answer of a correction that waits for approval (202): the request as it was understood,
and the discrepancy of each line — the most severe first as ``discrepancy``. A replay of the
``client_ref`` answers the same, with the statuses as they are now. (A correction that posted
at once answers its stock document, ``inventory.api.base.StockDocumentSerializer``.)"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.isotime import iso
from discrepancies.api.responses import DiscrepancySerializer, discrepancy_body
from discrepancies.models import CorrectionStatus
from discrepancies.services.corrections import CorrectionAnswer
from inventory.api.base import DecimalString
from inventory.models import DocumentKind

PENDING_APPROVAL = "pending_approval"


class CorrectionLineSerializer(serializers.Serializer):
    """One line as the service resolved it: what approving it posts."""

    line = serializers.IntegerField(read_only=True, help_text="1-based, in the request's order.")
    product = serializers.IntegerField(read_only=True)
    location = serializers.IntegerField(read_only=True)
    batch = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The named lot, when it exists."
    )
    quantity = DecimalString(help_text="Signed: + found, - missing (a write-off's are -).")
    lot_code = serializers.CharField(read_only=True)
    expiry_date = serializers.DateField(read_only=True, allow_null=True)
    unit_cost = DecimalString(allow_null=True, help_text="The cost a new lot is given, if any.")


class CorrectionRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(
        read_only=True, choices=[DocumentKind.ADJUSTMENT, DocumentKind.WRITE_OFF]
    )
    store = serializers.IntegerField(read_only=True)
    client_ref = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(
        read_only=True,
        choices=CorrectionStatus.choices,
        help_text="pending: lines wait for a decision; decided: every line is decided.",
    )
    type = serializers.CharField(
        read_only=True,
        help_text="A write-off's type (damage, waste, expiry), or an adjustment's discrepancy "
        "type (COUNT, DAMAGE, THEFT, DATA_ERROR, OTHER).",
    )
    reason = serializers.CharField(read_only=True)
    source_ref = serializers.CharField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    lines = CorrectionLineSerializer(many=True, read_only=True)


class PendingCorrectionSerializer(serializers.Serializer):
    status = serializers.CharField(read_only=True, help_text="Always pending_approval.")
    request = CorrectionRequestSerializer(read_only=True)
    discrepancy = DiscrepancySerializer(
        read_only=True, help_text="The most severe line's discrepancy."
    )
    discrepancies = DiscrepancySerializer(
        many=True, read_only=True, help_text="One per line, in the request's order."
    )


def pending_body(answer: CorrectionAnswer) -> dict[str, Any]:
    """The 202 answer of a correction waiting for approval (or of its replay)."""
    request = answer.request
    assert request is not None and answer.most_severe is not None
    lines = request.lines
    return {
        "status": PENDING_APPROVAL,
        "request": {
            "id": request.pk,
            "kind": request.kind,
            "store": request.store_id,
            "client_ref": request.client_ref,
            "status": request.status,
            "type": request.write_off_type or (lines[0].get("type", "") if lines else ""),
            "reason": request.reason,
            "source_ref": request.source_ref,
            "occurred_at": iso(request.occurred_at),
            "created_at": iso(request.created_at),
            "lines": [
                {
                    "line": ln["line"],
                    "product": ln["product"],
                    "location": ln["location"],
                    "batch": ln["batch"],
                    "quantity": ln["quantity"],
                    "lot_code": ln["lot_code"],
                    "expiry_date": ln["expiry_date"],
                    "unit_cost": ln["unit_cost"],
                }
                for ln in lines
            ],
        },
        "discrepancy": discrepancy_body(answer.most_severe),
        "discrepancies": [discrepancy_body(d) for d in answer.discrepancies],
    }
