"""Tests for ``inventory.catalog.barcodes``: GTIN arithmetic and scanner-text interpretation."""

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.catalog.barcodes import (
    Scan,
    gtin_check_digit,
    is_valid_gtin,
    looks_like_gtin,
    normalize_gtin,
    parse_scan,
)
from inventory.exceptions import InvalidBarcode, InvalidCheckDigit

GS = "\x1d"
GTIN14 = "09501101530003"  # GS1's own example GTIN


# --- GTIN arithmetic -------------------------------------------------------------------------


# Each check digit below was worked out by hand (weights 3,1,3,... from the right of the payload):
#   400638133393 -> 89 -> 1;  03600029145 -> 58 -> 2;  9638507 -> 86 -> 4;  0950110153000 -> 47 -> 3
@pytest.mark.parametrize(
    ("payload", "digit"),
    [("400638133393", 1), ("03600029145", 2), ("9638507", 4), ("0950110153000", 3)],
)
def test_gtin_check_digit_matches_known_gtins(payload, digit):
    assert gtin_check_digit(payload) == digit


def test_gtin_check_digit_is_zero_when_sum_is_multiple_of_ten():
    # 0000000 -> sum 0 -> check digit 0, not 10.
    assert gtin_check_digit("0000000") == 0


@pytest.mark.parametrize("code", ["4006381333931", "036000291452", "96385074", GTIN14])
def test_is_valid_gtin_accepts_known_gtins(code):
    assert is_valid_gtin(code)


@pytest.mark.parametrize(
    "code",
    ["4006381333932", "03600029145", "9638507X", "", "123456789", "４００６３８１３３３９３１"],
)
def test_is_valid_gtin_rejects_bad_digit_length_or_characters(code):
    assert not is_valid_gtin(code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("96385074", True),
        ("036000291452", True),
        ("1234567890123", True),
        (GTIN14, True),
        ("1234567", False),
        ("12345678901", False),
        ("CNB-12345678", False),
        ("", False),
    ],
)
def test_looks_like_gtin_checks_only_shape(text, expected):
    assert looks_like_gtin(text) is expected


@pytest.mark.parametrize("code", ["036000291452", "0036000291452", "00036000291452"])
def test_normalize_gtin_pads_gtin12_13_14_to_same_key(code):
    assert normalize_gtin(code) == "00036000291452"


def test_normalize_gtin_pads_gtin8():
    assert normalize_gtin("96385074") == "00000096385074"


def test_normalize_gtin_wrong_check_digit_raises_invalid_check_digit():
    with pytest.raises(InvalidCheckDigit) as excinfo:
        normalize_gtin("4006381333932")
    assert excinfo.value.code == "invalid_check_digit"
    assert excinfo.value.fields["barcode"]


def test_normalize_gtin_non_gtin_raises_invalid_barcode():
    with pytest.raises(InvalidBarcode):
        normalize_gtin("CNB-1")


@given(
    payload=st.sampled_from([7, 11, 12, 13]).flatmap(
        lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
    )
)
def test_check_digit_property_completes_valid_gtin(payload):
    code = payload + str(gtin_check_digit(payload))
    assert is_valid_gtin(code)
    normalised = normalize_gtin(code)
    assert len(normalised) == 14
    assert normalised.endswith(code)


@given(
    payload=st.sampled_from([7, 11, 12, 13]).flatmap(
        lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
    ),
    delta=st.integers(min_value=1, max_value=9),
)
def test_check_digit_property_other_last_digit_is_invalid(payload, delta):
    wrong = (gtin_check_digit(payload) + delta) % 10
    code = payload + str(wrong)
    assert not is_valid_gtin(code)
    with pytest.raises(InvalidCheckDigit):
        normalize_gtin(code)


# --- parse_scan: plain GTINs -----------------------------------------------------------------


def test_parse_scan_plain_gtin_gives_gtin14():
    scan = parse_scan("036000291452\r\n")
    assert scan == Scan(raw="036000291452\r\n", text="036000291452", gtin14="00036000291452")
    assert scan.is_gs1 is False


def test_parse_scan_plain_gtin_wrong_check_digit_raises():
    with pytest.raises(InvalidCheckDigit) as excinfo:
        parse_scan("4006381333932")
    assert excinfo.value.code == "invalid_check_digit"
    assert "barcode" in excinfo.value.fields


@pytest.mark.parametrize("raw", ["", "   ", "]C1", " ]d2 \n"])
def test_parse_scan_empty_raises_invalid_barcode(raw):
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_scan(raw)
    assert excinfo.value.code == "invalid_barcode"
    assert excinfo.value.fields["barcode"]


@pytest.mark.parametrize("prefix", ["]E0", "]e0", "]C1", "]d2", "]Q3"])
def test_parse_scan_strips_aim_symbology_identifier(prefix):
    scan = parse_scan(f"{prefix}4006381333931")
    assert scan.text == "4006381333931"
    assert scan.gtin14 == "04006381333931"


# --- parse_scan: GS1 element strings ---------------------------------------------------------


def test_parse_scan_gs1_with_separator_gives_gtin_lot_expiry():
    raw = f"]d20109501101530003{GS}10ABC123{GS}17250131"
    scan = parse_scan(raw)
    assert scan.raw == raw
    assert scan.text == f"0109501101530003{GS}10ABC123{GS}17250131"
    assert scan.is_gs1
    assert scan.gtin14 == GTIN14
    assert scan.lot == "ABC123"
    assert scan.expiry == datetime.date(2025, 1, 31)
    assert scan.no_expiry is False


def test_parse_scan_gs1_fixed_fields_need_no_separator():
    scan = parse_scan(f"]C101{GTIN14}1725013110ABC123")
    assert (scan.gtin14, scan.expiry, scan.lot) == (GTIN14, datetime.date(2025, 1, 31), "ABC123")


def test_parse_scan_gs1_databar_prefix():
    scan = parse_scan(f"]e001{GTIN14}17260615")
    assert scan.is_gs1
    assert (scan.gtin14, scan.expiry, scan.lot) == (GTIN14, datetime.date(2026, 6, 15), None)


def test_parse_scan_gs1_gtin_only():
    scan = parse_scan("0109501101530003")
    assert scan.is_gs1
    assert (scan.gtin14, scan.lot, scan.expiry) == (GTIN14, None, None)


def test_parse_scan_gs1_ai02_is_read_as_gtin():
    scan = parse_scan(f"02{GTIN14}10L1")
    assert (scan.is_gs1, scan.gtin14, scan.lot) == (True, GTIN14, "L1")


def test_parse_scan_bracketed_hri():
    scan = parse_scan("(01)09501101530003(17)250131(10)ABC123")
    assert scan.is_gs1
    assert (scan.gtin14, scan.expiry, scan.lot) == (GTIN14, datetime.date(2025, 1, 31), "ABC123")


def test_parse_scan_bracketed_hri_tolerates_spaces():
    scan = parse_scan("(01) 09501101530003 (10) ABC123")
    assert (scan.gtin14, scan.lot) == (GTIN14, "ABC123")


def test_parse_scan_expiry_500723_means_no_expiry():
    scan = parse_scan(f"0109501101530003{GS}10LOT7{GS}17500723")
    assert scan.expiry is None
    assert scan.no_expiry is True
    assert scan.lot == "LOT7"


def test_parse_scan_expiry_day_00_is_last_day_of_month():
    assert parse_scan(f"01{GTIN14}17240200").expiry == datetime.date(2024, 2, 29)
    assert parse_scan("(01)09501101530003(17)250200").expiry == datetime.date(2025, 2, 28)


def test_parse_scan_lot_without_separator_swallows_following_ais():
    # Without FNC1 after the variable-length (10), the following AIs are read as part of the lot.
    scan = parse_scan(f"01{GTIN14}10ABC12317250131")
    assert scan.lot == "ABC12317250131"
    assert scan.expiry is None
    assert scan.gtin14 == GTIN14


@pytest.mark.parametrize(
    "raw",
    [
        "010950110153000410ABC",
        f"0109501101530004{GS}17251399",  # bad check digit wins over the unreadable date
        "(01)09501101530004(10)ABC",
        f"10ABC{GS}0109501101530004",
    ],
)
def test_parse_scan_gs1_wrong_gtin_check_digit_raises(raw):
    with pytest.raises(InvalidCheckDigit) as excinfo:
        parse_scan(raw)
    assert excinfo.value.code == "invalid_check_digit"


@pytest.mark.parametrize("tail", ["17251399", "10" + "L" * 25])
def test_parse_scan_unreadable_rest_still_gives_the_leading_gtin(tail):
    # an impossible date, or a lot past 20 characters: the product is still known
    scan = parse_scan(f"01{GTIN14}{tail}")
    assert (scan.gtin14, scan.is_gs1, scan.lot, scan.expiry) == (GTIN14, True, None, None)


# --- parse_scan: everything else is plain text ------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "1A4060300002EE1000012345",  # Metrc package tag
        "CNB-12345678",  # SKU
        "12345",  # short numeric code, not a GTIN length
        "(555) 123-4567",
        f"10ABC{GS}21XYZ",  # GS1 but without a GTIN
    ],
)
def test_parse_scan_other_text_falls_back_to_plain(raw):
    scan = parse_scan(raw)
    assert scan == Scan(raw=raw, text=raw.strip())
    assert (scan.is_gs1, scan.gtin14, scan.lot, scan.expiry, scan.no_expiry) == (
        False,
        None,
        None,
        None,
        False,
    )


def test_parse_scan_plain_text_keeps_text_without_prefix():
    scan = parse_scan("]Q3CNB-12345678\n")
    assert scan.raw == "]Q3CNB-12345678\n"
    assert scan.text == "CNB-12345678"
    assert scan.is_gs1 is False
