"""Request body parsers: a refusal is a 400 in the error shape, never a crash.

``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`` names ``JSONParser`` instead of DRF's own, which
let a deeply nested body raise ``RecursionError`` (a 500). JSON numbers arrive as exact
decimals. Body sizes are limited before any parser runs, per view
(``core.middleware.BodySizeMiddleware``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from core.fields import JsonNumber

#: No request of this API nests deeper than a handful of levels (a sale's lines, a tolerance
#: band). Deeper input is refused at parse time, so nothing that walks request data later —
#: validation, a JSONField's encoder, ``flatten_errors`` — can run out of stack on it.
MAX_JSON_DEPTH = 32


def json_depth_exceeds(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``data`` nests lists/objects deeper than ``limit`` (iteratively: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        # DRF defines get_encoding at module level; djangorestframework-stubs omit it.
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            # rest_framework.utils.json refuses NaN and Infinity, as DRF's parser does
            # Numbers with a fraction or exponent become JsonNumbers (exact Decimals that keep
            # how they were written: core.fields.DecimalField refuses exponents), never
            # floats: 0.1 arrives as 0.1.
            data = json.loads(stream.read().decode(encoding), parse_float=JsonNumber)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        except ValueError as exc:  # not JSON, NaN/Infinity, not the declared encoding
            raise ParseError(f"JSON parse error - {exc}") from exc
        if json_depth_exceeds(data):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return data
