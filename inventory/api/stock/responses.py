"""The answer of a stock document — receipt, move, adjustment or write-off: one shape for all
four, 201 when recorded and 200 with the very same bytes when a device replays its
``client_ref``.

The shape (``StockDocumentSerializer``) and its renderer (``document_body``) live in
``inventory.api.base``: the discrepancies app answers adjustments and write-offs with them, and
other apps build on the base only. They are imported here for inventory's own views."""

from __future__ import annotations

from inventory.api.base import (
    DOCUMENT_ANSWERS,
    DocumentRowSerializer,
    PolicyWarningsField,
    StockDocumentSerializer,
    document_body,
)

__all__ = [
    "DOCUMENT_ANSWERS",
    "DocumentRowSerializer",
    "PolicyWarningsField",
    "StockDocumentSerializer",
    "document_body",
]
