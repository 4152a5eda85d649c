"""The rules for text that people and devices send, in one place.

Two strings that look the same must be the same string: "é" typed on a Mac (NFD, ``e`` + a
combining accent) and on a till (NFC, one character) must find the same SKU, and an SKU that a
label printer padded with a zero-width space must not become a second product nobody can find by
typing. So every string input is normalised to NFC, and what it may contain depends on what it
is:

- ``IDENTIFIER`` (SKUs, store and location codes, lot codes, stored barcodes, ``client_ref``,
  slugs, e-mail addresses): no control characters and nothing invisible — format characters
  (Unicode category Cf: zero-width space, BOM, soft hyphen, bidi controls...), the other
  default-ignorable code points (variation selectors, Hangul fillers...), and spaces other than
  the plain one (a no-break space looks exactly like it).
- ``SCAN`` (what a scanner typed): an identifier that may also carry GS (``\\x1d``), the FNC1
  separator of GS1 element strings.
- ``NAME`` (names, brands, categories: one line for people): no control characters and no line
  or paragraph separators; format characters stay, since the zero-width joiner and non-joiner
  are part of how Persian, the Indic scripts and emoji are written.
- ``TEXT`` (notes, reasons): as ``NAME``, plus tab and line breaks.
- ``SECRET`` (passwords): compared byte for byte with what was set, so never normalised; only
  NUL is refused (PostgreSQL cannot hold it anywhere).
- ``QUERY`` (any query-string value, before the view reads it as anything narrower): free text
  or a scan, so no control character but GS, tab and line breaks (a scanner ends what it types
  with Enter or Tab).

PostgreSQL refuses NUL in ``text`` and ``jsonb`` and Python hands lone surrogates to the driver
only to fail on encoding: both are refused for every kind, so neither ever reaches a query.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Kind(StrEnum):
    IDENTIFIER = "identifier"
    SCAN = "scan"
    NAME = "name"
    TEXT = "text"
    SECRET = "secret"
    QUERY = "query"


IDENTIFIER = Kind.IDENTIFIER
SCAN = Kind.SCAN
NAME = Kind.NAME
TEXT = Kind.TEXT
SECRET = Kind.SECRET
QUERY = Kind.QUERY

GS = "\x1d"  # GS1's FNC1 as a scanner transmits it
_FREE_TEXT_CONTROLS = frozenset("\t\n\r")  # HTML forms send line breaks as CRLF

# Default-ignorable code points (Unicode's DerivedCoreProperties) that are *not* in category Cf:
# rendered as nothing, so an identifier holding one looks like one without it.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


class TextRefused(ValueError):
    """The text holds a character its kind does not allow; the message says which."""


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def _is_ignorable(code: int) -> bool:
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def problem(value: str, kind: Kind) -> str | None:
    """Why ``value`` (already NFC) may not be text of ``kind``, or None when it may."""
    kind = Kind(kind)
    for char in value:
        category = unicodedata.category(char)
        if char == "\x00" or category == "Cs":
            return f"Contains {_describe(char)}, which cannot be stored."
        if kind is SECRET:
            continue
        if category == "Cc":
            if kind in (SCAN, QUERY) and char == GS:
                continue
            if kind in (TEXT, QUERY) and char in _FREE_TEXT_CONTROLS:
                continue
            return f"Contains the control character {_describe(char)}."
        if category in ("Zl", "Zp") and kind not in (TEXT, QUERY):
            return f"Contains a line break ({_describe(char)})."
        if kind in (IDENTIFIER, SCAN) and (
            category == "Cf" or _is_ignorable(ord(char)) or (category == "Zs" and char != " ")
        ):
            return (
                f"Contains the invisible character {_describe(char)}: codes must be typed "
                "exactly as they look."
            )
    return None


def clean(value: str, kind: Kind) -> str:
    """``value`` in NFC (passwords as given), or ``TextRefused`` saying which character is not
    allowed in text of ``kind``."""
    if Kind(kind) is not SECRET:
        value = unicodedata.normalize("NFC", value)
    reason = problem(value, kind)
    if reason is not None:
        raise TextRefused(reason)
    return value


def nfc(value: str) -> str:
    """NFC without checks: for code that stores identifiers it did not receive from the API
    (imports, services), so that they compare equal to what the API stores."""
    return unicodedata.normalize("NFC", value)
