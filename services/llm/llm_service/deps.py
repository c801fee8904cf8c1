"""Annotated dependencies of the LLM routes: the settings, the loaded model, its worker, and the two together."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from service_common.lifecycle import app_settings, model_worker, ready_engine
from service_common.worker import ModelWorker

from .completions import ChatCompletions
from .config import Settings
from .engine import ChatModel

SettingsDep = Annotated[Settings, Depends(app_settings)]
EngineDep = Annotated[ChatModel, Depends(ready_engine)]
"""The loaded, warmed-up model; 503 ``model_not_ready`` before."""
WorkerDep = Annotated[ModelWorker, Depends(model_worker)]


def get_chat(engine: EngineDep, worker: WorkerDep, settings: SettingsDep) -> ChatCompletions:
    """OpenAI chat completions on the loaded model, every call through its worker."""
    return ChatCompletions(engine, worker, settings)


ChatDep = Annotated[ChatCompletions, Depends(get_chat)]
