"""While a blind count is open, operators and viewers cannot read the stock it counts.

Every read that would give the expected quantity away leaves the counted places out: the stock
list, a product's lots, the summary, the KPIs, the ledger and its CSV, and the ``available``
figure of a refused sale. Managers see everything; once the count closes, everyone does.
"""

from __future__ import annotations

import pytest

from counts.services import sessions as S
from tests.factories import MembershipFactory, ProductFactory
from tests.stock_helpers import loc, receive

READS = ["/api/v1/stock/", "/api/v1/stock/summary", "/api/v1/ledger/"]


@pytest.fixture
def shop(org, store):
    flower = ProductFactory(org=org, sku="FLOWER", category="Flower")
    gummy = ProductFactory(org=org, sku="GUMMY", category="Edibles")
    receive(org, store, flower, 7, location="BR")
    receive(org, store, gummy, 5, location="BR")
    receive(org, store, gummy, 3, location="SF")
    manager = MembershipFactory(org=org, role="manager").user
    return {"flower": flower, "gummy": gummy, "manager": manager}


def blind(org, store, shop, **scope):
    session = S.session_create(
        org=org,
        store=store,
        blind=True,
        actor=shop["manager"],
        scope="ZONE" if scope else "FULL_STORE",
        **scope,
    )
    return S.session_start(org=org, session=session, actor=shop["manager"])


def stock_rows(client, query=""):
    return {
        (r["sku"], r["on_hand"]) for r in client.get(f"/api/v1/stock/{query}").json()["results"]
    }


def ledger(client, query=""):
    return {
        (r["sku"], r["location"], r["qty_delta"])
        for r in client.get(f"/api/v1/ledger/{query}").json()["results"]
    }


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_a_full_store_blind_count_hides_the_store(org, store, shop, client_for, role):
    blind(org, store, shop)
    client = client_for(role)
    gummy = shop["gummy"]
    assert stock_rows(client) == set()
    assert stock_rows(client, f"?location={loc(store, 'BR').pk}") == set()
    assert client.get(f"/api/v1/stock/{gummy.pk}/batches").json()["results"] == []
    assert client.get("/api/v1/stock/summary").json()["results"] == []
    kpis = client.get("/api/v1/stock/kpis").json()
    assert (kpis["skus"], kpis["value"]) == (0, "0.0000")
    assert ledger(client) == set()
    csv = client.get("/api/v1/ledger/?format=csv")
    assert b"GUMMY" not in b"".join(csv.streaming_content)


def test_managers_see_everything_and_everyone_sees_once_it_closes(org, store, shop, client_for):
    session = blind(org, store, shop)
    manager = client_for("manager")
    assert stock_rows(manager) == {("FLOWER", "7.0000"), ("GUMMY", "8.0000")}
    S.session_cancel(org=org, session=session, actor=shop["manager"])
    assert stock_rows(client_for("viewer")) == {("FLOWER", "7.0000"), ("GUMMY", "8.0000")}


def test_a_zone_count_hides_only_its_rooms_and_categories(org, store, shop, client_for):
    blind(
        org,
        store,
        shop,
        scope_locations=[loc(store, "BR")],
        scope_categories=[{"category": "edibles"}],
    )
    viewer = client_for("viewer")
    # the back room's gummies are being counted; the floor's and the back room's flower are not
    assert stock_rows(viewer) == {("FLOWER", "7.0000"), ("GUMMY", "3.0000")}
    assert ledger(viewer) == {
        ("FLOWER", loc(store, "BR").pk, "7.0000"),
        ("GUMMY", loc(store, "SF").pk, "3.0000"),
    }
    batches = viewer.get(f"/api/v1/stock/{shop['gummy'].pk}/batches").json()["results"]
    assert [b["total"] for b in batches] == ["3.0000"]
    summary = viewer.get("/api/v1/stock/summary").json()["results"]
    assert {r["sku"]: r["on_hand"] for r in summary} == {"FLOWER": "7.0000", "GUMMY": "3.0000"}


def test_another_stores_blind_count_hides_nothing_here(org, store, shop, client_for):
    from tests.factories import StoreFactory

    blind(org, StoreFactory(org=org, code="S2"), shop)
    assert stock_rows(client_for("viewer")) == {("FLOWER", "7.0000"), ("GUMMY", "8.0000")}


def test_a_refused_sale_does_not_tell_an_operator_what_is_there(org, store, shop, client_for):
    blind(org, store, shop)
    body = {
        "store": store.pk,
        "client_ref": "blind-1",
        "lines": [{"sku": "GUMMY", "quantity": "50"}],
    }
    refused = client_for("operator").post("/api/v1/sales", body, format="json")
    assert refused.status_code == 409
    line = refused.json()["lines"][0]
    assert (line["requested"], line["available"], line["expired"]) == ("50.0000", None, None)
    body["client_ref"] = "blind-2"
    manager = client_for("manager").post("/api/v1/sales", body, format="json").json()
    assert manager["lines"][0]["available"] == "3.0000"


def test_a_warning_does_not_tell_an_operator_either(org, store, shop, client_for):
    org.negative_stock_mode = "warn"
    org.save(update_fields=["negative_stock_mode"])
    blind(org, store, shop)
    body = {"store": store.pk, "client_ref": "warn-1", "lines": [{"sku": "GUMMY", "quantity": "4"}]}
    sold = client_for("operator").post("/api/v1/sales", body, format="json").json()
    assert sold["warnings"][0]["available"] is None


def test_reading_the_sale_back_does_not_tell_either(org, store, shop, client_for):
    org.negative_stock_mode = "warn"
    org.save(update_fields=["negative_stock_mode"])
    blind(org, store, shop)
    body = {"store": store.pk, "client_ref": "warn-2", "lines": [{"sku": "GUMMY", "quantity": "4"}]}
    operator = client_for("operator")
    sold = operator.post("/api/v1/sales", body, format="json").json()
    assert operator.get(f"/api/v1/sales/{sold['id']}").json()["warnings"][0]["available"] is None
    listed = operator.get("/api/v1/sales").json()["results"]
    assert [w["available"] for s in listed for w in s["warnings"]] == [None]
    manager = client_for("manager").get(f"/api/v1/sales/{sold['id']}").json()
    assert manager["warnings"][0]["available"] == "3.0000"
