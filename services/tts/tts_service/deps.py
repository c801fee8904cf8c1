"""Annotated dependencies of the TTS routes: the settings, the loaded synthesiser and its worker thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from service_common.lifecycle import app_settings, model_metrics, model_worker, ready_engine
from service_common.worker import ModelWorker

from .config import Settings
from .engine import Synthesizer
from .metrics import TtsMetrics

SettingsDep = Annotated[Settings, Depends(app_settings)]
EngineDep = Annotated[Synthesizer, Depends(ready_engine)]
"""The loaded, warmed-up synthesiser; 503 ``model_not_ready`` before."""
WorkerDep = Annotated[ModelWorker, Depends(model_worker)]
MetricsDep = Annotated[TtsMetrics, Depends(model_metrics)]
