"""``create_app``: the TTS FastAPI app; its lifespan loads the engine, warms it up, then marks it ready."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service_common.app import build_app
from service_common.health import Readiness
from service_common.logs import setup_logging
from service_common.startup import load_in_background
from service_common.worker import ModelWorker

from .config import Settings, get_settings
from .engine import Synthesizer, load_synthesizer
from .routes import router

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load (unless injected) and warm up the synthesiser on its worker thread; exit non-zero on failure.

    A hub model (Parler) downloads while the server already answers ``/ready`` with the progress
    (``service_common.startup``).
    """
    settings: Settings = app.state.settings
    worker = ModelWorker("tts-model")
    app.state.worker = worker
    readiness: Readiness = app.state.readiness

    async def load() -> None:
        try:
            engine: Synthesizer | None = app.state.engine
            if engine is None:
                started = time.perf_counter()
                engine = await worker.run(load_synthesizer, settings, readiness)
                logger.info("TTS engine %s loaded in %.2f s", settings.engine, time.perf_counter() - started)
            started = time.perf_counter()
            await worker.run(engine.warm_up)
            logger.info("TTS warm-up done in %.2f s", time.perf_counter() - started)
        except Exception as err:
            detail = f"{type(err).__name__}: {' '.join(str(err).split())}"  # one line, even for hub errors
            logger.error(
                "TTS start-up failed (engine=%s, voice=%s): %s", settings.engine, settings.default_voice, detail
            )
            readiness.mark_failed(str(err))
            worker.shutdown()
            raise
        app.state.engine = engine
        readiness.mark_ready(engine.model_id, engine.owned_by)
        voices = ", ".join(voice.id for voice in engine.voices())
        rate_hz = engine.sample_rate_hz
        logger.info("TTS ready: default voice %s (%d Hz); voices: %s", engine.default_voice, rate_hz, voices)

    # a model on disk loads before the server listens; a hub download lets it answer /ready meanwhile
    try:
        async with load_in_background(readiness, load()):
            yield
    finally:
        worker.shutdown()


def create_app(settings: Settings | None = None, engine: Synthesizer | None = None) -> FastAPI:
    """The TTS app. ``settings`` default to ``TTS_*`` env vars; an injected ``engine`` skips model loading."""
    settings = settings or get_settings()
    setup_logging(settings.log_level)
    app = build_app(
        title="Voice agent: text to speech",
        description="OpenAI-compatible speech synthesis (POST /v1/audio/speech), streamed sentence by sentence. "
        f"Engine: {settings.engine}; default voice: {settings.default_voice}.",
        version="0.1.0",
        lifespan=lifespan,
        settings=settings,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.include_router(router)
    return app
