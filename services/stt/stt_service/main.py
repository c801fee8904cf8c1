"""App factory of the STT service: its settings, its engine loader and warm-up, its router.

The model's life (load on the worker thread, warm-up, readiness, shutdown) is ``service_common.lifecycle``'s.
"""

from __future__ import annotations

from fastapi import FastAPI

from service_common.health import Readiness
from service_common.lifecycle import create_service_app

from . import __doc__ as package_doc
from .config import Settings, get_settings
from .engine import Transcriber
from .metrics import SttMetrics
from .routes import router

VERSION = "0.1.0"


def load_engine(settings: Settings, readiness: Readiness) -> Transcriber:
    """Resolve and load ``settings.model`` (embedded, local path or hub id; a hub model downloads first)."""
    from .whisper_engine import WhisperTranscriber  # faster-whisper: only when a real model is loaded

    return WhisperTranscriber.from_settings(settings, readiness)


def warm_up(engine: Transcriber, settings: Settings) -> None:
    """Refuse an ``STT_LANGUAGE`` the model cannot transcribe, then transcribe 1 s of silence."""
    if settings.language and settings.language not in engine.supported_languages:
        raise ValueError(f"STT_LANGUAGE={settings.language!r} is not supported by {engine.model_id!r}")
    engine.warm_up()


def create_app(settings: Settings | None = None, engine: Transcriber | None = None) -> FastAPI:
    """The STT app. ``settings`` default to the ``STT_*`` environment; an injected ``engine`` skips loading."""
    return create_service_app(
        name="stt",
        title="STT service",
        description=(package_doc or "").strip(),
        version=VERSION,
        settings=settings or get_settings(),
        load=load_engine,
        warm_up=warm_up,
        router=router,
        metrics=SttMetrics,
        engine=engine,
    )
