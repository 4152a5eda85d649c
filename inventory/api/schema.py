"""OpenAPI description of the token authentication (imported by the app's ready())."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "inventory.auth.tokens.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>` (or `Bearer <key>`): a person's device token.",
        }


#: The one error shape (``inventory.api.errors``): extra keys carry details of some codes
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
    },
    "required": ["code", "detail", "fields"],
}


def document_errors(result, generator, request, public):
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
                operation.setdefault("responses", {}).setdefault("4XX", {
                    "description": "Refused: see `code` (CONTRIBUTING.md lists them all).",
                    "content": {"application/json": {"schema": reference}},
                })
    return result
