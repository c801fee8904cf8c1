"""App factory of the STT service: ``create_app`` + the lifespan that loads and warms up the model."""

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

from . import __doc__ as package_doc
from .config import Settings, get_settings
from .engine import Transcriber
from .routes import router
from .whisper_engine import WhisperTranscriber

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


def create_app(settings: Settings | None = None, engine: Transcriber | None = None) -> FastAPI:
    """Build the app. The lifespan loads ``settings.model`` (unless ``engine`` is given), warms it up with
    one transcription of 1 s of silence, then marks the service ready. A hub model is downloaded first, while the
    server already answers ``/ready`` with the progress (``service_common.startup``). A load failure is logged in one
    line and the process exits non-zero (status 3).
    """
    settings = settings or get_settings()
    setup_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = ModelWorker("stt-model")
        app.state.worker = worker
        readiness: Readiness = app.state.readiness

        async def load() -> None:
            try:
                started = time.perf_counter()
                # loaded on the worker thread too, so every call into CTranslate2 comes from that one thread
                transcriber = engine or await worker.run(WhisperTranscriber.from_settings, settings, readiness)
                if settings.language and settings.language not in transcriber.supported_languages:
                    raise ValueError(f"STT_LANGUAGE={settings.language!r} is not supported by {transcriber.model_id!r}")
                await worker.run(transcriber.warm_up)
            except Exception as err:
                detail = f"{type(err).__name__}: {' '.join(str(err).split())}"  # one line, even for hub errors
                logger.error("STT start-up failed for model %r: %s", settings.model, detail)
                readiness.mark_failed(detail)
                worker.shutdown()
                raise
            app.state.transcriber = transcriber
            readiness.mark_ready(transcriber.model_id, transcriber.owned_by)
            elapsed_s = time.perf_counter() - started
            logger.info("STT ready with %r after %.2f s of start-up", transcriber.model_id, elapsed_s)

        # a model on disk loads before the server listens; a hub download lets it answer /ready meanwhile
        try:
            async with load_in_background(readiness, load()):
                yield
        finally:
            worker.shutdown()

    app = build_app(
        title="STT service",
        description=(package_doc or "").strip()
        + " Whisper (faster-whisper, CTranslate2); the embedded default model works offline.",
        version=VERSION,
        lifespan=lifespan,
        settings=settings,
    )
    app.state.settings = settings
    app.include_router(router)
    return app
