"""What monitoring sees: ``stock_discrepancies_open_total{org, severity}``, the movement counter's
``result`` and ``reason`` labels, and one structured log line per discrepancy event."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.test import Client
from prometheus_client import REGISTRY, CollectorRegistry

from discrepancies.models import DocumentType, Severity, Source, Status
from discrepancies.notifications import OpenDiscrepanciesCollector, open_discrepancy_counts
from discrepancies.services.decisions import Decision, discrepancies_decide
from discrepancies.services.record import Finding, discrepancies_record
from inventory.exceptions import InsufficientStock
from inventory.models import RefType, Role
from inventory.stock import documents
from inventory.tenancy.scope import membership_context
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import loc, receive, ref, sell

D = Decimal
NUMBERS = {  # (expected, actual) → severity under the default policy (1 unit or 2%)
    Severity.LOW: ("10", "9"),
    Severity.MEDIUM: ("10", "8"),
    Severity.HIGH: ("10", "5"),
    Severity.CRITICAL: ("100", "50"),
}


def findings(store, product, *severities, corrective=True):
    return [
        Finding(
            store_id=store.pk,
            product_id=product.pk,
            category="",
            expected=D(NUMBERS[s][0]),
            actual=D(NUMBERS[s][1]),
            unit_cost=D("3"),
            source=Source.INVARIANT,
            document_type=DocumentType.INVARIANT_CHECK,
            corrective=corrective,
            store_on_hand=D(NUMBERS[s][0]),
        )
        for s in severities
    ]


def gauge(org_slug: str) -> dict[str, int]:
    return {sev: n for slug, sev, n in open_discrepancy_counts() if slug == org_slug}


def scrape() -> str:
    return Client().get("/metrics").content.decode()


def decide(org, ids, action, admin):
    return discrepancies_decide(
        org=org,
        ids=ids,
        decision=Decision(action, notes="checked"),
        tenant=membership_context(admin),
        actor=admin.user,
    )


@pytest.fixture
def admin(org):
    return MembershipFactory(org=org, role=Role.ADMIN)


def test_open_discrepancies_per_org_and_severity(org, other_org, admin):
    store, theirs = StoreFactory(org=org), StoreFactory(org=other_org)
    product, their_product = ProductFactory(org=org), ProductFactory(org=other_org)
    assert gauge("acme") == {"LOW": 0, "MEDIUM": 0, "HIGH": 0, "CRITICAL": 0}

    S = Severity
    mine = discrepancies_record(
        org=org,
        findings=findings(store, product, S.LOW, S.LOW, S.MEDIUM, S.HIGH, S.CRITICAL, S.CRITICAL),
        actor=None,
    )
    informational = discrepancies_record(
        org=org, findings=findings(store, product, S.HIGH, corrective=False), actor=None
    )
    discrepancies_record(
        org=other_org, findings=findings(theirs, their_product, S.MEDIUM), actor=None
    )
    assert gauge("acme") == {"LOW": 2, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 2}
    assert gauge("rival") == {"LOW": 0, "MEDIUM": 1, "HIGH": 0, "CRITICAL": 0}

    # under review is still open; rejected is closed; an informational one approved is closed
    decide(org, [mine[0].pk], "review", admin)
    decide(org, [mine[1].pk, mine[4].pk], "reject", admin)
    decide(org, [informational[0].pk], "approve", admin)
    assert gauge("acme") == {"LOW": 1, "MEDIUM": 1, "HIGH": 1, "CRITICAL": 1}
    # a corrective one approved stays open until its correction is posted
    outcome = decide(org, [mine[5].pk], "approve", admin)
    assert [d.status for d in outcome.decided] == [Status.APPROVED]
    assert gauge("acme")["CRITICAL"] == 1
    assert gauge("rival")["MEDIUM"] == 1


def test_metrics_endpoint_serves_the_gauge_every_series_zero_included(org, other_org):
    store, product = StoreFactory(org=org), ProductFactory(org=org)
    discrepancies_record(
        org=org, findings=findings(store, product, Severity.CRITICAL, Severity.HIGH), actor=None
    )

    lines = [
        line for line in scrape().splitlines() if line.startswith("stock_discrepancies_open_total")
    ]

    assert lines == [
        'stock_discrepancies_open_total{org="acme",severity="LOW"} 0.0',
        'stock_discrepancies_open_total{org="acme",severity="MEDIUM"} 0.0',
        'stock_discrepancies_open_total{org="acme",severity="HIGH"} 1.0',
        'stock_discrepancies_open_total{org="acme",severity="CRITICAL"} 1.0',
        'stock_discrepancies_open_total{org="rival",severity="LOW"} 0.0',
        'stock_discrepancies_open_total{org="rival",severity="MEDIUM"} 0.0',
        'stock_discrepancies_open_total{org="rival",severity="HIGH"} 0.0',
        'stock_discrepancies_open_total{org="rival",severity="CRITICAL"} 0.0',
    ]
    assert "# TYPE stock_discrepancies_open_total gauge" in scrape()


def test_the_gauge_is_one_statement_whatever_the_number_of_orgs_and_rows(
    org, other_org, django_assert_num_queries
):
    for organisation in (org, other_org):
        store, product = StoreFactory(org=organisation), ProductFactory(org=organisation)
        discrepancies_record(
            org=organisation,
            findings=findings(store, product, *Severity.values * 5),
            actor=None,
        )
    with django_assert_num_queries(1):
        families = list(OpenDiscrepanciesCollector().collect())
    assert sum(s.value for s in families[0].samples) == 2 * 4 * 5


def test_registering_the_collector_runs_no_query(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        CollectorRegistry().register(OpenDiscrepanciesCollector())


def test_a_database_outage_leaves_metrics_up(monkeypatch, caplog):
    from discrepancies import notifications

    def down():
        raise RuntimeError("connection refused")

    monkeypatch.setattr(notifications, "open_discrepancy_counts", down)
    with caplog.at_level(logging.WARNING, logger="discrepancies"):
        assert list(OpenDiscrepanciesCollector().collect()) == []
    assert "open discrepancies unavailable: RuntimeError" in caplog.text


# --- stock_movements_total{ref_type, result, reason} --------------------------------------------


def movements(ref_type: str, result: str, reason: str = "") -> float:
    labels = {"ref_type": ref_type, "result": result, "reason": reason}
    return REGISTRY.get_sample_value("stock_movements_total", labels) or 0.0


def test_movement_counter_counts_rows_written_and_documents_refused(
    org, django_capture_on_commit_callbacks
):
    store, product = StoreFactory(org=org), ProductFactory(org=org)
    before = {
        "receipt": movements(RefType.RECEIPT, "ok"),
        "sale": movements(RefType.SALE, "ok"),
        "sale_failed": movements(RefType.SALE, "failed", "insufficient_stock"),
        "move_failed": movements(RefType.MOVE_OUT, "failed", "insufficient_stock"),
    }
    with django_capture_on_commit_callbacks(execute=True):  # counted once committed
        receive(org, store, product, 5)
        sell(org, store, (product, 2))
    with pytest.raises(InsufficientStock):
        sell(org, store, (product, 50))
    with pytest.raises(InsufficientStock):
        documents.move_record(
            org=org,
            store=store,
            client_ref=ref("move"),
            lines=[documents.MoveLineInput(product, loc(store, "SF"), loc(store, "BR"), D(9))],
        )

    assert movements(RefType.RECEIPT, "ok") - before["receipt"] == 1
    assert movements(RefType.SALE, "ok") - before["sale"] == 1
    assert movements(RefType.SALE, "failed", "insufficient_stock") - before["sale_failed"] == 1
    assert movements(RefType.MOVE_OUT, "failed", "insufficient_stock") - before["move_failed"] == 1
    assert (
        'stock_movements_total{reason="insufficient_stock",ref_type="SALE",result="failed"} '
        in scrape()
    )


def test_a_rolled_back_posting_counts_no_rows(org):
    store, product = StoreFactory(org=org), ProductFactory(org=org)
    before = movements(RefType.RECEIPT, "ok")
    receive(org, store, product, 5)  # the test's transaction never commits
    assert movements(RefType.RECEIPT, "ok") == before


# --- structured logs ----------------------------------------------------------------------------


def test_recording_and_deciding_log_one_line_each_with_their_fields(org, admin, caplog):
    store, product = StoreFactory(org=org), ProductFactory(org=org)
    sf = loc(store, "SF")
    finding = Finding(
        store_id=store.pk,
        product_id=product.pk,
        category="",
        expected=D("100"),
        actual=D("50"),
        unit_cost=D("3"),
        source=Source.CYCLE_COUNT,
        document_type=DocumentType.INVARIANT_CHECK,
        location_id=sf.pk,
        corrective=False,
        store_on_hand=D("100"),
    )
    with caplog.at_level(logging.INFO, logger="discrepancies"):
        (d,) = discrepancies_record(org=org, findings=[finding], actor=None)
        decide(org, [d.pk], "approve", admin)

    events = [r for r in caplog.records if r.name == "discrepancies"]
    assert [r.event for r in events] == ["discrepancy_recorded", "discrepancy_approved"]
    created, approved = events
    assert created.getMessage() == f"discrepancy_recorded #{d.pk} CYCLE_COUNT CRITICAL NEW"
    expected_fields = {
        "discrepancy": d.pk,
        "org_id": org.pk,
        "store_id": store.pk,
        "product_id": product.pk,
        "location_id": sf.pk,
        "source": "CYCLE_COUNT",
        "type": "COUNT",
        "severity": "CRITICAL",
        "ledger_ref": None,
    }
    numbers = {"expected": D(100), "actual": D(50), "variance": D(-50), "value": D(-150)}
    for line in (created, approved):
        assert {k: getattr(line, k) for k in expected_fields} == expected_fields
        # decimals as exact strings (the recording logs them as given, a decision as stored)
        assert {k: D(getattr(line, k)) for k in numbers} == numbers
    assert (created.status, created.actor_id) == ("NEW", None)
    assert (approved.status, approved.actor_id) == ("APPROVED", admin.user.pk)
    assert approved.self_approved is False


def test_each_decision_logs_its_own_event_and_a_refusal_names_it(org, admin, caplog):
    store, product = StoreFactory(org=org), ProductFactory(org=org)
    sf = loc(store, "SF")
    findings = [
        Finding(
            store_id=store.pk,
            product_id=product.pk,
            category="",
            expected=D("10"),
            actual=D(actual),
            unit_cost=D("1"),
            source=Source.CYCLE_COUNT,
            document_type=DocumentType.INVARIANT_CHECK,
            location_id=sf.pk,
            corrective=False,
            store_on_hand=D("10"),
        )
        for actual in ("4", "5")
    ]
    with caplog.at_level(logging.INFO, logger="discrepancies"):
        first, second = discrepancies_record(org=org, findings=findings, actor=None)
        decide(org, [first.pk], "review", admin)
        decide(org, [first.pk], "reject", admin)
        decide(org, [second.pk], "approve", admin)
    events = [r.event for r in caplog.records if r.name == "discrepancies"]
    assert events[2:] == [
        "discrepancy_reviewed",
        "discrepancy_rejected",
        "discrepancy_approved",
    ]
    again = decide(org, [first.pk, second.pk], "approve", admin)
    # the same decision again changes nothing; the other one is refused, by name
    assert [d.pk for d in again.unchanged] == [second.pk]
    assert [(pk, e.code, e.message) for pk, e in again.refused] == [
        (first.pk, "invalid_state", "This discrepancy is REJECTED: it cannot be approved."),
    ]
    refused = decide(org, [second.pk], "reject", admin).refused
    assert [e.message for _, e in refused] == [
        "This discrepancy is APPROVED: it cannot be rejected."
    ]
