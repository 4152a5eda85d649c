"""Interpret what a retail barcode scanner sends.

A scanner acts as a keyboard: it "types" the barcode's content. Depending on the symbol and the
scanner's settings that text is a plain GTIN (UPC-A, EAN-13, EAN-8, ITF-14), a GS1 element string
carrying a GTIN plus batch/lot and expiry (GS1-128, GS1 DataBar, GS1 DataMatrix, GS1 QR), the
human-readable bracketed form of one, or just free text (an SKU label, a Metrc package tag).
``parse_scan`` turns all of these into one ``Scan`` so callers never deal with scanner quirks.

The GS1 rules themselves (AI table, date formats, day ``00``) come from ``biip``; this module
only decides *when* to ask it, so that ordinary codes are never mistaken for GS1 data.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from biip import ParseConfig, ParseError
from biip.gs1_messages import GS1Message

from inventory.exceptions import InvalidBarcode, InvalidCheckDigit

GTIN_LENGTHS = (8, 12, 13, 14)

# FNC1 as transmitted by scanners: the ASCII group separator. Note that Python counts it as
# whitespace, so ``str.strip()`` drops it at either end, which is harmless for GS1 data.
GS = "\x1d"

# AIM symbology identifier (ISO/IEC 15424) some scanners prepend: "]C1" GS1-128, "]e0" DataBar,
# "]d2" DataMatrix, "]Q3" QR... It says which symbol was read, never what it contains.
_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9]")

# A GS1 string we are willing to interpret starts with a GTIN: AI (01) trade item or (02)
# contained items, followed by 14 digits, raw or in bracketed human-readable form. Requiring it
# keeps a Metrc tag or an alphanumeric SKU from being read as a chain of exotic AIs.
_LEADING_GTIN = re.compile(r"^(?:0[12]|\(0[12]\))(\d{14})")

# (17) = 500723 is the Canadian cannabis excise convention for "this product has no expiry".
# biip would happily read it as 23 July 2050, so it is checked on the raw value.
NO_EXPIRY = "500723"

_CONFIG = ParseConfig(separator_chars=[GS])


@dataclass(frozen=True)
class Scan:
    """The meaning of one scan; the fields GS1 did not provide are ``None``."""

    raw: str
    text: str
    gtin14: str | None = None
    lot: str | None = None
    expiry: datetime.date | None = None
    no_expiry: bool = False
    is_gs1: bool = False


def gtin_check_digit(payload: str) -> int:
    """GS1 mod-10 check digit of ``payload`` (the GTIN without its last digit).

    Weights alternate 3, 1, 3, ... starting from the *rightmost* payload digit, which is why one
    function serves GTIN-8, -12, -13 and -14 alike (leading zeros weigh nothing).
    """
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return (10 - total % 10) % 10


def looks_like_gtin(text: str) -> bool:
    """True when ``text`` has the shape of a GTIN (only digits, a GTIN length)."""
    return text.isascii() and text.isdigit() and len(text) in GTIN_LENGTHS


def is_valid_gtin(code: str) -> bool:
    """True when ``code`` has a GTIN's shape *and* its check digit is right."""
    return looks_like_gtin(code) and gtin_check_digit(code[:-1]) == int(code[-1])


def normalize_gtin(code: str) -> str:
    """Validate a GTIN-8/12/13/14 and return its 14-digit form.

    Zero-padding on the left gives every GTIN of one trade item the same key whichever symbol
    carried it (UPC-A ``036000291452`` == EAN-13 ``0036000291452`` == ``00036000291452``).
    A wrong check digit means a damaged or mistyped scan: it is refused rather than looked up,
    since it could match a different product.
    """
    if not looks_like_gtin(code):
        raise InvalidBarcode(
            fields={"barcode": [f"{code!r} is not a GTIN: expected 8, 12, 13 or 14 digits."]}
        )
    if not is_valid_gtin(code):
        expected = gtin_check_digit(code[:-1])
        raise InvalidCheckDigit(
            fields={"barcode": [f"Check digit of {code} should be {expected}, not {code[-1]}."]}
        )
    return code.zfill(14)


def scan_text(raw: str) -> str:
    """What a scanner sent without the symbology prefix (``]C1``, ``]e0``, ``]d2``…)."""
    return _AIM_PREFIX.sub("", raw.strip(), count=1).strip()


def parse_scan(raw: str) -> Scan:
    """Interpret one scan.

    Order matters: a plain GTIN is tried first, then GS1 data, and anything else is returned as
    plain text (``is_gs1=False``, no GTIN) for the caller to look up as an SKU or tag. Only two
    things raise: empty input (``InvalidBarcode``) and a GTIN with a wrong check digit
    (``InvalidCheckDigit``), because both mean the scan itself is bad.
    """
    text = _AIM_PREFIX.sub("", raw.strip(), count=1).strip()
    if not text:
        raise InvalidBarcode(fields={"barcode": ["The scan is empty."]})

    if looks_like_gtin(text):
        return Scan(raw=raw, text=text, gtin14=normalize_gtin(text))

    compact = "".join(text.split()) if text.startswith("(") else text
    leading = _LEADING_GTIN.match(compact)
    if leading is None and GS not in text:
        return Scan(raw=raw, text=text)
    if leading is not None:
        # Checked before biip so that a bad GTIN is reported even if the rest is unreadable.
        normalize_gtin(leading.group(1))

    try:
        if compact.startswith("("):
            message = GS1Message.parse_hri(compact, config=_CONFIG)
        else:
            message = GS1Message.parse(text, config=_CONFIG)
    except ParseError:
        if leading is not None:
            # The rest is unreadable (a lot that swallowed later fields past 20 characters, a
            # bad date), but the leading GTIN is sound: still identify the product, without
            # guessing a lot or an expiry.
            return Scan(raw=raw, text=text, gtin14=normalize_gtin(leading.group(1)), is_gs1=True)
        return Scan(raw=raw, text=text)

    gtin = message.element_strings.get(ai="01") or message.element_strings.get(ai="02")
    if gtin is None:
        return Scan(raw=raw, text=text)

    # Without a GS separator after a variable-length field, biip (like any GS1 parser) reads
    # the following AIs as part of it: "10ABC17250131" gives lot "ABC17250131" and no expiry.
    # That is what the symbol says; well-formed barcodes put (10) last or end it with FNC1.
    lot = message.element_strings.get(ai="10")
    expiry = message.element_strings.get(ai="17")
    no_expiry = expiry is not None and expiry.value == NO_EXPIRY
    return Scan(
        raw=raw,
        text=text,
        gtin14=normalize_gtin(gtin.value),
        lot=lot.value if lot is not None else None,
        expiry=None if expiry is None or no_expiry else expiry.date,
        no_expiry=no_expiry,
        is_gs1=True,
    )
