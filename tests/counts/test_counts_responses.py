"""Every answer of the counts API is the one the OpenAPI description documents: a whole count,
from creating the session to finalising it, with each success answer checked strictly against
``/api/schema/`` (tests/response_schema.py: no undocumented key, none missing, types and
four-place decimals) — the session and pass details, scans and their replays, bulk scans,
unresolved scans, the variance (a live preview, then frozen rows, and its CSV) and decisions.
"""

from __future__ import annotations

import pytest

from inventory.models import Role
from tests.factories import ProductFactory, make_gtin
from tests.response_schema import AnswerChecker
from tests.stock_helpers import loc, ref

BASE = "/api/v1/counts"
S = "/api/v1/counts/sessions/"
P = "/api/v1/counts/passes/"


@pytest.fixture(scope="module")
def checker(django_db_blocker):
    with django_db_blocker.unblock():
        return AnswerChecker.served()


def test_a_whole_count_answers_as_documented(checker, org, store, client_for):
    admin, manager = client_for(Role.ADMIN), client_for(Role.MANAGER)
    gum = ProductFactory(org=org, sku="GUM", unit="each", barcodes=[{"code": make_gtin(5)}])
    flower = ProductFactory(org=org, sku="FLW", unit="g")
    sf, br = loc(store, "SF"), loc(store, "BR")
    received = admin.post(
        "/api/v1/stock/receipts",
        {
            "store": store.pk,
            "client_ref": ref("rcv"),
            "lines": [
                {"product": gum.pk, "location": sf.pk, "quantity": "10", "unit_cost": "2"},
                {"product": flower.pk, "location": sf.pk, "quantity": "7.5", "unit_cost": "3"},
            ],
        },
        format="json",
    )
    assert received.status_code == 201, received.content

    def check(response, path, status=200):
        assert response.status_code == status, response.content
        return checker.check(response, path)

    created = check(
        manager.post(f"{BASE}/sessions", {"store": store.pk, "scope": "FULL_STORE"}, format="json"),
        S,
        201,
    )
    session = f"{BASE}/sessions/{created['id']}"
    check(manager.get(f"{BASE}/sessions"), S)
    check(manager.post(f"{session}/start"), f"{S}{{id}}/start/")
    count_pass = check(
        manager.post(f"{session}/passes", {"location": sf.pk}, format="json"),
        f"{S}{{id}}/passes/",
        201,
    )
    lines = f"{BASE}/passes/{count_pass['id']}/lines"
    scan = {"barcode": make_gtin(5), "quantity": "3", "client_line_id": "t1-1"}
    first = check(manager.post(lines, scan, format="json"), f"{P}{{id}}/lines/", 201)
    replay = manager.post(lines, scan, format="json")
    assert check(replay, f"{P}{{id}}/lines/") == first
    unknown = manager.post(lines, {"barcode": "NO-SUCH-CODE"}, format="json")
    assert unknown.status_code == 404  # kept for a manager to map
    bulk = check(
        manager.post(
            f"{lines}/bulk",
            {
                "device_id": "tablet-1",
                "lines": [
                    {"sku": "FLW", "quantity": "2.25", "client_line_id": "t1-2"},
                    {"barcode": "ALSO-UNKNOWN", "client_line_id": "t1-3"},
                    {"barcode": make_gtin(5), "quantity": "3", "client_line_id": "t1-1"},
                ],
            },
            format="json",
        ),
        f"{P}{{id}}/lines/bulk/",
        201,
    )
    assert (bulk["applied"], bulk["replayed"], len(bulk["unresolved"])) == (1, 1, 1)
    check(manager.get(lines), f"{P}{{id}}/lines/")
    detail = check(manager.get(f"{BASE}/passes/{count_pass['id']}"), f"{P}{{id}}/")
    assert len(detail["lines"]) == 2 and len(detail["unresolved"]) == 2
    line = f"{BASE}/lines/{first['id']}"
    check(manager.get(line), "/api/v1/counts/lines/{id}/")
    check(
        manager.patch(line, {"notes": "two on the top shelf"}, format="json"),
        "/api/v1/counts/lines/{id}/",
    )
    unresolved = check(manager.get(f"{BASE}/unresolved"), "/api/v1/counts/unresolved/")
    check(
        manager.post(
            f"{BASE}/unresolved/{unresolved['results'][0]['id']}/resolve",
            {"product": flower.pk},
            format="json",
        ),
        "/api/v1/counts/unresolved/{id}/resolve/",
    )
    progress = check(manager.get(session), f"{S}{{id}}/")["progress"]
    assert progress["passes"][0]["units"] == "6.2500"  # 3 gummies, 2.25 g and 1 g mapped
    check(manager.post(f"{BASE}/passes/{count_pass['id']}/submit"), f"{P}{{id}}/submit/")
    preview = check(manager.get(f"{session}/variance"), f"{S}{{id}}/variance/")
    assert not preview["frozen"] and preview["rows"]  # a live preview of the submitted pass
    spare = check(
        manager.post(f"{session}/passes", {"location": br.pk}, format="json"),
        f"{S}{{id}}/passes/",
        201,
    )
    stray = check(
        manager.post(f"{BASE}/passes/{spare['id']}/lines", {"sku": "GUM"}, format="json"),
        f"{P}{{id}}/lines/",
        201,
    )
    deleted = manager.delete(f"{BASE}/lines/{stray['id']}")
    assert deleted.status_code == 204
    checker.check(deleted, "/api/v1/counts/lines/{id}/")
    check(manager.post(f"{BASE}/passes/{spare['id']}/void"), f"{P}{{id}}/void/")
    check(manager.post(f"{session}/submit"), f"{S}{{id}}/submit/")
    check(manager.post(f"{session}/reconcile"), f"{S}{{id}}/reconcile/")
    frozen = check(manager.get(f"{session}/variance"), f"{S}{{id}}/variance/")
    assert frozen["frozen"] and all("status" in row for row in frozen["rows"])
    rows = [row for row in frozen["rows"] if row["status"] == "pending"]
    assert len(rows) == 2, frozen["rows"]
    check(
        admin.patch(f"{session}/variance/{rows[0]['id']}", {"reason": "shrink"}, format="json"),
        f"{S}{{id}}/variance/{{row}}/",
    )
    approved = check(
        admin.post(f"{session}/variance/{rows[0]['id']}/approve", {}, format="json"),
        f"{S}{{id}}/variance/{{row}}/approve/",
    )
    assert approved["status"] == "approved"
    check(
        admin.post(f"{session}/variance/{rows[1]['id']}/reject", {}, format="json"),
        f"{S}{{id}}/variance/{{row}}/reject/",
    )
    closed = check(admin.post(f"{session}/finalize"), f"{S}{{id}}/finalize/")
    assert closed["status"] == "closed"
    after = check(manager.get(f"{session}/variance"), f"{S}{{id}}/variance/")
    posted = {row["id"]: row["posted_quantity"] for row in after["rows"]}
    assert posted[rows[0]["id"]] is not None and posted[rows[1]["id"]] is None  # rejected
    csv = manager.get(f"{session}/variance?format=csv")
    assert checker.check(csv, f"{S}{{id}}/variance/").startswith("location_code,sku,")

    another = check(
        manager.post(
            f"{BASE}/sessions",
            {
                "store": store.pk,
                "scope": "ZONE",
                "scope_locations": [br.pk],
                "scope_categories": [{"category": "Flower"}],
                "blind": True,
            },
            format="json",
        ),
        S,
        201,
    )
    assert another["scope_categories"] == [{"category": "Flower", "subcategory": ""}]
    check(manager.post(f"{BASE}/sessions/{another['id']}/cancel"), f"{S}{{id}}/cancel/")
