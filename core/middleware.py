"""Request-wide middleware: request ids, error shapes, body sizes, HTTP metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from core.logging import current_request
from core.metrics import http_request_duration_seconds, http_requests_total

logger = logging.getLogger(__name__)
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

GetResponse = Callable[[HttpRequest], HttpResponseBase]
V = TypeVar("V", bound=Callable[..., Any])


class TracedRequest(HttpRequest):
    """What ``RequestIdMiddleware`` adds to every request (the type checker's view of it):
    the request id logs and error bodies carry, and the organisation the request acts for
    (None until authentication resolves it)."""

    request_id: str
    tenant: Any


class RequestIdMiddleware:
    """Take the caller's ``X-Request-ID`` (when sane) or make one; echo it on the response."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        traced = cast(TracedRequest, request)
        incoming = request.headers.get("X-Request-ID", "")
        traced.request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        traced.tenant = None
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        response["X-Request-ID"] = traced.request_id
        return response


class ErrorShapeMiddleware:
    """Answer in the error shape when a view outside DRF's exception handler (allauth's headless
    API, the admin) fails for a reason that is not a bug: the database is unreachable (503), the
    body is over the size limit (413) or nests deeper than Python's stack (400 ``parse_error``).

    Exceptions raised by other middleware never reach ``process_exception``: Django turns them
    into a response first, through ``config.urls.handler400``/``handler500`` (``core.ops``).
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from core.errors import ValidationFailed, application_error_for, error_json_response

        error = application_error_for(exception)
        if error is None and isinstance(exception, RecursionError) and _has_body(request):
            logger.warning("request body nested too deeply", exc_info=exception)
            error = ValidationFailed("The request body nests too deeply.", code="parse_error")
        return error_json_response(error) if error is not None else None


def _content_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0  # Django reads no body without a valid length either


def _has_body(request: HttpRequest) -> bool:
    return _content_length(request) > 0


def max_body_size(limit: int) -> Callable[[V], V]:
    """Let a function view take bodies up to ``limit`` bytes; a class view (DRF or Django) sets
    a ``max_body_size`` class attribute instead."""

    def decorate(view: V) -> V:
        cast(Any, view).max_body_size = limit  # a function attribute: view_body_limit reads it
        return view

    return decorate


def view_body_limit(view_func: Callable[..., Any]) -> int:
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    for owner in (view_func, view_class):
        limit = getattr(owner, "max_body_size", None)
        if limit is not None:
            return limit
    return settings.REQUEST_BODY_MAX_SIZE


class BodySizeMiddleware:
    """Refuse a body over its view's limit with 413 ``request_too_large``, before anything reads
    it — parsers, CSRF, authentication.

    The limit is per view (``max_body_size``, else ``REQUEST_BODY_MAX_SIZE``): the import upload
    takes more than a sale. ``Content-Length`` is what counts: Django's ``LimitedStream`` never
    reads past it, and reads no body at all without it.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        from core.errors import RequestTooLarge, error_json_response

        limit = view_body_limit(view_func)
        if _content_length(request) > limit:
            return error_json_response(RequestTooLarge(limit=limit))
        return None


class MetricsMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route if match else None) or "unmatched"
        http_requests_total.labels(request.method, route, str(response.status_code)).inc()
        http_request_duration_seconds.labels(request.method, route).observe(
            time.perf_counter() - started
        )
        return response
