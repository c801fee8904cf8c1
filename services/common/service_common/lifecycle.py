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

The same names in every service: ``app.state.engine`` (the warmed-up engine, None before and while unloaded),
``app.state.model`` (its ``ModelLife``: load, unload), ``app.state.worker`` (the ``ModelWorker`` every model call
runs on), ``app.state.readiness``, ``app.state.metrics`` and ``app.state.settings``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CollectorRegistry

from .admin import router as admin_router
from .app import build_app
from .errors import Conflict
from .guard import Admission
from .health import Readiness, readiness_of
from .logs import setup_logging
from .metrics import ServiceMetrics
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

UNLOAD_WAIT_S = 60.0
"""How long an unload waits for the model requests in the service to finish before giving up (409)."""


class ModelLife(Generic[EngineT, SettingsT]):
    """Loads, warms up and unloads one app's model; kept on ``app.state.model``.

    Every call into the model library happens on ``worker``. ``load`` and ``unload`` run one at a time (the
    start-up load and the admin routes of ``service_common.admin``). An injected engine (tests) is never loaded nor
    closed here: unloading drops the app's reference and loading takes the injected one back after a warm-up.
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        name: str,
        settings: SettingsT,
        load: Callable[[SettingsT, Readiness], EngineT],
        warm_up: Callable[[EngineT, SettingsT], None],
        engine: EngineT | None,
    ) -> None:
        self.app = app
        self.name = name
        self.settings = settings
        self._load = load
        self._warm_up = warm_up
        self._injected = engine
        self._owned = False  # whether app.state.engine was loaded here (then closed here)
        self._lock = asyncio.Lock()
        self.worker = ModelWorker(f"{name}-model")
        self.load_s: float | None = None
        """Seconds the last load and warm-up took."""
        self.unload_wait_s = UNLOAD_WAIT_S

    @property
    def readiness(self) -> Readiness:
        readiness: Readiness = self.app.state.readiness
        return readiness

    @property
    def device(self) -> str:
        """Where the model runs: the engine's ``device`` when it has one, else ``cpu``."""
        return str(getattr(self.app.state.engine, "device", "cpu"))

    async def load(self) -> None:
        """Load (unless injected) and warm up the model, then mark it ready; nothing to do if it is ready.

        A failure is logged in one line, ``readiness`` marked failed with it, and raised.
        """
        async with self._lock:
            if self.readiness.is_ready:
                return
            self.readiness.mark_loading()
            started = time.perf_counter()
            try:
                model = self._injected
                if model is None:
                    model = await self.worker.run(self._load, self.settings, self.readiness)
                    logger.info(
                        "%s model %r loaded in %.2f s", self.name, model.model_id, time.perf_counter() - started
                    )
                warm_up_started = time.perf_counter()
                await self.worker.run(self._warm_up, model, self.settings)
            except Exception as err:
                detail = f"{type(err).__name__}: {' '.join(str(err).split())}"  # one line, even for hub errors
                logger.error("%s start-up failed: %s", self.name, detail)
                self.readiness.mark_failed(detail)
                raise
            self.app.state.engine = model
            self._owned = self._injected is None
            self.load_s = time.perf_counter() - started
            self.readiness.mark_ready(model.model_id, model.owned_by)
            metrics: ServiceMetrics = self.app.state.metrics
            metrics.mark_loaded(model.model_id, model.owned_by, self.device, self.load_s)
            logger.info(
                "%s ready with %r: warm-up %.2f s, start-up %.2f s",
                self.name,
                model.model_id,
                time.perf_counter() - warm_up_started,
                self.load_s,
            )

    async def unload(self, admission: Admission) -> None:
        """Free the model once the model requests in ``admission`` have finished; nothing to do if unloaded.

        From the call on, ``/ready`` answers 503 ``unloaded`` and new model requests 503 ``model_not_ready``; the
        requests already in the service finish first (streams to their last byte). Raises Conflict (409) while
        the model is loading, or when requests still use it after ``unload_wait_s`` (the model then stays ready).
        """
        timeout_s = self.unload_wait_s
        async with self._lock:
            if self.readiness.state == "unloaded":
                return
            if not self.readiness.is_ready:
                raise Conflict(f"the model is {self.readiness.state}; unload it once it is ready")
            model_id, owned_by = self.readiness.model_id or "", self.readiness.owned_by
            self.readiness.mark_unloaded()
            if not await admission.wait_idle(timeout_s):
                self.readiness.mark_ready(model_id, owned_by)
                raise Conflict(
                    f"{admission.in_flight} requests still use the model after {timeout_s:.0f} s; it stays loaded"
                )
            await self._release()
            metrics: ServiceMetrics = self.app.state.metrics
            metrics.mark_unloaded()
            logger.info("%s model %r unloaded", self.name, model_id)

    def open(self) -> None:
        """At start-up: a new worker thread (an app's lifespan may run again, e.g. in tests)."""
        self.worker = ModelWorker(f"{self.name}-model")
        self.app.state.worker = self.worker

    async def close(self) -> None:
        """At shutdown: release a model loaded here, then stop the worker; the next start-up loads again."""
        if self.readiness.is_ready:  # a model still loading is left to the process exit
            await self._release()
            self.readiness.mark_loading()
            metrics: ServiceMetrics = self.app.state.metrics
            metrics.mark_unloaded()
        self.worker.shutdown()

    async def _release(self) -> None:
        model, self.app.state.engine = self.app.state.engine, None
        close = getattr(model, "close", None) if self._owned else None
        self._owned = False
        del model
        if close is not None:
            await self.worker.run(close)
        del close
        await self.worker.run(gc.collect)  # native memory of the model is freed with its last reference


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
    metrics: Callable[[CollectorRegistry], object] | None = None,
    engine: EngineT | None = None,
) -> FastAPI:
    """The service's app (``build_app`` plus ``router`` and ``service_common.admin``) whose lifespan runs the
    model's life (``ModelLife``, on ``app.state.model``).

    ``name`` (``stt``, ``llm``, ``tts``) names the worker thread (``<name>-model``) and the log lines. The lifespan
    loads the engine with ``load`` unless ``engine`` is given (tests inject fakes), warms it up, puts it on
    ``app.state.engine`` and marks ``app.state.readiness`` ready. A model on disk loads before the server listens;
    a hub download lets it answer ``/ready`` with the progress meanwhile (``startup.load_in_background``). A failure
    is logged in one line and ``readiness`` marked failed; the process then exits non-zero (status 3). At shutdown
    an engine the lifespan loaded itself and that has a ``close()`` is closed on its worker (an injected one
    belongs to whoever injected it), then the worker is shut down, once. ``metrics(registry)`` builds the
    service's own metrics in the app's registry (``app.state.model_metrics``, for ``model_metrics``).
    """
    setup_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        life: ModelLife[EngineT, SettingsT] = app.state.model
        life.open()
        try:
            async with load_in_background(life.readiness, life.load()):
                yield
        finally:
            await life.close()

    app = build_app(title=title, description=description, version=version, lifespan=lifespan, settings=settings)
    app.state.settings = settings
    app.state.engine = None
    app.state.model = ModelLife(app, name=name, settings=settings, load=load, warm_up=warm_up, engine=engine)
    app.state.model_metrics = metrics(app.state.metrics.registry) if metrics is not None else None
    app.include_router(router)
    app.include_router(admin_router)
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


def model_metrics(request: Request) -> Any:
    """The service's own metrics (``create_service_app``'s ``metrics``), registered for ``GET /metrics``.

    Each service's ``deps.py`` types it: ``MetricsDep = Annotated[SttMetrics, Depends(model_metrics)]``.
    """
    return request.app.state.model_metrics


def app_settings(request: Request) -> Any:
    """The settings the app was created with (tests inject their own; not re-read from the environment).

    Each service's ``deps.py`` types it: ``SettingsDep = Annotated[Settings, Depends(app_settings)]``.
    """
    return request.app.state.settings
