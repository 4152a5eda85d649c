"""Par levels as CSV: reading an uploaded file into rows for ``baselines_import``, and writing
a floor's par levels back out in the same columns, so an export edited in a spreadsheet imports
again unchanged.

Reading only parses; every rule about a row (a product that exists, a quantity that is one)
is the import service's, which reports each bad row by its line. What this module refuses is
what makes the file unreadable as a whole (not UTF-8, no header naming ``par_qty``, a
duplicated column, too many rows) — one 400 naming ``file`` — and a row whose shape is broken
(more cells than the header), reported by its line like the service's errors.

Files come from spreadsheets and point-of-sale exports: UTF-8, often with a byte-order mark;
Excel's Windows line endings; report parameters in rows above the header (a Cova export's
date range); headers written ``SKU``, ``Par Qty`` or ``par-qty``. Columns are found by name,
never by position, and columns this import does not read are listed back, not refused.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from core import text
from core.errors import ValidationFailed
from core.spreadsheet import FORMULA_STARTS, safe_cell

#: The columns the import reads, as ``baselines_import`` names them.
COLUMNS = ("sku", "barcode", "product", "category", "subcategory", "par_qty", "min_pull")
#: Other ways spreadsheets write them (after lower-casing and ``_`` for spaces and dashes).
ALIASES = {
    "par": "par_qty",
    "par_level": "par_qty",
    "par_quantity": "par_qty",
    "min": "min_pull",
    "minimum_pull": "min_pull",
    "gtin": "barcode",
    "upc": "barcode",
}
#: The columns an export writes (store and location codes for the reader; the import takes
#: the location from the request and ignores them).
EXPORT_COLUMNS = (
    "store",
    "location",
    "sku",
    "name",
    "category",
    "subcategory",
    "par_qty",
    "min_pull",
    "updated_at",
)
#: How far down the header may sit under a report's parameter rows.
HEADER_SEARCH_ROWS = 20
MAX_ROWS = 20_000
MAX_CELL = 500
#: The largest file the import view reads (its ``max_body_size``): 20,000 rows at ~100 bytes.
MAX_FILE_BYTES = 4 * 1024 * 1024

_SEPARATORS = re.compile(r"[\s\-]+")


@dataclass
class ParsedFile:
    """What the file held: rows for the service (each a dict of the columns it had, plus
    ``line``, the file's 1-based line where the row starts), the broken rows (``{line, field,
    code, detail}``, in the service's error shape) and the header's columns nobody reads."""

    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    header_line: int = 1


def column_name(header: str) -> str:
    """``' Par Qty '`` → ``par_qty``; aliases to the column they mean."""
    name = _SEPARATORS.sub("_", header.strip().lower()).strip("_")
    return ALIASES.get(name, name)


def refuse(message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(message, fields={"file": [message]}, code=code)


def decode(raw: bytes) -> str:
    """UTF-8 with or without a byte-order mark; anything else is refused whole."""
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refuse(
            f"The file is not UTF-8 text (byte {exc.start + 1}): save it as CSV UTF-8."
        ) from None
    if "\x00" in content:
        raise refuse("The file holds NUL characters: it is not a CSV text file.")
    return content


def parse(raw: bytes) -> ParsedFile:
    """Read a par-level CSV into rows for ``baselines_import``."""
    reader = csv.reader(io.StringIO(decode(raw), newline=""))
    parsed = ParsedFile()
    header: list[str] | None = None
    previous_end = 0  # the line the previous record ended on: a record may span lines
    try:
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if header is None:
                names = [column_name(cell) for cell in record]
                if "par_qty" in names:
                    header = _header(names, start)
                    parsed.header_line = start
                    parsed.ignored_columns = sorted({n for n in names if n and n not in COLUMNS})
                elif start >= HEADER_SEARCH_ROWS:
                    break
                continue
            if not any(cell.strip() for cell in record):
                continue  # blank lines, and a spreadsheet's trailing ",,,"
            if len(parsed.rows) + len(parsed.errors) >= MAX_ROWS:
                raise refuse(f"More than {MAX_ROWS} rows: split the file.", code="too_many_rows")
            row = _row(header, record, start)
            if "error" in row:
                parsed.errors.append(row["error"])
            else:
                parsed.rows.append(row)
    except csv.Error as exc:
        raise refuse(f"Line {reader.line_num}: not readable as CSV ({exc}).") from None
    if header is None:
        raise refuse(
            "No header row naming par_qty (and sku, barcode, product or category) was found "
            f"in the first {HEADER_SEARCH_ROWS} lines."
        )
    return parsed


def _header(names: list[str], line: int) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name in COLUMNS and name in seen:
            raise refuse(f"Line {line}: the column {name} appears twice.")
        seen.add(name)
    if not seen & {"sku", "barcode", "product", "category"}:
        raise refuse(
            f"Line {line}: the header names no product column (sku, barcode, product) "
            "and no category."
        )
    return names


def _row(header: list[str], record: list[str], line: int) -> dict:
    if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
        return {
            "error": {
                "line": line,
                "field": "",
                "code": "invalid",
                "detail": f"{len(record)} cells under a header of {len(header)} columns.",
            }
        }
    row: dict = {"line": line}
    for name, cell in zip(header, record, strict=False):
        if name not in COLUMNS:
            continue
        value = text.nfc(cell.strip())
        if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
            value = value[1:]  # what ``safe_cell`` quoted in an export
        kind = text.NAME if name in ("category", "subcategory", "product") else text.SCAN
        problem = text.problem(value, kind) or (
            f"Longer than {MAX_CELL} characters." if len(value) > MAX_CELL else None
        )
        if problem:
            return {"error": {"line": line, "field": name, "code": "invalid", "detail": problem}}
        row[name] = value
    return row


def write(rows: list[dict]) -> str:
    """The export: a header, then one row per baseline (``EXPORT_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: safe_cell(value) for name, value in row.items()})
    return out.getvalue()
