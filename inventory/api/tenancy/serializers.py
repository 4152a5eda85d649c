"""Shapes of tenancy requests and answers: the organisation, stores, locations, people,
tokens and sign-in. Field checks only; rules live in the services."""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from functools import lru_cache

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import fields as f
from inventory.api.base import TenantPrimaryKeyField
from inventory.models import (
    ApiToken,
    Location,
    Membership,
    Organization,
    Store,
)

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> str:
    if value not in _time_zones():
        raise serializers.ValidationError(
            "Unknown time zone (use an IANA name like America/Toronto).", code="invalid_time_zone"
        )
    return value


class OrganizationSerializer(f.ModelSerializer):
    time_zone = f.CharField(kind=f.IDENTIFIER, validators=[validate_time_zone])
    allowed_email_domains = serializers.ListField(
        child=f.CharField(kind=f.IDENTIFIER, max_length=253), required=False, max_length=50
    )
    escalation_threshold = f.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0"), required=False
    )

    class Meta:
        model = Organization
        fields = [
            "slug",
            "name",
            "time_zone",
            "negative_stock_mode",
            "discrepancy_enforcement",
            "escalation_threshold",
            "allowed_email_domains",
            "created_at",
        ]
        read_only_fields = ["slug", "created_at"]

    def validate_allowed_email_domains(self, value):
        cleaned = [d.strip().lower().lstrip("@") for d in value]
        bad = [d for d in cleaned if not DOMAIN_RE.match(d)]
        if bad:
            raise serializers.ValidationError(f"Not a domain: {', '.join(bad)}", code="invalid")
        return cleaned


class LocationSerializer(f.ModelSerializer):
    store = TenantPrimaryKeyField(Store)

    class Meta:
        model = Location
        fields = [
            "id",
            "store",
            "code",
            "name",
            "kind",
            "sellable",
            "upstock_source",
            "sort_order",
            "is_active",
        ]
        extra_kwargs = {"code": {"kind": f.IDENTIFIER}}

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["store"].read_only = True  # a location never changes store
        return fields


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class ExternalIdsField(f.JSONField):
    """Names of other systems to the store's id there, as text: a whole number sent is kept as
    its text, and one stored before that rule is answered as text too."""

    def to_representation(self, value):
        return {name: str(id_) for name, id_ in (value or {}).items()}


@extend_schema_field(
    {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "22:00"}
)
class ClockTimeField(serializers.TimeField):
    """A time of day as HH:MM, in and out (OpenAPI's ``format: time`` means HH:MM:SS)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("format", "%H:%M")
        kwargs.setdefault("input_formats", ["%H:%M"])
        super().__init__(**kwargs)


class StoreSerializer(f.ModelSerializer):
    time_zone = f.CharField(kind=f.IDENTIFIER, validators=[validate_time_zone], required=False)
    external_ids = ExternalIdsField(required=False)
    locations = LocationSerializer(many=True, read_only=True)
    # the schedule nightly jobs follow; the tenancy service checks the values
    closing_time = ClockTimeField(
        required=False,
        help_text="Local time the store closes (HH:MM): nightly jobs run after it.",
    )
    closed_weekdays = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        max_length=7,
        help_text="Weekdays the store does not open, 0 (Monday) to 6 (Sunday): no nightly jobs.",
    )
    holidays = serializers.ListField(
        child=f.BusinessDateField(),
        required=False,
        max_length=1000,
        help_text="Dates (YYYY-MM-DD) the store does not open: no nightly jobs.",
    )

    class Meta:
        model = Store
        fields = [
            "id",
            "code",
            "name",
            "time_zone",
            "cova_location_id",
            "external_ids",
            "is_active",
            "closing_time",
            "closed_weekdays",
            "holidays",
            "created_at",
            "locations",
        ]
        read_only_fields = ["created_at"]
        extra_kwargs = {
            "code": {"kind": f.IDENTIFIER},
            "cova_location_id": {"kind": f.IDENTIFIER},
        }

    def validate_external_ids(self, value):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int)) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            raise serializers.ValidationError("An object of names to string ids.", code="invalid")
        return {name: str(id_) for name, id_ in value.items()}


class MembershipSerializer(f.ModelSerializer):
    email = f.EmailField(source="user.email")
    first_name = f.CharField(
        source="user.first_name", required=False, allow_blank=True, max_length=150
    )
    last_name = f.CharField(
        source="user.last_name", required=False, allow_blank=True, max_length=150
    )
    stores = TenantPrimaryKeyField(Store, many=True, required=False)

    class Meta:
        model = Membership
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "role",
            "stores",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            for name in ("email", "first_name", "last_name"):
                fields[name].read_only = True
        return fields

    def validate_stores(self, value):
        # the membership's store rows are unique: a repeat would be a 500 at the insert
        if len({store.pk for store in value}) != len(value):
            raise serializers.ValidationError("A store is listed twice.", code="duplicate")
        return value


class ApiTokenSerializer(f.ModelSerializer):
    user_email = serializers.EmailField(source="user.email", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "user_email",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = f.CharField(max_length=100)
    email = f.EmailField(required=False, help_text="Issue for another member (admins only).")


class TokenLoginSerializer(serializers.Serializer):
    """E-mail and password, unless the caller already signed in through allauth's headless flow
    (Google on the tablet) and sends its ``X-Session-Token``."""

    email = f.CharField(kind=f.IDENTIFIER, max_length=254, required=False)
    # compared with the stored hash as typed: never normalised
    password = f.CharField(
        kind=f.SECRET, max_length=128, required=False, style={"input_type": "password"}
    )
    device = f.CharField(max_length=100)
    organization = f.SlugField(required=False, max_length=63)

    def to_internal_value(self, data):
        # Report missing credentials together with any other field error, in one answer.
        errors, value = {}, None
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        if self.context.get("signed_in_user") is None and isinstance(data, dict):
            for field in ("email", "password"):
                if not data.get(field) and field not in errors:
                    errors[field] = ["This field is required."]
        if errors:
            raise serializers.ValidationError(errors)
        return value


class IssuedTokenSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True)
    organization = serializers.SlugRelatedField(source="org", slug_field="slug", read_only=True)

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key", "organization"]
        read_only_fields = fields
