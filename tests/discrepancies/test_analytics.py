"""Discrepancy analytics checked against figures computed by hand: per month counts by status
and source, absolute variance and value, top products and stores, self-approvals, archived
discrepancies still counted, and the shrink rate per category from the ledger."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from counts.models import VarianceRow
from counts.services import sessions as S
from discrepancies.analytics import discrepancy_analytics
from discrepancies.models import Discrepancy, Kind, Source, VariancePolicy
from discrepancies.services.decisions import Decision, discrepancy_decide
from inventory.models import RefType, Role, StockLedger
from inventory.sales import services as sales
from inventory.stock import documents
from inventory.tenancy.scope import resolve_tenant
from tests.discrepancies.test_api import archive, reconciled_count, record, refused
from tests.factories import MembershipFactory, OrganizationFactory, ProductFactory, StoreFactory
from tests.response_schema import AnswerChecker
from tests.stock_helpers import loc, receive, ref, sell

D = Decimal
UTC = datetime.UTC
URL = "/api/v1/discrepancies/analytics"
PERIOD = "from=2026-01-01&to=2026-02-28"


def at(day: str, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def recorded_on(d: Discrepancy, day: str) -> Discrepancy:
    """Date a discrepancy back to ``day`` (its month is what analytics groups by)."""
    Discrepancy.objects.filter(pk=d.pk).update(created_at=at(day))
    d.refresh_from_db()
    return d


def decide(org, d, action, user, notes=""):
    return discrepancy_decide(
        org=org,
        discrepancy=d.pk,
        decision=Decision(action, notes=notes),
        tenant=resolve_tenant(user, org_id=org.pk),
        actor=user,
    )


@pytest.fixture
def shop(db, client_for):
    """An organisation with one admin (so a self-approval can happen), two stores, and
    discrepancies in January, February (one archived) and March 2026:

    ==  =====  =======  ========  ====  ======  =========================  ====================
    #   store  product  exp→act   cost  value   status                     recorded
    ==  =====  =======  ========  ====  ======  =========================  ====================
    d1  S1     A        10 → 8    2     −4      NEW                        2026-01-05 INVARIANT
    d2  S1     A        10 → 13   2     +6      REJECTED                   2026-01-20 POS_SHORTFALL
    d3  S2     B        5 → 0     3     −15     APPROVED (self-approved)   2026-02-03 AD_HOC
    d4  S1     A        20 → 19   2     −2      REJECTED, archived         2026-02-10 INVARIANT
    d5  S1     B        1 → 0     3     −3      NEW                        2026-03-01 (outside)
    ==  =====  =======  ========  ====  ======  =========================  ====================
    """
    org = OrganizationFactory(slug="solo", name="Solo Shop")
    admin = client_for(Role.ADMIN, organisation=org)
    s1, s2 = StoreFactory(org=org, code="S1"), StoreFactory(org=org, code="S2")
    a = ProductFactory(org=org, sku="A", name="Apple Kush", classification="Dried Flower")
    b = ProductFactory(org=org, sku="B", name="Berry Bites", classification="Edibles")
    d1 = record(org, s1, a, expected="10", actual="8", cost="2")
    d2 = record(org, s1, a, expected="10", actual="13", cost="2", source=Source.POS_SHORTFALL)
    d3 = record(
        org,
        s2,
        b,
        expected="5",
        actual="0",
        cost="3",
        source=Source.AD_HOC,
        kind=Kind.THEFT,
        actor=admin.user,
    )
    d4 = record(org, s1, a, expected="20", actual="19", cost="2")
    d5 = record(org, s1, b, expected="1", actual="0", cost="3")
    decide(org, d2, "reject", admin.user)
    decide(org, d3, "approve", admin.user, notes="nobody else works here")
    decide(org, d4, "reject", admin.user)
    for d, day in (
        (d1, "2026-01-05"),
        (d2, "2026-01-20"),
        (d3, "2026-02-03"),
        (d4, "2026-02-10"),
        (d5, "2026-03-01"),
    ):
        recorded_on(d, day)
    archive(d4.pk)
    # another organisation's discrepancy in the same period counts nowhere
    theirs = OrganizationFactory(slug="other", name="Other")
    t = record(theirs, StoreFactory(org=theirs, code="T1"), ProductFactory(org=theirs, sku="A"))
    recorded_on(t, "2026-01-06")
    return {"org": org, "admin": admin, "s1": s1, "s2": s2, "a": a, "b": b}


def test_monthly_figures_include_the_archive(shop):
    report = discrepancy_analytics(
        org=shop["org"], date_from=datetime.date(2026, 1, 1), date_to=datetime.date(2026, 2, 28)
    )
    months = {m["month"]: m for m in report["months"]}
    assert sorted(months) == [datetime.date(2026, 1, 1), datetime.date(2026, 2, 1)]
    jan, feb = months[datetime.date(2026, 1, 1)], months[datetime.date(2026, 2, 1)]
    assert (jan["count"], jan["abs_variance"], jan["abs_value"], jan["self_approved"]) == (
        2,
        D("5"),
        D("10"),
        0,
    )
    assert {k: v for k, v in jan["by_status"].items() if v} == {"NEW": 1, "REJECTED": 1}
    assert {k: v for k, v in jan["by_source"].items() if v} == {"INVARIANT": 1, "POS_SHORTFALL": 1}
    assert (feb["count"], feb["abs_variance"], feb["abs_value"], feb["self_approved"]) == (
        2,
        D("6"),
        D("17"),
        1,
    )
    assert {k: v for k, v in feb["by_status"].items() if v} == {"APPROVED": 1, "REJECTED": 1}
    assert {k: v for k, v in feb["by_source"].items() if v} == {"AD_HOC": 1, "INVARIANT": 1}
    totals = report["totals"]
    assert (
        totals["count"],
        totals["abs_variance"],
        totals["abs_value"],
        totals["self_approved"],
    ) == (
        4,
        D("11"),
        D("27"),
        1,
    )


def test_top_products_and_stores_by_frequency_and_by_size(shop):
    report = discrepancy_analytics(
        org=shop["org"], date_from=datetime.date(2026, 1, 1), date_to=datetime.date(2026, 2, 28)
    )
    products = report["top_products"]
    # A: d1, d2, d4 (3; |value| 4 + 6 + 2 = 12); B: d3 (1; 15)
    assert [(p["sku"], p["count"], p["abs_value"]) for p in products["by_frequency"]] == [
        ("A", 3, D("12")),
        ("B", 1, D("15")),
    ]
    assert [p["sku"] for p in products["by_size"]] == ["B", "A"]
    stores = report["top_stores"]
    assert [(s["code"], s["count"], s["abs_value"]) for s in stores["by_frequency"]] == [
        ("S1", 3, D("12")),
        ("S2", 1, D("15")),
    ]
    assert [s["code"] for s in stores["by_size"]] == ["S2", "S1"]
    one = discrepancy_analytics(
        org=shop["org"],
        date_from=datetime.date(2026, 1, 1),
        date_to=datetime.date(2026, 2, 28),
        top=1,
    )
    assert [p["sku"] for p in one["top_products"]["by_size"]] == ["B"]


@pytest.fixture
def ledger(shop):
    """Stock moved in January–February 2026 (and some in March, outside the period).

    S1: A received 100 @2, sold 10 and 2 refunded (COGS 16), 3 damaged and 1 adjusted away
    (shrink 8; a +4 adjustment is not shrink); B received 50 @3, sold 4 and voided (COGS 0),
    sold 5 (COGS 15), 1 expired (shrink 3). S2: A received 10 @2, sold 1 (COGS 2), 1 wasted
    (shrink 2).
    """
    org, s1, s2, a, b = shop["org"], shop["s1"], shop["s2"], shop["a"], shop["b"]
    receive(org, s1, a, 100, cost=2, occurred_at=at("2026-01-02"))
    receive(org, s1, b, 50, cost=3, occurred_at=at("2026-01-02"))
    receive(org, s2, a, 10, cost=2, occurred_at=at("2026-01-02"))
    sale = sell(org, s1, (a, 10), occurred_at=at("2026-01-10"))
    sales.sale_refund(
        org=org,
        sale=sale,
        lines=[sales.RefundLineInput(line=1, quantity=D("2"))],
        client_ref=ref("refund"),
        occurred_at=at("2026-01-11"),
    )
    voided = sell(org, s1, (b, 4), occurred_at=at("2026-01-12"))
    sales.sale_void(org=org, sale=voided, occurred_at=at("2026-01-13"))
    sell(org, s1, (b, 5), occurred_at=at("2026-02-01"))
    sell(org, s2, (a, 1), occurred_at=at("2026-01-10"))

    def write_off(store, product, qty, kind, day):
        documents.write_off_record(
            org=org,
            store=store,
            lines=[documents.WriteOffLineInput(product, loc(store, "SF"), D(qty))],
            write_off_type=kind,
            client_ref=ref("wo"),
            reason=kind,
            occurred_at=at(day),
        )

    def adjust(store, product, qty, day):
        documents.adjustment_record(
            org=org,
            store=store,
            lines=[documents.AdjustmentLineInput(product, loc(store, "SF"), D(qty))],
            client_ref=ref("adj"),
            reason="found / lost",
            occurred_at=at(day),
        )

    write_off(s1, a, 3, "damage", "2026-01-15")
    adjust(s1, a, 4, "2026-01-16")
    adjust(s1, a, -1, "2026-01-17")
    write_off(s1, b, 1, "expiry", "2026-02-05")
    write_off(s2, a, 1, "waste", "2026-01-20")
    # March: outside the period
    sell(org, s1, (a, 1), occurred_at=at("2026-03-05"))
    write_off(s1, a, 1, "damage", "2026-03-05")
    return shop


def test_shrink_rate_per_category(ledger):
    org = ledger["org"]
    report = discrepancy_analytics(
        org=org, date_from=datetime.date(2026, 1, 1), date_to=datetime.date(2026, 2, 28)
    )
    shrink = report["shrink"]
    categories = {c["category"]: c for c in shrink["categories"]}
    flower, edibles = ledger["a"].category, ledger["b"].category
    assert set(categories) == {flower, edibles}
    assert (categories[flower]["shrink"], categories[flower]["cogs"]) == (D("10"), D("18"))
    assert categories[flower]["rate"].quantize(D("0.0001")) == D("0.5556")
    assert (categories[edibles]["shrink"], categories[edibles]["cogs"]) == (D("3"), D("15"))
    assert categories[edibles]["rate"] == D("0.2")
    assert (shrink["total"]["shrink"], shrink["total"]["cogs"]) == (D("13"), D("33"))
    only_s2 = discrepancy_analytics(
        org=org,
        date_from=datetime.date(2026, 1, 1),
        date_to=datetime.date(2026, 2, 28),
        store=ledger["s2"].pk,
    )["shrink"]
    assert [(c["category"], c["shrink"], c["cogs"], c["rate"]) for c in only_s2["categories"]] == [
        (flower, D("2"), D("2"), D("1"))
    ]
    january = discrepancy_analytics(
        org=org, date_from=datetime.date(2026, 1, 1), date_to=datetime.date(2026, 1, 31)
    )["shrink"]
    by_category = {c["category"]: c for c in january["categories"]}
    # B in January: sold 4 and voided (COGS 0) and nothing written off: no rate, no division
    assert edibles not in by_category or by_category[edibles]["rate"] is None


def test_a_counts_shortage_is_shrink(org, store, client_for):
    VariancePolicy.objects.create(org=org, category="", units=2, percent=0)
    product = ProductFactory(org=org, sku="CNT", default_cost=D("1"))
    reconciler = MembershipFactory(org=org, role=Role.MANAGER).user
    session, d = reconciled_count(org, store, product, reconciler=reconciler)
    decide(org, d, "approve", client_for(Role.MANAGER).user)
    S.session_finalize(org=org, session=session, actor=reconciler)
    sell(org, store, (product, 2))
    today = timezone.now().date()
    report = discrepancy_analytics(org=org, date_from=today, date_to=today)
    (row,) = report["shrink"]["categories"]
    assert (row["shrink"], row["cogs"], row["rate"]) == (D("5"), D("2"), D("2.5"))
    assert StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count() == 1
    assert report["totals"]["count"] == 1 and report["totals"]["by_status"]["ADJUSTED"] == 1
    assert VarianceRow.objects.get(discrepancy_id=d.pk).status == "approved"


# --- over HTTP ----------------------------------------------------------------------------------


def test_the_api_answers_as_documented(ledger):
    admin = ledger["admin"]
    body = AnswerChecker.served().check(
        admin.get(f"{URL}?{PERIOD}"), "/api/v1/discrepancies/analytics/"
    )
    assert body["from"] == "2026-01-01" and body["to"] == "2026-02-28" and body["store"] is None
    assert [(m["month"], m["count"], m["abs_value"]) for m in body["months"]] == [
        ("2026-01", 2, "10.0000"),
        ("2026-02", 2, "17.0000"),
    ]
    assert body["totals"]["self_approved"] == 1
    assert body["totals"]["by_status"]["REJECTED"] == 2
    assert body["top_products"]["by_frequency"][0]["sku"] == "A"
    assert body["top_stores"]["by_size"][0]["code"] == "S2"
    assert body["shrink"]["total"] == {"shrink": "13.0000", "cogs": "33.0000", "rate": "0.3939"}


def test_the_csv_has_a_header_and_every_figure(ledger):
    response = ledger["admin"].get(f"{URL}?{PERIOD}&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "discrepancies-2026-01-01-2026-02-28.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows and list(rows[0])[:3] == ["section", "key", "month"]
    months = [(r["month"], r["count"], r["abs_value"]) for r in rows if r["section"] == "month"]
    assert months == [("2026-01", "2", "10.0000"), ("2026-02", "2", "17.0000")]
    (total,) = [r for r in rows if r["section"] == "total"]
    assert (total["count"], total["abs_variance"], total["self_approved"]) == ("4", "11.0000", "1")
    statuses = {r["status"]: r["count"] for r in rows if r["section"] == "total_status"}
    assert statuses["REJECTED"] == "2" and statuses["APPROVED"] == "1"
    tops = [(r["key"], r["store_code"]) for r in rows if r["section"] == "top_store"]
    assert tops == [
        ("by_frequency", "S1"),
        ("by_frequency", "S2"),
        ("by_size", "S2"),
        ("by_size", "S1"),
    ]
    (shrink_total,) = [r for r in rows if r["section"] == "shrink_total"]
    assert (shrink_total["shrink"], shrink_total["cogs"], shrink_total["rate"]) == (
        "13.0000",
        "33.0000",
        "0.3939",
    )
    accepted = ledger["admin"].get(f"{URL}?{PERIOD}", HTTP_ACCEPT="text/csv")
    assert accepted["Content-Type"].startswith("text/csv")


def test_a_store_limited_manager_sees_its_stores_only(ledger, client_for):
    org = ledger["org"]
    limited = client_for(Role.MANAGER, organisation=org, stores=[ledger["s2"]])
    body = limited.get(f"{URL}?{PERIOD}").json()
    assert body["totals"]["count"] == 1  # d3 only
    assert [s["code"] for s in body["top_stores"]["by_frequency"]] == ["S2"]
    assert body["shrink"]["total"] == {"shrink": "2.0000", "cogs": "2.0000", "rate": "1.0000"}
    refused(limited.get(f"{URL}?{PERIOD}&store={ledger['s1'].pk}"), 404, "not_found")
    mine = limited.get(f"{URL}?{PERIOD}&store={ledger['s2'].pk}").json()
    assert mine["store"] == ledger["s2"].pk and mine["totals"]["count"] == 1


@pytest.mark.parametrize(
    "role,status", [("viewer", 403), ("operator", 403), ("manager", 200), ("admin", 200)]
)
def test_analytics_roles(org, client_for, role, status):
    response = client_for(role).get(f"{URL}?{PERIOD}")
    assert response.status_code == status, response.content


def test_another_orgs_store_is_not_found(org, other_store, client_for):
    refused(client_for(Role.ADMIN).get(f"{URL}?{PERIOD}&store={other_store.pk}"), 404, "not_found")


@pytest.mark.parametrize(
    "query,field",
    [
        ("to=2026-01-31", "from"),
        ("from=2026-01-01", "to"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2020-01-01&to=2026-01-01", "to"),
        ("from=Jan&to=2026-01-01", "from"),
        ("from=0001-01-01&to=0001-01-02", "from"),
        (f"{PERIOD}&store=x", "store"),
        (f"{PERIOD}&top=0", "top"),
        (f"{PERIOD}&top=101", "top"),
    ],
)
def test_bad_analytics_queries_name_the_field(org, client_for, query, field):
    refused(client_for(Role.ADMIN).get(f"{URL}?{query}"), 400, "invalid", field)


def test_analytics_queries_do_not_grow_with_rows(ledger):
    admin = ledger["admin"]
    admin.get(f"{URL}?{PERIOD}")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        admin.get(f"{URL}?{PERIOD}")
    org = ledger["org"]
    for n in range(15):
        product = ProductFactory(org=org, sku=f"MORE{n}")
        recorded_on(record(org, ledger["s1"], product), "2026-01-25")
    with CaptureQueriesContext(connection) as many:
        body = admin.get(f"{URL}?{PERIOD}").json()
    assert body["totals"]["count"] == 19
    assert len(many) == len(few)
