"""Each hook creates the right discrepancy: a sale's oversell (booked in ``warn``/``record``,
refused in ``block``), a count's clamped remainder, a reconciliation's ledger ≠ quant mismatch;
and the data migration that turns the shortfalls recorded before the hooks into discrepancies.

State is built through the real services; a mismatch is made as
``tests/inventory/test_reconciliation.py`` makes one, by updating a quant behind the ledger's back.
"""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from discrepancies.hooks import shortfalls_recorded
from discrepancies.models import Discrepancy, DocumentType, Kind, Severity, Source, Status
from discrepancies.services.decisions import Decision, discrepancy_decide
from inventory.exceptions import InsufficientStock
from inventory.models import (
    Organization,
    RefType,
    ShortfallOutcome,
    StockHold,
    StockLedger,
    StockQuant,
    StockShortfall,
)
from inventory.reports.reconciliation import stock_reconciliation_get, stock_reconciliation_run
from inventory.sales import services as sales
from inventory.stock import documents
from inventory.stock.shortfalls import register_shortfall_listener, unregister_shortfall_listener
from inventory.tenancy.scope import resolve_tenant
from tests.counts.test_count_hardening import (
    approve_all,
    count,
    finalize,
    reconcile,
    start,
)
from tests.counts.test_count_hardening import at as count_time
from tests.counts.test_count_hardening import people as people  # noqa: F401 - a fixture
from tests.factories import MembershipFactory, ProductFactory, VariancePolicyFactory
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, ref, sell

D = Decimal
migration = importlib.import_module("discrepancies.migrations.0003_discrepancies_from_shortfalls")


def negative_mode(org, mode: str) -> Organization:
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode=mode)
    org.refresh_from_db()
    return org


@pytest.fixture
def gum(org):
    return ProductFactory(org=org, sku="GUM", unit="each", default_cost=D("2"), category="Edibles")


def decide(org, user, d, action="approve", notes=""):
    tenant = resolve_tenant(user, org_id=org.pk)
    return discrepancy_decide(
        org=org, discrepancy=d, decision=Decision(action, notes), tenant=tenant, actor=user
    )


# --- POS shortfalls -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["warn", "record"])
def test_an_oversold_sale_is_an_informational_pos_shortfall(org, store, gum, mode):
    negative_mode(org, mode)
    clerk = MembershipFactory(org=org, role="operator").user
    receive(org, store, gum, 2)
    sale = sell(org, store, (gum, 5), actor=clerk)
    shortfall = StockShortfall.objects.get()
    assert (shortfall.outcome, shortfall.ref_id) == (ShortfallOutcome.BOOKED, sale.pk)
    d = Discrepancy.objects.get()
    assert (d.source, d.kind, d.status, d.corrective) == (
        Source.POS_SHORTFALL,
        Kind.DATA_ERROR,
        Status.NEW,
        False,
    )
    # the shelf had more than the records: 2 on record, 5 sold
    assert (d.expected, d.actual, d.variance) == (D(2), D(5), D(3))
    assert (d.unit_cost, d.value) == (D(2), D(6))
    assert (d.document_type, d.document_id, d.document_line) == (
        DocumentType.SHORTFALL,
        shortfall.pk,
        0,
    )
    assert (d.store_id, d.location_id, d.product_id) == (store.pk, loc(store, "SF").pk, gum.pk)
    assert d.source_ref == f"sale-{sale.pk}" and d.created_by == clerk
    # 3 beyond an allowance of 1 unit (2% of 2 is less): MEDIUM, not held
    assert d.severity == Severity.MEDIUM and not d.escalated
    assert not StockHold.objects.exists()
    assert_invariants()


def test_a_large_oversell_is_serious_and_holds_the_product(org, store, gum):
    negative_mode(org, "record")
    receive(org, store, gum, 1)
    sell(org, store, (gum, 20))
    d = Discrepancy.objects.get()
    assert d.severity == Severity.CRITICAL and d.is_open  # 19 beyond 1 unit
    assert StockHold.objects.filter(store=store, product=gum).exists()
    assert_invariants()


def test_an_oversell_adds_the_policy_read_and_one_insert_to_the_sale(org, store, gum):
    """The sale stays 5 statements without a shortfall; with one it books the shortfall and
    its discrepancy (and the judgement's policy read) in the same transaction."""
    negative_mode(org, "warn")
    receive(org, store, gum, 3)

    def statements(quantity):
        with CaptureQueriesContext(connection) as queries:
            sales.sale_record(
                org=org,
                store=store,
                lines=[sales.SaleLineInput(gum, D(quantity))],
                client_ref=ref(),
            )
        return [
            q["sql"]
            for q in queries.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        ]

    assert len(statements(1)) == 5
    oversold = statements(4)  # 2 left: 2 booked to the unallocated batch
    extra = oversold[-3:]
    assert "inventory_stockshortfall" in extra[0] and extra[0].startswith("INSERT")
    assert "discrepancies_variancepolicy" in extra[1] and extra[1].startswith("SELECT")
    assert "discrepancies_discrepancy" in extra[2] and extra[2].startswith("INSERT")
    # MEDIUM: nothing to hold (the quant lock reads the holds; nothing writes one)
    assert not any(sql.startswith(("INSERT", "DELETE")) and "stockhold" in sql for sql in oversold)
    assert Discrepancy.objects.count() == 1
    assert_invariants()


def test_a_sale_refused_in_block_mode_is_recorded_after_the_rollback(org, store, gum):
    negative_mode(org, "block")
    receive(org, store, gum, 2)
    ledger = StockLedger.objects.count()
    with pytest.raises(InsufficientStock):
        sell(org, store, (gum, 3), client_ref="till-9")
    assert StockLedger.objects.count() == ledger and on_hand(gum) == 2
    shortfall = StockShortfall.objects.get()
    assert (shortfall.outcome, shortfall.ref_id) == (ShortfallOutcome.BLOCKED, None)
    d = Discrepancy.objects.get()
    assert (d.source, d.corrective, d.document_id) == (Source.POS_SHORTFALL, False, shortfall.pk)
    assert (d.expected, d.actual, d.variance) == (D(2), D(3), D(1))
    assert d.source_ref == "till-9"
    assert_invariants()


def test_other_refused_moves_record_no_discrepancy(org, store, gum):
    receive(org, store, gum, 2)
    line = documents.MoveLineInput(gum, loc(store, "SF"), loc(store, "BR"), D(5))
    with pytest.raises(InsufficientStock):
        documents.move_record(org=org, store=store, lines=[line], client_ref=ref())
    assert StockShortfall.objects.get().ref_type == RefType.MOVE_OUT
    assert not Discrepancy.objects.exists()


def test_a_pos_shortfall_is_acknowledged_and_posts_nothing(org, store, gum, member):
    negative_mode(org, "record")
    receive(org, store, gum, 2)
    sell(org, store, (gum, 4))
    manager = member("manager").user
    ledger = StockLedger.objects.count()
    d = decide(org, manager, Discrepancy.objects.get())
    assert d.status == Status.APPROVED and not d.is_open and d.ledger_ref_id is None
    assert StockLedger.objects.count() == ledger
    assert_invariants()


# --- a count's clamped remainder ----------------------------------------------------------------


def test_a_counts_clamped_remainder_is_an_informational_count_discrepancy(org, store, people):
    """Count 2 of 10 (8 short), sell 5 before finalising: 5 post, 3 cannot."""
    product = ProductFactory(org=org, sku="CLAMP", default_cost=D("1.5"))
    receive(org, store, product, 10, occurred_at=count_time(-60))
    session = start(org, store, people)
    count(org, session, store, people, product, 2)
    reconcile(org, session, people)
    counted = Discrepancy.objects.get(document_type=DocumentType.COUNT_VARIANCE)
    sell(org, store, (product, 5))
    approve_all(org, session, people)
    finalize(org, session, people)
    shortfall = StockShortfall.objects.get(outcome=ShortfallOutcome.CLAMPED)
    d = Discrepancy.objects.get(document_type=DocumentType.SHORTFALL)
    assert (d.source, d.kind, d.status, d.corrective) == (
        Source.CYCLE_COUNT,
        Kind.COUNT,
        Status.NEW,
        False,
    )
    # the unposted part: 8 to take, 5 there
    assert (d.expected, d.actual, d.variance) == (D(8), D(5), D(-3))
    assert d.value == D("-4.5")
    assert (d.document_id, d.source_ref) == (shortfall.pk, f"count-{session.pk}")
    assert d.created_by == people["admin"]  # who finalised
    counted.refresh_from_db()
    assert counted.status == Status.ADJUSTED and counted.posted_quantity == -5
    assert on_hand(product) == 0
    assert_invariants()


# --- the invariant check ------------------------------------------------------------------------


def break_quant(store, product, quantity, location="SF"):
    """Change a quant behind the ledger's back (bypasses the write path on purpose)."""
    StockQuant.objects.filter(product=product, location=loc(store, location)).update(
        quantity=D(str(quantity))
    )


def test_a_reconciliation_mismatch_is_an_invariant_discrepancy_once(org, store, gum, member):
    receive(org, store, gum, 10, lot="G1", cost=3)
    break_quant(store, gum, 7)
    report = stock_reconciliation_run(org=org)
    assert len(report.mismatches) == 1
    d = Discrepancy.objects.get()
    assert (d.source, d.kind, d.status, d.corrective) == (
        Source.INVARIANT,
        Kind.DATA_ERROR,
        Status.NEW,
        False,
    )
    assert (d.expected, d.actual, d.variance, d.value) == (D(10), D(7), D(-3), D(-9))
    assert d.document_type == DocumentType.INVARIANT_CHECK and d.document_id is None
    assert d.batch.lot_code == "G1" and d.location_id == loc(store, "SF").pk
    assert d.source_ref.startswith("reconciliation ") and d.created_by is None
    # the nightly run again, a store's run, a read: no second open one
    stock_reconciliation_run(org=org)
    stock_reconciliation_run(org=org, store=store)
    stock_reconciliation_get(org=org)
    assert Discrepancy.objects.count() == 1
    # acknowledged, the defect still there: the next run records it again
    decide(org, member("manager").user, d)
    stock_reconciliation_run(org=org)
    assert Discrepancy.objects.filter(status=Status.NEW, source=Source.INVARIANT).count() == 1
    assert Discrepancy.objects.count() == 2


def test_a_clean_reconciliation_records_nothing(org, store, gum):
    receive(org, store, gum, 10)
    assert stock_reconciliation_run(org=org).ok
    assert not Discrepancy.objects.exists()
    assert_invariants()


# --- the data migration -------------------------------------------------------------------------


def test_shortfalls_recorded_before_the_hooks_become_discrepancies_once(org, store, gum, people):
    """Shortfalls from before this release: a sale's, a refused move's, a clamped count's."""
    VariancePolicyFactory(org=org, category="Edibles", units=5, percent=0)
    unregister_shortfall_listener(shortfalls_recorded)
    try:
        negative_mode(org, "record")
        receive(org, store, gum, 2)
        sale = sell(org, store, (gum, 4))
        line = documents.MoveLineInput(gum, loc(store, "SF"), loc(store, "BR"), D(50))
        with pytest.raises(InsufficientStock):
            documents.move_record(org=org, store=store, lines=[line], client_ref=ref())
        big = ProductFactory(org=org, sku="BIG")
        sell(org, store, (big, 40))
    finally:
        register_shortfall_listener(shortfalls_recorded)
    assert StockShortfall.objects.count() == 3 and not Discrepancy.objects.exists()

    migration.shortfalls_to_discrepancies(apps, None)
    migration.shortfalls_to_discrepancies(apps, None)  # idempotent
    found = {d.product_id: d for d in Discrepancy.objects.all()}
    assert set(found) == {gum.pk, big.pk}  # the refused move is not one
    d = found[gum.pk]
    sale_shortfall = StockShortfall.objects.get(ref_type=RefType.SALE, product=gum)
    assert (d.source, d.kind, d.status, d.corrective, d.document_id) == (
        Source.POS_SHORTFALL,
        Kind.DATA_ERROR,
        Status.NEW,
        False,
        sale_shortfall.pk,
    )
    assert (d.expected, d.actual, d.value, d.source_ref) == (D(2), D(4), D(4), f"sale-{sale.pk}")
    assert d.severity == Severity.LOW  # 2 of the category's 5 units
    # 40 beyond the default 1 unit: CRITICAL, escalated, and the product is held
    assert found[big.pk].severity == Severity.CRITICAL and found[big.pk].escalated
    assert list(StockHold.objects.values_list("product_id", flat=True)) == [big.pk]

    migration.discrepancies_from_shortfalls_removed(apps, None)
    assert not Discrepancy.objects.exists() and not StockHold.objects.exists()
    assert StockShortfall.objects.count() == 3
