"""Domain errors.

Every error the platform raises on purpose is an ``ApplicationError``: it carries a stable
machine-readable ``code``, the HTTP status the API answers with, a human message and optional
per-field details. One DRF exception handler (``inventory.api.errors``) turns them, and every
other error, into the single JSON shape ``{"code", "detail", "fields"}``.
"""

from __future__ import annotations


class ApplicationError(Exception):
    code = "error"
    status = 400
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 status: int | None = None, fields: dict | None = None, **extra):
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


class UnknownBarcode(NotFound):
    code = "unknown_barcode"
    message = "No product matches the scanned code."


class InvalidCheckDigit(ApplicationError):
    code = "invalid_check_digit"
    status = 400
    message = "The GTIN's check digit is wrong: the scan is damaged or mistyped."


class InvalidBarcode(ApplicationError):
    code = "invalid_barcode"
    status = 400
    message = "The scanned text is not a barcode this platform can read."


class InsufficientStock(ApplicationError):
    """Raised for a whole document: ``lines`` lists every short line, not just the first.

    ``shortfalls`` carries the same lines as typed values (the write path's ``Shortfall``) for
    the services that record the refused attempt; it is not part of the answer's body.
    """

    code = "insufficient_stock"
    status = 409
    message = "Not enough stock."

    def __init__(self, message: str | None = None, *, shortfalls: list | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.shortfalls = shortfalls or []


class IdempotencyConflict(ApplicationError):
    code = "idempotency_conflict"
    status = 409
    message = "This client_ref was already used for a different request."


class InvalidState(ApplicationError):
    code = "invalid_state"
    status = 409
    message = "Not possible in the document's current state."


class UnknownParameter(ValidationFailed):
    """A query parameter the endpoint does not read: refused rather than ignored, since a
    misspelt or unsupported filter would otherwise look like an answer."""

    code = "unknown_parameter"
    message = "Unknown query parameter."


class OrganizationRequired(ApplicationError):
    code = "organization_required"
    status = 400
    message = "You belong to several organisations: name one with the X-Organization header."


class RequestTooLarge(ApplicationError):
    """A body over the view's limit: refused before it is read (``fields`` stays empty)."""

    code = "request_too_large"
    status = 413
    message = "The request body is too large."

    def __init__(self, message: str | None = None, *, limit: int | None = None, **kwargs):
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
