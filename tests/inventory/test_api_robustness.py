"""Issue #8: inputs and conditions found by fuzzing the running API.

Every answer is the one error shape ``{"code", "detail", "fields"}`` with a 4xx/503 status —
never an HTML page, never a 500 — and a refused write leaves nothing behind.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from django.db import connections
from django.http import JsonResponse
from django.test import Client
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from config import urls as root_urls
from core.errors import flatten_errors
from core.middleware import max_body_size
from inventory.models import Location, Product, Role, Store
from tests.factories import ProductFactory, StoreFactory, make_gtin
from tests.inventory.test_api_access import snapshot


def assert_error_shape(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= {"code", "detail", "fields"}, body
    assert body["code"] == code, body
    assert body["detail"]
    if field is not None:
        assert field in body["fields"], body
    return body


# --- 9: deeply nested JSON ------------------------------------------------------------------------

DEEP = b"[" * 1000 + b"]" * 1000
DEEP_100K = b"[" * 100_000


@pytest.mark.parametrize("body", [DEEP, DEEP_100K], ids=["1000", "100000-unclosed"])
@pytest.mark.parametrize(
    "method,url",
    [
        ("POST", "/api/v1/products"),
        ("PATCH", "/api/v1/org"),
        ("POST", "/api/v1/sales"),
        ("POST", "/api/v1/stock/receipts"),
        ("POST", "/api/v1/counts/sessions"),
    ],
)
def test_deeply_nested_json_answers_400_parse_error_when_signed_in(
    method, url, body, org, admin_client
):
    before = snapshot(org)

    response = admin_client.generic(method, url, body, content_type="application/json")

    assert_error_shape(response, 400, "parse_error")
    assert snapshot(org) == before


@pytest.mark.parametrize("body", [DEEP, DEEP_100K], ids=["1000", "100000-unclosed"])
def test_deeply_nested_json_answers_400_parse_error_when_signed_out(body, db):
    # device sign-in reads the body before anyone is known
    response = APIClient().generic(
        "POST", "/api/v1/auth/token", body, content_type="application/json"
    )

    assert_error_shape(response, 400, "parse_error")


def test_deeply_nested_json_to_a_protected_endpoint_when_signed_out_answers_401(db):
    response = APIClient().generic(
        "POST", "/api/v1/products", DEEP, content_type="application/json"
    )

    assert_error_shape(response, 401, "not_authenticated")


@pytest.mark.parametrize("depth", [200, 900])
def test_nesting_deeper_than_any_input_needs_is_refused_at_parse_time(depth, org, admin_client):
    # Parses within the recursion limit, but every later walk over it (validation, JSONField
    # encoding, error flattening) would recurse as deep again.
    value = "[" * depth + "]" * depth
    body = f'{{"sku": "N-1", "name": "x", "barcodes": {value}}}'.encode()

    response = admin_client.generic(
        "POST", "/api/v1/products", body, content_type="application/json"
    )

    assert_error_shape(response, 400, "parse_error")
    assert not Product.objects.filter(sku="N-1").exists()


def test_store_external_ids_nested_deeply_answers_400(org, admin_client):
    value = '{"a": ' * 500 + "1" + "}" * 500
    body = f'{{"code": "S9", "name": "x", "external_ids": {value}}}'.encode()

    response = admin_client.generic("POST", "/api/v1/stores", body, content_type="application/json")

    assert_error_shape(response, 400, "parse_error")
    assert not Store.objects.filter(code="S9").exists()


def test_flatten_errors_walks_any_depth_without_recursing():
    detail: dict = {"leaf": ["bad"]}
    for _ in range(5000):
        detail = {"a": [detail]}

    fields = flatten_errors(detail)

    (name,) = fields
    assert name.startswith("a.0.a.0.")
    assert name.endswith(".leaf")
    assert fields[name] == ["bad"]


def test_flatten_errors_keeps_its_names_and_order():
    detail = {
        "lines": [{}, {"quantity": ["Too small."]}, {"product": ["Unknown.", "Again."]}],
        "products": {"non_field_errors": ["Twice."]},
        "non_field_errors": ["Whole."],
        "code": "plain",
    }

    assert flatten_errors(detail) == {
        "lines.1.quantity": ["Too small."],
        "lines.2.product": ["Unknown.", "Again."],
        "products": ["Twice."],
        "non_field_errors": ["Whole."],
        "code": ["plain"],
    }


def test_deeply_nested_json_to_allauth_headless_answers_400_in_the_error_shape(db):
    response = Client().generic(
        "POST", "/_allauth/app/v1/auth/login", DEEP, content_type="application/json"
    )

    assert_error_shape(response, 400, "parse_error")


# --- 10: changing a store's or location's code to a taken one -------------------------------------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_store_update_to_a_taken_code_answers_409_duplicate(method, org, store, admin_client):
    other = StoreFactory(org=org, code="S2", name="Second")
    before = snapshot(org)

    response = getattr(admin_client, method)(
        f"/api/v1/stores/{other.pk}", {"code": "S1", "name": "Second"}, format="json"
    )

    assert_error_shape(response, 409, "duplicate", "code")
    assert snapshot(org) == before
    other.refresh_from_db()
    assert other.code == "S2"


def test_store_update_still_changes_fields(org, store, admin_client):
    response = admin_client.patch(
        f"/api/v1/stores/{store.pk}", {"name": "Renamed", "is_active": False}, format="json"
    )

    assert response.status_code == 200, response.content
    store.refresh_from_db()
    assert (store.name, store.is_active) == ("Renamed", False)
    assert response.json()["name"] == "Renamed"


@pytest.mark.parametrize("method", ["patch", "put"])
def test_location_update_to_a_taken_code_answers_409_duplicate(method, org, store, admin_client):
    back_room = Location.objects.get(store=store, code="BR")
    before = snapshot(org)

    response = getattr(admin_client, method)(
        f"/api/v1/locations/{back_room.pk}",
        {"store": store.pk, "code": "SF", "name": "Back Room", "kind": back_room.kind},
        format="json",
    )

    assert_error_shape(response, 409, "duplicate", "code")
    assert snapshot(org) == before
    back_room.refresh_from_db()
    assert back_room.code == "BR"


def test_location_update_still_changes_fields(org, store, admin_client):
    back_room = Location.objects.get(store=store, code="BR")

    response = admin_client.patch(
        f"/api/v1/locations/{back_room.pk}", {"code": "BR2", "sort_order": 7}, format="json"
    )

    assert response.status_code == 200, response.content
    back_room.refresh_from_db()
    assert (back_room.code, back_room.sort_order) == ("BR2", 7)


# --- 11: creating a store with is_active ----------------------------------------------------------


@pytest.mark.parametrize("is_active", [True, False])
def test_store_create_takes_is_active(is_active, org, admin_client):
    response = admin_client.post(
        "/api/v1/stores", {"code": "S9", "name": "New", "is_active": is_active}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["is_active"] is is_active
    created = Store.objects.get(org=org, code="S9")
    assert created.is_active is is_active
    assert set(created.locations.values_list("code", flat=True)) == {"SF", "BR"}


# --- 12: a barcode without its code in a PATCH ----------------------------------------------------


@pytest.mark.parametrize("barcodes", [[{"kind": "gtin"}], [{}], [{"code": "X1"}, {"kind": "sku"}]])
def test_product_patch_with_a_barcode_lacking_code_answers_400(barcodes, org, admin_client):
    product = ProductFactory(org=org, sku="P-1", barcodes=[{"code": make_gtin(1)}])
    before = snapshot(org)

    response = admin_client.patch(
        f"/api/v1/products/{product.pk}", {"barcodes": barcodes}, format="json"
    )

    index = len(barcodes) - 1
    assert_error_shape(response, 400, "invalid", f"barcodes.{index}.code")
    assert snapshot(org) == before


def test_product_patch_with_a_barcode_without_kind_defaults_to_gtin(org, admin_client):
    product = ProductFactory(org=org, sku="P-1", barcodes=[{"code": make_gtin(1)}])

    response = admin_client.patch(
        f"/api/v1/products/{product.pk}", {"barcodes": [{"code": make_gtin(2)}]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["barcodes"] == [{"code": make_gtin(2), "kind": "gtin"}]


# --- 15: COGS dates at the calendar's ends; crafted ledger cursors --------------------------------


@pytest.mark.parametrize(
    "query,field",
    [
        ("from=9999-01-01&to=9999-12-31", "to"),
        ("from=9999-12-31&to=9999-12-31", "from"),
        ("from=0001-01-01&to=0001-01-31", "from"),
    ],
)
def test_cogs_dates_at_the_calendars_ends_answer_400(query, field, store, admin_client):
    response = admin_client.get(f"/api/v1/reports/cogs?{query}")

    assert_error_shape(response, 400, "invalid", field)


def test_cogs_dates_just_inside_the_calendar_answer_200(org, store, admin_client):
    # the widest UTC offsets either way
    StoreFactory(org=org, code="KI", time_zone="Pacific/Kiritimati")
    StoreFactory(org=org, code="PP", time_zone="Pacific/Pago_Pago")
    for query in ("from=9999-01-01&to=9999-12-30", "from=0001-01-02&to=0001-01-31"):
        response = admin_client.get(f"/api/v1/reports/cogs?{query}")
        assert response.status_code == 200, (query, response.content)


def _cursor(text: str) -> str:
    return quote(base64.b64encode(text.encode()).decode())


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("p=abc'"),
        _cursor("p=1.5"),
        _cursor("p=99999999999999999999999"),
        _cursor("o=1&p=x"),
        _cursor("o=-1"),
        _cursor("r=maybe"),
        "not-base64!",
        quote("é"),
    ],
)
def test_crafted_ledger_cursor_answers_400_naming_cursor(cursor, store, admin_client):
    response = admin_client.get(f"/api/v1/ledger?cursor={cursor}")

    assert_error_shape(response, 400, "invalid", "cursor")


def test_ledger_cursor_from_a_next_link_still_works(org, store, admin_client):
    from tests.stock_helpers import receive

    for _ in range(3):
        receive(org, store, ProductFactory(org=org), "1")
    first = admin_client.get("/api/v1/ledger?page_size=2").json()

    second = admin_client.get(first["next"])

    assert second.status_code == 200, second.content
    assert len(second.json()["results"]) == 1


# --- 16: the database unreachable or out of connections -------------------------------------------


@pytest.fixture
def database_down(db):
    """Call it to make every new cursor fail as when PostgreSQL is down or refuses more
    connections; the database answers again before the test's transaction is rolled back."""
    import psycopg

    connection = connections["default"]

    def refuse(*args, **kwargs):
        raise psycopg.OperationalError("connection failed: FATAL: too many clients already")

    def down():
        connection.create_cursor = refuse

    yield down
    connection.__dict__.pop("create_cursor", None)


def assert_unavailable(response) -> None:
    assert_error_shape(response, 503, "service_unavailable")
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_database_down_answers_503_to_a_token_request(debug, settings, admin_client, database_down):
    settings.DEBUG = debug
    database_down()

    assert_unavailable(admin_client.get("/api/v1/stores"))


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_database_down_answers_503_to_a_sign_in_without_token(debug, settings, database_down):
    settings.DEBUG = debug
    database_down()

    response = APIClient().post(
        "/api/v1/auth/token",
        {"email": "someone@example.com", "password": "pw", "device": "Till 1"},
        format="json",
    )

    assert_unavailable(response)


def test_database_down_answers_503_to_a_session_request(org, member, database_down):
    client = APIClient()
    client.force_login(member(Role.ADMIN).user)
    database_down()

    assert_unavailable(client.get("/api/v1/stores"))


def test_database_down_answers_503_outside_drf_in_a_view(database_down):
    database_down()

    response = Client().get("/_allauth/app/v1/auth/session", HTTP_X_SESSION_TOKEN="x" * 32)

    assert_unavailable(response)


def test_database_down_answers_503_outside_drf_in_a_middleware(org, member, database_down):
    # the admin's tenant middleware loads the session's user before any view runs
    client = Client(raise_request_exception=False)
    client.force_login(member(Role.ADMIN).user)
    database_down()

    assert_unavailable(client.get("/admin/"))


def test_readyz_keeps_its_own_503_body_when_the_database_is_down(database_down):
    database_down()

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("OperationalError")


@pytest.mark.urls(__name__)
def test_other_server_errors_still_answer_500_in_the_error_shape(db):
    response = Client(raise_request_exception=False).get("/boom-for-test")

    assert_error_shape(response, 500, "server_error")


# --- 17: body size limits; unknown API paths ------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def test_a_10_mb_json_body_answers_413(org, admin_client):
    body = b'{"sku": "BIG", "name": "' + b"x" * TEN_MB + b'"}'
    before = snapshot(org)

    response = admin_client.generic(
        "POST", "/api/v1/products", body, content_type="application/json"
    )

    assert_error_shape(response, 413, "request_too_large")
    assert snapshot(org) == before


def test_a_10_mb_json_body_answers_413_before_sign_in(db):
    body = b'{"email": "' + b"x" * TEN_MB + b'"}'

    response = APIClient().generic(
        "POST", "/api/v1/auth/token", body, content_type="application/json"
    )

    assert_error_shape(response, 413, "request_too_large")


def test_a_10_mb_multipart_upload_answers_413(org, admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("big.csv", b"x" * TEN_MB, content_type="text/csv")

    response = admin_client.post(
        "/api/v1/products", {"sku": "BIG", "file": upload}, format="multipart"
    )

    assert_error_shape(response, 413, "request_too_large")


def test_the_default_limit_is_a_setting(org, admin_client, settings):
    settings.REQUEST_BODY_MAX_SIZE = 1000
    body = b'{"sku": "N-1", "name": "' + b"x" * 900 + b'"}'

    response = admin_client.generic(
        "POST", "/api/v1/products", body, content_type="application/json"
    )
    # parsed: the name is too long for the column, but the body was read
    assert_error_shape(response, 400, "invalid", "name")

    response = admin_client.generic(
        "POST", "/api/v1/products", body + b" " * 100, content_type="application/json"
    )
    body = assert_error_shape(response, 413, "request_too_large")
    assert "1000 bytes" in body["detail"]


def test_a_10_mb_form_body_outside_drf_answers_413(db):
    # refused before CSRF checking would read the form
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "a" * 32

    response = client.post(
        "/accounts/login/",
        b"login=" + b"x" * TEN_MB,
        content_type="application/x-www-form-urlencoded",
    )

    assert_error_shape(response, 413, "request_too_large")


def test_djangos_own_body_limit_answers_413_too(rf):
    from django.core.exceptions import RequestDataTooBig

    from core import ops

    response = ops.bad_request(rf.post("/accounts/login/"), RequestDataTooBig("too big"))

    assert response.status_code == 413
    assert json.loads(response.content)["code"] == "request_too_large"


@pytest.mark.urls(__name__)
def test_other_bad_requests_outside_drf_answer_400_in_the_error_shape(db):
    response = Client(raise_request_exception=False).get("/suspicious-for-test")

    assert_error_shape(response, 400, "bad_request")


def test_a_10_mb_json_body_to_allauth_headless_answers_413(db):
    body = b'{"email": "' + b"x" * TEN_MB + b'"}'

    response = Client().generic(
        "POST", "/_allauth/app/v1/auth/login", body, content_type="application/json"
    )

    assert_error_shape(response, 413, "request_too_large")


class _EchoSize(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        return Response({"length": len(request.data["text"])})


class _ImportApi(_EchoSize):
    max_body_size = 12 * 1024 * 1024  # what a file import would declare


class _TinyApi(_EchoSize):
    max_body_size = 100


def _boom(request):
    raise RuntimeError("a bug")


def _suspicious(request):
    from django.core.exceptions import SuspiciousOperation

    raise SuspiciousOperation("odd")


@max_body_size(TEN_MB + 100)
@csrf_exempt
def _function_import(request):
    return JsonResponse({"length": len(request.body)})


urlpatterns = [
    path("import-for-test", _ImportApi.as_view()),
    path("tiny-for-test", _TinyApi.as_view()),
    path("function-import-for-test", _function_import),
    path("function-for-test", csrf_exempt(lambda request: JsonResponse({}))),
    path("boom-for-test", _boom),
    path("suspicious-for-test", _suspicious),
    re_path(r"", include("config.urls")),
]
handler400, handler404, handler500 = (
    root_urls.handler400,
    root_urls.handler404,
    root_urls.handler500,
)


@pytest.mark.urls(__name__)
def test_a_view_declares_a_larger_body_limit(db):
    body = b'{"text": "' + b"x" * TEN_MB + b'"}'
    client = APIClient()

    response = client.generic("POST", "/import-for-test", body, content_type="application/json")

    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"length": TEN_MB}


@pytest.mark.urls(__name__)
def test_a_function_view_declares_its_body_limit_with_a_decorator(db):
    client = Client()
    body = b"x" * TEN_MB

    response = client.post("/function-import-for-test", body, content_type="text/csv")
    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"length": TEN_MB}

    response = client.post("/function-for-test", body, content_type="text/csv")
    assert_error_shape(response, 413, "request_too_large")


@pytest.mark.urls(__name__)
def test_a_view_declares_a_smaller_body_limit(db):
    client = APIClient()

    assert client.post("/tiny-for-test", {"text": "x" * 50}, format="json").status_code == 200
    response = client.post("/tiny-for-test", {"text": "x" * 200}, format="json")
    body = assert_error_shape(response, 413, "request_too_large")
    assert "100 bytes" in body["detail"]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(
    "url", ["/api/v1/nope", "/api/v1/stores/1/nope", "/api/v2/", "/api/v1/counts/nope", "/api/"]
)
def test_unknown_api_paths_answer_json_404(url, debug, settings, admin_client):
    settings.DEBUG = debug

    assert_error_shape(admin_client.get(url), 404, "not_found")
    assert_error_shape(APIClient().post(url, {}, format="json"), 404, "not_found")


# --- 24: one API root listing every resource ------------------------------------------------------


def test_api_root_lists_every_top_level_resource_and_each_answers(admin_client, store):
    from counts.api.urls import router as counts_router
    from inventory.api.catalog.urls import router as catalog_router
    from inventory.api.sales.urls import router as sales_router
    from inventory.api.tenancy.urls import router as tenancy_router

    response = admin_client.get("/api/v1/")

    assert response.status_code == 200, response.content
    index = response.json()
    for name in (
        "org",
        "me",
        "stores",
        "locations",
        "memberships",
        "products",
        "classifications",
        "tokens",
        "sales",
        "stock",
        "stock/summary",
        "stock/kpis",
        "stock/reconciliation",
        "stock/receipts",
        "stock/moves",
        "stock/adjustments",
        "stock/write-offs",
        "stock/shortfalls",
        "ledger",
        "reports/cogs",
        "counts/sessions",
        "counts/unresolved",
    ):
        assert name in index, (name, index)
    routers = [
        (tenancy_router, ""),
        (catalog_router, ""),
        (sales_router, ""),
        (counts_router, "counts/"),
    ]
    for router, prefix in routers:
        for registered, viewset, _ in router.registry:
            if hasattr(viewset, "list"):
                assert f"{prefix}{registered}" in index, registered
    for name, url in index.items():
        assert url.startswith("http://testserver/api/v1/"), url
        answer = admin_client.get(url)
        assert answer.status_code != 404, (name, url, answer.content[:200])
        assert answer.status_code < 500, (name, url, answer.content[:200])


def test_api_root_answers_without_its_slash_too(admin_client):
    assert admin_client.get("/api/v1").json() == admin_client.get("/api/v1/").json()


@pytest.mark.parametrize("url", ["/api/v1/", "/api/v1"])
def test_api_root_needs_a_signed_in_caller(url, db):
    assert_error_shape(APIClient().get(url), 401, "not_authenticated")


def test_no_router_adds_its_own_root_view():
    from counts.api.urls import router as counts_router
    from inventory.api.catalog.urls import router as catalog_router
    from inventory.api.sales.urls import router as sales_router
    from inventory.api.tenancy.urls import router as tenancy_router

    for router in (tenancy_router, catalog_router, sales_router, counts_router):
        assert all(getattr(p, "name", None) != "api-root" for p in router.urls)


def test_counts_prefix_has_no_separate_root(admin_client):
    assert_error_shape(admin_client.get("/api/v1/counts/"), 404, "not_found")


def test_shared_cache_down_answers_503_to_a_sign_in(db, settings):
    """Sign-in throttling reads the shared cache (Redis in production): when it is down the
    answer is a 503 to retry, like a database outage, not a 500."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    response = APIClient().post(
        "/api/v1/auth/token",
        {"email": "someone@example.com", "password": "pw", "device": "Till 1"},
        format="json",
    )
    assert_unavailable(response)
