"""App factory of the Realtime service: its settings, its backend loader and warm-up, its router.

The life of the backend (load on the worker thread, warm-up, readiness, shutdown) is ``service_common.lifecycle``'s,
as for the model services.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from service_common.health import Readiness
from service_common.lifecycle import create_service_app

from . import __doc__ as package_doc
from .backend import RealtimeBackend
from .config import Settings, get_settings
from .metrics import RealtimeMetrics
from .routes import Sessions, router
from .webrtc import router as calls_router

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


def load_backend(settings: Settings, readiness: Readiness) -> RealtimeBackend:
    """The VAD and turn models (from the pipecat-ai wheel, nothing to download) and the services' clients."""
    return RealtimeBackend.load(settings)


def warm_up(backend: RealtimeBackend, settings: Settings) -> None:
    backend.warm_up()
    logger.info(
        "Realtime sessions: at most %d; STT %s, LLM %s, TTS %s",
        settings.max_sessions,
        settings.stt_url,
        settings.llm_url,
        settings.tts_url,
    )


def create_app(settings: Settings | None = None, backend: RealtimeBackend | None = None) -> FastAPI:
    """The Realtime app. ``settings`` default to the ``REALTIME_*`` environment; an injected ``backend`` skips
    loading."""
    settings = settings or get_settings()
    app = create_service_app(
        name="realtime",
        title="Realtime service",
        description=(package_doc or "").strip(),
        version=VERSION,
        settings=settings,
        load=load_backend,
        warm_up=warm_up,
        router=router,
        metrics=RealtimeMetrics,
        engine=backend,
    )
    app.include_router(calls_router)
    app.state.sessions = Sessions(settings.max_sessions, app.state.model_metrics)
    app.state.calls = {}  # call id -> webrtc.Call
    return app
