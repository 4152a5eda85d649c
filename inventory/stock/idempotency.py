"""Request fingerprints for idempotent writes.

A device retries with the same ``client_ref``; the document stores a SHA-256 of the request as
the service understood it (resolved product ids, normalised quantities), so a replay of the same
request returns the first result, and the same key with a different request is refused.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from inventory.exceptions import IdempotencyConflict


def _normalise(value):
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if hasattr(value, "pk"):
        return value.pk
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def request_hash(payload: dict) -> str:
    text = json.dumps(_normalise(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def check_replay(document, digest: str):
    """The stored document for a replay, or ``IdempotencyConflict`` for a different request."""
    if document.request_hash != digest:
        raise IdempotencyConflict(
            fields={"client_ref": ["Already used for a different request."]},
            client_ref=document.client_ref,
        )
    return document
