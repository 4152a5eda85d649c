"""Hypothesis properties of everything that reads text a person or a device sent: quantities,
JSON bodies, business times, barcodes, ledger cursors and the text rules themselves.

The common property: whatever the input, the parser answers a value or its own refusal (a 4xx
once it reaches the API) — never another exception, which would be a 500.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import unicodedata
from decimal import Decimal

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core import fields as f
from core import text
from core.errors import ApplicationError
from core.parsers import JSONParser
from inventory.api.reports.views import LedgerPagination
from inventory.api.stock.serializers import MONEY, QTY
from inventory.catalog.barcodes import gtin_check_digit, is_valid_gtin, parse_scan
from inventory.exceptions import InvalidBarcode, InvalidCheckDigit

PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
QUANTITY = f.DecimalField(**QTY)
MONEY_FIELD = f.DecimalField(**MONEY)
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def parse_json(body: bytes):
    return JSONParser().parse(io.BytesIO(body), "application/json", {})


def decimals_of(value: str) -> int:
    return len(value.split(".", 1)[1]) if "." in value else 0


# --- quantities and money ------------------------------------------------------------------------


@SETTINGS
@given(
    st.text(max_size=30)
    | st.from_regex(r"-?[0-9_٠-٩]{1,20}([.,][0-9]{0,8})?([eE][+-]?\d{1,3})?", fullmatch=True)
)
@example("1_000")
@example("\u0661")
@example("1E+3")
@example(" 12.5 ")
def test_a_quantity_is_plain_digits_or_refused(raw):
    try:
        value = QUANTITY.run_validation(raw)
    except serializers.ValidationError:
        stripped = raw.strip()
        assert not (
            PLAIN.match(stripped)
            and decimals_of(stripped) <= 4
            and len(stripped.lstrip("-").split(".")[0].lstrip("0")) <= 14
        )
        return
    stripped = raw.strip()
    assert PLAIN.match(stripped) and decimals_of(stripped) <= 4
    assert value == Decimal(stripped)


@SETTINGS
@given(
    st.decimals(
        min_value=Decimal("-99999999999999.9999"),
        max_value=Decimal("99999999999999.9999"),
        places=4,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_every_quantity_written_plainly_reads_back_exactly(number):
    written = format(number, "f")
    assert QUANTITY.run_validation(written) == number
    assert QUANTITY.run_validation(json.loads(written, parse_float=f.JsonNumber)) == number


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_a_json_number_arrives_exactly_as_written(number):
    literal = json.dumps(number)  # repr: the shortest text that reads back as this float
    data = parse_json(f'{{"q": {literal}}}'.encode())
    assert isinstance(data["q"], (int, Decimal)) and not isinstance(data["q"], float)
    if isinstance(data["q"], Decimal):
        assert data["q"] == Decimal(literal)
    try:
        value = MONEY_FIELD.run_validation(data["q"])
    except serializers.ValidationError:
        assert (
            "e" in literal.lower()
            or not PLAIN.match(literal)
            or decimals_of(literal) > 4
            or abs(Decimal(literal)) >= Decimal("1E10")
        )
        return
    assert "e" not in literal.lower() and value == Decimal(literal)


@SETTINGS
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=10)
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_json_bodies_parse_without_floats(value):
    data = parse_json(json.dumps(value).encode())

    def no_float(node):
        if isinstance(node, dict):
            return all(no_float(v) for v in node.values())
        if isinstance(node, list):
            return all(no_float(v) for v in node)
        return not isinstance(node, float)

    assert no_float(data)


@SETTINGS
@given(st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
@example(b'{"a": NaN}')
@example(b'{"a": -Infinity}')
@example(b"[" * 5000)
def test_any_body_parses_or_is_a_parse_error(body):
    try:
        parse_json(body)
    except ParseError:
        pass


# --- business times ----------------------------------------------------------------------------


offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)


@SETTINGS
@given(st.datetimes(timezones=offsets) | st.datetimes())
@example(datetime.datetime(1, 1, 1, tzinfo=datetime.UTC))
@example(datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5))))
@example(
    datetime.datetime(9999, 12, 31, 23, 59, tzinfo=datetime.timezone(datetime.timedelta(hours=-23)))
)
def test_a_business_time_is_from_2000_to_a_little_ahead_or_refused(moment):
    field = f.BusinessTimeField()
    try:
        value = field.run_validation(moment.isoformat())
    except serializers.ValidationError:
        return
    assert value.utcoffset() == datetime.timedelta(0)
    assert value >= f.earliest_business_time()
    assert value <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=16)


@SETTINGS
@given(st.text(max_size=40))
@example("0001-01-01T00:00:00Z")
@example("2026-13-01T00:00:00Z")
def test_any_text_as_a_business_time_is_a_moment_or_refused(raw):
    for field in (f.BusinessTimeField(), f.BusinessMomentField()):
        try:
            field.run_validation(raw)
        except serializers.ValidationError:
            pass


@SETTINGS
@given(st.dates())
def test_a_business_date_is_within_the_business_range_or_refused(day):
    field = f.BusinessDateField()
    try:
        value = field.run_validation(day.isoformat())
    except serializers.ValidationError:
        assert not datetime.date(2000, 1, 1) <= day <= f.LATEST_BUSINESS_DATE
        return
    assert value == day
    value + datetime.timedelta(days=3650)  # noqa: B018  (room for any window of days)


def test_the_earliest_business_time_follows_its_setting():
    with override_settings(BUSINESS_TIME_EARLIEST=datetime.date(2021, 3, 1)):
        with pytest.raises(serializers.ValidationError):
            f.BusinessMomentField().run_validation("2021-02-28T23:59:59Z")
        f.BusinessMomentField().run_validation("2021-03-01T00:00:00Z")


# --- barcodes ------------------------------------------------------------------------------------


@SETTINGS
@given(
    st.text(max_size=60)
    | st.from_regex(r"(\][A-Za-z][0-9])?\(?01\)?[0-9]{14}.{0,30}", fullmatch=True)
)
@example("01" + "0" * 14 + "\x1d10LOT\x1d17250100")
@example("(01)00000000000000(17)991399")
def test_any_scan_is_read_or_refused_as_a_bad_scan(raw):
    try:
        scan = parse_scan(raw)
    except (InvalidBarcode, InvalidCheckDigit):
        return
    if scan.gtin14 is not None:
        assert len(scan.gtin14) == 14 and is_valid_gtin(scan.gtin14)
    assert scan.text == scan.text.strip() and scan.text


gtins = (
    st.sampled_from([7, 11, 12, 13])
    .flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
    .map(lambda payload: payload + str(gtin_check_digit(payload)))
)


@SETTINGS
@given(
    gtins,
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=20),
    st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2049, 12, 31)),
)
def test_a_gs1_string_gives_back_its_gtin_lot_and_expiry(gtin, lot, expiry):
    gtin14 = gtin.zfill(14)
    raw = f"01{gtin14}17{expiry:%y%m%d}10{lot}"
    scan = parse_scan(raw)
    assert (scan.gtin14, scan.lot, scan.expiry) == (gtin14, lot, expiry)
    assert parse_scan(f"]d2{raw}\r\n") == parse_scan(raw).__class__(
        raw=f"]d2{raw}\r\n", text=raw, gtin14=gtin14, lot=lot, expiry=expiry, is_gs1=True
    )


@SETTINGS
@given(gtins)
def test_every_length_of_a_gtin_reads_as_one_key(gtin):
    keys = {
        parse_scan(form).gtin14
        for form in {gtin, gtin.zfill(13), gtin.zfill(14)}
        if len(form) in (8, 12, 13, 14)
    }
    assert keys == {gtin.zfill(14)}


# --- ledger cursors ----------------------------------------------------------------------------


@SETTINGS
@given(
    st.text(max_size=80)
    | st.binary(max_size=40).map(lambda b: __import__("base64").b64encode(b).decode())
)
@example("cD0xMjM=")  # p=123
@example("cD0tMQ==")  # p=-1
@example("cD1hYmM=")  # p=abc
def test_any_cursor_is_ours_or_refused(raw):
    request = Request(APIRequestFactory().get("/api/v1/ledger/", {"cursor": raw}))
    try:
        LedgerPagination().decode_cursor(request)
    except ApplicationError as exc:
        assert exc.status == 400 and "cursor" in exc.fields


# --- the text rules ------------------------------------------------------------------------------


@SETTINGS
@given(st.text(max_size=30), st.sampled_from(list(text.Kind)))
@example("CAFE\u0301", text.IDENTIFIER)
@example("A\u200bB", text.IDENTIFIER)
@example("01\x1d10L", text.SCAN)
@example("a\r\nb", text.TEXT)
def test_clean_text_is_nfc_idempotent_and_keeps_out_what_its_kind_refuses(raw, kind):
    try:
        value = text.clean(raw, kind)
    except text.TextRefused as exc:
        assert str(exc)
        return
    if kind is not text.SECRET:
        assert unicodedata.is_normalized("NFC", value)
        assert text.clean(value, kind) == value
    assert "\x00" not in value
    categories = {unicodedata.category(ch) for ch in value}
    assert "Cs" not in categories
    if kind in (text.IDENTIFIER, text.SCAN):
        assert "Cf" not in categories
        assert not any(unicodedata.category(ch) == "Zs" and ch != " " for ch in value)
    if kind in (text.IDENTIFIER, text.NAME):
        assert "Cc" not in categories


@SETTINGS
@given(
    st.recursive(
        st.text(max_size=6) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_json_stored_values_are_cleaned_through_and_through_or_refused(value):
    field = f.JSONField(kind=text.IDENTIFIER)
    try:
        cleaned = field.run_validation(value)
    except serializers.ValidationError:
        return
    assert json.loads(json.dumps(cleaned)) == cleaned
