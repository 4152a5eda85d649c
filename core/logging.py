"""Request context for log records: every line carries request id, organisation and user."""

import contextvars
import logging

from django.http import HttpRequest

current_request: contextvars.ContextVar = contextvars.ContextVar("current_request", default=None)


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request.get()
        if request is None:
            # Django logs every 4xx/5xx response ("Not Found: /x", on the ``django.request``
            # logger) after the middleware chain has returned, so outside the context that
            # RequestIdMiddleware sets; that record names its request itself.
            candidate = getattr(record, "request", None)
            if isinstance(candidate, HttpRequest):
                request = candidate
        record.request_id = getattr(request, "request_id", None)
        tenant = getattr(request, "tenant", None)
        record.org = tenant.org.slug if tenant is not None else None
        # Only a user already loaded: a log line must never trigger a query.
        user = request.__dict__.get("user") if request is not None else None
        user = getattr(user, "_wrapped", user)
        authenticated = getattr(user, "is_authenticated", False)
        record.user = getattr(user, "pk", None) if authenticated else None
        return True
