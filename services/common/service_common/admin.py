"""The admin routes of every service: ``GET /admin/status``, ``POST /admin/model/unload`` and ``/admin/model/load``.

Guarded by ``<PREFIX>_ADMIN_API_KEY`` (``Authorization: Bearer <key>``): without one configured they answer 403
``admin_disabled``, with a wrong or missing key 401. They are outside ``/v1``, so the API keys, the rate limit and
the queue limit of ``guard`` do not apply to them, and an unload never counts as a request using the model.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from .errors import AdminDisabled, InvalidApiKey, ServiceError
from .guard import Admission, ApiKeys
from .health import State, readiness_of
from .metrics import ServiceMetrics
from .schemas import ErrorResponse
from .settings import ServiceSettings

if TYPE_CHECKING:
    from .lifecycle import ModelLife


class AdminModel(BaseModel):
    id: str = Field(description="Model identifier, as GET /v1/models lists it.")
    owned_by: str = Field(description="Where the model comes from: its package, 'local' or the hub organisation.")
    device: str = Field(description="Where it runs: cpu, cuda, ...")


class AdminMemory(BaseModel):
    rss_bytes: int | None = Field(description="Resident memory of the service's process in bytes (None off Linux).")


class AdminGpu(BaseModel):
    index: int
    name: str
    memory_used_bytes: int = Field(description="GPU memory in use by all processes, in bytes.")
    memory_total_bytes: int
    utilization: float = Field(ge=0.0, le=1.0, description="Fraction of the last sample period a kernel ran.")


class AdminQueue(BaseModel):
    in_flight: int = Field(description="Model requests (POST /v1/...) being served or waiting now.")
    max_queued: int = Field(description="<PREFIX>_MAX_QUEUED_REQUESTS: how many may wait behind the one served.")


class AdminStatus(BaseModel):
    """What an operator wants to know about one service."""

    service: str = Field(description="stt, llm, tts or realtime.")
    state: State = Field(description="The model's state, as GET /ready reports it.")
    detail: str | None = Field(default=None, description="Why the model is not ready (failed or unloaded).")
    model: AdminModel | None = Field(description="The loaded model; None while none is loaded.")
    load_seconds: float | None = Field(description="Seconds the last load and warm-up took.")
    loaded_at: int = Field(description="Unix time (s) of the last load.")
    uptime_s: float = Field(description="Seconds since the process started serving.")
    memory: AdminMemory
    gpus: list[AdminGpu] | None = Field(description="Every NVIDIA GPU the process sees; None without one.")
    queue: AdminQueue


def require_admin(request: Request) -> None:
    """Let the request through only with the admin key; AdminDisabled (403) when none is configured, InvalidApiKey
    (401) for a wrong or missing one."""
    settings: ServiceSettings = request.app.state.settings
    if settings.admin_api_key is None:
        raise AdminDisabled(
            f"the admin routes are off: start the service with {settings.env_prefix}ADMIN_API_KEY set to use them"
        )
    keys = ApiKeys(settings.admin_api_keys)
    try:
        keys.caller(request.headers.get("authorization", "").encode())
    except InvalidApiKey as err:
        raise InvalidApiKey(f"admin routes: {err.message} (the admin key, not an API key)") from err


ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "No admin key, or a wrong one"},
    403: {"model": ErrorResponse, "description": "No <PREFIX>_ADMIN_API_KEY configured: admin routes off"},
}
router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)], responses=ADMIN_ERRORS)


def model_life(request: Request) -> ModelLife:
    life: ModelLife = request.app.state.model
    return life


def admin_status(request: Request) -> AdminStatus:
    """The status of the app serving ``request``."""
    life = model_life(request)
    readiness = readiness_of(request)
    metrics: ServiceMetrics = request.app.state.metrics
    admission: Admission = request.app.state.admission
    rss = metrics.rss_bytes()
    return AdminStatus(
        service=life.name,
        state=readiness.state,
        detail=readiness.detail,
        model=AdminModel(id=readiness.model_id, owned_by=readiness.owned_by, device=life.device)
        if readiness.is_ready and readiness.model_id
        else None,
        load_seconds=life.load_s,
        loaded_at=readiness.loaded_at,
        uptime_s=time.time() - metrics.started_at,
        memory=AdminMemory(rss_bytes=None if rss is None else int(rss)),
        gpus=[AdminGpu(**vars(gpu)) for gpu in metrics.gpu.gpus()] if metrics.gpu is not None else None,
        queue=AdminQueue(in_flight=admission.in_flight, max_queued=admission.max_queued),
    )


StatusDep = Annotated[AdminStatus, Depends(admin_status)]


@router.get("/status", response_model=AdminStatus, summary="Model, memory, GPUs, queue and uptime of this service")
async def get_status(status: StatusDep) -> AdminStatus:
    return status


@router.post(
    "/model/unload",
    response_model=AdminStatus,
    summary="Free the model (waits for the requests using it); /ready then answers 503 unloaded",
    responses={409: {"model": ErrorResponse, "description": "The model is loading, or still in use after 60 s"}},
)
async def unload_model(request: Request) -> AdminStatus:
    await model_life(request).unload(request.app.state.admission)
    return admin_status(request)


@router.post(
    "/model/load",
    response_model=AdminStatus,
    summary="Load and warm up the model again; answers once it is ready",
    responses={500: {"model": ErrorResponse, "description": "The model failed to load (the detail says why)"}},
)
async def load_model(request: Request) -> AdminStatus:
    try:
        await model_life(request).load()
    except Exception as err:  # logged by ModelLife; /ready says failed with the same detail
        raise ServiceError(
            f"the model failed to load: {readiness_of(request).detail}", code="model_load_failed"
        ) from err
    return admin_status(request)
