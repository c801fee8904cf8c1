"""``POST /v1/chat/completions``: OpenAI-compatible, JSON or Server-Sent Events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from service_common.disconnect import client_gone
from service_common.schemas import ERROR_RESPONSES

from .deps import ChatDep
from .schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest

router = APIRouter(tags=["chat"])

SSE_EVENT_SCHEMA = {
    "type": "object",
    "description": "One Server-Sent Event (OpenAPI 3.2's reading of text/event-stream: the schema describes each "
    "event). `data` is a chat.completion.chunk as JSON; `[DONE]` after the last one; or, when generation fails "
    "mid-stream, an OpenAI error object and no `[DONE]` (the stream was cut: no finish_reason was sent).",
    "required": ["data"],
    "properties": {
        "data": {
            "anyOf": [
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "anyOf": [
                            ChatCompletionChunk.model_json_schema(),
                            {"$ref": "#/components/schemas/ErrorResponse"},
                        ]
                    },
                },
                {"const": "[DONE]"},
            ]
        }
    },
}


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    summary="Reply to a conversation (OpenAI chat completions; stream: true for Server-Sent Events)",
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "A chat.completion, or with stream: true an event stream of chat.completion.chunk "
            "objects ending with `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
    },
)
async def create_chat_completion(
    request: Request, body: ChatCompletionRequest, chat: ChatDep
) -> ChatCompletion | EventSourceResponse:
    pending = await chat.prepare(body)
    if body.stream:  # EventSourceResponse itself stops the generation when the client goes away
        return EventSourceResponse(chat.sse_events(pending), sep="\n")
    async with client_gone(request) as gone:
        return await chat.complete(pending, gone)
