"""The common part of every service's ``create_app``: errors, health/ready, model list, access, CORS, docs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from .errors import install_error_handlers
from .guard import Admission, ApiGuard, ApiKeys, RateLimit
from .health import Readiness, readiness_of
from .health import router as health_router
from .logs import setup_logging
from .metrics import ServiceMetrics
from .openapi import document_errors
from .schemas import ModelList
from .settings import ServiceSettings

logger = logging.getLogger(__name__)

CORS_EXPOSED_HEADERS = ["Retry-After", "X-Sample-Rate", "X-Voice"]
"""Response headers a page on an allowed origin may read (the TTS service's audio format, when to retry)."""

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def build_app(
    *, title: str, description: str, version: str, lifespan: Lifespan, settings: ServiceSettings | None = None
) -> FastAPI:
    """FastAPI app with OpenAI error handling, ``/health``, ``/ready``, ``/metrics`` and ``GET /v1/models``.

    ``app.state.readiness`` starts as ``loading``; ``lifespan`` marks it ready after warm-up (the services get theirs
    from ``lifecycle.create_service_app``; tests of the shared pieces pass their own).
    From ``settings`` (defaults when None: open, no rate limit, no CORS): ``guard.ApiGuard`` in front of every
    ``/v1`` route (API keys, rate limit, at most ``max_queued_requests`` waiting; ``app.state.admission``) and
    CORSMiddleware for ``cors_origins``. ``app.state.metrics`` (``metrics.ServiceMetrics``) counts the HTTP
    requests and the guard's refusals and serves ``GET /metrics``, open like ``/health``. The OpenAPI document
    shows the errors as answered (``openapi``).
    """
    settings = settings or ServiceSettings.model_construct()
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.readiness = Readiness()
    app.state.admission = Admission(settings.max_queued_requests)
    app.state.metrics = metrics = ServiceMetrics()
    install_error_handlers(app)
    api_keys = ApiKeys(settings.api_keys)
    rate_limit = RateLimit(settings.rate_limit) if settings.rate_limit else None
    app.add_middleware(
        ApiGuard, api_keys=api_keys, rate_limit=rate_limit, admission=app.state.admission, refused=metrics.refused
    )
    metrics.instrument(app, app.state.admission)  # outside the guard: its refusals are counted by status too
    if settings.cors_origins:  # added last, so outermost: preflights and refusals get their CORS headers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI caches the generated document there; rewrite it once
            document_errors(generate_openapi(), api_keys=api_keys.required, rate_limited=rate_limit is not None)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health_router)

    @app.get("/v1/models", response_model=ModelList, tags=["models"], summary="The loaded model (OpenAI list shape)")
    async def list_models(request: Request) -> ModelList:
        readiness: Readiness = readiness_of(request)
        return ModelList(data=[readiness.model_card()] if readiness.model_id else [])

    return app


def serve(factory: str, settings: ServiceSettings, **options: Any) -> None:
    """Run ``factory`` (``"<package>.main:create_app"``) with uvicorn on ``settings.host:settings.port``; ``options``
    go to ``uvicorn.run`` as they are (the Realtime service's WebSocket message limit).

    Logging goes through ``setup_logging`` (``log_config=None``: uvicorn's loggers propagate to its root handler).
    """
    import uvicorn

    setup_logging(settings.log_level)
    set_niceness(settings.nice)
    uvicorn.run(
        factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=settings.keep_alive_s,
        log_config=None,
        log_level=settings.log_level.lower(),
        **options,
    )


def set_niceness(nice: int) -> None:
    """Raise this process's nice value to ``nice`` (0-19) unless it is already that high.

    Call it before any thread starts: on Linux the value is per thread and new threads inherit it, so the model's
    worker and its native threads (OpenMP, ONNX Runtime) all run at ``nice``. Lowering it needs privileges, so a
    value below the current one is left as it is (logged).
    """
    import os

    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        logger.info("nice value raised from %d to %d", current, nice)
    elif nice < current:
        logger.info("nice value stays %d (asked for %d; lowering it needs privileges)", current, nice)
