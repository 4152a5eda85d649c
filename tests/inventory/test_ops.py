"""Operational surface: health and readiness, metrics, request ids, JSON logs, error pages,
production start-up refusals and the OpenAPI schema."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import path
from django_scopes import scope
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.management.commands.spectacular import SchemaGenerationError
from drf_spectacular.validation import validate_schema
from pythonjsonlogger.json import JsonFormatter

from core import ops
from core.logging import RequestContextFilter

ROOT = Path(__file__).resolve().parents[2]
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


# --- health and readiness ------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/healthz", "/healthz/"])
def test_healthz_answers_ok_with_and_without_slash(client, url):
    # No ``db`` fixture: pytest-django fails the test if liveness ever touches the database.
    response = client.get(url)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("url", ["/readyz", "/readyz/"])
def test_readyz_answers_ok_when_database_answers(client, db, url):
    response = client.get(url)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    # Test settings run Celery eagerly: there is no broker to check.
    assert body["checks"]["broker"].startswith("not configured")


def test_readyz_answers_503_when_database_check_fails(client, db, monkeypatch):
    monkeypatch.setattr(ops, "_check_database", lambda: "OperationalError: connection refused")

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "OperationalError: connection refused"


def test_readyz_check_database_reports_none_when_database_answers(db):
    assert ops._check_database() is None


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_counts_requests_in_prometheus_text(client):
    client.get("/healthz")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "# TYPE http_requests_total counter" in text
    assert re.search(
        r'^http_requests_total\{method="GET",route="\^healthz/\?\$",status="200"\} [1-9]',
        text,
        re.MULTILINE,
    ), text
    assert "http_request_duration_seconds_bucket" in text


METRICS_TOKEN = "m" * 16 + "-metrics-token-for-tests"


@pytest.mark.parametrize(
    "header,code",
    [
        (None, "not_authenticated"),
        ("Token " + METRICS_TOKEN, "not_authenticated"),
        ("Bearer", "not_authenticated"),
        ("Bearer wrong-token", "authentication_failed"),
        ("Bearer " + METRICS_TOKEN[:-1], "authentication_failed"),
    ],
    ids=["none", "other-scheme", "empty", "wrong", "prefix"],
)
def test_metrics_with_a_token_refuse_other_callers_with_401_json(client, settings, header, code):
    settings.METRICS_TOKEN = METRICS_TOKEN
    headers = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response.json() == {"code": code, "detail": response.json()["detail"], "fields": {}}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"http_requests_total" not in response.content


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_metrics_answer_the_scraper_that_sends_the_token(client, settings, scheme):
    settings.METRICS_TOKEN = METRICS_TOKEN

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"{scheme} {METRICS_TOKEN}")

    assert response.status_code == 200
    assert b"http_requests_total" in response.content


# --- request ids ---------------------------------------------------------------------------------


def test_request_id_is_echoed_when_sane(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a.b_9")

    assert response["X-Request-ID"] == "edge-7f3a.b_9"


def test_request_id_is_generated_when_absent(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]

    assert GENERATED_ID.match(first)
    assert GENERATED_ID.match(second)
    assert first != second


@pytest.mark.parametrize(
    "incoming",
    ["has spaces", "x" * 65, "semi;colon", "<script>", "", "ünïcode"],
    ids=["spaces", "too-long", "semicolon", "markup", "empty", "non-ascii"],
)
def test_request_id_is_generated_when_malformed(client, incoming):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] != incoming
    assert GENERATED_ID.match(response["X-Request-ID"])


# --- JSON logs -----------------------------------------------------------------------------------


@pytest.fixture
def json_log_lines():
    """Capture what the configured JSON console handler writes; parse each line as JSON."""
    handler = next(
        (h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)),
        None,
    )
    assert handler is not None, "settings.LOGGING configures no JSON handler on the root logger"
    assert any(isinstance(f, RequestContextFilter) for f in handler.filters)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)

    def lines() -> list[dict]:
        handler.flush()
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    try:
        yield lines
    finally:
        handler.setStream(previous)


def test_json_log_lines_carry_request_id_org_and_user(admin_client, json_log_lines):
    response = admin_client.get("/api/v1/products/999999/", HTTP_X_REQUEST_ID="log-test-1")
    assert response.status_code == 404

    lines = [line for line in json_log_lines() if line.get("request_id") == "log-test-1"]

    assert lines, json_log_lines()
    line = lines[0]
    assert line["level"] == "WARNING"
    assert line["logger"] == "django.request"
    assert line["message"] == "Not Found: /api/v1/products/999999/"
    assert line["org"] == "acme"
    assert line["user"] == admin_client.user.pk
    assert "time" in line


def test_json_log_lines_outside_a_request_carry_empty_context(json_log_lines):
    logging.getLogger("inventory.test").warning("no request here", extra={"sku": "A-1"})

    [line] = [line for line in json_log_lines() if line["message"] == "no request here"]
    assert line["request_id"] is None
    assert line["org"] is None
    assert line["user"] is None
    assert line["sku"] == "A-1"


# --- error pages ---------------------------------------------------------------------------------


@pytest.fixture
def production_errors(settings):
    """DEBUG off, so Django answers with handler404/handler500 instead of its debug pages."""
    settings.DEBUG = False
    return settings


@pytest.mark.parametrize("url", ["/no-such-page", "/api/v1/no-such-endpoint/"])
def test_unknown_url_answers_404_json(client, db, production_errors, url):
    response = client.get(url)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}
    assert GENERATED_ID.match(response["X-Request-ID"])


def _boom(request):
    raise RuntimeError("kaboom")


class _FailingUrls:
    """A URLconf with one view that raises, and the project's 500 handler."""

    urlpatterns = [path("boom", _boom)]
    handler500 = "core.ops.server_error"


def test_server_error_answers_500_json_with_request_id(db, production_errors, json_log_lines):
    from config import urls

    assert urls.handler500 == _FailingUrls.handler500
    production_errors.ROOT_URLCONF = _FailingUrls
    client = Client(raise_request_exception=False)

    response = client.get("/boom", HTTP_X_REQUEST_ID="boom-1")

    assert response.status_code == 500
    assert response["X-Request-ID"] == "boom-1"
    assert response.json() == {
        "code": "server_error",
        "detail": "Internal error.",
        "fields": {},
        "request_id": "boom-1",
    }
    [line] = [line for line in json_log_lines() if line.get("request_id") == "boom-1"]
    assert line["level"] == "ERROR"
    assert "kaboom" in line["exc_info"]


# --- production settings -------------------------------------------------------------------------

START_PRODUCTION = (
    "import django; django.setup()\n"
    "from django.conf import settings\n"
    "from django.core.management import call_command\n"
    "call_command('check')\n"
    "print('DEBUG', settings.DEBUG, 'KEY', len(settings.SECRET_KEY))\n"
)


#: What production settings need besides the key; each test overrides what it is about.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
    "METRICS_TOKEN": secrets.token_urlsafe(32),
    "METRICS_PUBLIC": "false",
}


def _start_production(**env_overrides: str | None) -> subprocess.CompletedProcess:
    """Load production settings in a fresh process; a None override removes the variable."""
    env = {**os.environ, **PRODUCTION_ENV, **env_overrides}
    env = {name: value for name, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", START_PRODUCTION],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _good_key() -> str:
    return secrets.token_hex(25)  # 50 characters, none of them "$" (django-environ's proxy)


@pytest.mark.slow
def test_production_settings_refuse_debug_on():
    result = _start_production(DJANGO_DEBUG="true", DJANGO_SECRET_KEY=_good_key())

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_DEBUG" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "key",
    [
        "insecure-dev-key-change-me",
        "",
        "too-short-" + "x" * 21,
        secrets.token_hex(25)[:49],
        "abcd" * 20,
        "django-insecure-" + secrets.token_hex(25),
    ],
    ids=["default", "empty", "31-chars", "49-chars", "4-distinct-chars", "insecure-prefix"],
)
def test_production_settings_refuse_weak_secret_key(key):
    result = _start_production(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=key)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_production_settings_start_with_strong_key_and_debug_off():
    key = _good_key()
    assert len(key) == 50

    result = _start_production(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=key)

    assert result.returncode == 0, result.stderr
    assert "DEBUG False KEY 50" in result.stdout


SHOW_PRODUCTION = (
    "import django; django.setup()\n"
    "from django.conf import settings\n"
    "print(settings.SECURE_HSTS_SECONDS, settings.CACHES['default']['BACKEND'],"
    " settings.REST_FRAMEWORK['NUM_PROXIES'])\n"
)


@pytest.mark.slow
def test_production_defaults_hsts_one_year_a_shared_cache_and_no_trusted_proxy():
    env = {**os.environ, **PRODUCTION_ENV, "DJANGO_SECRET_KEY": _good_key()}
    env.pop("DJANGO_HSTS_SECONDS", None)
    env.pop("NUM_PROXIES", None)
    result = subprocess.run(
        [sys.executable, "-c", SHOW_PRODUCTION],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["31536000", "django.core.cache.backends.redis.RedisCache", "0"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "cache_url", [None, "locmemcache://", "dummycache://"], ids=["unset", "locmem", "dummy"]
)
def test_production_settings_refuse_a_cache_the_web_processes_do_not_share(cache_url):
    result = _start_production(DJANGO_SECRET_KEY=_good_key(), CACHE_URL=cache_url)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CACHE_URL" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "token,public", [(None, None), ("", "false"), ("short", None)], ids=["unset", "empty", "short"]
)
def test_production_settings_refuse_metrics_without_a_token(token, public):
    result = _start_production(
        DJANGO_SECRET_KEY=_good_key(), METRICS_TOKEN=token, METRICS_PUBLIC=public
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "METRICS_TOKEN" in result.stderr


@pytest.mark.slow
def test_production_settings_serve_public_metrics_only_when_told_so():
    result = _start_production(
        DJANGO_SECRET_KEY=_good_key(), METRICS_TOKEN=None, METRICS_PUBLIC="true"
    )

    assert result.returncode == 0, result.stderr


# --- OpenAPI -------------------------------------------------------------------------------------


@pytest.fixture
def no_tenant_scope():
    """Production state for an anonymous request: scoping on, no organisation chosen (the
    suite's autouse fixture disables scoping, which would hide ScopeErrors)."""
    with scope():
        yield


@pytest.mark.parametrize("url", ["/api/schema/", "/api/schema"])
def test_openapi_schema_is_valid_and_lists_lookup(client, db, no_tenant_scope, url):
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    lookup = [p for p in schema["paths"] if p.rstrip("/") == "/api/v1/products/lookup"]
    assert lookup, sorted(schema["paths"])
    assert "get" in schema["paths"][lookup[0]]


def test_openapi_schema_is_served_as_json_on_request(client, db, no_tenant_scope):
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    assert "openapi" in response.json()


@pytest.mark.parametrize("url", ["/api/docs/", "/api/docs"])
def test_openapi_docs_page_answers_200(client, db, no_tenant_scope, url):
    response = client.get(url)

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_openapi_schema_generates_without_warnings(db, no_tenant_scope, tmp_path):
    """Tenant viewsets must describe their model without a tenant (``queryset = ….none()``),
    or drf-spectacular evaluates get_queryset() at schema time, hits ScopeError and types every
    path id as a string; custom authenticators need an OpenApiAuthenticationExtension."""
    GENERATOR_STATS.reset()
    try:
        call_command("spectacular", "--fail-on-warn", "--validate", "--file", tmp_path / "s.yml")
    except SchemaGenerationError:
        pytest.fail(f"schema generation warned: {sorted(GENERATOR_STATS._warn_cache)}")
    schema = yaml.safe_load((tmp_path / "s.yml").read_text())
    parameters = schema["paths"]["/api/v1/products/{id}/"]["get"]["parameters"]
    [product_id] = [p for p in parameters if p["name"] == "id" and p["in"] == "path"]
    assert product_id["schema"]["type"] == "integer"
