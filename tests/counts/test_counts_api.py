"""The counts API (/api/v1/counts/): the whole flow, who may do what, tenants, bad input, replays.

The numbers themselves (movement-aware expected quantities, recounts, finalisation lots) are
proven at the service level in test_variance.py; here every answer is checked as a tablet or a
manager's browser sees it, and every refusal is checked to have written nothing.
"""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from counts.models import (
    CountLine,
    CountPass,
    CountScan,
    CountSession,
    UnresolvedScan,
    VarianceRow,
)
from counts.services import passes as P
from counts.services import sessions as S
from discrepancies.models import Discrepancy, VariancePolicy
from inventory.models import Organization, RefType, Role, StockLedger
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    StoreFactory,
    VariancePolicyFactory,
    make_gtin,
)
from tests.stock_helpers import assert_invariants, days, loc, on_hand, receive, sell

BASE = "/api/v1/counts"
D = Decimal
V, OP, M, A = Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN
ROLES = [V, OP, M, A]


# --- helpers -------------------------------------------------------------------------------


def hours_ago(n: int = 1) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(hours=n)


def call(client: APIClient, method: str, path: str, body=None):
    url = f"{BASE}/{path}"
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


def post(client, path, body=None):
    return call(client, "post", path, body if body is not None else {})


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def refused(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in body["fields"], body
    return body


def create_session(client, store, **body) -> int:
    return ok(post(client, "sessions", {"store": store.pk, "scope": "FULL_STORE", **body}), 201)[
        "id"
    ]


def started_session(client, store, **body) -> int:
    session_id = create_session(client, store, **body)
    assert ok(post(client, f"sessions/{session_id}/start"))["status"] == "in_progress"
    return session_id


def open_pass(client, session_id, location, **body) -> int:
    return ok(
        post(client, f"sessions/{session_id}/passes", {"location": location.pk, **body}), 201
    )["id"]


def scan(client, pass_id, **body):
    return post(client, f"passes/{pass_id}/lines", body)


def written() -> dict:
    """What a refused request must leave untouched."""
    return {
        **{
            model.__name__: model.objects.count()
            for model in (
                CountSession,
                CountPass,
                CountLine,
                CountScan,
                UnresolvedScan,
                VarianceRow,
                StockLedger,
            )
        },
        "counted": CountLine.objects.aggregate(total=Sum("quantity"))["total"],
        "sessions": sorted(CountSession.objects.values_list("pk", "status")),
        "passes": sorted(CountPass.objects.values_list("pk", "status")),
        "rows": sorted(VarianceRow.objects.values_list("pk", "status", "reason")),
    }


@pytest.fixture
def clients(client_for) -> dict[str, APIClient]:
    """One authenticated client per role, each a different person."""
    return {role: client_for(role) for role in ROLES}


@pytest.fixture
def counting(org, store, clients):
    """An in-progress full-store count with an open pass on the sales floor."""
    manager, clerk = clients[M].user, clients[OP].user
    session = S.session_start(
        org=org,
        actor=manager,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    return session, count_pass


def session_in(org, store, state: str, actor, product=None):
    """A full-store count of ``store`` brought to ``state`` through the services."""
    session = S.session_create(org=org, store=store, scope="FULL_STORE", actor=actor)
    if state == "draft":
        return session
    if state == "cancelled":
        return S.session_cancel(org=org, session=session, actor=actor)
    session = S.session_start(org=org, session=session, actor=actor)
    if product is not None:
        count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=actor)
        P.lines_add(org=org, count_pass=count_pass, actor=actor, entries=[P.Entry(product, D(1))])
        P.pass_submit(org=org, count_pass=count_pass, actor=actor)
    if state == "in_progress":
        return session
    session = S.session_submit(org=org, session=session, actor=actor)
    if state == "submitted":
        return session
    session = S.session_reconcile(org=org, session=session, actor=actor)
    if state == "reconciled":
        return session
    return S.session_finalize(org=org, session=session, actor=actor)


# --- the whole flow --------------------------------------------------------------------------

TAG = "1A4060300003B92000012345"  # a Metrc package tag, as printed on a received package


def test_full_count_through_the_api_ends_with_stock_equal_to_counted(org, store, clients):
    manager, admin, clerk = clients[M], clients[A], clients[OP]
    sf = loc(store, "SF")
    gtin13 = make_gtin(1)
    by_gtin = ProductFactory(org=org, sku="GTIN-1", barcodes=[{"code": gtin13}])
    by_sku = ProductFactory(org=org, sku="PLAIN-1")
    by_gs1 = ProductFactory(
        org=org, sku="LOT-1", tracks_expiry=True, barcodes=[{"code": make_gtin(2)}]
    )
    by_tag = ProductFactory(org=org, sku="TAG-1")
    uncounted = ProductFactory(org=org, sku="GONE-1")
    receive(org, store, by_gtin, 10, cost=4, occurred_at=hours_ago())
    receive(org, store, by_sku, 4, cost=3, occurred_at=hours_ago())
    receive(org, store, by_gs1, 5, cost=2, lot="L-2024-A", expiry=days(60), occurred_at=hours_ago())
    receive(org, store, by_tag, 8, cost=5, lot=TAG, occurred_at=hours_ago())
    receive(org, store, uncounted, 2, cost=1, occurred_at=hours_ago())

    # the manager opens the count; a clerk counts the sales floor with a scanner
    session_id = create_session(manager, store, notes="Quarterly")
    assert ok(manager.get(f"{BASE}/sessions/{session_id}"))["status"] == "draft"
    ok(post(manager, f"sessions/{session_id}/start"))
    pass_id = open_pass(clerk, session_id, sf, device_id="tablet-1", scan_mode="scanner")

    gtin_line = ok(scan(clerk, pass_id, barcode=gtin13, quantity="5"), 201)
    assert gtin_line["product"] == by_gtin.pk and gtin_line["captured_by"] == clerk.user.email
    ok(scan(clerk, pass_id, barcode=gtin13[1:], quantity="2"), 201)  # as UPC-A (GTIN-12)
    line = ok(scan(clerk, pass_id, barcode="0" + gtin13, quantity="2"), 201)  # as GTIN-14
    assert line["id"] == gtin_line["id"] and D(line["quantity"]) == 9
    assert D(ok(scan(clerk, pass_id, sku="PLAIN-1", quantity="6"), 201)["quantity"]) == 6
    gs1 = ok(scan(clerk, pass_id, barcode=f"010{make_gtin(2)}10L-2024-A", quantity="5"), 201)
    assert (gs1["product"], gs1["lot_code"]) == (by_gs1.pk, "L-2024-A")
    assert gs1["batch"] is not None
    tagged = ok(scan(clerk, pass_id, barcode=TAG, quantity="3"), 201)
    assert (tagged["product"], tagged["lot_code"]) == (by_tag.pk, TAG)
    assert tagged["batch"] is not None

    detail = ok(clerk.get(f"{BASE}/passes/{pass_id}"))
    assert len(detail["lines"]) == 4 and detail["unresolved"] == []
    assert ok(post(clerk, f"passes/{pass_id}/submit"))["status"] == "submitted"
    ok(post(manager, f"sessions/{session_id}/submit"))
    progress = ok(manager.get(f"{BASE}/sessions/{session_id}"))["progress"]
    assert progress["locations_covered"] == [sf.pk] and progress["lines"] == 4
    assert progress["passes"][0]["lines"] == 4 and progress["unresolved_scans"] == 0

    # the manager previews the variance before freezing it
    preview = ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))
    assert preview["frozen"] is False
    numbers = {
        r["sku"]: (D(r["expected"]), D(r["counted"]), D(r["variance"])) for r in preview["rows"]
    }
    assert numbers == {
        "GTIN-1": (10, 9, -1),
        "PLAIN-1": (4, 6, 2),
        "LOT-1": (5, 5, 0),
        "TAG-1": (8, 3, -5),
        "GONE-1": (2, 0, -2),
    }

    ok(post(manager, f"sessions/{session_id}/reconcile"))
    frozen = ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))
    status = {r["sku"]: r["status"] for r in frozen["rows"]}
    assert status == {
        "GTIN-1": "auto_approved",
        "PLAIN-1": "pending",
        "LOT-1": "auto_approved",
        "TAG-1": "pending",
        "GONE-1": "pending",
    }  # default band: max(1, 2%)
    for row in frozen["rows"]:
        if row["status"] == "pending":
            decided = ok(
                post(
                    admin,
                    f"sessions/{session_id}/variance/{row['id']}/approve",
                    {"reason": "shrink"},
                )
            )
            assert (decided["status"], decided["reason"]) == ("approved", "shrink")

    closed = ok(post(manager, f"sessions/{session_id}/finalize"))
    assert closed["status"] == "closed"
    assert {p.sku: on_hand(p) for p in (by_gtin, by_sku, by_gs1, by_tag, uncounted)} == {
        "GTIN-1": 9,
        "PLAIN-1": 6,
        "LOT-1": 5,
        "TAG-1": 3,
        "GONE-1": 0,
    }
    assert_invariants()
    posted = StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count()
    assert posted == 4  # one row per adjusted (location, product): the shortages had one lot
    assert ok(post(manager, f"sessions/{session_id}/finalize"))["status"] == "closed"
    assert StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).count() == posted
    after = ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))
    assert {r["sku"]: D(r["posted_quantity"]) for r in after["rows"]} == {
        "GTIN-1": -1,
        "PLAIN-1": 2,
        "LOT-1": 0,
        "TAG-1": -5,
        "GONE-1": -2,
    }
    # a closed count stays as it was
    row_id = after["rows"][0]["id"]
    refused(post(admin, f"sessions/{session_id}/variance/{row_id}/reject"), 409, "invalid_state")
    refused(
        call(admin, "patch", f"sessions/{session_id}/variance/{row_id}", {"reason": "x"}),
        409,
        "invalid_state",
    )
    refused(post(manager, f"passes/{pass_id}/void"), 409, "invalid_state")
    assert_invariants()


def test_sales_between_the_scan_and_the_pass_submit_are_not_variance(org, store, clients):
    manager, clerk = clients[M], clients[OP]
    product = ProductFactory(org=org, sku="SOLD-1")
    receive(org, store, product, 10, cost=2, occurred_at=hours_ago())
    session_id = started_session(manager, store)
    pass_id = open_pass(clerk, session_id, loc(store, "SF"))
    ok(scan(clerk, pass_id, sku="SOLD-1", quantity="10"), 201)
    sell(org, store, (product, 3))  # the till keeps selling after the clerk counted the shelf
    sell(org, store, (product, 1))
    ok(post(clerk, f"passes/{pass_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/submit"))

    preview = ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))
    (row,) = preview["rows"]
    assert (D(row["expected"]), D(row["counted"]), D(row["variance"])) == (10, 10, 0)
    assert preview["totals"]["items_with_variance"] == 0

    ok(post(manager, f"sessions/{session_id}/reconcile"))
    ok(post(manager, f"sessions/{session_id}/finalize"))
    assert on_hand(product) == 6  # the sales stand; the count posted nothing
    assert not StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).exists()
    assert_invariants()


def test_offline_scans_keep_their_device_time_so_later_sales_are_not_variance(org, store, clients):
    manager, clerk = clients[M], clients[OP]
    product = ProductFactory(org=org, sku="OFFLINE-1")
    receive(org, store, product, 12, cost=2, occurred_at=hours_ago())
    session_id = started_session(manager, store)
    pass_id = open_pass(clerk, session_id, loc(store, "SF"), scan_mode="camera")
    scanned_at = timezone.now()  # the tablet counts the shelf with no network...
    sell(org, store, (product, 5))  # ...the till sells...
    body = ok(
        post(
            clerk,
            f"passes/{pass_id}/lines/bulk",
            {
                "device_id": "tablet-9",
                "lines": [
                    {
                        "sku": "OFFLINE-1",
                        "quantity": "11",
                        "captured_at": scanned_at.isoformat(),
                        "client_line_id": "tablet-9-1",
                    }
                ],
            },
        ),
        201,
    )  # ...and the tablet catches up afterwards
    assert datetime.datetime.fromisoformat(body["lines"][0]["captured_at"]) == scanned_at
    ok(post(clerk, f"passes/{pass_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/submit"))
    (row,) = ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))["rows"]
    assert (D(row["expected"]), D(row["counted"]), D(row["variance"])) == (12, 11, -1)


def test_a_voided_pass_is_not_counted(org, store, clients):
    manager, clerk = clients[M], clients[OP]
    product = ProductFactory(org=org, sku="VOID-1")
    receive(org, store, product, 3, cost=1, occurred_at=hours_ago())
    session_id = started_session(manager, store)
    voided = open_pass(clerk, session_id, loc(store, "SF"))
    ok(scan(clerk, voided, sku="VOID-1", quantity="30"), 201)  # a mis-scan: counted 30
    ok(post(clerk, f"passes/{voided}/submit"))
    refused(post(clerk, f"passes/{voided}/void"), 403, "permission_denied")
    assert ok(post(manager, f"passes/{voided}/void"))["status"] == "voided"
    again = open_pass(clerk, session_id, loc(store, "SF"))
    ok(scan(clerk, again, sku="VOID-1", quantity="3"), 201)
    ok(post(clerk, f"passes/{again}/submit"))
    (row,) = ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))["rows"]
    assert (D(row["expected"]), D(row["counted"])) == (3, 3)
    progress = ok(manager.get(f"{BASE}/sessions/{session_id}"))["progress"]
    assert [p["status"] for p in progress["passes"]] == ["voided", "submitted"]
    assert progress["lines"] == 1


def test_variance_policies_decide_what_needs_approval(org, store, clients):
    VariancePolicyFactory(org=org, category="Flower", units=0, percent=0)
    VariancePolicyFactory(org=org, category="", units=5, percent=0)
    manager, admin, clerk = clients[M], clients[A], clients[OP]
    flower = ProductFactory(org=org, sku="FLOWER-1", classification="Dried Flower")
    edible = ProductFactory(org=org, sku="EDIBLE-1", classification="Edibles")
    found = ProductFactory(org=org, sku="FOUND-1", classification="Edibles", default_cost=D("7.50"))
    receive(org, store, flower, 10, cost=1, occurred_at=hours_ago())
    receive(org, store, edible, 10, cost=1, occurred_at=hours_ago())
    session_id = started_session(manager, store)
    pass_id = open_pass(clerk, session_id, loc(store, "SF"))
    ok(
        post(
            clerk,
            f"passes/{pass_id}/lines/bulk",
            {
                "lines": [
                    {"sku": "FLOWER-1", "quantity": "9"},
                    {"sku": "EDIBLE-1", "quantity": "9"},
                    {"sku": "FOUND-1", "quantity": "2"},
                ]
            },
        ),
        201,
    )  # nothing on record: all of it is found
    ok(post(clerk, f"passes/{pass_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/reconcile"))
    rows = {r["sku"]: r for r in ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))["rows"]}
    assert {sku: r["status"] for sku, r in rows.items()} == {
        "FLOWER-1": "pending",
        "EDIBLE-1": "auto_approved",
        "FOUND-1": "auto_approved",
    }
    assert rows["FOUND-1"]["variance_pct"] is None
    # the pending row IS a discrepancy; rows within policy have none
    discrepancy = Discrepancy.objects.get(pk=rows["FLOWER-1"]["discrepancy"])
    assert (discrepancy.product.sku, discrepancy.status) == ("FLOWER-1", "NEW")
    assert rows["EDIBLE-1"]["discrepancy"] is None
    assert (D(rows["FOUND-1"]["unit_cost"]), D(rows["FOUND-1"]["value"])) == (D("7.5"), 15)
    ok(post(admin, f"sessions/{session_id}/variance/{rows['FLOWER-1']['id']}/approve"))
    ok(post(manager, f"sessions/{session_id}/finalize"))
    assert (on_hand(flower), on_hand(edible), on_hand(found)) == (9, 9, 2)
    assert_invariants()


def test_rejected_and_set_counted_rows_post_as_decided(org, store, clients):
    manager, admin, clerk = clients[M], clients[A], clients[OP]
    kept = ProductFactory(org=org, sku="KEEP-1")
    reset = ProductFactory(org=org, sku="RESET-1")
    for product in (kept, reset):
        receive(org, store, product, 10, cost=1, occurred_at=hours_ago())
    session_id = started_session(manager, store)
    pass_id = open_pass(clerk, session_id, loc(store, "SF"))
    ok(
        post(
            clerk,
            f"passes/{pass_id}/lines/bulk",
            {"lines": [{"sku": "KEEP-1", "quantity": "4"}, {"sku": "RESET-1", "quantity": "6"}]},
        ),
        201,
    )
    ok(post(clerk, f"passes/{pass_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/reconcile"))
    rows = {
        r["sku"]: r["id"] for r in ok(manager.get(f"{BASE}/sessions/{session_id}/variance"))["rows"]
    }
    sell(org, store, (reset, 1))  # after the count: "set to counted" ignores it on purpose
    ok(
        post(
            admin,
            f"sessions/{session_id}/variance/{rows['KEEP-1']}/reject",
            {"reason": "recount tomorrow"},
        )
    )
    ok(
        post(
            admin,
            f"sessions/{session_id}/variance/{rows['RESET-1']}/approve",
            {"mode": "set_counted"},
        )
    )
    ok(post(manager, f"sessions/{session_id}/finalize"))
    assert (on_hand(kept), on_hand(reset)) == (10, 6)
    assert_invariants()


# --- variance: shape, ordering, CSV ---------------------------------------------------------


@pytest.fixture
def variance_session(org, store, clients):
    """A submitted count with variance of different sizes in two rooms."""
    manager, clerk = clients[M], clients[OP]
    small = ProductFactory(org=org, sku="A-SMALL", name="Small")
    big = ProductFactory(org=org, sku="B-BIG", name="Big")
    over = ProductFactory(org=org, sku="C-OVER", name="Over")
    exact = ProductFactory(org=org, sku="D-EXACT", name="Exact")
    receive(org, store, small, 10, cost=1, occurred_at=hours_ago())
    receive(org, store, big, 10, cost=20, occurred_at=hours_ago())
    receive(org, store, big, 5, cost=20, location="BR", occurred_at=hours_ago())
    receive(org, store, over, 3, cost=2, occurred_at=hours_ago())
    receive(org, store, exact, 7, cost=9, occurred_at=hours_ago())
    session_id = started_session(manager, store)
    front = open_pass(clerk, session_id, loc(store, "SF"))
    ok(
        post(
            clerk,
            f"passes/{front}/lines/bulk",
            {
                "lines": [
                    {"sku": "A-SMALL", "quantity": "8"},
                    {"sku": "B-BIG", "quantity": "7"},
                    {"sku": "C-OVER", "quantity": "7"},
                    {"sku": "D-EXACT", "quantity": "7"},
                ]
            },
        ),
        201,
    )
    back = open_pass(clerk, session_id, loc(store, "BR"))
    ok(scan(clerk, back, sku="B-BIG", quantity="4"), 201)
    for pass_id in (front, back):
        ok(post(clerk, f"passes/{pass_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/submit"))
    return session_id


def test_variance_answers_rows_rollup_and_totals(variance_session, clients):
    report = ok(clients[M].get(f"{BASE}/sessions/{variance_session}/variance"))
    assert set(report) == {"session", "status", "frozen", "rows", "by_product", "totals"}
    row_keys = {
        "id",
        "location",
        "location_code",
        "product",
        "sku",
        "name",
        "category",
        "subcategory",
        "expected",
        "counted",
        "variance",
        "variance_pct",
        "unit_cost",
        "value",
        "expected_at",
    }
    assert all(set(row) == row_keys for row in report["rows"])
    by_row = {(r["location_code"], r["sku"]): r for r in report["rows"]}
    assert (D(by_row["SF", "B-BIG"]["variance"]), D(by_row["SF", "B-BIG"]["value"])) == (-3, -60)
    assert D(by_row["SF", "B-BIG"]["variance_pct"]) == D("-30")
    assert (D(by_row["BR", "B-BIG"]["variance"]), D(by_row["BR", "B-BIG"]["value"])) == (-1, -20)
    rollup = {r["sku"]: r for r in report["by_product"]}
    assert set(rollup) == {"A-SMALL", "B-BIG", "C-OVER", "D-EXACT"}
    big = rollup["B-BIG"]
    assert (D(big["expected"]), D(big["counted"]), D(big["variance"]), D(big["value"])) == (
        15,
        11,
        -4,
        -80,
    )
    totals = {k: D(v) for k, v in report["totals"].items()}
    assert totals == {
        "items": 5,
        "items_counted": 5,
        "items_with_variance": 4,
        "positive_units": 4,
        "negative_units": -6,
        "positive_value": 8,
        "negative_value": -82,
        "absolute_value": 90,
    }


@pytest.mark.parametrize(
    "ordering,expected",
    [
        (None, ["B-BIG", "B-BIG", "C-OVER", "A-SMALL", "D-EXACT"]),
        ("-abs_value", ["B-BIG", "B-BIG", "C-OVER", "A-SMALL", "D-EXACT"]),
        ("abs_value", ["D-EXACT", "A-SMALL", "C-OVER", "B-BIG", "B-BIG"]),
        ("-abs_variance", ["C-OVER", "B-BIG", "A-SMALL", "B-BIG", "D-EXACT"]),
        ("variance", ["B-BIG", "A-SMALL", "B-BIG", "D-EXACT", "C-OVER"]),
        ("sku", ["A-SMALL", "B-BIG", "B-BIG", "C-OVER", "D-EXACT"]),
    ],
)
def test_variance_ordering(variance_session, clients, ordering, expected):
    query = f"?ordering={ordering}" if ordering else ""
    report = ok(clients[M].get(f"{BASE}/sessions/{variance_session}/variance{query}"))
    assert [r["sku"] for r in report["rows"]] == expected
    if ordering in (None, "-abs_value"):
        values = [abs(D(r["value"])) for r in report["rows"]]
        assert values == sorted(values, reverse=True)


def test_variance_csv_export_is_parseable(variance_session, clients):
    report = ok(clients[M].get(f"{BASE}/sessions/{variance_session}/variance"))
    response = clients[M].get(f"{BASE}/sessions/{variance_session}/variance?format=csv")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert [r["sku"] for r in rows] == [r["sku"] for r in report["rows"]]
    assert {(r["location_code"], r["sku"]): D(r["variance"]) for r in rows} == {
        (r["location_code"], r["sku"]): D(r["variance"]) for r in report["rows"]
    }


# --- blind counts ----------------------------------------------------------------------------


def _walk(org, store, clients, *, blind: bool):
    """Yield a count's id at each state it passes through on its way to closed."""
    manager, clerk = clients[M], clients[OP]
    product = ProductFactory(org=org, sku="BLIND-1")
    receive(org, store, product, 5, cost=1, occurred_at=hours_ago())
    session_id = started_session(manager, store, blind=blind)
    pass_id = open_pass(clerk, session_id, loc(store, "SF"))
    ok(scan(clerk, pass_id, sku="BLIND-1", quantity="5"), 201)
    yield "in_progress"
    ok(post(clerk, f"passes/{pass_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/submit"))
    yield "submitted"
    ok(post(manager, f"sessions/{session_id}/reconcile"))
    yield "reconciled"
    ok(post(manager, f"sessions/{session_id}/finalize"))
    yield "closed"


@pytest.mark.parametrize(
    "blind,visible_to_staff_when",
    [
        (True, {"closed"}),
        (False, {"reconciled", "closed"}),
    ],
)
def test_variance_visibility_follows_may_see_expected(
    org, store, clients, blind, visible_to_staff_when
):
    """Blind: operators and viewers see nothing until closed. Open: not before reconciling
    (the live preview is for managers). Managers and admins always see it."""
    for state in _walk(org, store, clients, blind=blind):
        session_id = CountSession.objects.get().pk
        for role in ROLES:
            response = clients[role].get(f"{BASE}/sessions/{session_id}/variance")
            if role in (M, A) or state in visible_to_staff_when:
                assert response.status_code == 200, (state, role, response.content)
            else:
                refused(response, 403, "blind_count")


# --- escalation and self-approval -------------------------------------------------------------


@pytest.fixture
def reconciled(org, store, clients):
    """A reconciled count (by the manager client) with one pending row worth -25 at cost,
    MEDIUM under a policy of 2 units (so only its value can escalate it)."""
    VariancePolicyFactory(org=org, units=2, percent=0)
    manager, clerk = clients[M], clients[OP]
    product = ProductFactory(org=org, sku="ESC-1")
    receive(org, store, product, 10, cost=5, occurred_at=hours_ago())
    session_id = started_session(manager, store)
    pass_id = open_pass(clerk, session_id, loc(store, "SF"))
    ok(scan(clerk, pass_id, sku="ESC-1", quantity="5"), 201)
    ok(post(clerk, f"passes/{pass_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/submit"))
    ok(post(manager, f"sessions/{session_id}/reconcile"))
    row = VarianceRow.objects.get(session_id=session_id)
    assert (row.status, row.value) == ("pending", D("-25"))
    return session_id, row.pk


@pytest.mark.parametrize("threshold,manager_status", [("24.99", 403), ("25", 200)])
def test_variance_above_the_escalation_threshold_needs_an_admin(
    org, reconciled, client_for, clients, threshold, manager_status
):
    Organization.objects.filter(pk=org.pk).update(escalation_threshold=D(threshold))
    session_id, row_id = reconciled
    other_manager = client_for(M)
    response = post(other_manager, f"sessions/{session_id}/variance/{row_id}/approve")
    if manager_status == 403:
        refused(response, 403, "escalation_required")
        assert VarianceRow.objects.get(pk=row_id).status == "pending"
        decided = ok(post(clients[A], f"sessions/{session_id}/variance/{row_id}/approve"))
        assert decided["status"] == "approved"
    else:
        assert ok(response)["status"] == "approved"


def test_the_reconciler_cannot_decide_its_own_variance(reconciled, clients):
    session_id, row_id = reconciled
    for verb in ("approve", "reject"):
        refused(
            post(clients[M], f"sessions/{session_id}/variance/{row_id}/{verb}"),
            403,
            "self_approval",
        )
    assert VarianceRow.objects.get(pk=row_id).status == "pending"
    refused(
        post(clients[M], f"sessions/{session_id}/finalize"), 409, "approval_required", "variance"
    )
    assert not StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).exists()
    assert CountSession.objects.get(pk=session_id).status == "reconciled"


def test_a_variance_reason_is_kept_on_the_row(reconciled, clients):
    session_id, row_id = reconciled
    body = ok(
        call(
            clients[A],
            "patch",
            f"sessions/{session_id}/variance/{row_id}",
            {"reason": "damaged in transit"},
        )
    )
    assert body["reason"] == "damaged in transit" and body["status"] == "pending"
    refused(
        call(clients[A], "patch", f"sessions/{session_id}/variance/{row_id}", {}),
        400,
        "invalid",
        "reason",
    )


# --- every endpoint by role, by tenant, anonymously ------------------------------------------


def build_world(org, tag: str = "") -> dict:
    """One object for each route to act on. Each count lives in its own store so none collide,
    and the counts are reconciled by a manager who is none of the callers under test."""
    boss = MembershipFactory(org=org, role=M).user
    clerk = MembershipFactory(org=org, role=OP).user
    product = ProductFactory(org=org, sku=f"WORLD{tag}", default_cost=D("1.00"))
    # the reconciled count's row (5 of 10 missing) stays MEDIUM: a manager may decide it
    VariancePolicy.objects.get_or_create(org=org, category="", defaults={"units": 2, "percent": 0})

    def new_store(code):
        return StoreFactory(org=org, code=f"{code}{tag}")

    def started(store):
        return S.session_start(
            org=org,
            actor=boss,
            session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=boss),
        )

    draft = S.session_create(org=org, store=new_store("DR"), scope="FULL_STORE", actor=boss)
    open_store = new_store("IP")
    open_session = started(open_store)
    open_pass_ = P.pass_create(
        org=org, session=open_session, location=loc(open_store, "SF"), actor=clerk
    )
    ((line, _),) = P.lines_add(
        org=org, count_pass=open_pass_, actor=clerk, entries=[P.Entry(product, D(2))]
    )
    unresolved = P.unresolved_record(
        org=org, count_pass=open_pass_, raw_scan="MYSTERY", quantity=D(1), actor=clerk
    )
    ready = started(new_store("RD"))
    submitted = S.session_submit(org=org, actor=boss, session=started(new_store("SB")))
    rc_store = new_store("RC")
    receive(org, rc_store, product, 10, cost=1, occurred_at=hours_ago())
    reconciled_ = started(rc_store)
    counted = P.pass_create(org=org, session=reconciled_, location=loc(rc_store, "SF"), actor=clerk)
    P.lines_add(org=org, count_pass=counted, actor=clerk, entries=[P.Entry(product, D(5))])
    P.pass_submit(org=org, count_pass=counted, actor=clerk)
    S.session_submit(org=org, session=reconciled_, actor=boss)
    S.session_reconcile(org=org, session=reconciled_, actor=boss)
    clean = S.session_reconcile(
        org=org,
        actor=boss,
        session=S.session_submit(org=org, actor=boss, session=started(new_store("CL"))),
    )
    return {
        "store": draft.store_id,
        "location": loc(open_store, "BR").pk,
        "free_location": loc(open_store, "BR").pk,
        "draft": draft.pk,
        "open_session": open_session.pk,
        "open_pass": open_pass_.pk,
        "line": line.pk,
        "unresolved": unresolved.pk,
        "ready": ready.pk,
        "submitted": submitted.pk,
        "reconciled": reconciled_.pk,
        "row": VarianceRow.objects.get(session=reconciled_).pk,
        "clean": clean.pk,
        "product": product.pk,
        "sku": product.sku,
    }


# (method, path, body, least role, success status)
ENDPOINTS = [
    ("get", "sessions", None, V, 200),
    ("get", "sessions?store={store}&status=draft", None, V, 200),
    (
        "post",
        "sessions",
        {"store": "{store}", "scope": "ZONE", "scope_categories": [{"category": "Edibles"}]},
        M,
        201,
    ),
    ("get", "sessions/{open_session}", None, V, 200),
    ("post", "sessions/{draft}/start", None, M, 200),
    ("post", "sessions/{ready}/submit", None, M, 200),
    ("post", "sessions/{submitted}/reconcile", None, M, 200),
    ("post", "sessions/{clean}/finalize", None, M, 200),
    ("post", "sessions/{draft}/cancel", None, M, 200),
    ("post", "sessions/{open_session}/passes", {"location": "{free_location}"}, OP, 201),
    ("get", "sessions/{reconciled}/variance", None, V, 200),
    ("post", "sessions/{reconciled}/variance/{row}/approve", {"reason": "shrink"}, M, 200),
    ("post", "sessions/{reconciled}/variance/{row}/reject", {"reason": "recount"}, M, 200),
    ("patch", "sessions/{reconciled}/variance/{row}", {"reason": "damaged"}, M, 200),
    ("get", "passes/{open_pass}", None, V, 200),
    ("post", "passes/{open_pass}/submit", None, OP, 200),
    ("post", "passes/{open_pass}/void", None, M, 200),
    ("get", "passes/{open_pass}/lines", None, V, 200),
    ("post", "passes/{open_pass}/lines", {"sku": "{sku}"}, OP, 201),
    ("post", "passes/{open_pass}/lines/bulk", {"lines": [{"sku": "{sku}"}]}, OP, 201),
    ("get", "lines/{line}", None, V, 200),
    ("patch", "lines/{line}", {"quantity": "3"}, OP, 200),
    ("put", "lines/{line}", {"quantity": "4", "notes": "second shelf"}, OP, 200),
    ("delete", "lines/{line}", None, OP, 204),
    ("get", "unresolved", None, V, 200),
    ("post", "unresolved/{unresolved}/resolve", {"product": "{product}"}, M, 200),
]
DETAIL_ENDPOINTS = [e for e in ENDPOINTS if "/{" in e[1]]


def fill(template, ids: dict):
    if template is None:
        return None
    if isinstance(template, str):
        value = template.format(**ids)
        return int(value) if template.startswith("{") and value.isdigit() else value
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


def endpoint_id(endpoint) -> str:
    return f"{endpoint[0].upper()} {endpoint[1]}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_endpoint_answers_by_role(endpoint, role, org, client_for):
    method, path, body, least_role, success = endpoint
    ids = build_world(org)
    client = client_for(role)
    before = written()
    response = call(client, method, fill(path, ids), fill(body, ids))
    if Role(role).rank >= Role(least_role).rank:
        assert response.status_code == success, response.content
    else:
        refused(response, 403, "permission_denied")
        assert written() == before


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=endpoint_id)
def test_endpoint_with_another_orgs_ids_answers_404_and_changes_nothing(
    endpoint, org, other_org, client_for
):
    method, path, body, *_ = endpoint
    ours = build_world(org)
    theirs = build_world(other_org, tag="X")
    before = written()
    # the path names their objects; the body names ours, so only the path can be refused
    response = call(client_for(A), method, fill(path, theirs), fill(body, ours))
    assert response.status_code == 404, response.content
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}
    assert written() == before


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=endpoint_id)
def test_endpoint_with_a_missing_id_answers_the_same_404(endpoint, org, client_for):
    method, path, body, *_ = endpoint
    ours = build_world(org)
    missing = {k: (987654 if isinstance(v, int) else v) for k, v in ours.items()}
    response = call(client_for(A), method, fill(path, missing), fill(body, ours))
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_a_variance_row_of_another_session_is_not_found(verb, org, other_org, client_for):
    ours = build_world(org)
    theirs = build_world(other_org, tag="X")
    before = written()
    admin = client_for(A)
    for session_id, row_id in ((ours["reconciled"], theirs["row"]), (ours["clean"], ours["row"])):
        refused(post(admin, f"sessions/{session_id}/variance/{row_id}/{verb}"), 404, "not_found")
        refused(
            call(admin, "patch", f"sessions/{session_id}/variance/{row_id}", {"reason": "x"}),
            404,
            "not_found",
        )
    assert written() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_endpoint_refuses_anonymous_callers(endpoint, org):
    method, path, body, *_ = endpoint
    ids = build_world(org)
    before = written()
    response = call(APIClient(), method, fill(path, ids), fill(body, ids))
    refused(response, 401, "not_authenticated")
    assert written() == before


def test_lists_show_only_the_callers_organisation(org, other_org, client_for):
    ours = build_world(org)
    build_world(other_org, tag="X")
    admin = client_for(A)
    sessions = ok(admin.get(f"{BASE}/sessions?page_size=100"))["results"]
    assert {s["id"] for s in sessions} == set(
        CountSession.objects.filter(org=org).values_list("pk", flat=True)
    )
    unresolved = ok(admin.get(f"{BASE}/unresolved"))["results"]
    assert [u["id"] for u in unresolved] == [ours["unresolved"]]


def test_session_list_filters_by_store_and_status(org, client_for):
    ids = build_world(org)
    admin = client_for(A)
    drafts = ok(admin.get(f"{BASE}/sessions?status=draft"))["results"]
    assert [s["id"] for s in drafts] == [ids["draft"]]
    in_store = ok(admin.get(f"{BASE}/sessions?store={ids['store']}"))["results"]
    assert [s["id"] for s in in_store] == [ids["draft"]]


def test_a_store_limited_member_sees_only_its_stores_counts(org, store, client_for):
    ids = build_world(org)
    mine = S.session_create(
        org=org, store=store, scope="FULL_STORE", actor=MembershipFactory(org=org, role=M).user
    )
    limited = client_for(M, stores=[store])
    listed = ok(limited.get(f"{BASE}/sessions"))["results"]
    assert [s["id"] for s in listed] == [mine.pk]
    for path in (
        f"sessions/{ids['open_session']}",
        f"passes/{ids['open_pass']}",
        f"lines/{ids['line']}",
        f"sessions/{ids['reconciled']}/variance",
    ):
        refused(limited.get(f"{BASE}/{path}"), 404, "not_found")
    assert ok(limited.get(f"{BASE}/unresolved"))["results"] == []
    before = written()
    refused(
        post(limited, "sessions", {"store": ids["store"], "scope": "FULL_STORE"}),
        400,
        "invalid",
        "store",
    )
    refused(scan(limited, ids["open_pass"], sku=ids["sku"]), 404, "not_found")
    assert written() == before


# --- tenants in request bodies ----------------------------------------------------------------


def test_another_orgs_store_or_location_in_a_session_is_refused(
    org, store, other_org, other_store, clients
):
    before = written()
    refused(
        post(clients[A], "sessions", {"store": other_store.pk, "scope": "FULL_STORE"}),
        400,
        "invalid",
        "store",
    )
    for location in (loc(other_store, "SF"), loc(StoreFactory(org=org, code="S9"), "SF")):
        refused(
            post(
                clients[A],
                "sessions",
                {"store": store.pk, "scope": "ZONE", "scope_locations": [location.pk]},
            ),
            400,
            "unknown_location",
            "scope_locations",
        )
    assert written() == before


def test_another_orgs_location_in_a_pass_is_unknown(counting, org, other_store, store, clients):
    session, _ = counting
    own_other_store = StoreFactory(org=org, code="S9")
    before = written()
    for location in (loc(other_store, "BR"), loc(own_other_store, "BR")):
        refused(
            post(clients[OP], f"sessions/{session.pk}/passes", {"location": location.pk}),
            400,
            "unknown_location",
            "location",
        )
    assert written() == before


def test_another_orgs_product_cannot_be_scanned(counting, other_org, clients):
    _, count_pass = counting
    theirs = ProductFactory(org=other_org, sku="THEIRS-1", barcodes=[{"code": make_gtin(77)}])
    before = written()
    refused(
        scan(clients[OP], count_pass.pk, product=theirs.pk),
        400,
        "unknown_product",
        "lines.0.product",
    )
    refused(scan(clients[OP], count_pass.pk, sku="THEIRS-1"), 400, "unknown_product", "lines.0.sku")
    refused(
        post(
            clients[OP], f"passes/{count_pass.pk}/lines/bulk", {"lines": [{"product": theirs.pk}]}
        ),
        400,
        "unknown_product",
        "lines.0.product",
    )
    assert written() == before
    refused(
        scan(clients[OP], count_pass.pk, barcode=make_gtin(77)), 404, "unknown_barcode", "barcode"
    )
    after = written()
    assert after.pop("UnresolvedScan") == before.pop("UnresolvedScan") + 1  # kept to map later
    assert after == before


def test_another_orgs_product_cannot_resolve_an_unknown_scan(counting, org, other_org, clients):
    _, count_pass = counting
    theirs = ProductFactory(org=other_org, sku="THEIRS-2")
    refused(scan(clients[OP], count_pass.pk, barcode="NO-SUCH-CODE"), 404, "unknown_barcode")
    scan_id = UnresolvedScan.objects.get().pk
    before = written()
    refused(
        post(clients[M], f"unresolved/{scan_id}/resolve", {"product": theirs.pk}),
        400,
        "unknown_product",
        "product",
    )
    assert written() == before


# --- bad input ----------------------------------------------------------------------------------


@pytest.fixture
def products(org):
    return {
        "each": ProductFactory(
            org=org, sku="EACH-1", unit="each", barcodes=[{"code": make_gtin(11)}]
        ),
        "grams": ProductFactory(org=org, sku="BULK-G", unit="g"),
    }


BAD_CHECK_DIGIT = make_gtin(11)[:-1] + str((int(make_gtin(11)[-1]) + 1) % 10)


@pytest.mark.parametrize(
    "body,code,field",
    [
        ({"sku": "EACH-1", "quantity": "-1"}, "invalid", "quantity"),
        ({"sku": "EACH-1", "quantity": "1.5"}, "invalid_quantity", "lines.0.quantity"),
        ({"sku": "EACH-1", "quantity": "abc"}, "invalid", "quantity"),
        ({"barcode": BAD_CHECK_DIGIT}, "invalid_check_digit", "lines.0.barcode"),
        ({"barcode": "   "}, "invalid", "barcode"),
        ({"sku": "EACH-1", "barcode": make_gtin(11)}, "invalid", "barcode"),
        ({"sku": "EACH-1", "product": 1}, "invalid", "barcode"),
        ({"quantity": "1"}, "invalid", "barcode"),
        ({"sku": "NO-SUCH-SKU"}, "unknown_product", "lines.0.sku"),
        ({"product": 987654}, "unknown_product", "lines.0.product"),
        ({"sku": "EACH-1", "captured_at": "yesterday"}, "invalid", "captured_at"),
        ({"sku": "EACH-1", "confidence": "guessed"}, "invalid", "confidence"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]}" for k in v),
)
def test_a_bad_scan_is_refused_with_a_code_and_writes_nothing(
    counting, products, clients, body, code, field
):
    _, count_pass = counting
    before = written()
    refused(scan(clients[OP], count_pass.pk, **body), 400, code, field)
    assert written() == before


@pytest.mark.parametrize(
    "lines,code,field",
    [
        (
            [{"sku": "EACH-1"}, {"sku": "EACH-1", "quantity": "0.5"}],
            "invalid_quantity",
            "lines.1.quantity",
        ),
        ([{"sku": "EACH-1"}, {"sku": "EACH-1", "quantity": "-2"}], "invalid", "lines.1.quantity"),
        (
            [{"sku": "EACH-1"}, {"barcode": BAD_CHECK_DIGIT}],
            "invalid_check_digit",
            "lines.1.barcode",
        ),
        pytest.param(
            [{"barcode": "UNKNOWN-1"}, {"sku": "EACH-1", "quantity": "0.5"}],
            "invalid_quantity",
            "lines.1.quantity",
            id="unknown-then-fractional",
        ),
        ([{"sku": "EACH-1"}, {"sku": "NOPE"}], "unknown_product", "lines.1.sku"),
        ([], "invalid", "lines"),
    ],
)
def test_a_bad_bulk_is_refused_whole(counting, products, clients, lines, code, field):
    _, count_pass = counting
    before = written()
    refused(
        post(clients[OP], f"passes/{count_pass.pk}/lines/bulk", {"lines": lines}), 400, code, field
    )
    assert written() == before


def test_fractional_quantities_are_fine_for_weighed_products(counting, products, clients):
    _, count_pass = counting
    line = ok(scan(clients[OP], count_pass.pk, sku="BULK-G", quantity="2.5"), 201)
    line = ok(scan(clients[OP], count_pass.pk, sku="BULK-G", quantity="0.25"), 201)
    assert D(line["quantity"]) == D("2.75") and line["unit"] == "g"
    assert (
        D(ok(scan(clients[OP], count_pass.pk, sku="EACH-1", quantity="2.0"), 201)["quantity"]) == 2
    )


def test_an_unknown_barcode_is_kept_for_a_manager_to_map(counting, products, clients):
    _, count_pass = counting
    clerk, manager = clients[OP], clients[M]
    ok(scan(clerk, count_pass.pk, sku="EACH-1", quantity="2"), 201)
    before = written()
    body = refused(
        scan(
            clerk,
            count_pass.pk,
            barcode="MYSTERY-42",
            quantity="3",
            client_line_id="t1-9",
            device_id="tablet-1",
        ),
        404,
        "unknown_barcode",
        "barcode",
    )
    assert "MYSTERY-42" in body["detail"]
    refused(
        scan(clerk, count_pass.pk, barcode="MYSTERY-42", quantity="3", client_line_id="t1-9"),
        404,
        "unknown_barcode",
    )  # a replay: still one
    after = written()
    assert after.pop("UnresolvedScan") == before.pop("UnresolvedScan") + 1
    assert after == before

    kept = ok(clerk.get(f"{BASE}/passes/{count_pass.pk}"))["unresolved"]
    assert [(u["raw_scan"], D(u["quantity"]), u["device_id"]) for u in kept] == [
        ("MYSTERY-42", 3, "tablet-1")
    ]
    listed = ok(manager.get(f"{BASE}/unresolved"))["results"]
    assert [u["id"] for u in listed] == [kept[0]["id"]]
    assert (
        ok(manager.get(f"{BASE}/sessions/{count_pass.session_id}"))["progress"]["unresolved_scans"]
        == 1
    )

    line = ok(
        post(manager, f"unresolved/{kept[0]['id']}/resolve", {"product": products["each"].pk})
    )
    assert D(line["quantity"]) == 5
    assert ok(clerk.get(f"{BASE}/passes/{count_pass.pk}"))["unresolved"] == []
    assert ok(manager.get(f"{BASE}/unresolved"))["results"] == []
    refused(
        post(manager, f"unresolved/{kept[0]['id']}/resolve", {"product": products["each"].pk}),
        404,
        "not_found",
    )
    assert CountLine.objects.get(product=products["each"]).quantity == 5


def test_resolving_to_a_new_product_creates_its_line(counting, products, clients):
    _, count_pass = counting
    refused(
        scan(clients[OP], count_pass.pk, barcode=make_gtin(555), quantity="4"),
        404,
        "unknown_barcode",
    )
    scan_id = UnresolvedScan.objects.get().pk
    line = ok(post(clients[M], f"unresolved/{scan_id}/resolve", {"product": products["grams"].pk}))
    assert (line["sku"], D(line["quantity"]), line["raw_scan"]) == ("BULK-G", 4, make_gtin(555))
    assert line["confidence"] == "corrected"


def test_bulk_keeps_unknown_codes_and_applies_the_rest(counting, products, clients):
    _, count_pass = counting
    body = ok(
        post(
            clients[OP],
            f"passes/{count_pass.pk}/lines/bulk",
            {
                "device_id": "tablet-2",
                "lines": [
                    {"barcode": make_gtin(11)},
                    {"barcode": "WHO-KNOWS"},
                    {"sku": "EACH-1", "quantity": "2"},
                ],
            },
        ),
        201,
    )
    assert (body["applied"], body["replayed"]) == (2, 0)
    assert body["unresolved"] == [{"index": 1, "barcode": "WHO-KNOWS"}]
    (line,) = body["lines"]
    assert (D(line["quantity"]), line["device_id"]) == (3, "tablet-2")
    assert UnresolvedScan.objects.get().device_id == "tablet-2"


def test_lines_are_refused_once_the_pass_is_submitted(counting, products, clients):
    _, count_pass = counting
    clerk = clients[OP]
    line = ok(scan(clerk, count_pass.pk, sku="EACH-1", quantity="2"), 201)
    ok(post(clerk, f"passes/{count_pass.pk}/submit"))
    assert ok(post(clerk, f"passes/{count_pass.pk}/submit"))["status"] == "submitted"  # retry
    before = written()
    refused(scan(clerk, count_pass.pk, sku="EACH-1"), 409, "pass_not_open")
    refused(
        post(clerk, f"passes/{count_pass.pk}/lines/bulk", {"lines": [{"sku": "EACH-1"}]}),
        409,
        "pass_not_open",
    )
    refused(call(clerk, "patch", f"lines/{line['id']}", {"quantity": "9"}), 409, "pass_not_open")
    refused(call(clerk, "put", f"lines/{line['id']}", {"quantity": "9"}), 409, "pass_not_open")
    refused(call(clerk, "delete", f"lines/{line['id']}"), 409, "pass_not_open")
    assert written() == before


@pytest.mark.parametrize("route", ["lines", "lines/bulk"])
def test_unknown_codes_are_refused_once_the_pass_is_submitted(counting, clients, route):
    _, count_pass = counting
    ok(post(clients[OP], f"passes/{count_pass.pk}/submit"))
    before = written()
    body = {"barcode": "MYSTERY-7"}
    response = post(
        clients[OP],
        f"passes/{count_pass.pk}/{route}",
        body if route == "lines" else {"lines": [body]},
    )
    assert written() == before
    refused(response, 409, "pass_not_open")


def test_lines_of_a_voided_pass_are_refused(counting, products, clients):
    _, count_pass = counting
    ok(scan(clients[OP], count_pass.pk, sku="EACH-1"), 201)
    assert ok(post(clients[M], f"passes/{count_pass.pk}/void"))["status"] == "voided"
    refused(scan(clients[OP], count_pass.pk, sku="EACH-1"), 409, "pass_not_open")
    refused(post(clients[OP], f"passes/{count_pass.pk}/submit"), 409, "invalid_state")


def test_a_line_is_corrected_or_deleted_while_its_pass_is_open(counting, products, clients):
    _, count_pass = counting
    clerk = clients[OP]
    line = ok(scan(clerk, count_pass.pk, sku="EACH-1", quantity="2"), 201)
    edited = ok(call(clerk, "patch", f"lines/{line['id']}", {"quantity": "7", "notes": "top"}))
    assert (D(edited["quantity"]), edited["confidence"], edited["notes"]) == (7, "corrected", "top")
    before = written()
    refused(
        call(clerk, "patch", f"lines/{line['id']}", {"quantity": "1.5"}), 400, "invalid_quantity"
    )
    refused(
        call(clerk, "patch", f"lines/{line['id']}", {"quantity": "-1"}), 400, "invalid", "quantity"
    )
    assert written() == before
    assert call(clerk, "delete", f"lines/{line['id']}").status_code == 204
    assert not CountLine.objects.exists()
    assert CountScan.objects.get().line_id is None  # the scan trail stays


def test_a_future_device_time_is_clamped_to_now(counting, products, clients):
    _, count_pass = counting
    ahead = (timezone.now() + datetime.timedelta(hours=2)).isoformat()
    line = ok(scan(clients[OP], count_pass.pk, sku="EACH-1", captured_at=ahead), 201)
    assert datetime.datetime.fromisoformat(line["captured_at"]) <= timezone.now()
    behind = (timezone.now() - datetime.timedelta(days=2)).isoformat()
    line = ok(scan(clients[OP], count_pass.pk, sku="BULK-G", captured_at=behind), 201)
    assert datetime.datetime.fromisoformat(line["captured_at"]) >= count_pass.started_at


# --- session and pass states ------------------------------------------------------------------


@pytest.mark.parametrize(
    "state,verb",
    [
        ("draft", "submit"),
        ("draft", "reconcile"),
        ("draft", "finalize"),
        ("in_progress", "reconcile"),
        ("in_progress", "finalize"),
        ("submitted", "start"),
        ("submitted", "finalize"),
        ("reconciled", "start"),
        ("reconciled", "submit"),
        ("closed", "start"),
        ("closed", "submit"),
        ("closed", "reconcile"),
        ("closed", "cancel"),
        ("cancelled", "start"),
        ("cancelled", "submit"),
        ("cancelled", "reconcile"),
        ("cancelled", "finalize"),
    ],
)
def test_a_wrong_transition_is_a_409(org, store, clients, state, verb):
    session = session_in(org, store, state, clients[A].user)
    before = written()
    refused(post(clients[M], f"sessions/{session.pk}/{verb}"), 409, "invalid_state", "status")
    assert written() == before


@pytest.mark.parametrize(
    "state,verb",
    [
        ("in_progress", "start"),
        ("submitted", "submit"),
        ("reconciled", "reconcile"),
        ("closed", "finalize"),
        ("cancelled", "cancel"),
    ],
)
def test_repeating_a_transition_is_harmless(org, store, clients, state, verb):
    product = ProductFactory(org=org, sku="REPEAT-1")
    receive(org, store, product, 1, occurred_at=hours_ago())
    session = session_in(org, store, state, clients[A].user, product=product)
    before = written()
    assert ok(post(clients[M], f"sessions/{session.pk}/{verb}"))["status"] == state
    assert written() == before


def test_a_session_with_an_open_pass_cannot_be_submitted(counting, clients):
    session, count_pass = counting
    before = written()
    body = refused(post(clients[M], f"sessions/{session.pk}/submit"), 409, "passes_open", "passes")
    assert body["fields"]["passes"] == [str(count_pass.pk)]
    assert written() == before


def test_cancelling_voids_open_passes_and_posts_nothing(counting, products, clients):
    session, count_pass = counting
    ok(scan(clients[OP], count_pass.pk, sku="EACH-1"), 201)
    assert ok(post(clients[M], f"sessions/{session.pk}/cancel"))["status"] == "cancelled"
    assert CountPass.objects.get(pk=count_pass.pk).status == "voided"
    refused(scan(clients[OP], count_pass.pk, sku="EACH-1"), 409, "pass_not_open")
    assert not StockLedger.objects.filter(ref_type=RefType.COUNT_RECONCILE).exists()


def test_a_pass_needs_an_in_progress_session(org, store, clients):
    before = written()
    for state in ("draft", "submitted"):
        other = StoreFactory(org=org, code=f"ST-{state}")
        session = session_in(org, other, state, clients[A].user)
        refused(
            post(clients[OP], f"sessions/{session.pk}/passes", {"location": loc(other, "SF").pk}),
            409,
            "session_not_in_progress",
        )
    after = written()
    assert after["CountPass"] == before["CountPass"]


def test_a_second_active_full_store_count_is_refused(org, store, clients):
    manager = clients[M]
    started_session(manager, store)
    second = create_session(manager, store)  # a draft may wait
    before = written()
    refused(post(manager, f"sessions/{second}/start"), 409, "full_count_active")
    assert written() == before
    assert CountSession.objects.get(pk=second).status == "draft"
    # a zone count may run beside it, and another store is not concerned
    started_session(manager, store, scope="ZONE", scope_locations=[loc(store, "BR").pk])
    started_session(manager, StoreFactory(org=org, code="S2"))


def test_overlapping_passes_of_two_active_counts_are_refused(org, store, clients):
    manager, clerk = clients[M], clients[OP]
    sf = loc(store, "SF")
    edibles = started_session(
        manager, store, scope="ZONE", scope_categories=[{"category": "Edibles"}]
    )
    vapes = started_session(manager, store, scope="ZONE", scope_categories=[{"category": "Vapes"}])
    room = started_session(manager, store, scope="ZONE", scope_locations=[sf.pk])
    full = started_session(manager, store)
    open_pass(clerk, edibles, sf, category="Edibles")
    open_pass(clerk, vapes, sf, category="Vapes")  # same room, other category: fine
    before = written()
    body = refused(
        post(clerk, f"sessions/{room}/passes", {"location": sf.pk}), 409, "scope_in_use", "location"
    )
    assert body["session"] in (edibles, vapes)
    refused(
        post(
            clerk,
            f"sessions/{full}/passes",
            {"location": sf.pk, "category": "edibles", "subcategory": "Gummies"},
        ),
        409,
        "scope_in_use",
        "location",
    )
    assert written() == before
    open_pass(clerk, full, sf, category="Topicals")  # no one counts topicals there
    open_pass(clerk, room, sf, category="Beverages")
    open_pass(clerk, full, loc(store, "BR"))  # nor the back room


def test_a_pass_outside_a_zone_is_refused(org, store, clients):
    manager, clerk = clients[M], clients[OP]
    sf, br = loc(store, "SF"), loc(store, "BR")
    room = started_session(manager, store, scope="ZONE", scope_locations=[sf.pk])
    edibles = started_session(
        manager,
        store,
        scope="ZONE",
        scope_categories=[{"category": "Edibles", "subcategory": "Chocolate"}],
    )
    before = written()
    refused(
        post(clerk, f"sessions/{room}/passes", {"location": br.pk}), 400, "out_of_scope", "location"
    )
    for body in (
        {"location": br.pk},
        {"location": br.pk, "category": "Vapes"},
        {"location": br.pk, "category": "Edibles", "subcategory": "Gummies"},
    ):
        refused(post(clerk, f"sessions/{edibles}/passes", body), 400, "out_of_scope", "location")
    assert written() == before
    open_pass(clerk, edibles, br, category="Edibles", subcategory="Chocolate")


def test_a_zone_session_needs_a_zone_and_a_full_store_none(store, clients):
    before = written()
    refused(
        post(clients[M], "sessions", {"store": store.pk, "scope": "ZONE"}),
        400,
        "invalid",
        "scope_locations",
    )
    refused(
        post(
            clients[M],
            "sessions",
            {"store": store.pk, "scope": "FULL_STORE", "scope_locations": [loc(store, "SF").pk]},
        ),
        400,
        "invalid",
        "scope",
    )
    refused(
        post(clients[M], "sessions", {"store": store.pk, "scope": "EVERYTHING"}),
        400,
        "invalid",
        "scope",
    )
    assert written() == before


def test_a_recount_must_name_a_submitted_pass_of_the_same_room(counting, clients, org, store):
    session, count_pass = counting
    before = written()
    refused(
        post(
            clients[OP],
            f"sessions/{session.pk}/passes",
            {"location": loc(store, "SF").pk, "recount_of": count_pass.pk},
        ),
        400,
        "invalid",
        "recount_of",
    )  # still open
    refused(
        post(
            clients[OP],
            f"sessions/{session.pk}/passes",
            {"location": loc(store, "SF").pk, "recount_of": 987654},
        ),
        400,
        "invalid",
        "recount_of",
    )
    assert written() == before
    ok(post(clients[OP], f"passes/{count_pass.pk}/submit"))
    refused(
        post(
            clients[OP],
            f"sessions/{session.pk}/passes",
            {"location": loc(store, "BR").pk, "recount_of": count_pass.pk},
        ),
        400,
        "invalid",
        "recount_of",
    )
    recount = ok(
        post(
            clients[OP],
            f"sessions/{session.pk}/passes",
            {"location": loc(store, "SF").pk, "recount_of": count_pass.pk},
        ),
        201,
    )
    assert recount["recount_of"] == count_pass.pk


# --- idempotent replays -----------------------------------------------------------------------


def test_a_replayed_scan_is_applied_once(counting, products, clients):
    _, count_pass = counting
    first = scan(clients[OP], count_pass.pk, sku="EACH-1", quantity="2", client_line_id="t1-1")
    assert first.status_code == 201
    before = written()
    again = scan(clients[OP], count_pass.pk, sku="EACH-1", quantity="2", client_line_id="t1-1")
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"] and D(again.json()["quantity"]) == 2
    assert written() == before
    ok(scan(clients[OP], count_pass.pk, sku="EACH-1", quantity="2", client_line_id="t1-2"), 201)
    assert CountLine.objects.get().quantity == 4


def test_a_replayed_bulk_is_applied_once(counting, products, clients):
    _, count_pass = counting
    lines = [
        {"sku": "EACH-1", "client_line_id": "t2-1"},
        {"barcode": make_gtin(11), "client_line_id": "t2-2"},
        {"sku": "EACH-1", "client_line_id": "t2-1"},  # repeated within the batch
        {"sku": "BULK-G", "quantity": "1.5", "client_line_id": "t2-3"},
    ]
    body = ok(post(clients[OP], f"passes/{count_pass.pk}/lines/bulk", {"lines": lines}), 201)
    assert (body["applied"], body["replayed"]) == (3, 1)
    quantities = {line["sku"]: D(line["quantity"]) for line in body["lines"]}
    assert quantities == {"EACH-1": 2, "BULK-G": D("1.5")}
    before = written()
    body = ok(post(clients[OP], f"passes/{count_pass.pk}/lines/bulk", {"lines": lines}), 201)
    assert (body["applied"], body["replayed"]) == (0, 4)
    assert {line["sku"]: D(line["quantity"]) for line in body["lines"]} == quantities
    assert written() == before
    assert CountScan.objects.count() == 3


# --- query counts ------------------------------------------------------------------------------


def _count_queries(client, method, path, body=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call(client, method, path, body)
    assert response.status_code in (200, 201), response.content
    return len(queries)


# authentication 3, pass 1, scan resolution 3 (products, barcodes, package tags), then in one
# transaction: lock the pass, earlier client ids, upsert lines, insert scans, read lines back
# (+ savepoint/release in tests), and the response's lines: 15 however many lines
BULK_QUERIES = 15
PREVIEW_QUERIES = 11
FROZEN_QUERIES = 7


def test_bulk_scans_cost_the_same_queries_for_5_or_200_lines(
    org, store, clients, django_assert_num_queries
):
    manager, clerk = clients[M].user, clients[OP]
    session = S.session_start(
        org=org,
        actor=manager,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
    )
    small = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=manager)
    large = P.pass_create(org=org, session=session, location=loc(store, "BR"), actor=manager)
    gtins = [make_gtin(2000 + n) for n in range(200)]
    for n, gtin in enumerate(gtins):
        ProductFactory(org=org, sku=f"Q-{n:03d}", barcodes=[{"code": gtin}])

    def lines(k):
        return [{"barcode": gtin, "client_line_id": f"q-{n}"} for n, gtin in enumerate(gtins[:k])]

    ok(clerk.get(f"{BASE}/passes/{small.pk}"))  # the token's last-use stamp, once a minute
    with django_assert_num_queries(BULK_QUERIES):
        ok(post(clerk, f"passes/{small.pk}/lines/bulk", {"lines": lines(5)}), 201)
    with django_assert_num_queries(BULK_QUERIES):
        ok(post(clerk, f"passes/{large.pk}/lines/bulk", {"lines": lines(200)}), 201)
    assert CountLine.objects.filter(count_pass=large).count() == 200


def test_variance_queries_do_not_grow_with_lines(org, clients):
    manager = clients[M]
    costs = []
    for n, size in enumerate((3, 40)):
        store = StoreFactory(org=org, code=f"QV{n}")
        products = [ProductFactory(org=org, sku=f"QV{n}-{i:03d}") for i in range(size)]
        for product in products:
            receive(org, store, product, 5, cost=1, occurred_at=hours_ago())
        session = S.session_start(
            org=org,
            actor=manager.user,
            session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager.user),
        )
        for code in ("SF", "BR"):
            count_pass = P.pass_create(
                org=org, session=session, location=loc(store, code), actor=manager.user
            )
            P.lines_add(
                org=org,
                count_pass=count_pass,
                actor=manager.user,
                entries=[P.Entry(p, D(4)) for p in products],
            )
            P.pass_submit(org=org, count_pass=count_pass, actor=manager.user)
        S.session_submit(org=org, session=session, actor=manager.user)
        path = f"sessions/{session.pk}/variance"
        manager.get(f"{BASE}/{path}")  # warm: the token's last-use stamp
        preview = _count_queries(manager, "get", path)
        S.session_reconcile(org=org, session=session, actor=manager.user)
        frozen = _count_queries(manager, "get", path)
        costs.append((preview, frozen))
    # 3 of each are authentication (token, membership, its stores)
    assert costs == [(PREVIEW_QUERIES, FROZEN_QUERIES)] * 2, costs


@pytest.mark.parametrize("route", ["lines", "lines/bulk"])
def test_a_line_quantity_overflow_is_a_400_not_a_500(counting, products, clients, route):
    _, count_pass = counting
    clerk = clients[OP]
    clerk.raise_request_exception = False
    # fits the column on its own, but no shelf holds it: refused as input, never a 500
    huge = {"sku": "EACH-1", "quantity": "99999999999999"}
    if route == "lines":
        response = scan(clerk, count_pass.pk, **huge)
    else:
        response = post(clerk, f"passes/{count_pass.pk}/lines/bulk", {"lines": [huge, huge]})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert CountLine.objects.count() == 0
