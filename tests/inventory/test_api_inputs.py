"""Bad input on every write: a 4xx with a stable code naming the field, and nothing written."""

from __future__ import annotations

import pytest

from inventory.models import ClassificationMapping, Location, Product, Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, make_gtin
from tests.inventory.test_api_access import snapshot


@pytest.fixture
def world(org, other_org):
    store = StoreFactory(org=org, code="S1")
    product = ProductFactory(org=org, sku="P-1", barcodes=[{"code": make_gtin(1)}])
    ProductFactory(org=org, sku="P-2", barcodes=[{"code": make_gtin(2)}])
    admin = MembershipFactory(org=org, role=Role.ADMIN)
    member = MembershipFactory(org=org, role=Role.VIEWER)
    theirs = StoreFactory(org=other_org, code="T1")
    return {
        "store": store,
        "product": product,
        "admin": admin,
        "member": member,
        "their_store": theirs,
        "location": Location.objects.get(store=store, code="SF"),
        "classification": ClassificationMapping.objects.filter(org=org).first(),
    }


def ids(world):
    return {k: getattr(v, "pk", v) for k, v in world.items()}


BAD_INPUTS = [
    # (method, path, body, status, code, offending field)
    ("patch", "/api/v1/org", {"time_zone": "Mars/Olympus"}, 400, "invalid", "time_zone"),
    (
        "patch",
        "/api/v1/org",
        {"escalation_threshold": "-5"},
        400,
        "invalid",
        "escalation_threshold",
    ),
    (
        "patch",
        "/api/v1/org",
        {"negative_stock_mode": "maybe"},
        400,
        "invalid",
        "negative_stock_mode",
    ),
    (
        "patch",
        "/api/v1/org",
        {"allowed_email_domains": ["not a domain"]},
        400,
        "invalid",
        "allowed_email_domains",
    ),
    ("post", "/api/v1/stores", {"code": "S1", "name": "Duplicate"}, 409, "duplicate", "code"),
    ("post", "/api/v1/stores", {"code": "bad code!", "name": "x"}, 400, "invalid", "code"),
    ("post", "/api/v1/stores", {"code": "S9"}, 400, "invalid", "name"),
    (
        "post",
        "/api/v1/stores",
        {"code": "S9", "name": "x", "time_zone": "Nowhere"},
        400,
        "invalid",
        "time_zone",
    ),
    (
        "post",
        "/api/v1/stores",
        {"code": "S9", "name": "x", "external_ids": [1]},
        400,
        "invalid",
        "external_ids",
    ),
    ("patch", "/api/v1/stores/{store}", {"code": ""}, 400, "invalid", "code"),
    (
        "post",
        "/api/v1/locations",
        {"store": "{their_store}", "code": "X", "name": "x", "kind": "vault"},
        400,
        "invalid",
        "store",
    ),
    (
        "post",
        "/api/v1/locations",
        {"store": "{store}", "code": "SF", "name": "x", "kind": "vault"},
        409,
        "duplicate",
        "code",
    ),
    (
        "post",
        "/api/v1/locations",
        {"store": "{store}", "code": "X", "name": "x", "kind": "attic"},
        400,
        "invalid",
        "kind",
    ),
    (
        "post",
        "/api/v1/locations",
        {"store": "{store}", "code": "X", "name": "x", "kind": "vault", "sort_order": -1},
        400,
        "invalid",
        "sort_order",
    ),
    (
        "post",
        "/api/v1/memberships",
        {"email": "not-an-email", "role": "viewer"},
        400,
        "invalid",
        "email",
    ),
    ("post", "/api/v1/memberships", {"email": "a@b.com", "role": "owner"}, 400, "invalid", "role"),
    (
        "post",
        "/api/v1/memberships",
        {"email": "a@b.com", "role": "viewer", "stores": ["{their_store}"]},
        400,
        "invalid",
        "stores",
    ),
    ("patch", "/api/v1/memberships/{admin}", {"role": "viewer"}, 409, "last_admin", "role"),
    ("delete", "/api/v1/memberships/{admin}", None, 409, "last_admin", "role"),
    ("post", "/api/v1/products", {"sku": "P-1", "name": "dup"}, 409, "duplicate_sku", "sku"),
    ("post", "/api/v1/products", {"sku": "  ", "name": "blank"}, 400, "invalid", "sku"),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "default_cost": "-0.01"},
        400,
        "invalid",
        "default_cost",
    ),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "reorder_point": "abc"},
        400,
        "invalid",
        "reorder_point",
    ),
    ("post", "/api/v1/products", {"sku": "N-1", "name": "x", "unit": "kg"}, 400, "invalid", "unit"),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "image_url": "not a url"},
        400,
        "invalid",
        "image_url",
    ),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "barcodes": [{"code": make_gtin(1)}]},
        409,
        "duplicate_barcode",
        "barcodes",
    ),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "barcodes": [{"code": "0" + make_gtin(1)}]},
        409,
        "duplicate_barcode",
        "barcodes",
    ),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "barcodes": [{"code": make_gtin(7)[:-1] + "0"}]},
        400,
        "invalid_check_digit",
        "barcodes",
    ),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "barcodes": [{"code": "ABC", "kind": "gtin"}]},
        400,
        "invalid_gtin",
        "barcodes",
    ),
    (
        "post",
        "/api/v1/products",
        {"sku": "N-1", "name": "x", "barcodes": [{"code": "X1"}, {"code": "X1"}]},
        400,
        "invalid",
        "barcodes",
    ),
    (
        "patch",
        "/api/v1/products/{product}",
        {"default_price": "-3"},
        400,
        "invalid",
        "default_price",
    ),
    ("patch", "/api/v1/products/{product}", {"sku": "P-2"}, 409, "duplicate_sku", "sku"),
    ("post", "/api/v1/products/bulk", {"products": []}, 400, "invalid", "products"),
    ("post", "/api/v1/products/bulk", {"products": "nope"}, 400, "invalid", "products"),
    (
        "post",
        "/api/v1/products/bulk",
        {"products": [{"sku": "A", "name": "a"}, {"sku": "A", "name": "b"}]},
        400,
        "duplicate_sku",
        "products.1.sku",
    ),
    (
        "post",
        "/api/v1/products/bulk",
        {"products": [{"sku": "A", "name": "a"}, {"sku": "B", "unit": "kg"}]},
        400,
        "invalid",
        "products.1.unit",
    ),
    (
        "post",
        "/api/v1/products/bulk",
        {
            "products": [
                {"sku": "A", "name": "a", "barcodes": [{"code": "SAME", "kind": "supplier"}]},
                {"sku": "B", "name": "b", "barcodes": [{"code": "SAME", "kind": "supplier"}]},
            ]
        },
        400,
        "duplicate_barcode",
        "products",
    ),
    (
        "post",
        "/api/v1/products/bulk",
        {"products": [{"sku": "A", "name": "a", "barcodes": [{"code": make_gtin(2)}]}]},
        409,
        "duplicate_barcode",
        "barcodes",
    ),
    (
        "post",
        "/api/v1/classifications",
        {"classification": "Dried Flower", "category": "x"},
        409,
        "duplicate",
        "classification",
    ),
    ("post", "/api/v1/classifications", {"category": "x"}, 400, "invalid", "classification"),
    ("post", "/api/v1/tokens", {"name": ""}, 400, "invalid", "name"),
    (
        "post",
        "/api/v1/tokens",
        {"name": "x", "email": "stranger@example.com"},
        400,
        "not_a_member",
        "email",
    ),
]


@pytest.mark.parametrize(
    "method,path,body,status,code,field",
    BAD_INPUTS,
    ids=[f"{b[0]} {b[1]} {b[5]}" for b in BAD_INPUTS],
)
def test_bad_input_is_refused_with_code_and_field_and_writes_nothing(
    method, path, body, status, code, field, world, org, client_for
):
    client = client_for(Role.ADMIN)
    # the fixture admin is the only other admin; for the last-admin cases demote the caller
    if "last_admin" == code:
        from inventory.models import Membership

        Membership.objects.filter(pk=client.membership.pk).update(role=Role.MANAGER)
        client.membership.refresh_from_db()
        client = admin_client_of(world["admin"])
    refs = {k: str(v) for k, v in ids(world).items()}
    path = path.format(**refs)
    if body is not None:
        body = fill_refs(body, refs)
    before = snapshot(org)
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == status, response.content
    payload = response.json()
    assert payload["code"] == code
    assert field in payload["fields"], payload
    assert payload["detail"]
    assert snapshot(org) == before


def fill_refs(value, refs):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return int(refs[value[1:-1]])
    if isinstance(value, dict):
        return {k: fill_refs(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_refs(v, refs) for v in value]
    return value


def admin_client_of(membership):
    from rest_framework.test import APIClient

    from inventory.tenancy.tokens import api_token_create

    _, key = api_token_create(org=membership.org, user=membership.user, name="x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.parametrize("body", [b"{not json", b"[]", b"null"])
def test_malformed_json_body_answers_400(body, client_for):
    response = client_for(Role.ADMIN).generic(
        "POST", "/api/v1/products", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] in {"parse_error", "invalid"}
    assert not Product.objects.exists()


def test_unsupported_method_answers_405_in_the_error_shape(client_for):
    response = client_for(Role.ADMIN).delete("/api/v1/stores")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_routes_answer_with_and_without_trailing_slash_without_redirect(client_for):
    client = client_for(Role.ADMIN)
    for path in ("/api/v1/products", "/api/v1/products/"):
        response = client.post(path, {"sku": f"S{len(path)}", "name": "x"}, format="json")
        assert response.status_code == 201
