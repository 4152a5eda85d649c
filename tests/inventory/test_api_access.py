"""Every endpoint × role, every endpoint against another organisation's ids, anonymous callers.

One table lists each route with the least role allowed to use it; the tests derive the expected
status for every role from it and from the capability matrix's role order.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from inventory.models import ApiToken, ClassificationMapping, Location, Membership, Role
from inventory.tenancy.tokens import api_token_create
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, make_gtin

ROLES = [Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN]


def objects_of(org, n: int = 0) -> dict:
    """A store, a location, a member, a product, a classification and a token in ``org``."""
    store = StoreFactory(org=org, code=f"W{n}")
    location = Location.objects.filter(store=store, code="BR").get()
    membership = MembershipFactory(org=org, role=Role.OPERATOR)
    product = ProductFactory(org=org, barcodes=[{"code": make_gtin(900 + n), "kind": "gtin"}])
    classification = ClassificationMapping.objects.filter(org=org).first()
    token, _ = api_token_create(org=org, user=membership.user, name="Tablet")
    return {
        "store": store.pk,
        "location": location.pk,
        "membership": membership.pk,
        "product": product.pk,
        "classification": classification.pk,
        "token": token.pk,
        "gtin": make_gtin(900 + n),
    }


# (method, path template, body template, least role, success status[, status when refused])
ENDPOINTS = [
    ("get", "/api/v1/me", None, Role.VIEWER, 200),
    ("get", "/api/v1/org", None, Role.VIEWER, 200),
    ("patch", "/api/v1/org/", {"name": "Renamed Org"}, Role.ADMIN, 200),
    ("get", "/api/v1/stores", None, Role.VIEWER, 200),
    ("post", "/api/v1/stores/", {"code": "NEW", "name": "New store"}, Role.ADMIN, 201),
    ("get", "/api/v1/stores/{store}", None, Role.VIEWER, 200),
    ("patch", "/api/v1/stores/{store}/", {"name": "Renamed"}, Role.ADMIN, 200),
    ("get", "/api/v1/locations/", None, Role.VIEWER, 200),
    (
        "post",
        "/api/v1/locations",
        {"store": "{store}", "code": "VLT", "name": "Vault", "kind": "vault"},
        Role.ADMIN,
        201,
    ),
    ("get", "/api/v1/locations/{location}", None, Role.VIEWER, 200),
    ("patch", "/api/v1/locations/{location}", {"sort_order": 5}, Role.ADMIN, 200),
    ("get", "/api/v1/memberships", None, Role.ADMIN, 200),
    (
        "post",
        "/api/v1/memberships",
        {"email": "new.person@example.com", "role": "viewer"},
        Role.ADMIN,
        201,
    ),
    ("get", "/api/v1/memberships/{membership}", None, Role.ADMIN, 200),
    ("patch", "/api/v1/memberships/{membership}", {"role": "manager"}, Role.ADMIN, 200),
    ("delete", "/api/v1/memberships/{membership}", None, Role.ADMIN, 204),
    ("get", "/api/v1/products", None, Role.VIEWER, 200),
    ("post", "/api/v1/products", {"sku": "NEW-1", "name": "New product"}, Role.MANAGER, 201),
    ("get", "/api/v1/products/{product}", None, Role.VIEWER, 200),
    ("patch", "/api/v1/products/{product}/", {"brand": "Other"}, Role.MANAGER, 200),
    ("put", "/api/v1/products/{product}", {"sku": "PUT-1", "name": "Replaced"}, Role.MANAGER, 200),
    ("delete", "/api/v1/products/{product}", None, Role.MANAGER, 204),
    (
        "post",
        "/api/v1/products/bulk",
        {"products": [{"sku": "B-1", "name": "Bulk"}]},
        Role.MANAGER,
        200,
    ),
    ("get", "/api/v1/products/lookup?barcode={gtin}", None, Role.VIEWER, 200),
    ("get", "/api/v1/classifications", None, Role.VIEWER, 200),
    (
        "post",
        "/api/v1/classifications",
        {"classification": "Hash", "category": "Extracts", "subcategory": "Hash"},
        Role.MANAGER,
        201,
    ),
    ("patch", "/api/v1/classifications/{classification}", {"category": "X"}, Role.MANAGER, 200),
    ("delete", "/api/v1/classifications/{classification}", None, Role.MANAGER, 204),
    ("get", "/api/v1/tokens", None, Role.VIEWER, 200),
    ("post", "/api/v1/tokens", {"name": "My laptop"}, Role.VIEWER, 201),
    # another member's token: invisible (404) to anyone but an admin
    ("get", "/api/v1/tokens/{token}", None, Role.ADMIN, 200, 404),
    ("post", "/api/v1/tokens/{token}/revoke", None, Role.ADMIN, 200, 404),
]

DETAIL_ENDPOINTS = [e for e in ENDPOINTS if "{" in e[1] and "{gtin}" not in e[1]]


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


def call(client: APIClient, method: str, path: str, body):
    return (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )


def endpoint_id(endpoint) -> str:
    return f"{endpoint[0].upper()} {endpoint[1]}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_endpoint_answers_by_role(endpoint, role, org, client_for):
    method, path, body, least_role, success, *refused = endpoint
    refused = refused[0] if refused else 403
    ids = objects_of(org)
    client = client_for(role)
    response = call(client, method, fill(path, ids), fill(body, ids))
    if Role(role).rank >= Role(least_role).rank:
        assert response.status_code == success, response.content
    else:
        assert response.status_code == refused, response.content
        assert response.json()["code"] == {403: "permission_denied", 404: "not_found"}[refused]


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=endpoint_id)
def test_endpoint_another_orgs_id_answers_404_and_changes_nothing(
    endpoint, org, other_org, client_for
):
    method, path, body, *_ = endpoint
    objects_of(org, 0)
    theirs = objects_of(other_org, 1)
    before = snapshot(other_org)
    response = call(client_for(Role.ADMIN), method, fill(path, theirs), fill(body, theirs))
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    assert snapshot(other_org) == before


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=endpoint_id)
def test_endpoint_missing_id_answers_the_same_404(endpoint, org, client_for):
    method, path, body, *_ = endpoint
    ids = {k: 987654 for k in objects_of(org)}
    response = call(client_for(Role.ADMIN), method, fill(path, ids), fill(body, ids))
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_endpoint_refuses_anonymous_callers(endpoint, org):
    method, path, body, *_ = endpoint
    ids = objects_of(org)
    response = call(APIClient(), method, fill(path, ids), fill(body, ids))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stores",
        "/api/v1/products",
        "/api/v1/locations",
        "/api/v1/memberships",
        "/api/v1/classifications",
        "/api/v1/tokens",
    ],
)
def test_list_endpoints_show_only_own_organisation(path, org, other_org, client_for):
    objects_of(other_org, 1)
    mine = objects_of(org, 0)
    rows = client_for(Role.ADMIN).get(path).json()["results"]
    assert rows
    theirs = snapshot(other_org)
    for row in rows:
        assert row["id"] not in theirs.get(path.rsplit("/", 1)[-1], set()) or row["id"] in (
            mine.values()
        )
    assert_all_rows_belong(path, rows, org)


def assert_all_rows_belong(path, rows, org):
    from inventory import models

    model = {
        "stores": models.Store,
        "products": models.Product,
        "locations": models.Location,
        "memberships": models.Membership,
        "classifications": models.ClassificationMapping,
        "tokens": models.ApiToken,
    }[path.rsplit("/", 1)[-1]]
    ids = [row["id"] for row in rows]
    assert set(model.unscoped.filter(pk__in=ids).values_list("org_id", flat=True)) == {org.pk}


def snapshot(org) -> dict:
    """Every tenant row of ``org`` with its fields, to prove a refused request wrote nothing."""
    from inventory import models

    out = {}
    for name, model in [
        ("stores", models.Store),
        ("locations", models.Location),
        ("memberships", models.Membership),
        ("products", models.Product),
        ("classifications", models.ClassificationMapping),
        ("tokens", models.ApiToken),
        ("barcodes", models.ProductBarcode),
    ]:
        out[name] = {
            # last_used_at moves with every authenticated request, by design
            tuple(sorted((k, str(v)) for k, v in row.items() if k != "last_used_at"))
            for row in model.unscoped.filter(org=org).values()
        }
    out["org"] = str(models.Organization.objects.filter(pk=org.pk).values().get())
    return out


def test_token_of_a_deactivated_member_is_refused(org, client_for):
    client = client_for(Role.MANAGER)
    Membership.objects.filter(pk=client.membership.pk).update(is_active=False)
    response = client.get("/api/v1/products")
    assert response.status_code == 403
    assert response.json()["code"] == "not_a_member"


def test_member_limited_to_a_store_sees_only_that_store(org, client_for):
    first, second = StoreFactory(org=org, code="A"), StoreFactory(org=org, code="B")
    client = client_for(Role.OPERATOR, stores=[first])
    assert [s["code"] for s in client.get("/api/v1/stores").json()["results"]] == ["A"]
    assert client.get(f"/api/v1/stores/{second.pk}").status_code == 404
    locations = client.get("/api/v1/locations").json()["results"]
    assert {loc["store"] for loc in locations} == {first.pk}


def test_session_user_in_two_orgs_must_name_one(org, other_org):
    membership = MembershipFactory(org=org, role=Role.VIEWER)
    MembershipFactory(org=other_org, role=Role.ADMIN, user=membership.user)
    client = APIClient()
    client.force_login(membership.user)
    response = client.get("/api/v1/me")
    assert response.status_code == 400
    assert response.json()["code"] == "organization_required"
    assert client.get("/api/v1/me", HTTP_X_ORGANIZATION="rival").json()["role"] == "admin"
    assert client.get("/api/v1/me?org=acme").json()["role"] == "viewer"
    assert client.get("/api/v1/me", HTTP_X_ORGANIZATION="nowhere").status_code == 403


def test_token_acts_for_its_own_org_whatever_header_is_sent(org, other_org, client_for):
    client = client_for(Role.VIEWER)
    MembershipFactory(org=other_org, role=Role.ADMIN, user=client.user)
    body = client.get("/api/v1/me", HTTP_X_ORGANIZATION="rival").json()
    assert (body["organization"], body["role"]) == ("acme", "viewer")


def test_tokens_list_shows_own_tokens_unless_admin(org, client_for):
    operator = client_for(Role.OPERATOR)
    admin = client_for(Role.ADMIN)
    own = {t["user_email"] for t in operator.get("/api/v1/tokens").json()["results"]}
    assert own == {operator.user.email}
    everyone = {t["user_email"] for t in admin.get("/api/v1/tokens").json()["results"]}
    assert {operator.user.email, admin.user.email} <= everyone
    assert ApiToken.objects.filter(org=org).count() == 2
