"""Par levels as CSV: reading what spreadsheets and point-of-sale exports write (a byte-order
mark, Windows line endings, headers in any case and spelling, report rows above the header,
quoted cells spanning lines), refusing what cannot be read as a whole (400 naming ``file``),
reporting each broken row by its line, and writing an export that imports again unchanged.

The import's rules for a row (a product that exists, a quantity that is one) are the service's
and are tested over HTTP in test_api.py; this file tests the parsing alone."""

from __future__ import annotations

import pytest

from core.errors import ValidationFailed
from upstock.api import csv_io


def parse(text: str, *, bom: bool = False):
    raw = text.encode("utf-8")
    return csv_io.parse(b"\xef\xbb\xbf" + raw if bom else raw)


def refused(text: str | bytes) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        csv_io.parse(text if isinstance(text, bytes) else text.encode())
    assert "file" in caught.value.fields, caught.value.fields
    return caught.value


def test_rows_keep_their_file_lines_and_only_the_columns_read():
    parsed = parse("sku,par_qty,min_pull,colour\nGUM,12,2,red\nFLW,3.5,,green\n")
    assert parsed.rows == [
        {"line": 2, "sku": "GUM", "par_qty": "12", "min_pull": "2"},
        {"line": 3, "sku": "FLW", "par_qty": "3.5", "min_pull": ""},
    ]
    assert parsed.errors == [] and parsed.ignored_columns == ["colour"]


@pytest.mark.parametrize(
    "header",
    ["SKU,Par Qty", " sku , PAR_QTY ", "Sku,par-qty", "sku,Par Level", "SKU,par"],
)
def test_headers_match_by_name_in_any_case_and_spelling(header):
    assert parse(f"{header}\nGUM,4\n").rows == [{"line": 2, "sku": "GUM", "par_qty": "4"}]


def test_a_byte_order_mark_and_windows_line_endings_are_read():
    parsed = parse("sku,par_qty\r\nGUM,4\r\nFLW,5\r\n", bom=True)
    assert [row["sku"] for row in parsed.rows] == ["GUM", "FLW"]
    assert [row["line"] for row in parsed.rows] == [2, 3]


def test_columns_are_found_by_name_not_position():
    parsed = parse("par_qty,category,subcategory\n10,Flower,Dried\n")
    assert parsed.rows == [
        {"line": 2, "par_qty": "10", "category": "Flower", "subcategory": "Dried"}
    ]


def test_report_rows_above_the_header_are_skipped_and_lines_still_count():
    text = (
        "Inventory report,,\n"
        "Date range: 2026-11-01 to 2026-11-21,,\n"
        ",,\n"
        "SKU,Product,Par Qty\n"
        "GUM,Sour Gummies,6\n"
    )
    parsed = parse(text, bom=True)
    assert parsed.header_line == 4
    assert parsed.rows == [{"line": 5, "sku": "GUM", "product": "Sour Gummies", "par_qty": "6"}]


def test_a_quoted_cell_spanning_lines_is_reported_at_its_first_line_and_the_next_row_after():
    parsed = parse('sku,category,par_qty\nGUM,"Edibles\nand more",4\nFLW,Flower,2\n')
    assert [(e["line"], e["field"]) for e in parsed.errors] == [(2, "category")]  # a line break
    assert [row["line"] for row in parsed.rows] == [4]


def test_blank_lines_and_trailing_empty_cells_are_skipped():
    parsed = parse("sku,par_qty\n\nGUM,4\n,\n  ,  \nFLW,1\n")
    assert [(row["line"], row["sku"]) for row in parsed.rows] == [(3, "GUM"), (6, "FLW")]


def test_cells_are_trimmed_and_nfc():
    parsed = parse("sku,category,par_qty\n GUM ,Cafe\u0301, 4 \n")
    assert parsed.rows[0] == {"line": 2, "sku": "GUM", "category": "Caf\u00e9", "par_qty": "4"}


def test_a_row_with_more_cells_than_the_header_is_reported_by_its_line():
    parsed = parse("sku,par_qty\nGUM,4,surprise\nFLW,2,\n")
    assert parsed.rows == [{"line": 3, "sku": "FLW", "par_qty": "2"}]
    assert [(e["line"], e["code"], e["field"]) for e in parsed.errors] == [(2, "invalid", "")]


def test_a_short_row_gives_the_cells_it_has():
    assert parse("sku,par_qty,min_pull\nGUM,4\n").rows == [
        {"line": 2, "sku": "GUM", "par_qty": "4"}
    ]


@pytest.mark.parametrize(
    ("cell", "field"),
    [("GU\u200bM", "sku"), ("GUM\x07", "sku"), ("Flo\x01wer", "category")],
)
def test_a_cell_with_characters_a_code_or_name_may_not_hold_is_reported(cell, field):
    parsed = parse(
        f"sku,category,par_qty\nOK,Flower,1\n{cell if field == 'sku' else 'X'},"
        f"{cell if field == 'category' else 'Flower'},1\n"
    )
    assert [row["line"] for row in parsed.rows] == [2]
    assert [(e["line"], e["field"]) for e in parsed.errors] == [(3, field)]


def test_an_overlong_cell_is_reported():
    parsed = parse(f"sku,par_qty\n{'A' * 600},1\n")
    assert parsed.rows == [] and parsed.errors[0]["line"] == 2


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"sku,par_qty\nGUM,\xff4\n", "not UTF-8"),
        (b"sku,par_qty\nGUM\x00,4\n", "NUL"),
        (b"sku,quantity\nGUM,4\n", "No header row"),
        (b"", "No header row"),
        (b"sku,par_qty,SKU\nGUM,4,GUM\n", "appears twice"),
        (b"name,par_qty\nGummies,4\n", "names no product column"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole_naming_file(content, says):
    assert says in refused(content).message


def test_the_header_is_looked_for_in_the_first_lines_only():
    text = "\n".join(["report"] * csv_io.HEADER_SEARCH_ROWS) + "\nsku,par_qty\nGUM,1\n"
    assert "No header row" in refused(text).message


def test_too_many_rows_are_refused(monkeypatch):
    monkeypatch.setattr(csv_io, "MAX_ROWS", 3)
    parse("sku,par_qty\nA,1\nB,1\nC,1\n")
    error = refused("sku,par_qty\nA,1\nB,1\nC,1\nD,1\n")
    assert error.code == "too_many_rows"


def test_an_export_imports_again_unchanged_even_with_formula_like_text():
    rows = [
        {
            "store": "S1",
            "location": "SF",
            "sku": "-GUM",
            "name": '=HYPERLINK("x")',
            "category": "+Edibles",
            "subcategory": "",
            "par_qty": "12.0000",
            "min_pull": "",
            "updated_at": "2026-11-21T22:00:00+00:00",
        }
    ]
    written = csv_io.write(rows)
    assert written.splitlines()[0] == ",".join(csv_io.EXPORT_COLUMNS)
    assert "'=HYPERLINK" in written and "'-GUM" in written  # not run by a spreadsheet
    parsed = csv_io.parse(written.encode())
    assert parsed.rows == [
        {
            "line": 2,
            "sku": "-GUM",
            "category": "+Edibles",
            "subcategory": "",
            "par_qty": "12.0000",
            "min_pull": "",
        }
    ]
    assert parsed.ignored_columns == ["location", "name", "store", "updated_at"]
