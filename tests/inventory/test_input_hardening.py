"""Input that used to be accepted (or crash) and is now refused or normalised (#8 items 13, 14,
18, 19, 20): NUL and control characters, look-alike identifiers, business times outside the
platform's range, numbers in forms that only look like quantities, and unknown query parameters.

Each refusal is a 4xx with a stable code naming the field, and writes nothing.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from inventory.catalog import services as catalog_services
from inventory.models import (
    Batch,
    Product,
    Role,
    Sale,
    StockDocument,
    StockLedger,
    Store,
)
from inventory.tenancy.tokens import api_token_create
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, make_gtin
from tests.inventory.test_api_access import snapshot
from tests.stock_helpers import receive

SALES = "/api/v1/sales"
RECEIPTS = "/api/v1/stock/receipts"
NFD_SKU = "CAFE\u0301-1"  # "CAFÉ-1" typed with a combining accent (macOS, some keyboards)
NFC_SKU = "CAF\u00c9-1"


@pytest.fixture
def shop(org):
    store = StoreFactory(org=org, code="S1", time_zone="America/Toronto")
    gram = ProductFactory(org=org, sku="G-1", unit="g", barcodes=[{"code": make_gtin(11)}])
    each = ProductFactory(org=org, sku="E-1", unit="each")
    receive(org, store, gram, 100)
    receive(org, store, each, 100)
    return {"store": store, "gram": gram, "each": each}


def stock_rows() -> tuple[int, int, int]:
    return Sale.objects.count(), StockDocument.objects.count(), StockLedger.objects.count()


def post_raw(client: APIClient, path: str, text: str):
    """A JSON body exactly as written (numbers the test client would not produce)."""
    return client.generic("POST", path, text.encode(), content_type="application/json")


def refused(response, field: str, code: str = "invalid", status: int = 400) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert field in body["fields"], body
    return body


# --- 13: NUL and control characters, wherever a string comes in ----------------------------


def test_nul_in_the_lookup_barcode_is_refused_naming_it(client_for, shop):
    response = client_for(Role.VIEWER).get("/api/v1/products/lookup?barcode=a%00b")
    refused(response, "barcode")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/products?search=a%00b",
        "/api/v1/sales?client_ref=a%00b",
        "/api/v1/stock/?search=%07x",
        "/api/v1/ledger/?source_ref=%00",
    ],
)
def test_control_characters_in_any_query_parameter_are_refused_naming_it(client_for, shop, path):
    name = path.split("?")[1].split("=")[0]
    refused(client_for(Role.VIEWER).get(path), name)


def test_nul_in_the_org_parameter_of_a_session_is_refused(org, shop):
    membership = MembershipFactory(org=org, role=Role.VIEWER)
    client = APIClient()
    client.force_login(membership.user)
    refused(client.get("/api/v1/products?org=a%00b"), "org")


@pytest.mark.parametrize(
    "external_ids,field",
    [
        ({"cova": "b\u0000"}, "external_ids.cova"),
        ({"co\u0000va": "1"}, "external_ids.co\u0000va"),
        ({"cova": "1\u200b"}, "external_ids.cova"),
    ],
)
def test_json_stored_store_ids_refuse_nul_and_invisible_characters(
    org, client_for, external_ids, field
):
    client = client_for(Role.ADMIN)
    before = snapshot(org)
    response = client.post(
        "/api/v1/stores", {"code": "X1", "name": "x", "external_ids": external_ids}, format="json"
    )
    refused(response, field)
    assert snapshot(org) == before


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "Line\nbreak"),
        ("name", "Bell\u0007"),
        ("brand", "Tab\there"),
        ("category", "Esc\u001b"),
    ],
)
def test_names_refuse_control_characters(org, client_for, field, value):
    client = client_for(Role.ADMIN)
    body = {"sku": "N-1", "name": "x", field: value}
    refused(client.post("/api/v1/products", body, format="json"), field)
    assert not Product.objects.filter(sku="N-1").exists()


def test_free_text_keeps_line_breaks_and_tabs_but_not_other_controls(org, client_for, shop):
    client = client_for(Role.MANAGER)
    line = {"sku": "G-1", "location": shop["store"].locations.get(code="SF").pk, "quantity": "1"}
    ok = client.post(
        "/api/v1/stock/adjustments",
        {
            "store": shop["store"].pk,
            "client_ref": "adj-1",
            "reason": "Found\r\n\tbehind a shelf",
            "lines": [line],
        },
        format="json",
    )
    assert ok.status_code == 201, ok.content
    assert StockDocument.objects.get(client_ref="adj-1").reason == "Found\r\n\tbehind a shelf"
    before = stock_rows()
    bad = client.post(
        "/api/v1/stock/adjustments",
        {
            "store": shop["store"].pk,
            "client_ref": "adj-2",
            "reason": "Found\u0000",
            "lines": [line],
        },
        format="json",
    )
    refused(bad, "reason")
    assert stock_rows() == before


# --- 14: business times and dates -------------------------------------------------------------


def sale_body(shop, **extra):
    return {
        "store": shop["store"].pk,
        "client_ref": extra.pop("client_ref", "s-1"),
        "lines": [{"sku": "E-1", "quantity": "1"}],
        **extra,
    }


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00Z",
        "1900-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "0001-01-01T00:00:00-05:00",
        "1999-12-31T18:59:59-05:00",
    ],
)
def test_sales_dated_before_2000_are_refused(client_for, shop, moment):
    before = stock_rows()
    response = client_for(Role.OPERATOR).post(
        SALES, sale_body(shop, occurred_at=moment), format="json"
    )
    refused(response, "occurred_at")
    assert stock_rows() == before


def test_a_sale_at_the_first_moment_of_2000_is_accepted(client_for, shop):
    response = client_for(Role.OPERATOR).post(
        SALES, sale_body(shop, occurred_at="2000-01-01T00:00:00Z"), format="json"
    )
    assert response.status_code == 201, response.content


def test_the_earliest_business_time_is_a_setting(client_for, shop):
    with override_settings(BUSINESS_TIME_EARLIEST=datetime.date(2020, 1, 1)):
        response = client_for(Role.OPERATOR).post(
            SALES, sale_body(shop, occurred_at="2019-06-01T00:00:00Z"), format="json"
        )
    refused(response, "occurred_at")


@pytest.mark.parametrize(
    "path,field",
    [
        ("/api/v1/stock/receipts", "occurred_at"),
        ("/api/v1/stock/moves", "occurred_at"),
        ("/api/v1/stock/adjustments", "occurred_at"),
        ("/api/v1/stock/write-offs", "occurred_at"),
    ],
)
def test_stock_documents_dated_year_1_are_refused(client_for, shop, path, field):
    response = client_for(Role.ADMIN).post(
        path, {"store": shop["store"].pk, "occurred_at": "0001-01-01T00:00:00Z"}, format="json"
    )
    refused(response, field)


def test_voids_and_refunds_dated_1900_are_refused(client_for, shop):
    operator, manager = client_for(Role.OPERATOR), client_for(Role.MANAGER)
    sale = operator.post(SALES, sale_body(shop), format="json").json()
    old = "1900-01-01T00:00:00Z"
    refused(
        manager.post(f"{SALES}/{sale['id']}/void", {"occurred_at": old}, format="json"),
        "occurred_at",
    )
    refund = {"client_ref": "r-1", "occurred_at": old, "lines": [{"line": 1, "quantity": "1"}]}
    refused(manager.post(f"{SALES}/{sale['id']}/refunds", refund, format="json"), "occurred_at")


@pytest.mark.parametrize("expiry", ["9999-12-31", "1999-12-31", "0001-01-01"])
def test_expiry_dates_outside_the_business_range_are_refused(client_for, shop, expiry):
    before = stock_rows()
    response = client_for(Role.MANAGER).post(
        RECEIPTS,
        {
            "store": shop["store"].pk,
            "client_ref": "rc-1",
            "lines": [
                {
                    "sku": "G-1",
                    "location": shop["store"].locations.get(code="SF").pk,
                    "quantity": "1",
                    "lot_code": "L1",
                    "expiry_date": expiry,
                }
            ],
        },
        format="json",
    )
    refused(response, "lines.0.expiry_date")
    assert stock_rows() == before
    assert not Batch.objects.filter(lot_code="L1").exists()


@pytest.mark.parametrize("param", ["occurred_from", "occurred_to"])
def test_ledger_filters_before_2000_are_refused(client_for, shop, param):
    refused(client_for(Role.VIEWER).get(f"/api/v1/ledger/?{param}=0001-01-01T00:00:00Z"), param)


def test_count_scans_dated_before_2000_are_refused(org, client_for, shop):
    from counts.models import CountLine

    manager = client_for(Role.MANAGER)
    store = shop["store"]
    session = manager.post(
        "/api/v1/counts/sessions", {"store": store.pk, "scope": "FULL_STORE"}, format="json"
    ).json()
    manager.post(f"/api/v1/counts/sessions/{session['id']}/start", format="json")
    count_pass = manager.post(
        f"/api/v1/counts/sessions/{session['id']}/passes",
        {"location": store.locations.get(code="SF").pk},
        format="json",
    ).json()
    response = manager.post(
        f"/api/v1/counts/passes/{count_pass['id']}/lines",
        {"sku": "E-1", "quantity": "3", "captured_at": "1900-01-01T00:00:00Z"},
        format="json",
    )
    refused(response, "captured_at")
    assert not CountLine.objects.exists()


# --- 18: quantities and money -----------------------------------------------------------------


@pytest.mark.parametrize(
    "quantity",
    [
        "1_000",
        "\u0661",
        "\u0661\u0662",
        "1E+3",
        "1e3",
        "1e-2",
        "+1",
        ".5",
        "5.",
        "0x10",
        "1,5",
        "0.00001",
        "Infinity",
        "NaN",
        "\uff11",
    ],
)
def test_quantities_in_other_forms_than_plain_digits_are_refused(client_for, shop, quantity):
    before = stock_rows()
    body = sale_body(shop)
    body["lines"][0]["quantity"] = quantity
    refused(client_for(Role.OPERATOR).post(SALES, body, format="json"), "lines.0.quantity")
    assert stock_rows() == before


@pytest.mark.parametrize(
    "number", ["1E+3", "1e3", "1e-2", "100e-2", "0.00001", "1.00000000000000001"]
)
def test_json_numbers_with_exponents_or_too_many_decimals_are_refused(client_for, shop, number):
    before = stock_rows()
    text = (
        f'{{"store": {shop["store"].pk}, "client_ref": "n-1", '
        f'"lines": [{{"sku": "G-1", "quantity": {number}}}]}}'
    )
    refused(post_raw(client_for(Role.OPERATOR), SALES, text), "lines.0.quantity")
    assert stock_rows() == before


def test_json_numbers_arrive_exactly_never_through_a_float(client_for, shop, org):
    # 0.1 + 0.2 as floats is 0.30000000000000004; read as decimals it is exactly 0.3
    text = (
        f'{{"store": {shop["store"].pk}, "client_ref": "n-2", '
        f'"lines": [{{"sku": "G-1", "quantity": 0.1}}, {{"sku": "G-1", "quantity": 0.2}}]}}'
    )
    response = post_raw(client_for(Role.OPERATOR), SALES, text)
    assert response.status_code == 201, response.content
    sold = sum(Decimal(line["quantity"]) for line in response.json()["lines"])
    assert sold == Decimal("0.3")


@pytest.mark.parametrize(
    "text",
    [
        '{"sku": "Q-1", "name": "q", "reorder_point": NaN}',
        '{"sku": "Q-1", "name": "q", "reorder_point": Infinity}',
        '{"sku": "Q-1", "name": "q", "reorder_point": -Infinity}',
    ],
)
def test_nan_and_infinity_are_not_json(client_for, text):
    response = post_raw(client_for(Role.ADMIN), "/api/v1/products", text)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Product.objects.filter(sku="Q-1").exists()


@pytest.mark.parametrize(
    "field,value",
    [
        ("reorder_point", "1_0"),
        ("reorder_qty", "\u0663"),
        ("default_cost", "1E+1"),
        ("default_price", "1.23456"),
    ],
)
def test_product_quantities_and_money_take_plain_decimals_only(client_for, field, value):
    response = client_for(Role.ADMIN).post(
        "/api/v1/products", {"sku": "Q-1", "name": "q", field: value}, format="json"
    )
    refused(response, field)
    assert not Product.objects.filter(sku="Q-1").exists()


@pytest.mark.parametrize(
    "body,field",
    [
        ({"escalation_threshold": "1.005"}, "escalation_threshold"),  # money: 2 places here
        ({"escalation_threshold": "1e2"}, "escalation_threshold"),
    ],
)
def test_organisation_numbers_take_plain_decimals_only(org, client_for, body, field):
    client = client_for(Role.ADMIN)
    before = snapshot(org)
    refused(client.patch("/api/v1/org", body, format="json"), field)
    assert snapshot(org) == before


def test_whole_number_fields_refuse_fractions_sent_as_json_numbers(client_for, shop):
    body = sale_body(shop)
    body["lines"][0]["location"] = 1.5
    refused(client_for(Role.OPERATOR).post(SALES, body, format="json"), "lines.0.location")
    text = json.dumps(sale_body(shop)).replace('"quantity": "1"', '"quantity": "1", "product": 1e0')
    refused(post_raw(client_for(Role.OPERATOR), SALES, text), "lines.0.product")


def test_text_fields_refuse_fractional_json_numbers(client_for, shop):
    text = json.dumps(sale_body(shop)).replace('"client_ref": "s-1"', '"client_ref": 1.5')
    refused(post_raw(client_for(Role.OPERATOR), SALES, text), "client_ref")


def test_count_quantities_take_plain_decimals_only(client_for, shop):
    manager = client_for(Role.MANAGER)
    store = shop["store"]
    session = manager.post(
        "/api/v1/counts/sessions", {"store": store.pk, "scope": "FULL_STORE"}, format="json"
    ).json()
    manager.post(f"/api/v1/counts/sessions/{session['id']}/start", format="json")
    count_pass = manager.post(
        f"/api/v1/counts/sessions/{session['id']}/passes",
        {"location": store.locations.get(code="SF").pk},
        format="json",
    ).json()
    response = manager.post(
        f"/api/v1/counts/passes/{count_pass['id']}/lines",
        {"sku": "G-1", "quantity": "\u0661\u0660"},
        format="json",
    )
    refused(response, "quantity")


# --- 19: look-alike identifiers ---------------------------------------------------------------


def test_an_nfd_sku_is_stored_nfc_and_collides_with_its_nfc_twin(org, client_for):
    client = client_for(Role.ADMIN)
    created = client.post("/api/v1/products", {"sku": NFD_SKU, "name": "Caf\u00e9"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["sku"] == NFC_SKU
    assert Product.objects.get().sku == NFC_SKU
    twin = client.post("/api/v1/products", {"sku": NFC_SKU, "name": "again"}, format="json")
    refused(twin, "sku", code="duplicate_sku", status=409)


def test_an_nfd_scan_or_sku_finds_the_nfc_product(org, client_for, shop):
    ProductFactory(org=org, sku=NFC_SKU, unit="each")
    viewer = client_for(Role.VIEWER)
    found = viewer.get("/api/v1/products/lookup", {"barcode": NFD_SKU})
    assert found.status_code == 200, found.content
    assert found.json()["product"]["sku"] == NFC_SKU
    receive(org, shop["store"], Product.objects.get(sku=NFC_SKU), 5)
    sale = client_for(Role.OPERATOR).post(
        SALES,
        {
            "store": shop["store"].pk,
            "client_ref": "x",
            "lines": [{"sku": NFD_SKU, "quantity": "1"}],
        },
        format="json",
    )
    assert sale.status_code == 201, sale.content


@pytest.mark.parametrize(
    "sku",
    [
        "A\u200bB",
        "\ufeffAB",
        "A\u00adB",
        "A\u00a0B",
        "A\u2060B",
        "A\u202eB",
        "A\ufe0fB",
        "A\u3164B",
        "A\u0007B",
    ],
)
def test_skus_with_invisible_or_control_characters_are_refused(org, client_for, sku):
    client = client_for(Role.ADMIN)
    before = snapshot(org)
    refused(client.post("/api/v1/products", {"sku": sku, "name": "x"}, format="json"), "sku")
    refused(
        client.post(
            "/api/v1/products/bulk", {"products": [{"sku": sku, "name": "x"}]}, format="json"
        ),
        "products.0.sku",
    )
    assert snapshot(org) == before


@pytest.mark.parametrize(
    "body,field",
    [
        ({"code": "S\u200b9", "name": "x"}, "code"),
        ({"code": "S9", "name": "x", "cova_location_id": "\ufeff12"}, "cova_location_id"),
    ],
)
def test_store_codes_refuse_invisible_characters(org, client_for, body, field):
    admin = client_for(Role.ADMIN)
    before = snapshot(org)
    refused(admin.post("/api/v1/stores", body, format="json"), field)
    assert snapshot(org) == before


def test_barcodes_lot_codes_and_client_refs_refuse_invisible_characters(org, client_for, shop):
    admin = client_for(Role.ADMIN)
    refused(
        admin.post(
            "/api/v1/products",
            {"sku": "B-1", "name": "x", "barcodes": [{"code": "SUP\u200b1", "kind": "supplier"}]},
            format="json",
        ),
        "barcodes.0.code",
    )
    before = stock_rows()
    location = shop["store"].locations.get(code="SF").pk
    for body, field in [
        (
            {
                "client_ref": "r\u200b1",
                "lines": [{"sku": "G-1", "location": location, "quantity": "1"}],
            },
            "client_ref",
        ),
        (
            {
                "client_ref": "r1",
                "lines": [
                    {"sku": "G-1", "location": location, "quantity": "1", "lot_code": "L\u00a01"}
                ],
            },
            "lines.0.lot_code",
        ),
        (
            {
                "client_ref": "r1",
                "lines": [
                    {
                        "barcode": "0" + make_gtin(11) + "\u200b",
                        "location": location,
                        "quantity": "1",
                    }
                ],
            },
            "lines.0.barcode",
        ),
    ]:
        refused(admin.post(RECEIPTS, {"store": shop["store"].pk, **body}, format="json"), field)
    assert stock_rows() == before


def test_names_keep_joiners_that_scripts_and_emoji_need(org, client_for):
    name = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f52c"
    response = client_for(Role.ADMIN).post(
        "/api/v1/products", {"sku": "J-1", "name": name}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Product.objects.get(sku="J-1").name == name


def test_a_scan_keeps_its_gs1_group_separator(org, client_for, shop):
    gtin = "0" + make_gtin(11)
    response = client_for(Role.VIEWER).get(
        "/api/v1/products/lookup", {"barcode": f"01{gtin}10LOT7\x1d17270101"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["lot"] == "LOT7"


def test_services_store_nfc_skus_for_imports_too(org):
    result = catalog_services.product_upsert_many(
        org=org, rows=[{"sku": NFD_SKU, "name": "Caf\u00e9"}]
    )
    assert result["created"] == [NFC_SKU]
    assert Product.objects.get().sku == NFC_SKU
    product = catalog_services.product_create(org=org, data={"sku": "NE\u0301", "name": "n"})
    assert product.sku == "N\u00c9"


# --- 20: unknown query parameters -----------------------------------------------------------


def test_the_stock_list_filters_by_product(client_for, shop):
    response = client_for(Role.VIEWER).get("/api/v1/stock/", {"product": shop["gram"].pk})
    assert response.status_code == 200, response.content
    assert [row["product"] for row in response.json()["results"]] == [shop["gram"].pk]


@pytest.mark.parametrize(
    "path,name",
    [
        ("/api/v1/stock/?colour=red", "colour"),
        ("/api/v1/stock/kpis?product=1", "product"),
        ("/api/v1/products?sku=X", "sku"),
        ("/api/v1/products/lookup?barcode=X&store=1", "store"),
        ("/api/v1/sales?product=1", "product"),
        ("/api/v1/ledger/?sku=X", "sku"),
        ("/api/v1/counts/sessions?location=1", "location"),
        ("/api/v1/stores/?code=S1", "code"),
        ("/api/v1/me?x=1", "x"),
    ],
)
def test_unknown_query_parameters_are_refused_naming_them(client_for, shop, path, name):
    response = client_for(Role.ADMIN).get(path)
    body = refused(response, name, code="unknown_parameter")
    assert body["fields"][name] == ["Unknown query parameter."]


def test_unknown_parameters_on_a_write_are_refused_and_nothing_is_written(client_for, shop):
    before = stock_rows()
    response = client_for(Role.OPERATOR).post(f"{SALES}?dry_run=1", sale_body(shop), format="json")
    refused(response, "dry_run", code="unknown_parameter")
    assert stock_rows() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stock/?page=1&page_size=5&ordering=sku&search=G&format=json&org=acme",
        "/api/v1/stock/kpis?page=1&cursor=x&ordering=a&search=b&org=acme",
        "/api/v1/locations?store=1&kind=vault&sellable=true&is_active=true",
        "/api/v1/products?category=Flower&active=true&unit=g&tracks_expiry=false&brand=x",
        "/api/v1/sales?store=1&status=completed&occurred_from=2026-01-01T00:00:00Z",
        "/api/v1/ledger/?product=1&ref_type=SALE&ref_id=1&page_size=5",
        "/api/v1/products/lookup?barcode=G-1",
    ],
)
def test_known_and_common_query_parameters_are_accepted(client_for, shop, path):
    response = client_for(Role.ADMIN).get(path)
    assert response.status_code == 200, response.content


def test_token_callers_may_still_name_their_organisation(org, shop):
    membership = MembershipFactory(org=org, role=Role.VIEWER)
    _, key = api_token_create(org=org, user=membership.user, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/stores", {"org": org.slug}).status_code == 200
    assert Store.objects.filter(org=org).exists()


# --- 21: the OpenAPI description tells the truth -----------------------------------------------


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_reconciled_by_is_documented_nullable(schema):
    assert schema["components"]["schemas"]["Session"]["properties"]["reconciled_by"]["nullable"]


def test_every_paged_list_documents_page_and_page_size(schema):
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if not get:
            continue
        body = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        ref = body.get("schema", {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if name.startswith("Paginated"):
            names = {p["name"] for p in get.get("parameters", [])}
            # page pages count their items; cursor pages (the ledger) go by next/previous links
            pages = "count" in schema["components"]["schemas"][name]["properties"]
            assert {"page" if pages else "cursor", "page_size"} <= names, path
    stock = schema["paths"]["/api/v1/stock/"]["get"]
    assert {"page", "page_size", "product"} <= {p["name"] for p in stock["parameters"]}


def test_every_operation_documents_the_error_shape(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"]["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (method, path)


def test_count_lines_document_what_get_and_post_answer(schema):
    lines = schema["paths"]["/api/v1/counts/passes/{id}/lines/"]
    assert set(lines["get"]["responses"]) == {"200", "4XX"}
    assert set(lines["post"]["responses"]) == {"200", "201", "4XX"}


# --- found by the schema fuzzer (tests/fuzz) -----------------------------------------------------


@pytest.mark.parametrize(
    "method,path", [("post", "/api/v1/memberships"), ("patch", "/api/v1/memberships/{member}")]
)
def test_a_store_listed_twice_for_a_membership_is_refused(org, client_for, method, path):
    store = StoreFactory(org=org, code="S7")
    member = MembershipFactory(org=org, role=Role.VIEWER)
    admin = client_for(Role.ADMIN)
    before = snapshot(org)
    body = {"email": "new@example.com", "role": "viewer", "stores": [store.pk, store.pk]}
    response = getattr(admin, method)(path.format(member=member.pk), body, format="json")
    refused(response, "stores")
    assert snapshot(org) == before


@pytest.mark.parametrize(
    "query,field",
    [
        ("occurred_to=2030-07-19T05:38:47-23:55", None),  # Python takes it, PostgreSQL would not
        ("occurred_from=0002-12-24T16:19:52Z", "occurred_from"),
        ("occurred_to=9999-12-31T23:59:59-23:59", "occurred_to"),
    ],
)
def test_sale_filters_take_moments_postgresql_can_hold(client_for, shop, query, field):
    response = client_for(Role.VIEWER).get(f"{SALES}?{query.replace('+', '%2B')}")
    if field is None:
        assert response.status_code == 200, response.content
    else:
        refused(response, field)


def test_a_control_character_in_the_organisation_header_is_refused(org, shop):
    membership = MembershipFactory(org=org, role=Role.VIEWER)
    client = APIClient()
    client.force_login(membership.user)
    response = client.get("/api/v1/products", HTTP_X_ORGANIZATION="ac\x00me")
    refused(response, "X-Organization")


def test_a_line_documents_that_it_names_its_product_exactly_once(schema):
    for name in ("SaleLineRequest", "ReceiptLineRequest", "ScanRequest"):
        one_of = schema["components"]["schemas"][name]["oneOf"]
        assert sorted(branch["required"][0] for branch in one_of) == [
            "barcode",
            "product",
            "sku",
        ], name
    lines = schema["components"]["schemas"]["SaleCreateRequest"]["properties"]["lines"]
    assert (lines["minItems"], lines["maxItems"]) == (1, 500)
    quantity = schema["components"]["schemas"]["SaleLineRequest"]["properties"]["quantity"]
    assert quantity["pattern"] == r"^(?=.*[1-9])[0-9]{1,14}(\.[0-9]{1,4})?$"
