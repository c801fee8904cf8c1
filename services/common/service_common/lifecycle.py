"""The life of every service's model, written once: load, warm up, mark ready, serve, shut down.

A service declares four things and ``create_service_app`` does the rest:
- its settings (a ``ServiceSettings`` subclass), kept on ``app.state.settings``;
- its engine loader, ``load(settings, readiness) -> engine``, run on the model's worker thread (so every call into
  the model library comes from that one thread); heavy imports go inside it, so an injected engine (tests) never
  imports the model library. A hub model reports its download progress to ``readiness``;
- its warm-up, ``warm_up(engine, settings)``, also on the worker thread: one small inference, plus any check of the
  settings against the loaded model (raise to refuse to start);
- its router, whose routes take the engine through ``ready_engine`` (503 ``model_not_ready`` until warmed up) and
  the worker through ``model_worker``.

The same names in every service: ``app.state.engine`` (the warmed-up engine, None before), ``app.state.worker``
(the ``ModelWorker`` every model call runs on), ``app.state.readiness`` and ``app.state.settings``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, FastAPI, Request

from .app import build_app
from .health import Readiness, readiness_of
from .logs import setup_logging
from .settings import ServiceSettings
from .startup import load_in_background
from .worker import ModelWorker

logger = logging.getLogger(__name__)


class Engine(Protocol):
    """What the lifecycle needs of any engine: the names ``GET /v1/models`` shows."""

    model_id: str
    owned_by: str


EngineT = TypeVar("EngineT", bound=Engine)
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def create_service_app(
    *,
    name: str,
    title: str,
    description: str,
    version: str,
    settings: SettingsT,
    load: Callable[[SettingsT, Readiness], EngineT],
    warm_up: Callable[[EngineT, SettingsT], None],
    router: APIRouter,
    engine: EngineT | None = None,
) -> FastAPI:
    """The service's app (``build_app`` plus ``router``) whose lifespan runs the model's life.

    ``name`` (``stt``, ``llm``, ``tts``) names the worker thread (``<name>-model``) and the log lines. The lifespan
    loads the engine with ``load`` unless ``engine`` is given (tests inject fakes), warms it up, puts it on
    ``app.state.engine`` and marks ``app.state.readiness`` ready. A model on disk loads before the server listens;
    a hub download lets it answer ``/ready`` with the progress meanwhile (``startup.load_in_background``). A failure
    is logged in one line and ``readiness`` marked failed; the process then exits non-zero (status 3). At shutdown
    an engine the lifespan loaded itself and that has a ``close()`` is closed on its worker (an injected one
    belongs to whoever injected it), then the worker is shut down, once.
    """
    setup_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = ModelWorker(f"{name}-model")
        app.state.worker = worker
        readiness: Readiness = app.state.readiness
        owned: list[EngineT] = []  # the engine this lifespan loaded, to close at shutdown

        async def start() -> None:
            started = time.perf_counter()
            try:
                model = engine
                if model is None:
                    model = await worker.run(load, settings, readiness)
                    owned.append(model)
                    logger.info("%s model %r loaded in %.2f s", name, model.model_id, time.perf_counter() - started)
                warm_up_started = time.perf_counter()
                await worker.run(warm_up, model, settings)
            except Exception as err:
                detail = f"{type(err).__name__}: {' '.join(str(err).split())}"  # one line, even for hub errors
                logger.error("%s start-up failed: %s", name, detail)
                readiness.mark_failed(detail)
                raise
            app.state.engine = model
            readiness.mark_ready(model.model_id, model.owned_by)
            logger.info(
                "%s ready with %r: warm-up %.2f s, start-up %.2f s",
                name,
                model.model_id,
                time.perf_counter() - warm_up_started,
                time.perf_counter() - started,
            )

        try:
            async with load_in_background(readiness, start()):
                yield
        finally:
            close = getattr(owned[0], "close", None) if owned and readiness.is_ready else None
            if close is not None:  # a model still loading is left to the process exit
                await worker.run(close)
            worker.shutdown()

    app = build_app(title=title, description=description, version=version, lifespan=lifespan, settings=settings)
    app.state.settings = settings
    app.state.engine = None
    app.include_router(router)
    return app


def ready_engine(request: Request) -> Any:
    """The app's warmed-up engine; raises ModelNotReady (503) until the lifespan marked it ready.

    Each service's ``deps.py`` types it: ``EngineDep = Annotated[Transcriber, Depends(ready_engine)]``.
    """
    readiness_of(request).require_ready()
    return request.app.state.engine


def model_worker(request: Request) -> ModelWorker:
    """The one thread every call of the app's model runs on."""
    worker: ModelWorker = request.app.state.worker
    return worker


def app_settings(request: Request) -> Any:
    """The settings the app was created with (tests inject their own; not re-read from the environment).

    Each service's ``deps.py`` types it: ``SettingsDep = Annotated[Settings, Depends(app_settings)]``.
    """
    return request.app.state.settings
