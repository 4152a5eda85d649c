"""The API plumbing every app shares: routing, pagination, parsing, rendering, filters.

- ``OptionalSlashRouter``: every route answers with and without a trailing slash.
- ``PagePagination``: ``?page=`` and ``?page_size=`` (up to 500).
- ``CsvPassthroughRenderer``: lets ``?format=csv`` and ``Accept: text/csv`` through DRF's
  content negotiation for views that write their CSV themselves; anything else it is asked to
  render (an error body) goes out as JSON, so errors keep their one shape.

The JSON parser is ``core.parsers`` (DRF imports the parser named in its settings while its own
views module loads, so it must not import the routers here).
- ``BusinessMomentFilter``: a django-filter moment bounded like the business times of inputs.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import django_filters as filters
from django import forms
from django.conf import settings
from django_filters.fields import IsoDateTimeField
from rest_framework import renderers, routers
from rest_framework.pagination import PageNumberPagination


class OptionalSlashRouter(routers.DefaultRouter):
    """Every route answers with and without a trailing slash: no redirect drops a POST body.

    No router adds a root view: the API has several routers, and one index lists them all
    (the API root of the project); each router's own root would hide the others' under ``^$``.
    """

    include_root_view = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trailing_slash = "/?"


class PagePagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class CsvPassthroughRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if renderer_context and renderer_context.get("response") is not None:
            renderer_context["response"]["Content-Type"] = "application/json"
        return renderers.JSONRenderer().render(data)


class BusinessMomentFormField(IsoDateTimeField):
    """An ISO 8601 moment, in UTC, from ``BUSINESS_TIME_EARLIEST`` on: the filter's counterpart
    of ``core.fields.BusinessMomentField``. PostgreSQL refuses UTC offsets beyond
    ±15:59 that Python accepts (up to ±23:59), so the value is converted before any query."""

    def to_python(self, value: Any) -> datetime.datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        earliest = datetime.datetime.combine(
            settings.BUSINESS_TIME_EARLIEST, datetime.time.min, tzinfo=datetime.UTC
        )
        if moment < earliest:
            raise forms.ValidationError(
                f"Before {settings.BUSINESS_TIME_EARLIEST.isoformat()}: no record is.",
                code="too_early",
            )
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("Out of range.", code="overflow") from None


class BusinessMomentFilter(filters.IsoDateTimeFilter):
    field_class = BusinessMomentFormField
