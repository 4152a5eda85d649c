"""Every answer is the one the OpenAPI description documents.

The schema fuzzer (tests/fuzz) checks generated requests, mostly refused ones; here real,
successful requests of every inventory endpoint are checked against ``/api/schema/`` strictly
(no undocumented key, no documented key missing, types, formats, nullability, four-place
decimals; see tests/response_schema.py) — and a sale, a refund and a stock document answer one
shape wherever they appear, replays byte for byte.
"""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command

from inventory.models import Organization, Role
from tests.factories import ProductFactory, StoreFactory, make_gtin
from tests.response_schema import AnswerChecker
from tests.stock_helpers import loc, ref

SALES = "/api/v1/sales"
STOCK = "/api/v1/stock"


@pytest.fixture(scope="module")
def checker(django_db_blocker):
    with django_db_blocker.unblock():
        return AnswerChecker.served()


@pytest.fixture
def admin(client_for):
    return client_for(Role.ADMIN)


@pytest.fixture
def shop(org, store, admin):
    """Two products with stock through the API: gummies in two lots (one expiring), flower."""
    gum = ProductFactory(
        org=org,
        sku="GUM",
        unit="each",
        tracks_expiry=True,
        reorder_point="50",
        barcodes=[{"code": make_gtin(42)}],
    )
    flower = ProductFactory(org=org, sku="FLW", unit="g")
    sf, br = loc(store, "SF"), loc(store, "BR")
    today = datetime.date.today()
    received = admin.post(
        f"{STOCK}/receipts",
        {
            "store": store.pk,
            "client_ref": ref("rcv"),
            "lines": [
                {
                    "product": gum.pk,
                    "location": sf.pk,
                    "quantity": "10",
                    "lot_code": "A",
                    "expiry_date": (today + datetime.timedelta(10)).isoformat(),
                    "unit_cost": "2.5",
                },
                {
                    "sku": "GUM",
                    "location": sf.pk,
                    "quantity": "5",
                    "lot_code": "B",
                    "expiry_date": (today + datetime.timedelta(90)).isoformat(),
                    "unit_cost": "3",
                },
                {"sku": "FLW", "location": sf.pk, "quantity": "20.5", "unit_cost": "4"},
            ],
        },
        format="json",
    )
    assert received.status_code == 201, received.content
    return gum, flower, sf, br


def sale_request(store, gum, flower, client_ref="pos-1"):
    return {
        "store": store.pk,
        "client_ref": client_ref,
        "source_ref": "till-7/0042",
        "lines": [
            {"product": gum.pk, "quantity": "12", "unit_price": "9.99"},
            {"sku": flower.sku, "quantity": "1.5"},
        ],
    }


# --- the description itself ---------------------------------------------------------------------

#: Objects whose values are of any JSON type by nature: the audit trail's snapshots of the
#: fields a change touched.
GENUINELY_FREE_FORM = {
    "AuditEvent.properties.before",
    "AuditEvent.properties.after",
    # a discrepancy's timeline is its audit events
    "DiscrepancyTimelineEntry.properties.before",
    "DiscrepancyTimelineEntry.properties.after",
    # what the source's app shows of its document (a count's row, a request, a shortfall)
    "SourceDocument.properties.details",
}


def test_schema_generates_valid_and_without_a_warning(tmp_path):
    """What CI runs (``.ci/run``): an untyped answer, an enum name collision or an unresolvable
    field is a warning, and a warning fails."""
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )


def test_every_operation_documents_a_typed_success_answer(checker):
    untyped, unanswered = [], []
    for path, method, operation in checker.operations():
        successes = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
        if not successes:
            unanswered.append(f"{method.upper()} {path}")
        for status, answer in successes.items():
            if status == "204":
                assert "content" not in answer, (method, path)
                continue
            content = answer.get("content")
            if not content:
                untyped.append(f"{method.upper()} {path} {status}: no body")
                continue
            for media_type, spec in content.items():
                schema = spec.get("schema", {})
                if media_type == "text/csv":
                    ok = schema == {"type": "string"}
                else:
                    ok = "$ref" in schema and schema.get("type") != "object"
                if not ok:
                    untyped.append(f"{method.upper()} {path} {status} {media_type}: {schema}")
    assert unanswered == [] and untyped == []


def test_every_free_form_object_is_a_map_of_strings_or_a_documented_shape(checker):
    """No component property is an untyped object or an untyped value (``{}``)."""
    loose = []

    def walk(where, node):
        if isinstance(node, dict):
            if node.get("additionalProperties") == {} or (
                node == {} and not where.endswith(".additionalProperties")
            ):
                loose.append(where)
            for key, value in node.items():
                if key in ("properties", "items", "additionalProperties", "allOf", "oneOf"):
                    walk(f"{where}.{key}", value)
                elif where.endswith(".properties"):
                    walk(f"{where}.{key}", value)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(f"{where}[{i}]", value)

    for name, component in checker.document["components"]["schemas"].items():
        if name != "Error":
            walk(name, component)
    assert sorted(set(loose) - GENUINELY_FREE_FORM) == []


def test_idempotent_writes_document_the_replay(checker):
    """A write a device may retry (its body carries ``client_ref``) answers 201 when recorded
    and 200 with the same shape when replayed."""
    components = checker.document["components"]["schemas"]
    for path, method, operation in checker.operations():
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        ref_ = body.get("schema", {}).get("$ref", "")
        request = components.get(ref_.rsplit("/", 1)[-1], {}) if ref_ else {}
        if "client_ref" not in request.get("properties", {}):
            continue
        answers = operation["responses"]
        assert {"200", "201"} <= set(answers), (method, path)
        assert (
            answers["200"]["content"]["application/json"]["schema"]
            == answers["201"]["content"]["application/json"]["schema"]
        ), (method, path)


# --- a sale answers one shape everywhere ------------------------------------------------------


def test_a_sale_answers_one_shape_created_replayed_fetched_listed_refunded_voided(
    checker, store, shop, admin, django_assert_num_queries
):
    gum, flower, sf, br = shop
    body = sale_request(store, gum, flower)
    created = admin.post(SALES, body, format="json")
    assert created.status_code == 201, created.content
    sale = checker.check(created, "/api/v1/sales/")
    assert [len(line["consumed"]) for line in sale["lines"]] == [2, 1]  # lots A and B
    assert (sale["status"], sale["voided_at"], sale["refunds"]) == ("completed", None, [])

    replayed = admin.post(SALES, body, format="json")
    assert replayed.status_code == 200
    checker.check(replayed, "/api/v1/sales/")
    assert replayed.content == created.content  # byte for byte: a device compares them

    fetched = admin.get(f"{SALES}/{sale['id']}")
    assert checker.check(fetched, "/api/v1/sales/{id}/") == sale
    assert fetched.content == created.content
    listed = admin.get(SALES)
    assert checker.check(listed, "/api/v1/sales/")["results"] == [sale]

    refund_request = {
        "client_ref": "rf-1",
        "reason": "unopened",
        "lines": [{"line": 1, "quantity": "3"}, {"line": 2, "quantity": "0.5"}],
    }
    refunded = admin.post(f"{SALES}/{sale['id']}/refunds", refund_request, format="json")
    assert refunded.status_code == 201, refunded.content
    refund = checker.check(refunded, "/api/v1/sales/{id}/refunds/")
    again = admin.post(f"{SALES}/{sale['id']}/refunds", refund_request, format="json")
    assert again.status_code == 200
    checker.check(again, "/api/v1/sales/{id}/refunds/")
    assert again.content == refunded.content
    after_refund = checker.check(admin.get(f"{SALES}/{sale['id']}"), "/api/v1/sales/{id}/")
    assert after_refund == {**sale, "refunds": [refund]}

    voided = admin.post(f"{SALES}/{sale['id']}/void", {"reason": "till error"}, format="json")
    assert voided.status_code == 200, voided.content
    void = checker.check(voided, "/api/v1/sales/{id}/void/")
    assert void["status"] == "voided" and void["voided_at"]
    assert void == {**after_refund, "status": "voided", "voided_at": void["voided_at"]}
    assert checker.check(admin.get(f"{SALES}/{sale['id']}"), "/api/v1/sales/{id}/") == void
    assert checker.check(admin.get(f"{SALES}?status=voided"), "/api/v1/sales/")["results"] == [void]

    # a replay still answers the sale as it was recorded, byte for byte
    late = admin.post(SALES, body, format="json")
    assert (late.status_code, late.content) == (200, created.content)


def test_the_stored_answer_is_the_sale_shape(checker, org, store, shop, admin):
    """What the service stores is the answer POST gave (``sale_body`` only orders it)."""
    from inventory.models import Sale

    gum, flower, *_ = shop
    created = admin.post(SALES, sale_request(store, gum, flower), format="json")
    answer = checker.check(created, "/api/v1/sales/")
    assert Sale.objects.get(pk=answer["id"]).result == answer


@pytest.mark.parametrize("blind", [False, True])
def test_a_sale_sold_without_stock_answers_its_warnings_as_documented(
    checker, org, store, shop, admin, client_for, blind
):
    Organization.objects.filter(pk=org.pk).update(negative_stock_mode="warn")
    gum, flower, sf, _ = shop
    if blind:  # an open blind count hides what the store holds from an operator
        session = admin.post(
            "/api/v1/counts/sessions",
            {"store": store.pk, "scope": "FULL_STORE", "blind": True},
            format="json",
        ).json()
        assert admin.post(f"/api/v1/counts/sessions/{session['id']}/start").status_code == 200
    operator = client_for(Role.OPERATOR)
    body = {
        "store": store.pk,
        "client_ref": ref("oversold"),
        "lines": [{"product": flower.pk, "quantity": "25"}],
    }
    created = operator.post(SALES, body, format="json")
    assert created.status_code == 201, created.content
    sale = checker.check(created, "/api/v1/sales/")
    (warning,) = sale["warnings"]
    assert warning["available"] == (None if blind else "20.5000")
    assert any(c["unallocated"] for c in sale["lines"][0]["consumed"])
    replayed = operator.post(SALES, body, format="json")
    assert (replayed.status_code, replayed.content) == (200, created.content)
    fetched = checker.check(admin.get(f"{SALES}/{sale['id']}"), "/api/v1/sales/{id}/")
    assert fetched["warnings"][0]["available"] == "20.5000"


# --- stock documents ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["receipts", "moves", "adjustments", "write-offs"])
def test_stock_documents_answer_as_documented_and_replay_byte_for_byte(
    checker, store, shop, admin, kind
):
    gum, flower, sf, br = shop
    line = {
        "receipts": {
            "product": flower.pk,
            "location": br.pk,
            "quantity": "2",
            "lot_code": "F2",
            "unit_cost": "4.1",
        },
        "moves": {"product": gum.pk, "from_location": sf.pk, "to_location": br.pk, "quantity": "2"},
        "adjustments": {"product": flower.pk, "location": sf.pk, "quantity": "-0.25"},
        "write-offs": {"product": gum.pk, "location": sf.pk, "quantity": "1", "lot_code": "A"},
    }[kind]
    body = {"store": store.pk, "client_ref": ref(kind), "lines": [line]}
    if kind in ("adjustments", "write-offs"):
        body["reason"] = "found damaged"
    if kind == "write-offs":
        body["type"] = "damage"
    created = admin.post(f"{STOCK}/{kind}", body, format="json")
    assert created.status_code == 201, created.content
    document = checker.check(created, f"/api/v1/stock/{kind}/")
    assert document["rows"] and document["type"] == ("damage" if kind == "write-offs" else None)
    replayed = admin.post(f"{STOCK}/{kind}", body, format="json")
    assert replayed.status_code == 200
    checker.check(replayed, f"/api/v1/stock/{kind}/")
    assert replayed.content == created.content


# --- reads and reports ----------------------------------------------------------------------------


def test_stock_reads_and_reports_answer_as_documented(checker, org, store, shop, admin):
    gum, flower, sf, br = shop
    admin.post(SALES, sale_request(store, gum, flower), format="json")
    today = datetime.date.today().isoformat()
    reads = [
        (f"{STOCK}/", "/api/v1/stock/"),
        (f"{STOCK}/?expiring=true&store={store.pk}", "/api/v1/stock/"),
        (f"{STOCK}/{gum.pk}/batches", "/api/v1/stock/{product_id}/batches/"),
        (f"{STOCK}/{gum.pk}/batches?store={store.pk}", "/api/v1/stock/{product_id}/batches/"),
        (f"{STOCK}/summary", "/api/v1/stock/summary/"),
        (f"{STOCK}/kpis", "/api/v1/stock/kpis/"),
        (f"{STOCK}/kpis?store={store.pk}", "/api/v1/stock/kpis/"),
        (f"{STOCK}/shortfalls", "/api/v1/stock/shortfalls/"),
        (f"{STOCK}/reconciliation", "/api/v1/stock/reconciliation/"),
        (f"{STOCK}/reconciliation?store={store.pk}", "/api/v1/stock/reconciliation/"),
        ("/api/v1/ledger/", "/api/v1/ledger/"),
        ("/api/v1/ledger/?page_size=2", "/api/v1/ledger/"),
        (f"/api/v1/reports/cogs?from={today}&to={today}", "/api/v1/reports/cogs/"),
        (f"/api/v1/reports/cogs?from={today}&to={today}&store={store.pk}", "/api/v1/reports/cogs/"),
    ]
    for url, path in reads:
        response = admin.get(url)
        assert response.status_code == 200, (url, response.content)
        checker.check(response, path)
    page = checker.check(admin.get("/api/v1/ledger/?page_size=2"), "/api/v1/ledger/")
    assert page["next"] and len(page["results"]) == 2
    checker.check(admin.get(page["next"]), "/api/v1/ledger/")
    cogs = checker.check(admin.get(reads[-1][0]), "/api/v1/reports/cogs/")
    assert cogs["by_product"] and cogs["by_lot"]
    batches = checker.check(admin.get(reads[2][0]), "/api/v1/stock/{product_id}/batches/")
    assert [b["lot_code"] for b in batches["results"]] == ["B"]  # the sale took all of A

    csv = admin.get("/api/v1/ledger/?format=csv")
    assert csv.status_code == 200
    text = checker.check(csv, "/api/v1/ledger/")
    assert text.splitlines()[0].startswith("id,occurred_at,")


def test_a_shortfall_and_a_broken_invariant_answer_as_documented(checker, org, store, shop, admin):
    from inventory.models import StockQuant

    Organization.objects.filter(pk=org.pk).update(negative_stock_mode="warn")
    gum, flower, sf, _ = shop
    admin.post(
        SALES,
        {"store": store.pk, "client_ref": ref(), "lines": [{"sku": "FLW", "quantity": "30"}]},
        format="json",
    )
    shortfalls = checker.check(admin.get(f"{STOCK}/shortfalls"), "/api/v1/stock/shortfalls/")
    assert shortfalls["results"]
    # a quant nudged behind the ledger's back (the database refuses a negative one outside the
    # unallocated batch, so negative_quants stays empty; open_shortfalls has the same items)
    StockQuant.objects.filter(product=gum, location=sf).update(quantity=100)
    report = checker.check(admin.get(f"{STOCK}/reconciliation"), "/api/v1/stock/reconciliation/")
    assert not report["ok"] and report["mismatches"] and report["flagged_products"]
    assert report["open_shortfalls"]


# --- catalog and tenancy --------------------------------------------------------------------------


def test_catalog_answers_as_documented(checker, org, shop, admin):
    gum, *_ = shop
    created = admin.post(
        "/api/v1/products",
        {
            "sku": "NEW-1",
            "name": "New",
            "unit": "g",
            "default_cost": "1.5",
            "barcodes": [{"code": make_gtin(77)}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    product = checker.check(created, "/api/v1/products/")
    checker.check(admin.get("/api/v1/products"), "/api/v1/products/")
    checker.check(admin.get(f"/api/v1/products/{product['id']}"), "/api/v1/products/{id}/")
    patched = admin.patch(
        f"/api/v1/products/{product['id']}", {"reorder_point": "3"}, format="json"
    )
    checker.check(patched, "/api/v1/products/{id}/")
    lookup = admin.get(f"/api/v1/products/lookup?barcode=01{make_gtin(42).zfill(14)}10LOT-A")
    assert lookup.status_code == 200, lookup.content
    checker.check(lookup, "/api/v1/products/lookup/")
    bulk = admin.post(
        "/api/v1/products/bulk",
        {"products": [{"sku": "NEW-1", "name": "Renamed"}, {"sku": "NEW-2", "name": "Two"}]},
        format="json",
    )
    assert bulk.status_code == 200, bulk.content
    assert checker.check(bulk, "/api/v1/products/bulk/") == {
        "created": ["NEW-2"],
        "updated": ["NEW-1"],
    }
    mapping = admin.post(
        "/api/v1/classifications",
        {"classification": "Pre-Roll", "category": "Flower", "subcategory": "Pre-rolls"},
        format="json",
    )
    assert mapping.status_code == 201, mapping.content
    checker.check(mapping, "/api/v1/classifications/")
    checker.check(admin.get("/api/v1/classifications"), "/api/v1/classifications/")
    archived = admin.delete(f"/api/v1/products/{product['id']}")
    assert archived.status_code == 204
    checker.check(archived, "/api/v1/products/{id}/")


def test_tenancy_answers_as_documented(checker, org, store, admin, client_for):
    checker.check(admin.get("/api/v1/me"), "/api/v1/me/")
    limited = client_for(Role.OPERATOR, stores=[store])
    me = checker.check(limited.get("/api/v1/me"), "/api/v1/me/")
    assert me["stores"] == [store.pk] and me["token"] == "test device"
    checker.check(admin.get("/api/v1/org"), "/api/v1/org/")
    checker.check(
        admin.patch(
            "/api/v1/org",
            {"escalation_threshold": "250.00", "discrepancy_enforcement": "warn"},
            format="json",
        ),
        "/api/v1/org/",
    )
    created = admin.post(
        "/api/v1/stores",
        {"code": "S9", "name": "Nine", "external_ids": {"cova": 1234, "erp": "E-9"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    new_store = checker.check(created, "/api/v1/stores/")
    assert new_store["external_ids"] == {"cova": "1234", "erp": "E-9"}  # ids are text
    checker.check(admin.get("/api/v1/stores"), "/api/v1/stores/")
    checker.check(admin.get(f"/api/v1/stores/{store.pk}"), "/api/v1/stores/{id}/")
    room = admin.post(
        "/api/v1/locations",
        {"store": store.pk, "code": "VA", "name": "Vault", "kind": "vault"},
        format="json",
    )
    assert room.status_code == 201, room.content
    checker.check(room, "/api/v1/locations/")
    checker.check(admin.get("/api/v1/locations"), "/api/v1/locations/")
    person = admin.post(
        "/api/v1/memberships",
        {"email": "sam@example.com", "role": "operator", "stores": [store.pk]},
        format="json",
    )
    assert person.status_code == 201, person.content
    checker.check(person, "/api/v1/memberships/")
    checker.check(admin.get("/api/v1/memberships"), "/api/v1/memberships/")
    issued = admin.post(
        "/api/v1/tokens", {"name": "Tablet 2", "email": "sam@example.com"}, format="json"
    )
    assert issued.status_code == 201, issued.content
    token = checker.check(issued, "/api/v1/tokens/")
    checker.check(admin.get("/api/v1/tokens"), "/api/v1/tokens/")
    revoked = admin.post(f"/api/v1/tokens/{token['id']}/revoke")
    assert checker.check(revoked, "/api/v1/tokens/{id}/revoke/")["revoked_at"]


def test_device_sign_in_answers_as_documented(checker, org, member):
    from rest_framework.test import APIClient

    membership = member(Role.OPERATOR)
    membership.user.set_password("right-pass-1234")
    membership.user.save()
    device = APIClient()
    signed_in = device.post(
        "/api/v1/auth/token",
        {"email": membership.user.email, "password": "right-pass-1234", "device": "Till 1"},
        format="json",
    )
    assert signed_in.status_code == 201, signed_in.content
    key = checker.check(signed_in, "/api/v1/auth/token/")["key"]
    device.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    signed_out = device.post("/api/v1/auth/logout")
    assert signed_out.status_code == 204
    checker.check(signed_out, "/api/v1/auth/logout/")


def test_a_store_id_stored_as_a_number_is_answered_as_text(checker, org, admin):
    other = StoreFactory(org=org, code="S8")
    type(other).objects.filter(pk=other.pk).update(external_ids={"cova": 77})
    answer = checker.check(admin.get(f"/api/v1/stores/{other.pk}"), "/api/v1/stores/{id}/")
    assert answer["external_ids"] == {"cova": "77"}
