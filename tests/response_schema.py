"""Check real answers against the OpenAPI description the API serves (``/api/schema/``).

``AnswerChecker.check(response, "/api/v1/sales/{id}/")`` finds the operation (the request's
method, the answer's status and media type) and validates the body with ``jsonschema``, more
strictly than the schema fuzzer: an object may carry no property the schema does not list
(``additionalProperties: false`` wherever the schema gives none), and every property an answer
lists as required must be there. OpenAPI 3.0's ``nullable`` becomes JSON Schema's ``null``
type; ``$ref`` resolves inside the description.
"""

from __future__ import annotations

import json

import jsonschema
from rest_framework.test import APIClient

API_PREFIX = "/api/v1/"


def _strict(node):
    """OpenAPI 3.0 schema -> JSON Schema (2020-12), closed objects."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items() if key != "nullable"}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


class AnswerChecker:
    def __init__(self, document: dict):
        self.document = document
        self.components = _strict(document.get("components", {}))

    @classmethod
    def served(cls) -> AnswerChecker:
        """The description as ``GET /api/schema/`` serves it."""
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == 200, response.content[:500]
        return cls(json.loads(response.content))

    def operations(self):
        """``(path, method, operation)`` of every operation under ``/api/v1/``."""
        for path, item in self.document["paths"].items():
            if not path.startswith(API_PREFIX):
                continue
            for method, operation in item.items():
                if method in ("get", "put", "patch", "post", "delete"):
                    yield path, method, operation

    def schema_for(self, path: str, method: str, status: int, media_type: str) -> dict | None:
        operation = self.document["paths"][path][method.lower()]
        answer = operation["responses"].get(str(status))
        assert answer is not None, f"{method} {path} does not document {status}"
        content = answer.get("content")
        if not content:
            return None
        assert media_type in content, f"{method} {path} {status} does not document {media_type}"
        return content[media_type]["schema"]

    def check(self, response, path: str):
        """Validate ``response`` (a test client's) against ``path``'s operation; return the
        body (parsed JSON, or text for other media types)."""
        method = response.wsgi_request.method
        media_type = response.get("Content-Type", "").split(";")[0].strip()
        schema = self.schema_for(path, method, response.status_code, media_type)
        raw = b"".join(response.streaming_content) if response.streaming else response.content
        if schema is None:
            assert raw == b"", f"{method} {path}: a body where none is documented"
            return None
        body = json.loads(raw) if media_type == "application/json" else raw.decode()
        validator = jsonschema.Draft202012Validator(
            {**_strict(schema), "components": self.components},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {path} {response.status_code}:\n" + "\n".join(
            f"  at {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in errors[:20]
        )
        return body
