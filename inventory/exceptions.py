"""Inventory's domain errors: stock, scans, idempotency, tenancy.

Each is a ``core.errors.ApplicationError``: a stable machine-readable ``code``, the HTTP status
the API answers with, a human message and optional per-field details, turned into the one JSON
shape ``{"code", "detail", "fields"}`` by ``core.errors.exception_handler``.
"""

from __future__ import annotations

from core.errors import ApplicationError, NotFound


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


class OrganizationRequired(ApplicationError):
    code = "organization_required"
    status = 400
    message = "You belong to several organisations: name one with the X-Organization header."
