"""Annotated dependencies of the LLM routes: the settings, the loaded model, its worker, and the two together."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from service_common.lifecycle import app_settings, model_metrics, model_worker, ready_engine
from service_common.worker import ModelWorker

from .completions import ChatCompletions
from .config import Settings
from .engine import ChatModel
from .metrics import LlmMetrics

SettingsDep = Annotated[Settings, Depends(app_settings)]
EngineDep = Annotated[ChatModel, Depends(ready_engine)]
"""The loaded, warmed-up model; 503 ``model_not_ready`` before."""
WorkerDep = Annotated[ModelWorker, Depends(model_worker)]
MetricsDep = Annotated[LlmMetrics, Depends(model_metrics)]


def get_chat(engine: EngineDep, worker: WorkerDep, settings: SettingsDep, metrics: MetricsDep) -> ChatCompletions:
    """OpenAI chat completions on the loaded model, every call through its worker, counted in its metrics."""
    return ChatCompletions(engine, worker, settings, metrics)


ChatDep = Annotated[ChatCompletions, Depends(get_chat)]
