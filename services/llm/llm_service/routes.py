"""``POST /v1/chat/completions``: OpenAI-compatible, JSON or Server-Sent Events."""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse

from service_common.schemas import ERROR_RESPONSES

from .deps import ChatDep
from .schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest

router = APIRouter(tags=["chat"])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    summary="Reply to a conversation (OpenAI chat completions; stream: true for Server-Sent Events)",
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "A chat.completion, or with stream: true an event stream of chat.completion.chunk "
            "objects ending with `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": ChatCompletionChunk.model_json_schema()}},
        },
    },
)
async def create_chat_completion(body: ChatCompletionRequest, chat: ChatDep) -> ChatCompletion | EventSourceResponse:
    pending = await chat.prepare(body)
    if body.stream:
        return EventSourceResponse(chat.sse_events(pending), sep="\n")
    return await chat.complete(pending)
