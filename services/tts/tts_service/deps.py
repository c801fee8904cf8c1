"""Annotated dependencies of the TTS routes: the settings, the loaded synthesiser and its worker thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service_common.health import readiness_of
from service_common.worker import ModelWorker

from .config import Settings
from .engine import Synthesizer


def get_app_settings(request: Request) -> Settings:
    """The settings this app was created with (tests inject their own)."""
    settings: Settings = request.app.state.settings
    return settings


def get_synthesizer(request: Request) -> Synthesizer:
    """The loaded synthesiser; ModelNotReady (503) until it is loaded and warmed up."""
    readiness_of(request).require_ready()
    engine: Synthesizer = request.app.state.engine
    return engine


def get_worker(request: Request) -> ModelWorker:
    """The thread every model call runs on."""
    worker: ModelWorker = request.app.state.worker
    return worker


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SynthesizerDep = Annotated[Synthesizer, Depends(get_synthesizer)]
WorkerDep = Annotated[ModelWorker, Depends(get_worker)]
