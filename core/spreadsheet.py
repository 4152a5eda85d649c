"""CSV cells a spreadsheet will not run.

A CSV export is opened in a spreadsheet, which reads a cell starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula: a product named ``=HYPERLINK("http://…"&A1)``
would run in the manager's spreadsheet (CSV injection). Text that starts like that gets a
leading apostrophe, which spreadsheets show as text. Numbers are left alone — a shortage of
``-5.0000`` stays a number — so every exporter can pass every cell through ``safe_cell``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

#: What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` as a CSV cell: None is empty; text that a spreadsheet would run as a formula
    is quoted with an apostrophe; numbers (and text that is exactly a number) are unchanged."""
    if value is None:
        return ""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        number = Decimal(value)
    except InvalidOperation:
        return "'" + value
    return value if number.is_finite() else "'" + value
