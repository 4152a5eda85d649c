"""Operational endpoints: liveness, readiness, metrics, and JSON error pages."""

from __future__ import annotations

import hmac
import logging
import sys

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from core.metrics import render

logger = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up. Checks nothing else, so a slow database never restarts the web tier."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    url = settings.CELERY_BROKER_URL
    if not url or settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    # The project's Celery app (config.celery) is the default app of every thread once Django
    # is set up (Celery's Django fixup makes it so), as ``shared_task`` relies on too; naming it
    # through current_app keeps core free of config (an import-linter contract).
    app = current_app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database answers, and the broker does when one is configured."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(v is None for v in checks.values())
    answers = {name: ("ok" if error is None else error) for name, error in checks.items()}
    if settings.CELERY_TASK_ALWAYS_EAGER:
        answers["broker"] = "not configured (tasks run inline)"
    body = {"status": "ok" if ok else "unavailable", "checks": answers}
    return JsonResponse(body, status=200 if ok else 503)


def _metrics_refusal(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read /metrics, else the 401 to answer.

    With ``METRICS_TOKEN`` set, the scraper must send ``Authorization: Bearer <token>``; the
    comparison takes the same time however much of the token is right. Without it /metrics is
    public (development; production settings need the token or an explicit METRICS_PUBLIC).
    """
    expected = settings.METRICS_TOKEN
    if not expected:
        return None
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        code, detail = "not_authenticated", "Send the metrics token as 'Authorization: Bearer'."
    elif hmac.compare_digest(given.encode(), expected.encode()):
        return None
    else:
        code, detail = "authentication_failed", "Wrong metrics token."
    response = JsonResponse({"code": code, "detail": detail, "fields": {}}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _metrics_refusal(request)
    if refusal is not None:
        return refusal
    payload, content_type = render()
    return HttpResponse(payload, content_type=content_type)


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "name": "inventory platform",
            "api": "/api/v1/",
            "docs": "/api/docs/",
            "schema": "/api/schema/",
            "admin": "/admin/",
        }
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"code": "not_found", "detail": "Not found.", "fields": {}}, status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django's 400 (a ``SuspiciousOperation`` outside DRF), in the error shape; a body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` read by a middleware answers 413 like the API's parsers."""
    from core.errors import application_error_for, error_json_response

    error = application_error_for(exception) if exception is not None else None
    if error is not None:
        return error_json_response(error)
    return JsonResponse({"code": "bad_request", "detail": "Bad request.", "fields": {}}, status=400)


def server_error(request: HttpRequest) -> JsonResponse:
    # Django calls this from inside its ``except`` block: an unreachable database met by a
    # middleware (a session or user lookup) answers 503 like the API, not 500.
    from core.errors import application_error_for, error_json_response

    exception = sys.exc_info()[1]
    error = application_error_for(exception) if exception is not None else None
    if error is not None:
        return error_json_response(error)
    return JsonResponse(
        {
            "code": "server_error",
            "detail": "Internal error.",
            "fields": {},
            "request_id": getattr(request, "request_id", None),
        },
        status=500,
    )
