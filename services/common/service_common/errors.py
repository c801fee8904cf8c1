"""Domain errors and their single mapping to OpenAI's error shape.

Every service raises these (never ``HTTPException`` with a hand-written body); ``install_error_handlers``
turns them, FastAPI's validation errors and Starlette's routing errors into
``{"error": {"message", "type", "code", "param"}}`` with the right status code.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error a service reports to its client.

    Subclasses fix ``status_code`` and ``error_type``; ``code`` is a stable machine-readable string,
    ``param`` names the request field at fault, if any.
    """

    status_code: int = 500
    error_type: str = "server_error"
    default_code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param

    def headers(self) -> dict[str, str] | None:
        return None


class InvalidRequest(ServiceError):
    """The request is well-formed JSON/multipart but its content is unusable (400)."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class EmptyInput(InvalidRequest):
    """An upload or text field carries nothing to work on (400)."""

    default_code = "empty_input"


class AudioDecodeError(ServiceError):
    """Uploaded bytes are not audio any decoder understands (415)."""

    status_code = 415
    error_type = "invalid_request_error"
    default_code = "audio_decode_error"


class InputTooLarge(ServiceError):
    """An upload or text exceeds a configured limit (413)."""

    status_code = 413
    error_type = "invalid_request_error"
    default_code = "input_too_large"


class ModelNotReady(ServiceError):
    """The model is still loading or warming up (503, with ``Retry-After``)."""

    status_code = 503
    error_type = "server_error"
    default_code = "model_not_ready"

    def __init__(self, message: str = "the model is still loading", *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class Overloaded(ServiceError):
    """Too many requests are already waiting for the model (503, with ``Retry-After``); try again shortly."""

    status_code = 503
    error_type = "server_error"
    default_code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class InvalidApiKey(ServiceError):
    """No API key, or not one of the configured keys (401, OpenAI's ``invalid_api_key``)."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class AdminDisabled(ServiceError):
    """An admin route was called on a service started without an admin key (403)."""

    status_code = 403
    error_type = "invalid_request_error"
    default_code = "admin_disabled"


class Conflict(ServiceError):
    """The request conflicts with what the service is doing (409), e.g. unloading a model that is loading."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class RateLimited(ServiceError):
    """The caller used up its request budget (429, with ``Retry-After``); ``type`` is OpenAI's, "requests"."""

    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ClientGone(ServiceError):
    """The client disconnected before its work started, so it was skipped (499, nginx's code; nobody reads it)."""

    status_code = 499
    error_type = "invalid_request_error"
    default_code = "client_closed_request"


class InferenceError(ServiceError):
    """The model library failed on an input it had accepted (500)."""

    status_code = 500
    error_type = "server_error"
    default_code = "inference_error"


def error_body(message: str, error_type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "code", "param"}}``."""
    return {"error": {"message": message, "type": error_type, "code": code, "param": param}}


def error_response(err: ServiceError) -> JSONResponse:
    """The HTTP response of a ServiceError: its status, OpenAI's error body and its headers (Retry-After, ...)."""
    return JSONResponse(
        error_body(err.message, err.error_type, err.code, err.param), status_code=err.status_code, headers=err.headers()
    )


def _common_prefix(first: list[str], second: list[str]) -> list[str]:
    prefix = []
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        prefix.append(a)
    return prefix


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    """All errors in one message, and the field at fault: the first error's, shortened to what it shares with
    the errors after it. A value that fits no member of a union gets one error per member, located under the
    member's type ("stop.str", "stop.list[str]"): the field is "stop", not a type name."""
    parts = []
    param: list[str] | None = None
    for item in err.errors():
        if item.get("type") == "json_invalid":  # its loc is ("body", <character offset>), not a field
            parts.append(f"the request body is not valid JSON: {item.get('ctx', {}).get('error', item.get('msg'))}")
            continue
        location = [str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path", "form")]
        field = ".".join(location)
        param = location if param is None else _common_prefix(param, location) or param
        parts.append(f"{field}: {item.get('msg', 'invalid')}" if field else str(item.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request", ".".join(param) if param else None


def install_error_handlers(app: FastAPI) -> None:
    """Map every error a route can raise to OpenAI's error shape, in one place."""

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, err: ServiceError) -> JSONResponse:
        if err.status_code >= 500:
            logger.error("%s: %s", type(err).__name__, err.message)
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(err)
        return JSONResponse(error_body(message, "invalid_request_error", "invalid_request", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        error_type = "invalid_request_error" if err.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code)
        return JSONResponse(
            error_body(str(err.detail), error_type, code),
            status_code=err.status_code,
            headers=getattr(err, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return JSONResponse(
            error_body(f"internal error: {type(err).__name__}", "server_error", "internal_error"),
            status_code=500,
        )
