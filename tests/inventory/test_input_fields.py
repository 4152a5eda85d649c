"""Every string, number, JSON value and time a request can carry goes through the project's own
fields (``core.fields``), so the rules of #8 items 13, 14, 18 and 19 hold everywhere:
this walks every serializer of the API modules and fails on a writable DRF field left behind."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from rest_framework import serializers

import counts.api
import discrepancies.api
import inventory.api
import upstock.api
from core import fields as f
from inventory.api.sales import serializers as sale_serializers
from inventory.api.tenancy import serializers as tenancy_serializers


def api_modules():
    """Every module of every app's ``api`` package: a new app's serializers are walked too."""
    for package in (inventory.api, counts.api, discrepancies.api, upstock.api):
        for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            yield importlib.import_module(found.name)


MODULES = list(api_modules())

#: (serializer, field): why it may stay a plain DRF field.
EXEMPT = {
    # store-local report days, kept inside the calendar by report_views itself; a period before
    # BUSINESS_TIME_EARLIEST reads nothing and writes nothing
    ("CogsQuery", "from"): "report period",
    ("CogsQuery", "to"): "report period",
    # whole UTC days of the discrepancy analytics, bounded by its own FIRST_DAY / LAST_DAY
    ("DiscrepancyAnalyticsQuery", "from"): "report period",
    ("DiscrepancyAnalyticsQuery", "to"): "report period",
}

RULES = [
    # (DRF field class, the project class it must be)
    (serializers.CharField, f.CleanText),
    (serializers.DecimalField, f.DecimalField),
    (serializers.JSONField, f.JSONField),
    (serializers.DictField, f.DictField),
    (serializers.DateTimeField, f.BusinessMomentField),
    (serializers.DateField, f.BusinessDateField),
]


def api_serializer_classes():
    seen = []
    for module in MODULES:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, serializers.BaseSerializer)
                and cls.__module__ == module.__name__
                and cls not in seen
            ):
                seen.append(cls)
    return seen


def writable_fields(field, path: str):
    """(path, field) for ``field`` and everything nested in it that takes input."""
    if getattr(field, "read_only", False):
        return
    if isinstance(field, serializers.ListSerializer):
        yield from writable_fields(field.child, f"{path}.*")
    elif isinstance(field, serializers.Serializer):
        for name, child in field.fields.items():
            yield from writable_fields(child, f"{path}.{name}" if path else name)
    else:
        yield path, field
        child = getattr(field, "child", None)
        if isinstance(child, serializers.Field):
            yield from writable_fields(child, f"{path}.*")


@pytest.mark.parametrize("cls", api_serializer_classes(), ids=lambda cls: cls.__name__)
def test_every_writable_field_is_the_projects_own(cls):
    wrong = []
    for path, field in writable_fields(cls(), ""):
        if (cls.__name__, path) in EXEMPT:
            continue
        for drf_class, ours in RULES:
            if isinstance(field, drf_class) and not isinstance(field, ours):
                wrong.append(f"{path}: {type(field).__name__} (use {ours.__name__})")
        if isinstance(field, serializers.FloatField):
            wrong.append(f"{path}: FloatField (quantities and money are decimals)")
    assert not wrong, wrong


def test_the_walk_sees_nested_and_list_fields():
    paths = dict(writable_fields(sale_serializers.SaleCreateSerializer(), ""))
    assert isinstance(paths["lines.*.quantity"], f.DecimalField)
    assert isinstance(paths["lines.*.barcode"], f.CharField)
    org = dict(writable_fields(tenancy_serializers.OrganizationSerializer(), ""))
    assert isinstance(org["allowed_email_domains.*"], f.CharField)
