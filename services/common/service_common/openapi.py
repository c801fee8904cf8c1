"""The OpenAPI document as the services really answer: errors in OpenAI's shape, no FastAPI 422.

FastAPI documents a 422 "Validation Error" (``{"detail": [...]}``) on every route with parameters, but
``errors.install_error_handlers`` answers invalid requests with 400 in OpenAI's shape. ``document_errors``
rewrites the generated document once: the 422 entries and their schemas go, 400 is documented instead, and the
answers of ``guard.ApiGuard`` are added to the ``/v1`` operations (401 and the bearer scheme when API keys are
set, 429 with a rate limit, 503 on the POSTs that queue for the model).
"""

from __future__ import annotations

from typing import Any

from .guard import API_PREFIX
from .schemas import ErrorResponse

_REF = "#/components/schemas/"
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": _REF + "ErrorResponse"}}}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
SECURITY_SCHEME = "APIKey"


def document_errors(schema: dict[str, Any], *, api_keys: bool, rate_limited: bool) -> dict[str, Any]:
    """Rewrite FastAPI's generated ``schema`` in place (and return it); see the module docstring.

    Also moves the ``$defs`` of schemas given by hand in ``responses=`` (``Model.model_json_schema()``) into the
    components, where their ``#/$defs/...`` references could not resolve.
    """
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _hoist_defs(schema, schemas)
    error_schema = ErrorResponse.model_json_schema(ref_template=_REF + "{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas.setdefault("ErrorResponse", error_schema)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if api_keys:
        components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the keys in this service's <PREFIX>_API_KEY variable.",
        }

    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            validated = responses.pop("422", None) is not None
            if validated:
                responses.setdefault("400", {"description": "Invalid request", "content": _ERROR_CONTENT})
            if not path.startswith(API_PREFIX):
                continue
            if api_keys:
                operation["security"] = [{SECURITY_SCHEME: []}]
                responses["401"] = {
                    "description": "Missing or incorrect API key (code invalid_api_key)",
                    "content": _ERROR_CONTENT,
                    "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
                }
            if rate_limited:
                responses["429"] = {
                    "description": "Rate limit reached (code rate_limit_exceeded)",
                    "content": _ERROR_CONTENT,
                    "headers": _RETRY_AFTER,
                }
            if method == "post":
                busy = "too many requests waiting for the model (code overloaded)"
                unavailable = responses.setdefault("503", {"content": _ERROR_CONTENT})
                earlier = unavailable.get("description")
                unavailable["description"] = f"{earlier}, or {busy}" if earlier else busy.capitalize()
                unavailable["headers"] = _RETRY_AFTER
    return schema


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> None:
    """Move every nested ``$defs`` into ``schemas`` and point ``#/$defs/X`` references at ``#/components/schemas/X``."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = _REF + ref.removeprefix("#/$defs/")
        for value in list(node.values()):
            _hoist_defs(value, schemas)
    elif isinstance(node, list):
        for item in node:
            _hoist_defs(item, schemas)
