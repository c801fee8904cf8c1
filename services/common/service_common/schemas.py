"""Wire schemas every service shares: model list and error shapes (OpenAI's), readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ModelCard(BaseModel):
    """One loaded model, as OpenAI's ``GET /v1/models`` lists it."""

    id: str = Field(description="Model identifier (repo id, file name or embedded default name).")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time (s) at which the service loaded the model.")
    owned_by: str = Field(description="Where the model comes from (package or hub organisation).")


class ModelList(BaseModel):
    """OpenAI's list envelope around the loaded models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str = Field(description="Human-readable explanation of what went wrong.")
    type: str = Field(description="Error class: invalid_request_error or server_error.")
    code: str | None = Field(default=None, description="Stable machine-readable error code.")
    param: str | None = Field(default=None, description="Request field at fault, if any.")


class ErrorResponse(BaseModel):
    """OpenAI's error shape, returned with every 4xx and 5xx."""

    error: ErrorDetail


class HealthStatus(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyStatus(BaseModel):
    """Model readiness: ``ready`` only once the model is loaded and has answered a warm-up call."""

    status: Literal["loading", "downloading", "ready", "unloaded", "failed"]
    model: str | None = Field(default=None, description="Model being served, once known.")
    progress: float | None = Field(default=None, ge=0.0, le=1.0, description="Download progress, 0 to 1.")
    detail: str | None = Field(default=None, description="Why the model is not ready (failed or unloaded).")


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "Invalid request"},
    500: {"model": ErrorResponse, "description": "Inference failed"},
    503: {"model": ErrorResponse, "description": "Model not ready yet (code model_not_ready)"},
}
"""OpenAPI ``responses=`` entries so Swagger shows the error shape on every route."""
