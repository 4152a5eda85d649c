"""Reconciliation: the selector, ``reconcile_inventory``, the nightly task, the API report and
``inventory_check``.

State is built through the write path; the invariant is then broken on purpose with
``QuerySet.update()`` on quants, which bypasses the write path (that is the point).
"""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from inventory.models import Organization, Role, StockQuant
from inventory.reports.reconciliation import (
    ledger_ref_type_summary_list,
    stock_reconciliation_get,
    stock_reconciliation_run,
)
from inventory.tasks import reconcile_inventory_nightly
from tests.factories import ProductFactory, StoreFactory
from tests.inventory.test_ledger_guard import migrated_sqlite_copy, sqlite_manage
from tests.stock_helpers import loc, receive, sell

D = Decimal
ROLES = [Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN]


@pytest.fixture
def gummy(org):
    return ProductFactory(org=org, sku="GUMMY")


@pytest.fixture
def flower(org):
    return ProductFactory(org=org, sku="FLOWER")


@pytest.fixture
def stocked(org, store, gummy, flower):
    """10 gummies (lot G1) and 100 flower (lot F1) on the sales floor, 3 gummies sold."""
    receive(org, store, gummy, 10, lot="G1", cost=2)
    receive(org, store, flower, 100, lot="F1", cost=1)
    sell(org, store, (gummy, 3))
    return store


@pytest.fixture
def people(member):
    """An admin, a deactivated admin, a manager: only the first should be mailed."""
    admin = member(Role.ADMIN)
    gone = member(Role.ADMIN)
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    manager = member(Role.MANAGER)
    return {"admin": admin, "inactive_admin": gone, "manager": manager}


def quant_of(store, product, location="SF"):
    return StockQuant.objects.get(product=product, location=loc(store, location))


def break_quant(store, product, quantity, location="SF"):
    """Change a quant behind the ledger's back (bypasses the write path on purpose)."""
    StockQuant.objects.filter(pk=quant_of(store, product, location).pk).update(
        quantity=D(str(quantity))
    )


def reconcile(*args) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("reconcile_inventory", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def gauge(org: str = "acme", scope: str = "all") -> float | None:
    return REGISTRY.get_sample_value("stock_out_of_sync_items", {"org": org, "scope": scope})


# --- the selector and the command ---------------------------------------------------------------


def test_reconcile_clean_state_is_ok_and_exits_zero(org, stocked, people):
    report = stock_reconciliation_get(org=org)
    assert report.ok
    assert (report.mismatches, report.negative_quants, report.flagged_products) == ([], [], [])
    out, error = reconcile("--org", org.slug)
    assert error is None
    assert "acme: OK" in out
    assert mail.outbox == []
    assert gauge() == 0


def test_reconcile_reports_a_quant_changed_behind_the_ledger(org, stocked, gummy, flower, people):
    # given: 7 gummies left by the ledger, but the quant now says 9; flower 100 -> 101
    break_quant(stocked, gummy, 9)
    break_quant(stocked, flower, 101)

    report = stock_reconciliation_run(org=org)

    assert not report.ok
    sf = loc(stocked, "SF")
    gummy_batch = quant_of(stocked, gummy).batch
    assert report.mismatches[1] == {
        "store_id": stocked.pk,
        "location": {"id": sf.pk, "code": "SF"},
        "batch": {"id": gummy_batch.pk, "lot": "G1"},
        "product": {"id": gummy.pk, "sku": "GUMMY"},
        "ledger_sum": D("7.0000"),
        "quant": D("9.0000"),
        "difference": D("2.0000"),
    }
    assert [(m["product"]["sku"], m["ledger_sum"], m["quant"]) for m in report.mismatches] == [
        ("FLOWER", D("100"), D("101")),
        ("GUMMY", D("7"), D("9")),
    ]
    # 2 of 9 on hand is over 5%; 1 of 101 is not
    assert report.flagged_products == [
        {"product_id": gummy.pk, "sku": "GUMMY", "on_hand": D("9"), "mismatch": D("2")}
    ]
    assert gauge() == 2


def test_the_gauge_keeps_one_series_per_org_and_per_checked_store(org, other_org, stocked, gummy):
    other_store = StoreFactory(org=org)
    break_quant(stocked, gummy, 9)
    stock_reconciliation_run(org=org)
    stock_reconciliation_run(org=other_org)
    stock_reconciliation_run(org=org, store=other_store)  # a clean store of the broken org
    stock_reconciliation_run(org=org, store_ids=[other_store.pk])  # a partial view: no series
    assert gauge() == 1  # not overwritten by the clean store's check
    assert gauge(scope=other_store.code) == 0
    assert gauge(org=other_org.slug) == 0


def test_reconcile_command_exits_non_zero_and_mails_only_active_admins(org, stocked, gummy, people):
    break_quant(stocked, gummy, 9)
    out, error = reconcile("--org", org.slug)
    assert error is not None and error.returncode == 1
    assert "GUMMY" in out and "G1" in out and "1 mismatch(es)" in out
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [people["admin"].user.email]
    assert "acme" in message.subject and "1 mismatch(es)" in message.subject
    assert "GUMMY" in message.body and "7.0000" in message.body and "9.0000" in message.body
    assert gauge() == 1


def test_reconcile_finds_a_quant_without_ledger_rows_and_rows_without_a_quant(
    org, stocked, gummy, flower
):
    # given: the flower quant vanishes (its ledger rows stay) and a gummy quant appears in the
    # back room with no ledger row behind it
    StockQuant.objects.filter(pk=quant_of(stocked, flower).pk).delete()
    StockQuant.objects.create(
        org=org,
        store=stocked,
        location=loc(stocked, "BR"),
        product=gummy,
        batch=quant_of(stocked, gummy).batch,
        quantity=D("4"),
    )
    report = stock_reconciliation_get(org=org)
    found = {
        (m["product"]["sku"], m["location"]["code"]): (m["ledger_sum"], m["quant"])
        for m in report.mismatches
    }
    assert found == {("FLOWER", "SF"): (D("100"), D("0")), ("GUMMY", "BR"): (D("0"), D("4"))}
    # flower has nothing on hand any more: any mismatch is flagged
    assert {p["sku"] for p in report.flagged_products} == {"FLOWER", "GUMMY"}


def test_reconcile_ignores_a_difference_below_the_fourth_decimal(org, store):
    grams = ProductFactory(org=org, sku="GRAMS", unit="g")
    receive(org, store, grams, "0.1")
    receive(org, store, grams, "0.2")
    assert stock_reconciliation_get(org=org).ok


def test_database_refuses_a_negative_ordinary_quant(org, stocked, gummy):
    quant = quant_of(stocked, gummy)
    with pytest.raises(IntegrityError, match="quant_not_negative"), transaction.atomic():
        StockQuant.objects.filter(pk=quant.pk).update(quantity=D("-1"))
    with pytest.raises(IntegrityError, match="quant_not_negative"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO inventory_stockquant (org_id, store_id, location_id, product_id,"
                " batch_id, quantity, unallocated, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, -5, false, now())",
                [org.pk, stocked.pk, loc(stocked, "BR").pk, gummy.pk, quant.batch_id],
            )
    quant.refresh_from_db()
    assert quant.quantity == 7


def test_reconcile_lists_an_unallocated_shortfall_as_open_not_as_a_failure(
    org, store, gummy, people
):
    # given: the real sale path in "record" mode sells 3 with only 1 in stock
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode="record")
    org.refresh_from_db()
    receive(org, store, gummy, 1, lot="G1")
    sell(org, store, (gummy, 3))

    report = stock_reconciliation_get(org=org)

    assert report.ok
    assert report.negative_quants == []
    [shortfall] = report.open_shortfalls
    assert (shortfall["product"]["sku"], shortfall["location"]["code"], shortfall["quantity"]) == (
        "GUMMY",
        "SF",
        D("-2"),
    )
    out, error = reconcile("--org", org.slug)
    assert error is None and "Open shortfalls" in out
    assert mail.outbox == []


def test_reconcile_reports_a_negative_quant_of_an_ordinary_batch(org, stocked, gummy, people):
    # given: the quant's "unallocated" copy lies (the CHECK constraint trusts it), so an ordinary
    # lot went negative: invariant 2 must still catch it from the batch itself
    StockQuant.objects.filter(pk=quant_of(stocked, gummy).pk).update(
        unallocated=True, quantity=D("-1")
    )
    report = stock_reconciliation_get(org=org)
    assert not report.ok
    [negative] = report.negative_quants
    assert (negative["product"]["sku"], negative["batch"]["lot"], negative["quantity"]) == (
        "GUMMY",
        "G1",
        D("-1"),
    )
    assert report.open_shortfalls == []
    _, error = reconcile("--org", org.slug)
    assert error is not None
    assert "Negative quants" in mail.outbox[0].body


def test_reconcile_store_option_narrows_the_check(org, stocked, gummy):
    second = StoreFactory(org=org, code="S2")
    receive(org, second, gummy, 5, lot="G2")
    break_quant(second, gummy, 6)
    assert reconcile("--org", org.slug, "--store", "S1")[1] is None
    out, error = reconcile("--org", org.slug, "--store", "S2")
    assert error is not None and "store S2" in out
    report = stock_reconciliation_get(org=org, store=second)
    assert [m["batch"]["lot"] for m in report.mismatches] == ["G2"]
    assert stock_reconciliation_get(org=org, store=stocked).ok


def test_reconcile_json_is_valid_json(org, stocked, gummy):
    break_quant(stocked, gummy, 9)
    out, error = reconcile("--org", org.slug, "--json")
    assert error is not None
    body = json.loads(out)
    assert body["ok"] is False
    [report] = body["reports"]
    assert report["org"] == {"id": org.pk, "slug": "acme"}
    assert report["mismatches"][0]["ledger_sum"] == "7.0000"
    assert report["mismatches"][0]["quant"] == "9.0000"
    assert report["flagged_products"][0]["sku"] == "GUMMY"


def test_reconcile_without_org_checks_every_organisation(org, other_org, stocked, gummy):
    theirs = ProductFactory(org=other_org, sku="THEIRS")
    their_store = StoreFactory(org=other_org, code="R1")
    receive(other_org, their_store, theirs, 4)
    break_quant(stocked, gummy, 9)
    out, error = reconcile("--json")
    assert error is not None and "acme" in str(error) and "rival" not in str(error)
    assert {r["org"]["slug"]: r["ok"] for r in json.loads(out)["reports"]} == {
        "acme": False,
        "rival": True,
    }


@pytest.mark.parametrize(
    "args,message",
    [
        (["--org", "nobody"], "No organisation"),
        (["--org", "acme", "--store", "NOPE"], "No store"),
        (["--store", "S1"], "--store needs --org"),
    ],
)
def test_reconcile_unknown_org_or_store_is_an_error(org, store, args, message):
    _, error = reconcile(*args)
    assert error is not None and message in str(error)


def test_reconcile_query_count_does_not_grow_with_quants(org, store, django_assert_max_num_queries):
    def measure() -> int:
        with CaptureQueriesContext(connection) as queries:
            stock_reconciliation_get(org=org)
        return len(queries)

    products = ProductFactory.create_batch(2, org=org)
    for product in products:
        receive(org, store, product, 3)
    few = measure()
    more = ProductFactory.create_batch(25, org=org)
    for product in more:
        receive(org, store, product, 3, location="BR")
    for product in more[:5]:
        break_quant(store, product, 4, location="BR")
    with django_assert_max_num_queries(2):
        report = stock_reconciliation_get(org=org)
    assert len(report.mismatches) == 5
    assert measure() == few


# --- Celery -------------------------------------------------------------------------------------


def test_nightly_task_mails_admins_when_off(org, other_org, stocked, gummy, people):
    break_quant(stocked, gummy, 9)
    assert reconcile_inventory_nightly.delay([org.pk]).get() == {"acme": False}
    assert [m.to for m in mail.outbox] == [[people["admin"].user.email]]
    assert gauge() == 1


def test_nightly_task_checks_every_org_and_stays_quiet_when_clean(org, other_org, stocked, people):
    assert reconcile_inventory_nightly.delay().get() == {"acme": True, "rival": True}
    assert mail.outbox == []
    assert gauge() == 0


def test_nightly_task_is_scheduled_at_half_past_three_utc():
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "inventory.reconcile_inventory_nightly"
    ]
    assert entry["schedule"] == crontab(hour=3, minute=30)
    assert settings.CELERY_TIMEZONE == "UTC"


# --- API ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_reconciliation_api_answers_every_role(role, org, stocked, client_for):
    response = client_for(role).get("/api/v1/stock/reconciliation")
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True


def test_reconciliation_api_refuses_anonymous_callers(org, stocked):
    response = APIClient().get("/api/v1/stock/reconciliation/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_reconciliation_api_serves_the_report_with_ok_false(org, stocked, gummy, client_for):
    break_quant(stocked, gummy, 9)
    response = client_for(Role.VIEWER).get(f"/api/v1/stock/reconciliation/?store={stocked.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["store"] == {"id": stocked.pk, "code": "S1"}
    assert [(m["product"]["sku"], m["ledger_sum"], m["quant"]) for m in body["mismatches"]] == [
        ("GUMMY", "7.0000", "9.0000")
    ]
    assert body["flagged_products"][0]["sku"] == "GUMMY"
    assert set(body) == {
        "org",
        "store",
        "checked_at",
        "ok",
        "mismatches",
        "negative_quants",
        "open_shortfalls",
        "flagged_products",
    }


@pytest.mark.parametrize("store_id", ["other", "missing"])
def test_reconciliation_api_another_orgs_store_is_404(store_id, org, other_store, client_for):
    pk = other_store.pk if store_id == "other" else 987654
    response = client_for(Role.ADMIN).get(f"/api/v1/stock/reconciliation?store={pk}")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}


def test_reconciliation_api_rejects_a_malformed_store(org, client_for):
    response = client_for(Role.ADMIN).get("/api/v1/stock/reconciliation?store=abc")
    assert response.status_code == 400
    assert response.json()["fields"] == {"store": ["A store id is a whole number."]}


def test_reconciliation_api_member_limited_to_a_store_sees_only_it(org, stocked, gummy, client_for):
    second = StoreFactory(org=org, code="S2")
    receive(org, second, gummy, 5, lot="G2")
    break_quant(second, gummy, 6)
    client = client_for(Role.VIEWER, stores=[stocked])
    assert client.get("/api/v1/stock/reconciliation").json()["ok"] is True
    assert client.get(f"/api/v1/stock/reconciliation?store={second.pk}").status_code == 404
    assert client_for(Role.VIEWER).get("/api/v1/stock/reconciliation").json()["ok"] is False


# --- inventory_check ----------------------------------------------------------------------------


@pytest.fixture
def period(org, store, gummy):
    """Receipts on 1 and 2 March, a sale on 2 March, a receipt on 5 March (outside)."""

    def at(day):
        return datetime.datetime(2026, 3, day, 12, tzinfo=datetime.UTC)

    receive(org, store, gummy, 10, lot="A", cost="2.50", occurred_at=at(1))
    receive(org, store, gummy, 4, lot="B", cost="3", occurred_at=at(2))
    sell(org, store, (gummy, 12), occurred_at=at(2))
    receive(org, store, gummy, 100, lot="C", cost=1, occurred_at=at(5))
    return store


def test_ledger_summary_groups_by_ref_type_in_one_query(org, period, django_assert_num_queries):
    with django_assert_num_queries(1):
        groups = ledger_ref_type_summary_list(
            org=org, date_from=datetime.date(2026, 3, 1), date_to=datetime.date(2026, 3, 2)
        )
    assert groups == [
        # 10 of A at 2.50, then 2 of B at 3
        {"ref_type": "RECEIPT", "rows": 2, "quantity": D("14"), "value": D("37")},
        {"ref_type": "SALE", "rows": 2, "quantity": D("-12"), "value": D("-31")},
    ]


def test_inventory_check_prints_the_period(org, period):
    out = io.StringIO()
    call_command(
        "inventory_check", "--org", "acme", "--from", "2026-03-01", "--to", "2026-03-02", stdout=out
    )
    text = out.getvalue()
    assert "RECEIPT" in text and "SALE" in text and "TOTAL" in text
    assert "37.0000" in text and "-31.0000" in text and "6.0000" in text


def test_inventory_check_json_and_store(org, period):
    out = io.StringIO()
    call_command(
        "inventory_check",
        "--org",
        "acme",
        "--store",
        "S1",
        "--from",
        "2026-03-05",
        "--to",
        "2026-03-05",
        "--json",
        stdout=out,
    )
    body = json.loads(out.getvalue())
    assert body["store"] == "S1"
    assert body["ref_types"] == [
        {"ref_type": "RECEIPT", "rows": 1, "quantity": "100.0000", "value": "100.0000"}
    ]
    assert body["total"]["rows"] == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["--org", "nobody", "--from", "2026-03-01", "--to", "2026-03-02"], "No organisation"),
        (["--org", "acme", "--from", "2026-03-01", "--to", "yesterday"], "not a date"),
        (["--org", "acme", "--from", "2026-03-05", "--to", "2026-03-01"], "after"),
        (
            ["--org", "acme", "--store", "NOPE", "--from", "2026-03-01", "--to", "2026-03-02"],
            "No store",
        ),
    ],
)
def test_inventory_check_bad_input_is_an_error(org, store, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("inventory_check", *args, stdout=io.StringIO())


# --- SQLite (the demo's database) ---------------------------------------------------------------

# Builds rows with the ORM directly (not the write path), with fractional
# grams whose float sums are not exact, breaks one quant, then runs both commands.
SQLITE_SCRIPT = """
import datetime, io, json
from decimal import Decimal as D
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_scopes import scopes_disabled
from inventory.models import Batch, Location, StockLedger, StockQuant
from inventory.catalog import services as catalog
from inventory.tenancy import services as org_services

with scopes_disabled():
    org = org_services.org_create(slug="lite", name="Lite")
    store = org_services.store_create(org=org, code="S1", name="S1")
    product = catalog.product_create(org=org, data={"sku": "G", "name": "G", "unit": "g"})
    sf = Location.objects.get(store=store, code="SF")
    rows = []
    for n, deltas in enumerate([["0.1", "0.2"], ["0.3", "0.3", "-0.1"], ["1"]]):
        batch = Batch.objects.create(org=org, product=product, lot_code=f"L{n}", unit_cost=2)
        StockQuant.objects.create(org=org, store=store, location=sf, product=product,
                                  batch=batch, quantity=sum(D(d) for d in deltas))
        rows += [StockLedger(org=org, store=store, location=sf, product=product, batch=batch,
                             qty_delta=D(d), ref_type="RECEIPT" if D(d) > 0 else "SALE",
                             ref_id=n, unit_cost=2, occurred_at=timezone.now()) for d in deltas]
    StockLedger.objects.bulk_create(rows)
    StockQuant.objects.filter(batch__lot_code="L2").update(quantity=D("0.7"))

out, code = io.StringIO(), 0
try:
    call_command("reconcile_inventory", "--org", "lite", "--json", stdout=out)
except CommandError as exc:
    code = exc.returncode
check = io.StringIO()
today = datetime.date.today()
call_command("inventory_check", "--org", "lite", "--json", stdout=check,
             date_from=str(today - datetime.timedelta(days=1)),
             date_to=str(today + datetime.timedelta(days=1)))
print(json.dumps({"code": code, "reconcile": json.loads(out.getvalue()),
                  "check": json.loads(check.getvalue())}))
"""


def test_reconcile_and_inventory_check_run_on_sqlite(tmp_path):
    result = sqlite_manage(migrated_sqlite_copy(tmp_path), "shell", "-v0", script=SQLITE_SCRIPT)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["code"] == 1
    [report] = outcome["reconcile"]["reports"]
    # L0 (0.1 + 0.2) and L1 (0.3 + 0.3 - 0.1) reconcile despite float sums; L2 does not
    assert [(m["batch"]["lot"], m["ledger_sum"], m["quant"]) for m in report["mismatches"]] == [
        ("L2", "1.0000", "0.7000")
    ]
    assert report["flagged_products"] == [
        {
            "product_id": report["mismatches"][0]["product"]["id"],
            "sku": "G",
            "on_hand": "1.5000",
            "mismatch": "0.3000",
        }
    ]
    assert outcome["check"]["ref_types"] == [
        {"ref_type": "RECEIPT", "rows": 5, "quantity": "1.9000", "value": "3.8000"},
        {"ref_type": "SALE", "rows": 1, "quantity": "-0.1000", "value": "-0.2000"},
    ]


SQLITE_WRITE_PATH = """
from decimal import Decimal as D
from django_scopes import scopes_disabled
from inventory.models import Location, Organization
from inventory.reports.reconciliation import stock_reconciliation_get
from inventory.catalog import services as catalog
from inventory.stock import documents, write_path as stock
from inventory.tenancy import services as org_services
from inventory.sales import services as sales

with scopes_disabled():
    org = org_services.org_create(slug="lite", name="Lite", negative_stock_mode="record")
    store = org_services.store_create(org=org, code="S1", name="S1")
    product = catalog.product_create(org=org, data={"sku": "G", "name": "G", "unit": "g"})
    sf = Location.objects.get(store=store, code="SF")
    for n, quantity in enumerate(["0.1", "0.2", "0.3"]):
        line = documents.ReceiptLineInput(product, sf, D(quantity), lot_code=f"L{n}",
                                          unit_cost=D(2))
        documents.receipt_record(org=org, store=store, lines=[line], client_ref=f"r{n}",
                                 occurred_at=None, actor=None)
    if SELL:
        sale, _ = sales.sale_record(org=org, store=store, client_ref="s1", occurred_at=None,
                                    lines=[sales.SaleLineInput(product, D("0.35"))], actor=None)
        sales.sale_void(org=org, sale=sale)
        sales.sale_record(org=org, store=store, client_ref="s2", occurred_at=None,
                          lines=[sales.SaleLineInput(product, D("1"))], actor=None)
    report = stock_reconciliation_get(org=org)
    assert report.ok, report.as_text()
    assert len(report.open_shortfalls) == SELL, report.as_text()
"""


def test_receipt_with_a_lot_works_on_sqlite(tmp_path):
    result = sqlite_manage(
        migrated_sqlite_copy(tmp_path), "shell", "-v0", script="SELL = 0\n" + SQLITE_WRITE_PATH
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_sale_void_and_shortfall_work_on_sqlite(tmp_path):
    result = sqlite_manage(
        migrated_sqlite_copy(tmp_path), "shell", "-v0", script="SELL = 1\n" + SQLITE_WRITE_PATH
    )
    assert result.returncode == 0, result.stderr[-2000:]
