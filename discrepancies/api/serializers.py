"""What the discrepancy endpoints read: query strings and bodies. Field checks only — the
rules (who may decide what, a policy's limits) are the services'."""

from __future__ import annotations

import datetime

from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import QueryDict
from rest_framework import serializers

from core import fields as f
from discrepancies.analytics import DEFAULT_TOP
from discrepancies.models import CorrectionMode, Kind, Severity, Source, Status
from discrepancies.selectors import ORDERINGS
from discrepancies.services.decisions import BULK_LIMIT

#: How far back and how long an analytics period may be (three years of months).
MAX_ANALYTICS_DAYS = 1096
FIRST_DAY = datetime.date(1970, 1, 1)
LAST_DAY = datetime.date(9998, 12, 31)


def _id(**kwargs):
    return serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, **kwargs)


def _several(choices, help_text: str):
    return serializers.ListField(
        child=serializers.ChoiceField(choices=choices),
        required=False,
        max_length=len(choices),
        help_text=f"{help_text} Several: repeat the parameter, or separate values with commas.",
    )


#: Query parameters that take several values (repeated, or comma-separated).
MULTI_VALUED = ("status", "severity", "type", "source")


def query_data(params: QueryDict) -> dict:
    """The query string as a query serializer reads it: several values for the multi-valued
    parameters (``?status=NEW&status=UNDER_REVIEW`` or ``?status=NEW,UNDER_REVIEW``), the
    last value of the others."""
    data: dict = params.dict()
    for name in MULTI_VALUED:
        if name in params:
            data[name] = [v.strip() for value in params.getlist(name) for v in value.split(",")]
    return data


class DiscrepancyQuery(serializers.Serializer):
    """``GET /api/v1/discrepancies`` filters."""

    status = _several(Status.choices, "Statuses.")
    severity = _several(Severity.choices, "Severities.")
    type = _several(Kind.choices, "Types (COUNT, DAMAGE, ...).")
    source = _several(Source.choices, "Sources (CYCLE_COUNT, AD_HOC, ...).")
    store = _id()
    product = _id()
    created_from = f.BusinessMomentField(required=False, help_text="Recorded at or after.")
    created_to = f.BusinessMomentField(required=False, help_text="Recorded before (exclusive).")
    open = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: undecided, or approved with a correction still to post; false: the rest.",
    )
    archived = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: list archived discrepancies instead (closed, past retention).",
    )
    search = f.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Text in the SKU, the product's name, source_ref or the reason.",
    )
    ordering = serializers.ChoiceField(
        choices=list(ORDERINGS), required=False, default="-id", help_text="Default -id (newest)."
    )

    def validate(self, attrs):
        start, end = attrs.get("created_from"), attrs.get("created_to")
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError({"created_to": ["Must not be before created_from."]})
        return attrs


class DiscrepancyDecisionSerializer(serializers.Serializer):
    """A decision's note and, approving a count's discrepancy, how it posts."""

    notes = f.CharField(kind=f.TEXT, required=False, allow_blank=True, max_length=2000, default="")
    mode = serializers.ChoiceField(
        choices=CorrectionMode.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="A count's posting mode (keep_difference or set_counted); approve only.",
    )

    def validate(self, attrs):
        # one decision (the route names it) or a selection (``action``): only an approval
        # takes a mode, never silently ignored
        action = attrs.get("action", self.context.get("action", "approve"))
        if attrs.get("mode") is not None and action != "approve":
            raise serializers.ValidationError({"mode": ["Only an approval takes a mode."]})
        return attrs


class DiscrepancyBulkDecisionSerializer(DiscrepancyDecisionSerializer):
    """The same decision on a selection: each row judged on its own, in one transaction."""

    action = serializers.ChoiceField(choices=["approve", "reject", "review"])
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=BULK_LIMIT,
    )


class VariancePolicySerializer(serializers.Serializer):
    """A category's variance policy as a request gives it ("" is the default policy)."""

    category = f.CharField(
        kind=f.NAME,
        required=False,
        allow_blank=True,
        max_length=120,
        trim_whitespace=False,
        help_text="A product category, exactly as products carry it; blank or left out on "
        "creation: the default. Left out of a change: unchanged.",
    )
    units = f.DecimalField(max_digits=18, decimal_places=4, min_value=0)
    percent = f.DecimalField(max_digits=7, decimal_places=3, min_value=0, max_value=100)
    value = f.DecimalField(
        max_digits=14,
        decimal_places=4,
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        help_text="At most this value at cost; null: no limit by value.",
    )


def _report_day() -> serializers.DateField:
    return serializers.DateField(
        validators=[
            MinValueValidator(FIRST_DAY, message=f"Must be on or after {FIRST_DAY.isoformat()}."),
            MaxValueValidator(LAST_DAY, message=f"Must be on or before {LAST_DAY.isoformat()}."),
        ]
    )


class DiscrepancyAnalyticsQuery(serializers.Serializer):
    """``from`` and ``to`` (whole UTC days, inclusive), optionally one store."""

    store = _id()
    top = serializers.IntegerField(
        required=False, min_value=1, max_value=100, default=DEFAULT_TOP, help_text="Top N."
    )

    def get_fields(self):
        # "from" is a Python keyword: add the fields under their query-string names
        fields = super().get_fields()
        fields["from"] = _report_day()
        fields["to"] = _report_day()
        return fields

    def validate(self, attrs):
        start, end = attrs["from"], attrs["to"]
        if start > end:
            raise serializers.ValidationError({"to": ["Must not be before 'from'."]})
        if (end - start).days + 1 > MAX_ANALYTICS_DAYS:
            raise serializers.ValidationError(
                {"to": [f"The period may span at most {MAX_ANALYTICS_DAYS} days."]}
            )
        return attrs
