"""App factory of the TTS service: its settings, its engine loader and warm-up, its router.

The model's life (load on the worker thread, warm-up, readiness, shutdown) is ``service_common.lifecycle``'s.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from service_common.health import Readiness
from service_common.lifecycle import create_service_app

from . import __doc__ as package_doc
from .config import Settings, get_settings
from .engine import Synthesizer
from .metrics import TtsMetrics
from .routes import router

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


def load_engine(settings: Settings, readiness: Readiness) -> Synthesizer:
    """Load the engine ``TTS_ENGINE`` names with its voices; only that engine's library is imported.

    Raises FileNotFoundError / ValueError with a clear message when a configured voice is missing or invalid. A hub
    model (Parler) is downloaded once first, reporting its progress to ``readiness``.
    """
    if settings.engine == "parler":
        from .parler_engine import ParlerSynthesizer

        return ParlerSynthesizer.from_settings(settings, readiness)
    from .piper_engine import PiperSynthesizer

    return PiperSynthesizer.from_settings(settings)  # embedded or local voices: nothing to download


def warm_up(engine: Synthesizer, settings: Settings) -> None:
    """One short synthesis per voice, then the voices in the log."""
    engine.warm_up()
    voices = ", ".join(voice.id for voice in engine.voices())
    rate_hz = engine.sample_rate_hz
    logger.info("TTS voices: %s; default %s (%d Hz)", voices, engine.default_voice, rate_hz)


def create_app(settings: Settings | None = None, engine: Synthesizer | None = None) -> FastAPI:
    """The TTS app. ``settings`` default to the ``TTS_*`` environment; an injected ``engine`` skips loading."""
    return create_service_app(
        name="tts",
        title="TTS service",
        description=(package_doc or "").strip(),
        version=VERSION,
        settings=settings or get_settings(),
        load=load_engine,
        warm_up=warm_up,
        router=router,
        metrics=TtsMetrics,
        engine=engine,
    )
