"""Helpers for stock tests: build state through the real services and check the invariants."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

from django.db import connection

from inventory.models import Location, StockLedger, StockQuant
from inventory.sales import services as sales
from inventory.stock import documents

_refs = itertools.count(1)


def ref(prefix: str = "ref") -> str:
    return f"{prefix}-{next(_refs)}"


def loc(store, code: str) -> Location:
    return Location.objects.get(store=store, code=code)


def receive(
    org,
    store,
    product,
    quantity,
    *,
    location="SF",
    lot="",
    expiry=None,
    cost=None,
    occurred_at=None,
    actor=None,
):
    line = documents.ReceiptLineInput(
        product,
        loc(store, location),
        Decimal(str(quantity)),
        lot_code=lot,
        expiry_date=expiry,
        unit_cost=Decimal(str(cost)) if cost is not None else None,
    )
    document, _ = documents.receipt_record(
        org=org,
        store=store,
        lines=[line],
        client_ref=ref("rcv"),
        occurred_at=occurred_at,
        actor=actor,
    )
    return document


def sell(org, store, *items, client_ref=None, occurred_at=None, actor=None):
    """``sell(org, store, (product, qty), (product, qty, location_code), ...)``"""
    lines = [
        sales.SaleLineInput(
            item[0], Decimal(str(item[1])), location=loc(store, item[2]) if len(item) > 2 else None
        )
        for item in items
    ]
    sale, _ = sales.sale_record(
        org=org,
        store=store,
        lines=lines,
        client_ref=client_ref or ref("sale"),
        occurred_at=occurred_at,
        actor=actor,
    )
    return sale


def on_hand(product, location=None) -> Decimal:
    quants = StockQuant.objects.filter(product=product)
    if location is not None:
        quants = quants.filter(location=location)
    return sum((q.quantity for q in quants), Decimal("0"))


def assert_invariants(org=None) -> None:
    """Invariant 1: per (location, batch) the ledger sums to the quant; 2: no hidden negatives."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT COALESCE(l.location_id, q.location_id), COALESCE(l.batch_id, q.batch_id),
                   COALESCE(l.total, 0), COALESCE(q.quantity, 0)
            FROM (SELECT location_id, batch_id, SUM(qty_delta) AS total
                  FROM inventory_stockledger GROUP BY location_id, batch_id) l
            FULL OUTER JOIN inventory_stockquant q
              ON q.location_id = l.location_id AND q.batch_id = l.batch_id
            WHERE COALESCE(l.total, 0) <> COALESCE(q.quantity, 0)
        """)
        mismatches = cursor.fetchall()
    assert mismatches == [], f"ledger != quants: {mismatches}"
    negative = StockQuant.objects.filter(quantity__lt=0, unallocated=False)
    assert not negative.exists(), list(negative.values())
    assert not StockLedger.objects.filter(qty_delta=0).exists()


def days(n: int) -> datetime.date:
    return datetime.date.today() + datetime.timedelta(days=n)


# The write path's own line types carry a line number the stateful and thread tests plan with;
# the document services take what a device sends. These turn one into the other.


def receipt_inputs(lines) -> list[documents.ReceiptLineInput]:
    return [
        documents.ReceiptLineInput(
            ln.product, ln.location, ln.quantity, ln.lot_code, ln.expiry_date, ln.unit_cost
        )
        for ln in lines
    ]


def move_inputs(lines) -> list[documents.MoveLineInput]:
    return [
        documents.MoveLineInput(
            ln.product, ln.from_location, ln.to_location, ln.quantity, batch=ln.batch_id
        )
        for ln in lines
    ]


def adjustment_inputs(lines) -> list[documents.AdjustmentLineInput]:
    return [
        documents.AdjustmentLineInput(
            ln.product,
            ln.location,
            ln.quantity,
            ln.lot_code,
            ln.expiry_date,
            ln.unit_cost,
            batch=ln.batch_id,
        )
        for ln in lines
    ]


def write_off_inputs(lines) -> list[documents.WriteOffLineInput]:
    return [
        documents.WriteOffLineInput(ln.product, ln.location, ln.quantity, batch=ln.batch_id)
        for ln in lines
    ]
