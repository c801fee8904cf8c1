"""The common part of every service's ``create_app``: errors, health/ready, model list, logging."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request

from .errors import install_error_handlers
from .health import Readiness, readiness_of
from .health import router as health_router
from .schemas import ModelList

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def build_app(*, title: str, description: str, version: str, lifespan: Lifespan) -> FastAPI:
    """FastAPI app with OpenAI error handling, ``/health``, ``/ready`` and ``GET /v1/models``.

    ``app.state.readiness`` starts as ``loading``; the service's lifespan marks it ready after warm-up.
    """
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.readiness = Readiness()
    install_error_handlers(app)
    app.include_router(health_router)

    @app.get("/v1/models", response_model=ModelList, tags=["models"], summary="The loaded model (OpenAI list shape)")
    async def list_models(request: Request) -> ModelList:
        readiness: Readiness = readiness_of(request)
        return ModelList(data=[readiness.model_card()] if readiness.model_id else [])

    return app
