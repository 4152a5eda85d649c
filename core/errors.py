"""Errors: the application's error types and the one shape every error answers in.

One error shape for every error the API returns: ``{"code", "detail", "fields"}``.

``code`` is stable and machine-readable, ``detail`` is for people, ``fields`` maps each offending
input (dotted path for nested input, e.g. ``lines.2.quantity``) to its messages.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django_scopes import ScopeError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback


class ApplicationError(Exception):
    code = "error"
    status = 400
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: dict | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or self.message
        if code:
            self.code = code
        if status:
            self.status = status
        self.fields = fields or {}
        self.extra = extra
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    code = "invalid"
    status = 400
    message = "Invalid input."


class NotFound(ApplicationError):
    code = "not_found"
    status = 404
    message = "Not found."


class Conflict(ApplicationError):
    code = "conflict"
    status = 409
    message = "The request conflicts with the current state."


class InvalidState(ApplicationError):
    code = "invalid_state"
    status = 409
    message = "Not possible in the document's current state."


class UnknownParameter(ValidationFailed):
    """A query parameter the endpoint does not read: refused rather than ignored, since a
    misspelt or unsupported filter would otherwise look like an answer."""

    code = "unknown_parameter"
    message = "Unknown query parameter."


class RequestTooLarge(ApplicationError):
    """A body over the view's limit: refused before it is read (``fields`` stays empty)."""

    code = "request_too_large"
    status = 413
    message = "The request body is too large."

    def __init__(
        self, message: str | None = None, *, limit: int | None = None, **kwargs: Any
    ) -> None:
        if message is None and limit is not None:
            message = f"The request body is too large: at most {limit} bytes."
        super().__init__(message, **kwargs)


class ServiceUnavailable(ApplicationError):
    """The database cannot be reached (down, or out of connections): a retry later may work,
    unlike a 500, so the answer says when with ``Retry-After``."""

    code = "service_unavailable"
    status = 503
    message = "The service is temporarily unavailable: try again shortly."
    retry_after = 5


logger = logging.getLogger(__name__)


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into ``{"a.b.0.c": ["message", ...]}``.

    Walks with its own stack rather than recursing: error details mirror request data, and
    request data may nest deeper than Python's recursion limit.
    """
    out: dict[str, list[str]] = {}
    stack = [(detail, prefix)]
    while stack:
        node, prefix = stack.pop()
        children = []
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "non_field_errors" and prefix:
                    name = prefix  # "products" rather than "products.non_field_errors"
                else:
                    name = f"{prefix}.{key}" if prefix else str(key)
                children.append((value, name))
        elif isinstance(node, list):
            if all(not isinstance(item, (dict, list)) for item in node):
                out.setdefault(prefix or "non_field_errors", []).extend(str(i) for i in node)
            else:
                children = [
                    (item, f"{prefix}.{index}" if prefix else str(index))
                    for index, item in enumerate(node)
                    if item
                ]
        else:
            out.setdefault(prefix or "non_field_errors", []).append(str(node))
        stack.extend(reversed(children))  # depth first, in the input's order
    return out


def error_body(code: str, detail: str, fields: dict | None = None, **extra: Any) -> dict:
    return {"code": code, "detail": detail, "fields": fields or {}, **extra}


def application_error_for(exc: BaseException) -> ApplicationError | None:
    """The answer to an exception that is the request's or the database's doing, not a bug.

    Shared by the DRF handler below and ``core.middleware.ErrorShapeMiddleware`` (every
    other view), so both answer the same. ``None``: not one of these.
    """
    if isinstance(exc, (OperationalError, InterfaceError, RedisConnectionError, RedisTimeout)):
        # Down, restarting or out of connections — the database, or the shared cache that
        # sign-in throttling reads. Also raised while authenticating, before content
        # negotiation: answering here is what keeps that from becoming an HTML 500.
        logger.error("backing service unavailable: %s: %s", type(exc).__name__, exc)
        return ServiceUnavailable()
    if isinstance(exc, RequestDataTooBig):
        # Django's own limit, if configured (BodySizeMiddleware keeps the per-view ones)
        return RequestTooLarge(limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return None


def application_error_headers(exc: ApplicationError) -> dict[str, str]:
    retry_after = getattr(exc, "retry_after", None)
    return {"Retry-After": str(retry_after)} if retry_after else {}


def error_json_response(exc: ApplicationError) -> JsonResponse:
    """An ``ApplicationError`` answered outside DRF (middleware, Django's error handlers)."""
    response = JsonResponse(
        error_body(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status
    )
    for name, value in application_error_headers(exc).items():
        response[name] = value
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = application_error_for(exc) or exc
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(
            error_body(exc.code, exc.message, exc.fields, **exc.extra),
            status=exc.status,
            headers=application_error_headers(exc),
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, ScopeError):
        # A query ran without a tenant scope: a programming error, never served as data.
        logger.error("query without tenant scope", exc_info=exc)
        return Response(
            error_body("server_error", "Internal error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if not isinstance(exc, exceptions.APIException):
        return None  # Django's 500 handler (config.urls.handler500) answers in the same shape.

    set_rollback()
    headers = {}
    auth_header = getattr(exc, "auth_header", None)  # AuthenticationFailed, NotAuthenticated
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)  # Throttled
    if wait:
        headers["Retry-After"] = str(int(wait))

    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        code = "invalid"  # specific codes come from ApplicationErrors; field messages say why
        detail = "Invalid input: " + "; ".join(
            f"{name}: {msgs[0]}" for name, msgs in list(fields.items())[:5]
        )
        return Response(error_body(code, detail, fields), status=exc.status_code, headers=headers)

    # DRF's own codes are stable: not_authenticated, authentication_failed, permission_denied,
    # not_found, method_not_allowed, parse_error, throttled, unsupported_media_type...
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else "error"
    return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)
