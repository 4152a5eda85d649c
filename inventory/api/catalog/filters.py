"""Catalog list filters, declared explicitly (see ``inventory.api.tenancy.filters``)."""

from __future__ import annotations

import django_filters as filters

from inventory.models import Unit


class ProductFilter(filters.FilterSet):
    category = filters.CharFilter(field_name="category", lookup_expr="iexact")
    subcategory = filters.CharFilter(field_name="subcategory", lookup_expr="iexact")
    brand = filters.CharFilter(field_name="brand", lookup_expr="iexact")
    active = filters.BooleanFilter(field_name="is_active")
    unit = filters.ChoiceFilter(field_name="unit", choices=Unit.choices)
    tracks_expiry = filters.BooleanFilter(field_name="tracks_expiry")
