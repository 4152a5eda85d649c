"""The project's input fields: every string, number and JSON value of a request passes here.

Serializers use these instead of DRF's own (``ModelSerializer`` below maps model fields to them,
and ``tests/inventory/test_input_fields.py`` fails on any writable DRF string, decimal, JSON or
dict field left in an API serializer), so the rules live once:

- text: NFC, and the characters its kind allows (``core.text``: identifiers, scans, names,
  free text, secrets);
- quantities and money: plain ASCII digits with an optional minus and point, at most the
  field's decimal places — no exponent, no ``_`` separators, no Arabic-Indic digits, in a JSON
  string or a JSON number alike (``Decimal("1_000")`` and ``Decimal("١")`` are valid Python);
- JSON-stored values and dict keys: every string in them obeys its kind too, since PostgreSQL
  refuses NUL in ``jsonb`` as it does in ``text``.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework import serializers

from core import text
from core.text import IDENTIFIER, NAME, SCAN, SECRET, TEXT, Kind, TextRefused

__all__ = [
    "IDENTIFIER",
    "NAME",
    "SCAN",
    "SECRET",
    "TEXT",
    "CharField",
    "EmailField",
    "SlugField",
    "URLField",
    "DecimalField",
    "JSONField",
    "DictField",
    "JsonNumber",
    "ModelSerializer",
    "BusinessTimeField",
    "BusinessMomentField",
    "BusinessDateField",
    "earliest_business_time",
]


# --- text ---------------------------------------------------------------------------------------


if TYPE_CHECKING:
    # What the mixin is mixed into (DRF's CharField and its subclasses), for the type checker.
    _TextFieldBase = serializers.CharField
else:
    _TextFieldBase = object


class CleanText(_TextFieldBase):
    """Mixin for DRF's string fields: NFC and the character rules of ``kind``."""

    kind: Kind = NAME

    def __init__(self, *args: Any, kind: Kind | None = None, **kwargs: Any) -> None:
        if kind is not None:
            self.kind = Kind(kind)
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            return text.clean(value, self.kind)
        except TextRefused as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None


class CharField(CleanText, serializers.CharField):
    """A string; ``kind`` says which characters it may hold (default: a name)."""


class EmailField(CleanText, serializers.EmailField):
    kind = IDENTIFIER


class SlugField(CleanText, serializers.SlugField):
    kind = IDENTIFIER


class URLField(CleanText, serializers.URLField):
    kind = IDENTIFIER


def clean_json(value: Any, kind: Kind, path: str = "") -> Any:
    """``value`` (parsed JSON) with every key and string in NFC, or a ``ValidationError`` naming
    the first key or string that ``kind`` does not allow (``{"a.0": [...]}``). Recursive: the
    JSON parser refuses bodies nested deeper than a few dozen levels."""
    if isinstance(value, str):
        return _clean_at(value, kind, path)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, child in value.items():
            where = f"{path}.{key}" if path else str(key)
            name = _clean_at(key, kind, where) if isinstance(key, str) else key
            if name in out:
                raise serializers.ValidationError(
                    {where: ["Listed twice (the same text in another form)."]}, code="invalid"
                )
            out[name] = clean_json(child, kind, where)
        return out
    if isinstance(value, list):
        return [
            clean_json(child, kind, f"{path}.{i}" if path else str(i))
            for i, child in enumerate(value)
        ]
    return value


def _clean_at(value: str, kind: Kind, where: str) -> str:
    try:
        return text.clean(value, kind)
    except TextRefused as exc:
        raise serializers.ValidationError(
            {where: [str(exc)]} if where else [str(exc)], code="invalid"
        ) from None


class JSONField(serializers.JSONField):
    """A JSON value stored as is (``jsonb``): its keys and strings obey ``kind``."""

    def __init__(self, *args: Any, kind: Kind = IDENTIFIER, **kwargs: Any) -> None:
        self.kind = Kind(kind)
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return clean_json(super().to_internal_value(data), self.kind)


class DictField(serializers.DictField):
    """A JSON object whose keys obey ``key_kind`` (DRF checks only the values, via ``child``)."""

    def __init__(self, *args: Any, key_kind: Kind = NAME, **kwargs: Any) -> None:
        self.key_kind = Kind(key_kind)
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> dict[Any, Any]:
        if isinstance(data, dict):
            keys = {}
            for key in data:
                name = _clean_at(str(key), self.key_kind, str(key))
                if name in keys:
                    raise serializers.ValidationError(
                        {str(key): ["Listed twice (the same text in another form)."]},
                        code="invalid",
                    )
                keys[name] = key
            data = {name: data[key] for name, key in keys.items()}
        return super().to_internal_value(data)


# --- numbers ------------------------------------------------------------------------------------


class JsonNumber(Decimal):
    """A JSON number with a fraction or an exponent, read exactly (never through a float) and
    remembering how it was written, so ``1E+3`` and ``1e-2`` can be refused like the strings
    (``Decimal("1e-2")`` alone is indistinguishable from ``Decimal("0.01")``).
    ``core.parsers.JSONParser`` reads every such number into one."""

    literal: str

    def __new__(cls, literal: str) -> JsonNumber:
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")


class DecimalField(serializers.DecimalField):
    """Every quantity and money input: ``-?digits(.digits)?`` in ASCII, at most
    ``decimal_places`` decimals, as a JSON string or number; never a float, an exponent, a
    separator or another script's digits."""

    default_error_messages = {
        "not_plain": "Write the number with digits 0-9 and an optional point (e.g. 12.5): "
        "no exponent, separators or other digits.",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, (str, int, Decimal)):
            self.fail("invalid")  # floats never arrive: the JSON parser reads JsonNumbers
        written = getattr(data, "literal", None) or (data if isinstance(data, str) else None)
        if written is None:
            written = str(data)  # an int, or a Decimal from Python code
        written = written.strip()
        if len(written) > self.MAX_STRING_LENGTH:
            self.fail("max_string_length")
        if not _PLAIN_DECIMAL.match(written):
            self.fail("not_plain")
        return super().to_internal_value(written)


# --- business times -----------------------------------------------------------------------------


def earliest_business_time() -> datetime.datetime:
    """``BUSINESS_TIME_EARLIEST`` (a date) as the first moment of that day in UTC."""
    earliest = settings.BUSINESS_TIME_EARLIEST
    return datetime.datetime.combine(earliest, datetime.time.min, tzinfo=datetime.UTC)


class BusinessMomentField(serializers.DateTimeField):
    """A moment of the business — when a scan was captured (the count clamps a future one to
    now), the bounds of a ledger filter: not before ``BUSINESS_TIME_EARLIEST``, since no record
    is, and local-date arithmetic on year 1 overflows."""

    default_error_messages = {
        "too_early": "Before {earliest}: business times start then (import older history "
        "with a data migration).",
    }

    def to_internal_value(self, value: Any) -> datetime.datetime:
        moment = super().to_internal_value(value)
        if moment < earliest_business_time():
            self.fail("too_early", earliest=settings.BUSINESS_TIME_EARLIEST.isoformat())
        return moment


class BusinessTimeField(BusinessMomentField):
    """When something happened, as the device says. Any past moment since
    ``BUSINESS_TIME_EARLIEST`` is fine (an offline till syncs its sales late); the future only by
    ``BUSINESS_TIME_MAX_AHEAD_MINUTES``."""

    default_error_messages = {
        "ahead": "{minutes} minutes after the server's clock: check the device's clock and time "
        "zone (at most {allowed} minutes ahead).",
    }

    def to_internal_value(self, value: Any) -> datetime.datetime:
        moment = super().to_internal_value(value)
        allowed = settings.BUSINESS_TIME_MAX_AHEAD_MINUTES
        ahead = moment - timezone.now()
        if ahead > datetime.timedelta(minutes=allowed):
            self.fail("ahead", minutes=int(ahead.total_seconds() // 60), allowed=allowed)
        return moment


#: The last date a business date may name: far beyond any shelf life, and far enough from
#: ``date.max`` that adding a window of days or a time zone's offset never overflows.
LATEST_BUSINESS_DATE = datetime.date(9000, 12, 31)


class BusinessDateField(serializers.DateField):
    """A calendar date of the business (a lot's expiry): from ``BUSINESS_TIME_EARLIEST`` to
    ``LATEST_BUSINESS_DATE``."""

    default_error_messages = {
        "too_early": "Before {earliest}: business dates start then.",
        "too_late": "After {latest}: give the real date (leave it empty when there is none).",
    }

    def to_internal_value(self, value: Any) -> datetime.date:
        day = super().to_internal_value(value)
        if day < settings.BUSINESS_TIME_EARLIEST:
            self.fail("too_early", earliest=settings.BUSINESS_TIME_EARLIEST.isoformat())
        if day > LATEST_BUSINESS_DATE:
            self.fail("too_late", latest=LATEST_BUSINESS_DATE.isoformat())
        return day


# --- model serializers --------------------------------------------------------------------------


class ModelSerializer(serializers.ModelSerializer):
    """DRF's, building the project's fields for model fields: text is a name unless the
    serializer's ``Meta.extra_kwargs`` gives another ``kind`` (identifiers: SKUs, codes)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: CharField,
        models.TextField: CharField,
        models.SlugField: SlugField,
        models.EmailField: EmailField,
        models.URLField: URLField,
        models.DecimalField: DecimalField,
        models.JSONField: JSONField,
    }

    def build_standard_field(
        self, field_name: str, model_field: models.Field
    ) -> tuple[type[serializers.Field], dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if isinstance(model_field, models.TextField) and field_class is CharField:
            kwargs.setdefault("kind", TEXT)
        return field_class, kwargs
