"""OpenAPI: the one error shape on every operation, decimals and list lengths as the API takes
them. ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` names ``AutoSchema``; ``document_errors`` is a
postprocessing hook."""

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

#: The one error shape (``core.errors``): extra keys carry details of some codes
#: (``lines`` of ``insufficient_stock``, ``barcode`` of ``unknown_barcode``, ``request_id``).
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Stable, machine-readable."},
        "detail": {"type": "string", "description": "For people."},
        "fields": {
            "type": "object",
            "description": "Each offending input (dotted path for nested input) and why.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "problems": {
            "type": "array",
            "description": "A request refused line by line: each problem with its own code.",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                },
                "required": ["field", "code", "detail"],
            },
        },
    },
    "required": ["code", "detail", "fields"],
}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """Every operation may answer a 4xx in the one error shape: say so, so that a client (and
    the schema fuzzer, ``tests/fuzz``) can rely on every documented answer being true.

    A postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``) rather than a
    response on each view: the shape is the exception handler's, not any one view's.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method in ("get", "put", "patch", "post", "delete", "head", "options"):
                operation.setdefault("responses", {}).setdefault(
                    "4XX",
                    {
                        "description": "Refused: see `code` (CONTRIBUTING.md lists them all).",
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result


class PlainDecimalField(OpenApiSerializerFieldExtension):
    """Quantities and money as ``core.fields.DecimalField`` really takes and gives
    them: ASCII digits, at most its decimal places, a minus only where negatives are allowed
    (drf-spectacular's own pattern would also admit ``""``, ``"."`` and other scripts' digits)."""

    target_class = "core.fields.DecimalField"

    def map_serializer_field(self, auto_schema: openapi.AutoSchema, direction: str) -> dict:
        field = self.target
        whole = field.max_digits - field.decimal_places
        sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
        nonzero = "(?=.*[1-9])" if field.min_value is not None and field.min_value > 0 else ""
        schema: dict[str, Any] = {
            "type": "string",
            "format": "decimal",
            "pattern": (
                rf"^{nonzero}{sign}[0-9]{{1,{whole}}}(\.[0-9]{{1,{field.decimal_places}}})?$"
            ),
        }
        if field.allow_null:
            schema["nullable"] = True
        return schema


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, also documenting the length limits of nested lists (``many=True``
    serializers: a sale's ``lines`` may not be empty, nor longer than ``MAX_LINES``) and the
    fields of which a request names exactly one (a serializer's ``one_of``: a line names its
    product by ``product``, ``sku`` or ``barcode``); in an answer every field is required
    unless its serializer lists it in ``optional``."""

    def _map_basic_serializer(self, serializer: serializers.Serializer, direction: str) -> dict:
        schema = super()._map_basic_serializer(serializer, direction)
        one_of = getattr(serializer, "one_of", None)
        if one_of and direction == "request":
            schema["oneOf"] = [{"required": [name]} for name in one_of]
        if direction == "response":
            # An answer carries every field its serializer has (null when there is no value),
            # except those a serializer names as sometimes absent (its ``optional``).
            optional = set(getattr(serializer, "optional", ()))
            required = sorted(set(schema.get("properties", {})) - optional)
            if required:
                schema["required"] = required
        return schema

    def _insert_field_validators(self, field: serializers.Field, schema: dict) -> None:
        super()._insert_field_validators(field, schema)
        # A text field that may be blank is "a value of its format, or empty": anyOf, not
        # drf-spectacular's oneOf, which a validator that does not check formats (an URL's)
        # finds matched twice by "".
        if schema.get("oneOf", [None])[-1] == {"type": "string", "maxLength": 0}:
            schema["anyOf"] = schema.pop("oneOf")

    def _map_serializer_field(
        self, field: serializers.Field, direction: str, bypass_extensions: bool = False
    ) -> dict:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            # DRF's ListSerializer keeps min_length and max_length as attributes (set in its
            # __init__); djangorestframework-stubs declare them only as constructor arguments.
            min_length: int | None = field.min_length  # type: ignore[attr-defined]
            max_length: int | None = field.max_length  # type: ignore[attr-defined]
            if not field.allow_empty:
                schema["minItems"] = max(1, min_length or 0)
            elif min_length:
                schema["minItems"] = min_length
            if max_length is not None:
                schema["maxItems"] = max_length
        return schema
