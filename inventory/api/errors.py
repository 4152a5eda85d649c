"""One error shape for every error the API returns: ``{"code", "detail", "fields"}``.

``code`` is stable and machine-readable, ``detail`` is for people, ``fields`` maps each offending
input (dotted path for nested input, e.g. ``lines.2.quantity``) to its messages.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django_scopes import ScopeError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from inventory.exceptions import ApplicationError

logger = logging.getLogger(__name__)



def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into ``{"a.b.0.c": ["message", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors" and prefix:
                name = prefix  # "products" rather than "products.non_field_errors"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten_errors(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_body(code: str, detail: str, fields: dict | None = None, **extra) -> dict:
    return {"code": code, "detail": detail, "fields": fields or {}, **extra}


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(
            error_body(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status
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
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

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
    return Response(
        error_body(code, str(exc.detail)), status=exc.status_code, headers=headers
    )
