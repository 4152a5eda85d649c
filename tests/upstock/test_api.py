"""The upstock API (/api/v1/upstock/): every endpoint as a tablet or a manager's browser sees it,
each success answer checked against the OpenAPI description (tests/response_schema.py), who
may do what, another organisation's ids, a store-limited membership, bad input (4xx with a
stable code and the field, nothing written) and replays.

The numbers (window, sold, par capping, walking order) are proven at the service level in
test_runs.py and test_lines.py; here they are only read back."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from discrepancies.models import Discrepancy
from inventory.models import AuditAction, AuditEvent, Role, StockDocument, StockLedger
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, make_gtin
from tests.response_schema import AnswerChecker
from tests.stock_helpers import assert_invariants, loc, on_hand, receive, sell
from upstock.models import Baseline, UpstockLine, UpstockPull, UpstockRun

pytestmark = pytest.mark.django_db
D = Decimal
BASE = "/api/v1/upstock"
V, OP, M, A = Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN
ROLES = [V, OP, M, A]


@pytest.fixture(scope="module")
def checker(django_db_blocker):
    with django_db_blocker.unblock():
        return AnswerChecker.served()


@pytest.fixture
def clients(client_for) -> dict[str, APIClient]:
    return {role: client_for(role) for role in ROLES}


def ok(response, status: int = 200):
    assert response.status_code == status, response.content[:800]
    return response.json()


def refused(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:800]
    body = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in body["fields"], body
    return body


def written() -> dict:
    """What a refused request must leave untouched."""
    return {
        "baselines": sorted(
            Baseline.objects.values_list("pk", "par_qty", "min_pull", "category", "product_id")
        ),
        "runs": sorted(UpstockRun.objects.values_list("pk", "status")),
        "lines": sorted(
            UpstockLine.objects.values_list("pk", "status", "pulled", "exception_reason", "note")
        ),
        "pulls": UpstockPull.objects.count(),
        "ledger": StockLedger.objects.count(),
        "discrepancies": Discrepancy.objects.count(),
    }


@pytest.fixture
def world(org, store):
    """A floor SF and a back room BR; gummies (with a GTIN) and flower in the back room and on
    the floor, some sold today; a par for gummies."""
    gum = ProductFactory(
        org=org,
        sku="GUM",
        name="Sour Gummies",
        category="Edibles",
        unit="each",
        barcodes=[{"code": make_gtin(5)}],
    )
    flw = ProductFactory(org=org, sku="FLW", name="Blue Dream", category="Flower", unit="each")
    tea = ProductFactory(org=org, sku="TEA", name="Tea", category="Drinks", unit="each")
    pre = ProductFactory(org=org, sku="PRE", name="Pre-roll", category="Pre-rolls", unit="each")
    for product in (gum, flw, tea, pre):
        receive(org, store, product, 5, location="SF")
    receive(org, store, gum, 30, location="BR", lot="G-OLD", expiry=datetime.date(2030, 1, 1))
    receive(org, store, gum, 30, location="BR", lot="G-NEW", expiry=datetime.date(2031, 1, 1))
    receive(org, store, flw, 10, location="BR")
    receive(org, store, pre, 5, location="BR")
    sell(org, store, (flw, 3, "SF"), (tea, 2, "SF"), (pre, 1, "SF"))  # tea: none in the back
    Baseline.objects.create(
        org=org, store=store, location=loc(store, "SF"), product=gum, par_qty=D("12")
    )
    return {
        "gum": gum,
        "flw": flw,
        "tea": tea,
        "pre": pre,
        "sf": loc(store, "SF"),
        "br": loc(store, "BR"),
    }


def make_run(client, store, floor, **body):
    return client.post(
        f"{BASE}/runs", {"store": store.pk, "location": floor.pk, **body}, format="json"
    )


def lines_of(run_body) -> dict[str, dict]:
    return {line["sku"]: line for line in run_body["lines"]}


# --- the whole flow, answers as documented ------------------------------------------------------


def test_a_nights_work_answers_as_documented(checker, org, store, world, clients):
    manager, operator = clients[M], clients[OP]

    def check(response, path, status=200):
        assert response.status_code == status, response.content[:800]
        return checker.check(response, f"{BASE}/{path}")

    run = check(make_run(operator, store, world["sf"], client_ref="tab-1"), "runs/", 201)
    assert run["status"] == "in_progress" and run["created_by"] == operator.user.email
    by_sku = lines_of(run)
    assert set(by_sku) == {"GUM", "FLW", "TEA", "PRE"}
    assert by_sku["GUM"]["suggested"] == "7.0000"  # par 12 − 5 on the floor
    assert by_sku["FLW"]["suggested"] == "3.0000"  # no par: what sold
    assert by_sku["TEA"]["status"] == "exception"
    assert by_sku["TEA"]["exception_reason"] == "back_room_short"
    assert [line["position"] for line in run["lines"]] == sorted(
        line["position"] for line in run["lines"]
    )
    replay = make_run(operator, store, world["sf"], client_ref="tab-1")
    assert check(replay, "runs/") == run  # the same run, 200
    assert UpstockRun.objects.count() == 1

    runs = check(operator.get(f"{BASE}/runs", {"store": store.pk}), "runs/")
    assert [r["id"] for r in runs["results"]] == [run["id"]]
    path = f"runs/{run['id']}"
    check(operator.get(f"{BASE}/{path}"), "runs/{id}/")
    summary = check(operator.get(f"{BASE}/{path}/summary"), "runs/{id}/summary/")
    assert summary["by_status"] == {"pending": 3, "done": 0, "skipped": 0, "exception": 1}

    gum = by_sku["GUM"]
    done = check(
        operator.patch(
            f"{BASE}/lines/{gum['id']}", {"pulled": "7", "client_ref": "t1-gum"}, format="json"
        ),
        "lines/{id}/",
        201,
    )
    assert done["status"] == "done" and done["pulled"] == "7.0000"
    assert [(lot["lot_code"], lot["quantity"]) for lot in done["lots"]] == [("G-OLD", "7.0000")]
    ledger = StockLedger.objects.count()
    again = operator.patch(
        f"{BASE}/lines/{gum['id']}", {"pulled": "7", "client_ref": "t1-gum"}, format="json"
    )
    assert check(again, "lines/{id}/") == done and StockLedger.objects.count() == ledger
    assert on_hand(world["gum"], world["sf"]) == 12

    scanned = check(
        operator.post(
            f"{BASE}/{path}/scan",
            {"code": "FLW", "quantity": "3", "client_ref": "t1-flw"},
            format="json",
        ),
        "runs/{id}/scan/",
        201,
    )
    assert scanned["pulled"] == "3.0000" and scanned["status"] == "done"
    check(operator.get(f"{BASE}/lines/{gum['id']}"), "lines/{id}/")
    check(
        operator.post(f"{BASE}/lines/{by_sku['PRE']['id']}/skip", {"note": "later"}, format="json"),
        "lines/{id}/skip/",
    )
    completed = check(operator.post(f"{BASE}/{path}/complete"), "runs/{id}/complete/")
    assert completed["status"] == "completed" and completed["completed_at"]

    # tomorrow's run, abandoned; a missing exception on it
    sell(org, store, (world["flw"], 2, "SF"))
    second = ok(make_run(manager, store, world["sf"]), 201)
    flw = lines_of(second)["FLW"]
    exc = check(
        operator.post(
            f"{BASE}/lines/{flw['id']}/exception",
            {"reason": "missing", "quantity": "1", "note": "not on the shelf"},
            format="json",
        ),
        "lines/{id}/exception/",
    )
    assert exc["exception_reason"] == "missing" and exc["discrepancy"] is not None
    abandoned = check(operator.post(f"{BASE}/runs/{second['id']}/abandon"), "runs/{id}/abandon/")
    assert abandoned["status"] == "abandoned"
    filtered = check(operator.get(f"{BASE}/runs", {"status": "abandoned"}), "runs/")
    assert [r["id"] for r in filtered["results"]] == [second["id"]]
    assert_invariants()


def test_par_levels_answer_as_documented(checker, org, store, world, clients):
    manager = clients[M]

    def check(response, path, status=200):
        assert response.status_code == status, response.content[:800]
        return checker.check(response, f"{BASE}/{path}")

    body = {"store": store.pk, "location": world["sf"].pk}
    created = check(
        manager.post(
            f"{BASE}/baselines",
            {**body, "sku": "FLW", "par_qty": "8", "min_pull": "2"},
            format="json",
        ),
        "baselines/",
        201,
    )
    assert (created["sku"], created["par_qty"], created["min_pull"]) == ("FLW", "8.0000", "2.0000")
    again = manager.post(
        f"{BASE}/baselines", {**body, "product": world["flw"].pk, "par_qty": "9"}, format="json"
    )
    assert check(again, "baselines/")["par_qty"] == "9.0000"  # the same par level, 200
    default = check(
        manager.post(
            f"{BASE}/baselines", {**body, "category": "Drinks", "par_qty": "4"}, format="json"
        ),
        "baselines/",
        201,
    )
    assert default["product"] is None and default["sku"] is None
    listed = check(manager.get(f"{BASE}/baselines", {"location": world["sf"].pk}), "baselines/")
    assert len(listed["results"]) == 3
    one = f"{BASE}/baselines/{created['id']}"
    check(manager.get(one), "baselines/{id}/")
    patched = check(manager.patch(one, {"min_pull": None}, format="json"), "baselines/{id}/")
    assert patched["min_pull"] is None and patched["par_qty"] == "9.0000"
    check(manager.put(one, {"par_qty": "10"}, format="json"), "baselines/{id}/")
    deleted = manager.delete(one)
    assert deleted.status_code == 204
    checker.check(deleted, f"{BASE}/baselines/{{id}}/")
    bulk = check(
        manager.post(
            f"{BASE}/baselines/bulk",
            {**body, "rows": [{"sku": "FLW", "par_qty": 6}, {"sku": "NOPE", "par_qty": "1"}]},
            format="json",
        ),
        "baselines/bulk/",
    )
    assert (bulk["created"], [e["line"] for e in bulk["errors"]]) == (1, [2])
    csv_text = "\ufeffSKU,Par Qty\nGUM,14\n"
    imported = check(
        manager.post(
            f"{BASE}/baselines/import?store={store.pk}&location={world['sf'].pk}",
            csv_text.encode(),
            content_type="text/csv",
        ),
        "baselines/import/",
    )
    assert (imported["updated"], imported["errors"]) == (1, [])
    exported = manager.get(f"{BASE}/baselines/export", {"store": store.pk})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    text = checker.check(exported, f"{BASE}/baselines/export/")
    assert text.splitlines()[0].startswith("store,location,sku,")
    assert "S1,SF,GUM,Sour Gummies,,,14.0000" in text


# --- who may do what ----------------------------------------------------------------------------

# (method, path template, body, least role). {run}, {line}, {baseline} filled per test.
ENDPOINTS = [
    ("get", "baselines", None, V),
    ("get", "baselines/{baseline}", None, V),
    ("get", "baselines/export?store={store}", None, V),
    ("post", "baselines", {"sku": "FLW", "par_qty": "3"}, M),
    ("patch", "baselines/{baseline}", {"par_qty": "3"}, M),
    ("delete", "baselines/{baseline}", None, M),
    ("post", "baselines/bulk", {"rows": [{"sku": "FLW", "par_qty": "3"}]}, M),
    ("get", "runs", None, V),
    ("get", "runs/{run}", None, V),
    ("get", "runs/{run}/summary", None, V),
    ("post", "runs", {}, OP),
    ("post", "runs/{run}/scan", {"code": "GUM", "client_ref": "s-1"}, OP),
    ("post", "runs/{run}/abandon", None, OP),
    ("get", "lines/{line}", None, V),
    ("patch", "lines/{line}", {"pulled": "1", "client_ref": "d-1"}, OP),
    ("post", "lines/{line}/skip", {}, OP),
    ("post", "lines/{line}/exception", {"reason": "already_stocked"}, OP),
]


def fill(template: str, ids: dict) -> str:
    return f"{BASE}/" + template.format(**ids)


@pytest.fixture
def ids(org, store, world, clients):
    run = ok(make_run(clients[M], store, world["sf"]), 201)
    return {
        "store": store.pk,
        "run": run["id"],
        "line": lines_of(run)["GUM"]["id"],
        "baseline": Baseline.objects.get().pk,
    }


def send(client, method, path, body, store, world):
    if body is not None and method != "get":
        body = {**body}
        if path.endswith(("baselines", "bulk", "runs")):
            body.update(store=store.pk, location=world["sf"].pk)
        return getattr(client, method)(path, body, format="json")
    return getattr(client, method)(path)


@pytest.mark.parametrize(("method", "template", "body", "least"), ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_by_role(method, template, body, least, role, clients, ids, store, world):
    allowed = Role(role).rank >= Role(least).rank
    before = written()
    response = send(clients[role], method, fill(template, ids), body, store, world)
    if allowed:
        assert response.status_code in (200, 201, 204), response.content[:500]
    else:
        refused(response, 403, "permission_denied")
        assert written() == before


@pytest.mark.parametrize(
    "template", ["baselines/{baseline}", "runs/{run}", "runs/{run}/summary", "lines/{line}"]
)
@pytest.mark.parametrize("method", ["get", "patch", "post", "delete"])
def test_another_organisations_ids_are_not_found(method, template, ids, other_org, client_for):
    rival = client_for(A, organisation=other_org)
    before = written()
    path = fill(template, ids)
    if method == "post":
        path = {
            "baselines/{baseline}": path,
            "runs/{run}": f"{path}/complete",
            "runs/{run}/summary": path.replace("summary", "scan"),
            "lines/{line}": f"{path}/skip",
        }[template]
    response = getattr(rival, method)(path, {}, format="json")
    assert response.status_code in (404, 405), response.content[:300]
    if response.status_code == 404:
        assert response.json()["code"] == "not_found"
    assert written() == before
    assert ok(rival.get(f"{BASE}/runs"))["results"] == []
    assert ok(rival.get(f"{BASE}/baselines"))["results"] == []


def test_another_organisations_store_or_floor_in_a_body_is_refused(
    org, store, world, other_org, other_store, client_for
):
    rival = client_for(A, organisation=other_org)
    before = written()
    refused(make_run(rival, store, world["sf"]), 400, "invalid", "store")
    refused(
        rival.post(
            f"{BASE}/runs", {"store": other_store.pk, "location": world["sf"].pk}, format="json"
        ),
        400,
        "unknown_location",
        "location",
    )
    refused(
        rival.post(
            f"{BASE}/baselines",
            {"store": other_store.pk, "location": world["sf"].pk, "category": "X", "par_qty": 1},
            format="json",
        ),
        400,
        "unknown_location",
        "location",
    )
    refused(rival.get(f"{BASE}/runs", {"store": store.pk}), 404, "not_found")
    refused(rival.get(f"{BASE}/baselines/export", {"store": store.pk}), 404, "not_found")
    assert written() == before


def test_a_store_limited_member_sees_and_works_their_stores_only(org, store, world, client_for):
    second = StoreFactory(org=org, code="S2", time_zone="America/Toronto")
    ProductFactory(org=org, sku="S2P")
    there = ok(make_run(client_for(A), second, loc(second, "SF")), 201)
    here = ok(make_run(client_for(A), store, world["sf"]), 201)
    limited = client_for(M, stores=[store])
    assert [r["id"] for r in ok(limited.get(f"{BASE}/runs"))["results"]] == [here["id"]]
    refused(limited.get(f"{BASE}/runs/{there['id']}"), 404, "not_found")
    refused(limited.post(f"{BASE}/runs/{there['id']}/abandon"), 404, "not_found")
    refused(limited.get(f"{BASE}/runs", {"store": second.pk}), 404, "not_found")
    refused(make_run(limited, second, loc(second, "SF")), 400, "invalid", "store")
    Baseline.objects.create(
        org=org, store=second, location=loc(second, "SF"), category="X", par_qty=1
    )
    assert {b["store"] for b in ok(limited.get(f"{BASE}/baselines"))["results"]} == {store.pk}
    refused(
        limited.post(
            f"{BASE}/baselines/import?store={second.pk}&location={loc(second, 'SF').pk}",
            b"sku,par_qty\nS2P,1\n",
            content_type="text/csv",
        ),
        400,
        "unknown_store",
        "store",
    )


# --- bad input: a stable code, the field, nothing written ---------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 400, "invalid", "store"),
        ({"location": "x"}, 400, "invalid", "location"),
        ({"location": "BR"}, 400, "not_a_sales_floor", "location"),
        ({"client_ref": "a\u200bb"}, 400, "invalid", "client_ref"),
        ({"category": "x" * 121}, 400, "invalid", "category"),
    ],
)
def test_bad_run_requests_are_refused(body, status, code, field, store, world, clients):
    before = written()
    payload = {"store": store.pk, "location": world["sf"].pk, **body}
    if body.get("location") == "BR":
        payload["location"] = world["br"].pk
    if not body:
        payload.pop("store")
    refused(clients[OP].post(f"{BASE}/runs", payload, format="json"), status, code, field)
    assert written() == before


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"par_qty": "-1", "sku": "FLW"}, "invalid", "par_qty"),
        ({"par_qty": "1e3", "sku": "FLW"}, "invalid", "par_qty"),
        ({"par_qty": "1.5", "sku": "FLW"}, "invalid", "par_qty"),  # FLW is counted in units
        ({"par_qty": "1"}, "invalid", "category"),
        ({"par_qty": "1", "sku": "FLW", "category": "Flower"}, "invalid", "category"),
        ({"par_qty": "1", "sku": "FLW", "product": 1}, "invalid", "sku"),
        ({"par_qty": "1", "sku": "NOPE"}, "unknown_product", "sku"),
        ({"par_qty": "1", "barcode": "0000000000000"}, "unknown_product", "barcode"),
        ({"par_qty": "1", "sku": "FLW", "location": "BR"}, "not_a_sales_floor", "location"),
        ({"par_qty": "1", "sku": "FLW", "min_pull": "-2"}, "invalid", "min_pull"),
    ],
)
def test_bad_par_levels_are_refused(body, code, field, store, world, clients):
    before = written()
    payload = {"store": store.pk, "location": world["sf"].pk, **body}
    if body.get("location") == "BR":
        payload["location"] = world["br"].pk
    refused(clients[M].post(f"{BASE}/baselines", payload, format="json"), 400, code, field)
    assert written() == before


def test_bad_par_level_edits_are_refused(store, world, clients):
    one = f"{BASE}/baselines/{Baseline.objects.get().pk}"
    before = written()
    refused(clients[M].patch(one, {}, format="json"), 400, "invalid", "par_qty")
    refused(clients[M].patch(one, {"par_qty": "x"}, format="json"), 400, "invalid", "par_qty")
    refused(clients[M].patch(one, {"par_qty": "0.5"}, format="json"), 400, "invalid", "par_qty")
    refused(clients[M].get(f"{BASE}/baselines/{2**63}"), 404, "not_found")
    refused(clients[M].get(f"{BASE}/baselines", {"colour": "red"}), 400, "unknown_parameter")
    assert written() == before


@pytest.fixture
def run(store, world, clients):
    return ok(make_run(clients[OP], store, world["sf"]), 201)


def test_bad_line_requests_are_refused(store, world, clients, run):
    gum = lines_of(run)["GUM"]
    line = f"{BASE}/lines/{gum['id']}"
    operator = clients[OP]
    before = written()
    refused(operator.patch(line, {"pulled": "1"}, format="json"), 400, "invalid", "client_ref")
    refused(
        operator.patch(line, {"pulled": "-1", "client_ref": "x"}, format="json"),
        400,
        "invalid",
        "pulled",
    )
    refused(
        operator.patch(line, {"pulled": "0.5", "client_ref": "x"}, format="json"),
        400,
        "fractional_quantity",
        "pulled",
    )
    short = refused(
        operator.patch(line, {"pulled": "61", "client_ref": "x"}, format="json"),
        409,
        "insufficient_stock",
    )
    assert short["detail"]
    refused(
        operator.patch(line, {"pulled": "1", "client_ref": "x", "batch": 999999}, format="json"),
        400,
        "unknown_lot",
        "batch",
    )
    refused(
        operator.post(f"{line}/exception", {"reason": "lost"}, format="json"),
        400,
        "invalid",
        "reason",
    )
    refused(
        operator.post(f"{line}/exception", {"reason": "missing", "quantity": "0"}, format="json"),
        400,
        "invalid",
        "quantity",
    )
    refused(
        operator.post(f"{line}/skip", {"note": "x" * 501}, format="json"), 400, "invalid", "note"
    )
    scan = f"{BASE}/runs/{run['id']}/scan"
    refused(operator.post(scan, {"client_ref": "s"}, format="json"), 400, "invalid", "code")
    refused(
        operator.post(scan, {"code": "NO-SUCH", "client_ref": "s"}, format="json"),
        404,
        "unknown_barcode",
        "code",  # the field the device sent, not the resolver's name for it
    )
    ProductFactory(org=run and store.org, sku="ELSEWHERE")
    refused(
        operator.post(scan, {"code": "ELSEWHERE", "client_ref": "s"}, format="json"),
        409,
        "not_on_run",
    )
    wrong = refused(
        operator.post(scan, {"code": "FLW", "client_ref": "s", "line": gum["id"]}, format="json"),
        409,
        "wrong_product",
    )
    assert wrong["expected"]["sku"] == "GUM"
    refused(
        operator.post(scan, {"code": "GUM", "client_ref": "s", "line": 2**40}, format="json"),
        400,
        "unknown_line",
        "line",
    )
    refused(operator.post(f"{BASE}/runs/{run['id']}/complete"), 409, "lines_pending")
    assert written() == before


def test_a_gs1_scan_pulls_its_lot(store, world, clients, run):
    gum = lines_of(run)["GUM"]
    gs1 = f"01{'0' + make_gtin(5)}10G-NEW"
    body = ok(
        clients[OP].post(
            f"{BASE}/runs/{run['id']}/scan",
            {"code": gs1, "quantity": "2", "client_ref": "s-gs1", "line": gum["id"]},
            format="json",
        ),
        201,
    )
    assert [(lot["lot_code"], lot["quantity"]) for lot in body["lots"]] == [("G-NEW", "2.0000")]
    assert_invariants()


def test_a_settled_run_refuses_changes(store, world, clients, run):
    operator = clients[OP]
    ok(operator.post(f"{BASE}/runs/{run['id']}/abandon"))
    before = written()
    gum = lines_of(run)["GUM"]
    refused(
        operator.patch(
            f"{BASE}/lines/{gum['id']}", {"pulled": "1", "client_ref": "z"}, format="json"
        ),
        409,
        "run_not_in_progress",
    )
    refused(operator.post(f"{BASE}/runs/{run['id']}/complete"), 409, "run_not_in_progress")
    assert written() == before


def test_a_client_ref_for_another_floor_is_a_conflict(org, store, world, clients):
    ok(make_run(clients[OP], store, world["sf"], client_ref="same"), 201)
    Baseline.objects.all().delete()
    before = written()
    refused(
        make_run(clients[OP], store, world["sf"], client_ref="same", category="Flower"),
        409,
        "idempotency_conflict",
    )
    assert written() == before


# --- listing ------------------------------------------------------------------------------------


def test_runs_filter_by_store_local_date_location_and_status(store, world, clients, run):
    operator = clients[OP]
    created = UpstockRun.objects.get(pk=run["id"]).created_at
    from zoneinfo import ZoneInfo

    today = created.astimezone(ZoneInfo(store.time_zone)).date()
    assert [r["id"] for r in ok(operator.get(f"{BASE}/runs", {"date": today}))["results"]] == [
        run["id"]
    ]
    yesterday = today.fromordinal(today.toordinal() - 1)
    assert ok(operator.get(f"{BASE}/runs", {"date": yesterday}))["results"] == []
    assert ok(operator.get(f"{BASE}/runs", {"location": world["sf"].pk}))["count"] == 1
    assert ok(operator.get(f"{BASE}/runs", {"status": "completed"}))["count"] == 0
    refused(operator.get(f"{BASE}/runs", {"status": "done"}), 400, "invalid", "status")
    refused(operator.get(f"{BASE}/runs", {"date": "yesterday"}), 400, "invalid", "date")


# --- the CSV import over HTTP -------------------------------------------------------------------


def import_csv(client, store, floor, content: bytes, *, dry_run=False, multipart=False):
    url = f"{BASE}/baselines/import?store={store.pk}&location={floor.pk}"
    if dry_run:
        url += "&dry_run=true"
    if multipart:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("pars.csv", content, content_type="text/csv")
        return client.post(url, {"file": upload}, format="multipart")
    return client.post(url, content, content_type="text/csv")


CSV = (
    "\ufeffStore report: par levels\r\n"
    "\r\n"
    "SKU,Category,Par Qty,Min Pull,Notes\r\n"
    "GUM,,20,2,top shelf\r\n"  # line 4: updates
    "FLW,,6,,\r\n"  # line 5: creates
    "NOPE,,3,,\r\n"  # line 6: no such product
    "FLW,,7,,\r\n"  # line 7: FLW again
    "TEA,,-1,,\r\n"  # line 8: negative
    ",Drinks,4,,\r\n"  # line 9: a category default
    "TEA,,x,,\r\n"  # line 10: not a number
    "TEA,,1,,extra,cells\r\n"  # line 11: more cells than the header
)


@pytest.mark.parametrize("multipart", [False, True])
def test_an_import_applies_good_rows_and_reports_every_bad_one_by_line(
    multipart, store, world, clients
):
    body = ok(import_csv(clients[M], store, world["sf"], CSV.encode(), multipart=multipart))
    assert (body["created"], body["updated"], body["unchanged"]) == (2, 1, 0)
    assert [(e["line"], e["field"], e["code"]) for e in body["errors"]] == [
        (6, "sku", "unknown_product"),
        (7, "sku", "duplicate"),
        (8, "par_qty", "invalid"),
        (10, "par_qty", "invalid"),
        (11, "", "invalid"),
    ]
    assert body["ignored_columns"] == ["notes"] and body["rows"] == 8
    pars = {
        (b.product.sku if b.product_id else b.category): (b.par_qty, b.min_pull)
        for b in Baseline.objects.select_related("product")
    }
    assert pars == {"GUM": (20, 2), "FLW": (6, None), "Drinks": (4, None)}
    assert AuditEvent.objects.filter(action=AuditAction.UPSTOCK_BASELINES_IMPORTED).count() == 1
    again = ok(import_csv(clients[M], store, world["sf"], CSV.encode()))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_a_dry_run_reports_and_writes_nothing(store, world, clients):
    before = written()
    body = ok(import_csv(clients[M], store, world["sf"], CSV.encode(), dry_run=True))
    assert body["dry_run"] and (body["created"], body["updated"]) == (2, 1)
    assert len(body["errors"]) == 5
    assert written() == before


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "file"),
        (b"sku,qty\nGUM,1\n", "file"),
        (b"sku,par_qty\nGUM,\xff\n", "file"),
    ],
)
def test_an_unreadable_file_is_refused_whole(content, field, store, world, clients):
    before = written()
    refused(import_csv(clients[M], store, world["sf"], content), 400, "invalid", field)
    assert written() == before


def test_an_import_needs_a_file_and_a_floor_of_the_store(store, world, clients):
    manager = clients[M]
    before = written()
    url = f"{BASE}/baselines/import?store={store.pk}&location={world['sf'].pk}"
    refused(manager.post(url, {}, format="multipart"), 400, "invalid", "file")
    refused(manager.post(url, {"x": 1}, format="json"), 415, "unsupported_media_type")
    refused(
        manager.post(
            f"{BASE}/baselines/import?store={store.pk}", b"sku,par_qty\n", content_type="text/csv"
        ),
        400,
        "invalid",
        "location",
    )
    refused(
        import_csv(manager, store, world["br"], b"sku,par_qty\nGUM,1\n"),
        400,
        "not_a_sales_floor",
        "location",
    )
    refused(
        import_csv(clients[OP], store, world["sf"], b"sku,par_qty\nGUM,1\n"),
        403,
        "permission_denied",
    )
    assert written() == before


def test_bulk_rows_follow_the_import_rules(store, world, clients):
    body = ok(
        clients[M].post(
            f"{BASE}/baselines/bulk",
            {
                "store": store.pk,
                "location": world["sf"].pk,
                "rows": [
                    {"SKU": "FLW", "par_qty": 6},
                    {"sku": "TEA", "par_qty": ["6"]},
                    {"category": "Drinks", "par_qty": "2.5", "min_pull": None},
                ],
            },
            format="json",
        )
    )
    assert (body["created"], [(e["line"], e["field"]) for e in body["errors"]]) == (
        2,
        [(2, "par_qty")],
    )
    before = written()
    refused(
        clients[M].post(
            f"{BASE}/baselines/bulk",
            {"store": store.pk, "location": world["sf"].pk, "rows": []},
            format="json",
        ),
        400,
        "invalid",
        "rows",
    )
    refused(
        clients[M].post(
            f"{BASE}/baselines/bulk",
            {"store": store.pk, "location": world["sf"].pk, "rows": ["GUM,1"]},
            format="json",
        ),
        400,
        "invalid",
    )
    assert written() == before


def test_the_export_imports_again_unchanged(store, world, clients):
    manager = clients[M]
    Baseline.objects.create(
        org=store.org,
        store=store,
        location=world["sf"],
        category="Drinks",
        subcategory="Tea",
        par_qty=D("3"),
        min_pull=D("1"),
    )
    exported = manager.get(
        f"{BASE}/baselines/export", {"store": store.pk, "location": world["sf"].pk}
    )
    assert exported.status_code == 200
    assert 'filename="par-levels-S1-SF.csv"' in exported["Content-Disposition"]
    body = ok(import_csv(manager, store, world["sf"], exported.content))
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (0, 0, 2, [])


def test_a_missing_exception_by_an_operator_waits_for_a_manager(store, world, clients, run):
    flw = lines_of(run)["FLW"]
    body = ok(
        clients[OP].post(
            f"{BASE}/lines/{flw['id']}/exception",
            {"reason": "damaged", "quantity": "2"},
            format="json",
        )
    )
    discrepancy = Discrepancy.objects.get(pk=body["discrepancy"])
    assert discrepancy.status == "NEW" and discrepancy.source == "AD_HOC"
    assert on_hand(world["flw"], world["br"]) == 10  # nothing moved before a manager decides
    replay = ok(
        clients[OP].post(
            f"{BASE}/lines/{flw['id']}/exception",
            {"reason": "damaged", "quantity": "2"},
            format="json",
        )
    )
    assert replay == body and Discrepancy.objects.count() == 1


def test_stock_documents_of_pulls_are_moves_from_the_back_room(store, world, clients, run):
    gum = lines_of(run)["GUM"]
    ok(
        clients[OP].patch(
            f"{BASE}/lines/{gum['id']}", {"pulled": "7", "client_ref": "p"}, format="json"
        ),
        201,
    )
    document = StockDocument.objects.get(pk=UpstockLine.objects.get(pk=gum["id"]).move_document_id)
    assert document.kind == "move" and document.source == "upstock"
    moved = StockLedger.objects.filter(ref_id=document.pk, location=world["br"]).aggregate(
        n=Sum("qty_delta")
    )["n"]
    assert moved == -7
    assert_invariants()


def test_the_api_root_lists_upstock(clients):
    root = ok(clients[V].get("/api/v1/"))
    assert root["upstock/runs"].endswith("/api/v1/upstock/runs")
    assert root["upstock/baselines"].endswith("/api/v1/upstock/baselines")


def test_a_second_membership_sees_the_same_run_by_id(org, store, world, clients, run):
    other = MembershipFactory(org=org, role=Role.VIEWER)
    client = APIClient()
    client.force_authenticate(other.user)
    assert ok(client.get(f"{BASE}/runs/{run['id']}"))["id"] == run["id"]
