"""Records name themselves readably (admin titles, history, log lines), never "Sale object (10)".

Built unsaved with ids set: ``__str__`` reads only the row's own columns, so listing them costs
no query per row."""

from __future__ import annotations

from decimal import Decimal

import pytest

from counts.models import (
    CountLine,
    CountPass,
    CountScan,
    CountSession,
    UnresolvedScan,
    VarianceRow,
)
from inventory.models import Refund, Sale, SaleLine, StockDocument, StockShortfall

CASES = [
    (Sale(pk=10, client_ref="POS-8812", status="completed"), "Sale #10 (POS-8812, completed)"),
    (Sale(pk=11, client_ref="POS-8813", status="voided"), "Sale #11 (POS-8813, voided)"),
    (
        SaleLine(sale_id=10, line_no=2, product_id=7, quantity=Decimal("3.5000")),
        "Sale #10 line 2: 3.5 of product #7",
    ),
    (Refund(pk=4, sale_id=10, client_ref="RF-1"), "Refund #4 of sale #10 (RF-1)"),
    (StockDocument(pk=5, kind="receipt", client_ref="rcv-001"), "Receipt #5 (rcv-001)"),
    (StockDocument(pk=6, kind="write_off", client_ref="wo-9"), "Write Off #6 (wo-9)"),
    (
        StockShortfall(
            pk=3, requested=Decimal("5.0000"), available=Decimal("2.0000"), outcome="blocked"
        ),
        "Shortfall #3: 5 wanted, 2 available (blocked)",
    ),
    (
        CountSession(pk=12, scope="FULL_STORE", status="in_progress"),
        "Full store count #12 (in progress)",
    ),
    (CountSession(pk=13, scope="ZONE", status="closed"), "Zone count #13 (closed)"),
    (
        CountPass(
            pk=30, session_id=12, category="Flower", subcategory="Dried Flower", status="submitted"
        ),
        "Pass #30 of count #12, Flower/Dried Flower (submitted)",
    ),
    (CountPass(pk=31, session_id=12, status="in_progress"), "Pass #31 of count #12 (in progress)"),
    (
        CountLine(count_pass_id=30, product_id=7, lot_code="L-22", quantity=Decimal("12.0000")),
        "12 of product #7, lot L-22 in pass #30",
    ),
    (
        CountScan(count_pass_id=30, raw_scan="0614141000012", quantity=Decimal("1.0000")),
        "Scan 0614141000012 × 1 in pass #30",
    ),
    (
        UnresolvedScan(count_pass_id=30, raw_scan="XYZ-1", quantity=Decimal("2.0000")),
        "Unknown code XYZ-1 × 2 in pass #30",
    ),
    (
        VarianceRow(
            session_id=12,
            product_id=7,
            location_id=3,
            variance=Decimal("-1.5000"),
            status="pending",
        ),
        "Count #12, product #7 at location #3: -1.5 (pending)",
    ),
    (
        VarianceRow(
            session_id=12,
            product_id=8,
            location_id=3,
            variance=Decimal("2.0000"),
            status="approved",
        ),
        "Count #12, product #8 at location #3: +2 (approved)",
    ),
]


@pytest.mark.parametrize(
    "record,text", CASES, ids=[f"{type(r).__name__}-{i}" for i, (r, _) in enumerate(CASES)]
)
def test_records_name_themselves_readably(record, text):
    assert str(record) == text
    assert "object (" not in str(record)
