"""Catalog behaviour: barcode resolution, bulk upsert, classification map, filters, queries."""

from __future__ import annotations

import datetime

import pytest

from inventory.models import ClassificationMapping, Product, ProductBarcode, Role
from tests.factories import ProductFactory, make_gtin

GS = "\x1d"


@pytest.fixture
def viewer(client_for):
    return client_for(Role.VIEWER)


@pytest.fixture
def gummies(org):
    gtin13 = make_gtin(4242)
    return ProductFactory(
        org=org,
        sku="100234",
        name="Gummies",
        barcodes=[
            {"code": gtin13, "kind": "gtin"},
            {"code": "SUP-77", "kind": "supplier"},
            {"code": "1A4060300002EE1000012345", "kind": "package"},
        ],
    )


def lookup(client, barcode):
    return client.get("/api/v1/products/lookup", {"barcode": barcode})


def test_lookup_exact_sku_wins_even_when_numeric(viewer, gummies):
    body = lookup(viewer, "100234").json()
    assert (body["product"]["id"], body["matched_by"]) == (gummies.pk, "sku")


def test_lookup_numeric_sku_shaped_like_a_bad_gtin_is_not_a_check_digit_error(viewer, org):
    product = ProductFactory(org=org, sku="12345670")  # 8 digits, wrong GTIN-8 check digit
    assert lookup(viewer, "12345670").json()["product"]["id"] == product.pk


@pytest.mark.parametrize("form", ["gtin13", "gtin12", "gtin14", "spaces"])
def test_lookup_gtin_in_any_length_finds_the_product(viewer, gummies, form):
    gtin13 = make_gtin(4242)  # starts with 0, so it has a GTIN-12 form
    scanned = {
        "gtin13": gtin13,
        "gtin12": gtin13[1:],
        "gtin14": "0" + gtin13,
        "spaces": f"  {gtin13}\n",
    }[form]
    body = lookup(viewer, scanned).json()
    assert body["product"]["id"] == gummies.pk


def test_lookup_stored_supplier_and_package_codes(viewer, gummies):
    assert lookup(viewer, "SUP-77").json()["matched_by"] == "barcode"
    assert lookup(viewer, "1A4060300002EE1000012345").json()["product"]["id"] == gummies.pk


def test_lookup_wrong_check_digit_is_400_not_404(viewer, gummies):
    gtin13 = make_gtin(4242)
    bad = gtin13[:-1] + str((int(gtin13[-1]) + 1) % 10)
    response = lookup(viewer, bad)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_check_digit"
    assert "barcode" in response.json()["fields"]


@pytest.mark.parametrize("prefix", ["", "]d2", "]C1", "]e0"])
def test_lookup_gs1_with_lot_and_expiry(viewer, gummies, prefix):
    gtin14 = "0" + make_gtin(4242)
    body = lookup(viewer, f"{prefix}01{gtin14}1727033110LOT-A7{GS}21SERIAL9").json()
    assert body["product"]["id"] == gummies.pk
    assert body["matched_by"] == "gs1"
    assert (body["lot"], body["expiry"], body["no_expiry"]) == ("LOT-A7", "2027-03-31", False)


def test_lookup_gs1_500723_means_no_expiry(viewer, gummies):
    body = lookup(viewer, f"01{'0' + make_gtin(4242)}1750072310B12").json()
    assert (body["lot"], body["expiry"], body["no_expiry"]) == ("B12", None, True)


def test_lookup_gs1_bracketed_human_readable_form(viewer, gummies):
    body = lookup(viewer, f"(01){'0' + make_gtin(4242)}(17)280200(10)X1").json()
    assert body["expiry"] == datetime.date(2028, 2, 29).isoformat()  # day 00: month's last day
    assert body["lot"] == "X1"


def test_lookup_gs1_with_bad_gtin_check_digit_is_400(viewer, gummies):
    gtin14 = "0" + make_gtin(4242)
    bad = gtin14[:-1] + str((int(gtin14[-1]) + 3) % 10)
    response = lookup(viewer, f"]d201{bad}10LOT")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_check_digit"


def test_lookup_unknown_code_is_404_echoing_the_scan(viewer, gummies):
    response = lookup(viewer, "CNB-99999999")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_barcode"
    assert response.json()["barcode"] == "CNB-99999999"
    unknown_gtin = make_gtin(777)
    assert lookup(viewer, unknown_gtin).json()["code"] == "unknown_barcode"


def test_lookup_requires_the_barcode_parameter(viewer):
    response = viewer.get("/api/v1/products/lookup")
    assert response.status_code == 400
    assert response.json()["fields"] == {"barcode": ["This parameter is required."]}


def test_lookup_never_finds_another_orgs_product(viewer, other_org):
    ProductFactory(org=other_org, sku="THEIRS", barcodes=[{"code": make_gtin(55)}])
    assert lookup(viewer, "THEIRS").status_code == 404
    assert lookup(viewer, make_gtin(55)).status_code == 404


def test_product_without_image_is_valid_everywhere(client_for):
    client = client_for(Role.MANAGER)
    created = client.post("/api/v1/products", {"sku": "NOIMG", "name": "Plain"}, format="json")
    assert created.status_code == 201
    assert created.json()["image_url"] == ""
    assert client.get(f"/api/v1/products/{created.json()['id']}").status_code == 200


def test_product_category_comes_from_the_editable_classification_map(org, client_for):
    client = client_for(Role.MANAGER)
    client.post(
        "/api/v1/classifications",
        {"classification": "Hash", "category": "Extracts", "subcategory": "Hash"},
        format="json",
    )
    body = client.post(
        "/api/v1/products",
        {"sku": "H1", "name": "Hash 2g", "classification": "Hash"},
        format="json",
    ).json()
    assert (body["category"], body["subcategory"]) == ("Extracts", "Hash")
    explicit = client.post(
        "/api/v1/products",
        {"sku": "H2", "name": "x", "classification": "Hash", "category": "Other"},
        format="json",
    )
    assert explicit.json()["category"] == "Other"


def test_new_org_has_the_common_classifications_preloaded(org):
    names = set(
        ClassificationMapping.objects.filter(org=org).values_list("classification", flat=True)
    )
    assert {
        "Dried Flower",
        "Pre-Rolls",
        "Vapes",
        "Edibles",
        "Beverages",
        "Extracts",
        "Topicals",
        "Capsules/Oils",
        "Seeds",
        "Accessories",
    } <= names


def test_bulk_upsert_creates_updates_and_replaces_barcodes(org, client_for):
    client = client_for(Role.MANAGER)
    ProductFactory(org=org, sku="OLD", name="Old name", barcodes=[{"code": make_gtin(1)}])
    response = client.post(
        "/api/v1/products/bulk",
        {
            "products": [
                {"sku": "OLD", "name": "New name", "barcodes": [{"code": make_gtin(2)}]},
                {
                    "sku": "FRESH",
                    "name": "Fresh",
                    "classification": "Vapes",
                    "barcodes": [{"code": make_gtin(3)}, {"code": "V-1", "kind": "supplier"}],
                },
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {"created": ["FRESH"], "updated": ["OLD"]}
    old = Product.objects.get(org=org, sku="OLD")
    assert old.name == "New name"
    assert list(old.barcodes.values_list("code", flat=True)) == [make_gtin(2)]
    fresh = Product.objects.get(org=org, sku="FRESH")
    assert fresh.category == "Vapes"
    assert ProductBarcode.objects.filter(product=fresh).count() == 2


def test_bulk_upsert_is_all_or_nothing(org, client_for):
    client = client_for(Role.MANAGER)
    ProductFactory(org=org, sku="TAKEN", barcodes=[{"code": make_gtin(9)}])
    response = client.post(
        "/api/v1/products/bulk",
        {
            "products": [
                {"sku": "A", "name": "a"},
                {"sku": "B", "name": "b", "barcodes": [{"code": make_gtin(9)}]},
            ]
        },
        format="json",
    )
    assert response.status_code == 409
    assert not Product.objects.filter(org=org, sku__in=["A", "B"]).exists()


def test_bulk_upsert_runs_a_fixed_number_of_queries(org, client_for, django_assert_max_num_queries):
    client = client_for(Role.MANAGER)
    rows = [
        {
            "sku": f"Q{i}",
            "name": f"q{i}",
            "classification": "Edibles",
            "barcodes": [{"code": make_gtin(5000 + i)}],
        }
        for i in range(200)
    ]
    with django_assert_max_num_queries(20):
        assert (
            client.post("/api/v1/products/bulk", {"products": rows}, format="json").status_code
            == 200
        )
    assert Product.objects.filter(org=org).count() == 200


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"category": "flower"}, {"F1"}),
        ({"brand": "Acme"}, {"F1", "V1"}),
        ({"active": "false"}, {"OFF"}),
        ({"search": "blue"}, {"F1"}),
        ({"search": "V1"}, {"V1"}),
        ({"search": make_gtin(31)}, {"V1"}),
    ],
)
def test_product_filters_and_search(org, viewer, query, expected):
    ProductFactory(
        org=org, sku="F1", name="Blue Dream", brand="Acme", classification="Dried Flower"
    )
    ProductFactory(
        org=org,
        sku="V1",
        name="Cart",
        brand="Acme",
        classification="Vapes",
        barcodes=[{"code": make_gtin(31)}],
    )
    ProductFactory(
        org=org, sku="OFF", name="Gone", brand="Other", classification="Seeds", is_active=False
    )
    rows = viewer.get("/api/v1/products", query).json()["results"]
    assert {r["sku"] for r in rows} == expected


def test_product_list_queries_do_not_grow(org, viewer, django_assert_num_queries):
    ProductFactory.create_batch(2, org=org, barcodes=None)
    viewer.get("/api/v1/products")  # warm: token touch happens at most once a minute
    with django_assert_num_queries(6):  # token, membership, its stores, count, rows, barcodes
        viewer.get("/api/v1/products")
    for i in range(30):
        ProductFactory(org=org, barcodes=[{"code": make_gtin(700 + i)}])
    with django_assert_num_queries(6):  # token, membership, its stores, count, rows, barcodes
        assert len(viewer.get("/api/v1/products").json()["results"]) == 32


def test_delete_archives_the_product(org, client_for):
    product = ProductFactory(org=org)
    assert client_for(Role.MANAGER).delete(f"/api/v1/products/{product.pk}").status_code == 204
    product.refresh_from_db()
    assert product.is_active is False


def test_lookup_a_received_package_tag_gives_product_and_lot(org, store, viewer):
    from tests.stock_helpers import days, receive

    product = ProductFactory(org=org, sku="FLOWER-1")
    tag = "1A4060300002EE1000099999"
    receive(org, store, product, 5, lot=tag, expiry=days(90))
    body = lookup(viewer, tag).json()
    assert (body["product"]["sku"], body["matched_by"], body["lot"]) == ("FLOWER-1", "package", tag)
    assert body["expiry"] == days(90).isoformat()
