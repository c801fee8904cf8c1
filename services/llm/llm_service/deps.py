"""Request dependencies: the service's ``ChatCompletions`` (503 until the model is loaded and warmed up)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service_common.errors import ModelNotReady

from .completions import ChatCompletions


def get_chat(request: Request) -> ChatCompletions:
    chat: ChatCompletions | None = getattr(request.app.state, "chat", None)
    if chat is None or not request.app.state.readiness.is_ready:
        raise ModelNotReady()
    return chat


ChatDep = Annotated[ChatCompletions, Depends(get_chat)]
