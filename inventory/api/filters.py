"""FilterSets. Every filter is declared explicitly: django-filter's automatic filters introspect
the model's default manager at import time, which the tenant-scoped managers refuse (no scope)."""

import django_filters as filters

from inventory.models import LocationKind, Role, Unit


class ProductFilter(filters.FilterSet):
    category = filters.CharFilter(field_name="category", lookup_expr="iexact")
    subcategory = filters.CharFilter(field_name="subcategory", lookup_expr="iexact")
    brand = filters.CharFilter(field_name="brand", lookup_expr="iexact")
    active = filters.BooleanFilter(field_name="is_active")
    unit = filters.ChoiceFilter(field_name="unit", choices=Unit.choices)
    tracks_expiry = filters.BooleanFilter(field_name="tracks_expiry")


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
