"""Tenancy list filters. Every filter is declared explicitly: django-filter's automatic
filters introspect the model's default manager at import time, which the tenant-scoped managers
refuse (no scope)."""

from __future__ import annotations

import django_filters as filters

from inventory.models import LocationKind, Role


class StoreFilter(filters.FilterSet):
    is_active = filters.BooleanFilter(field_name="is_active")


class LocationFilter(filters.FilterSet):
    store = filters.NumberFilter(field_name="store_id")
    kind = filters.ChoiceFilter(field_name="kind", choices=LocationKind.choices)
    sellable = filters.BooleanFilter(field_name="sellable")
    is_active = filters.BooleanFilter(field_name="is_active")


class MembershipFilter(filters.FilterSet):
    role = filters.ChoiceFilter(field_name="role", choices=Role.choices)
    is_active = filters.BooleanFilter(field_name="is_active")


class ApiTokenFilter(filters.FilterSet):
    name = filters.CharFilter(field_name="name")
    revoked = filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)
