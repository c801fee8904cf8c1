"""Wire schemas of ``POST /v1/chat/completions``, in OpenAI's shapes (request, response, stream chunk)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_MESSAGES = 512
MAX_MESSAGE_CHARS = 65_536
MAX_TOTAL_CHARS = 262_144
MAX_STOP_SEQUENCES = 4
MAX_TOKENS_CEILING = 131_072
"""Schema bound only; the effective limit is ``LLM_MAX_TOKENS_LIMIT`` (checked by the service)."""

STRICT = ConfigDict(strict=True)
"""Request values must have their JSON type, as OpenAI's API requires: ``"max_tokens": "5"`` or ``1.5`` is a 400,
not silently read as 5 or 1."""


class TextContentPart(BaseModel):
    """One part of a message given as a list (OpenAI's content parts); only text is understood."""

    model_config = STRICT

    type: Literal["text"] = Field(description="Always 'text': this model reads text only.")
    text: str = Field(max_length=MAX_MESSAGE_CHARS, description=f"The text, at most {MAX_MESSAGE_CHARS} characters.")


class ChatMessageIn(BaseModel):
    """A conversation turn as the client sends it."""

    model_config = STRICT

    role: Literal["system", "developer", "user", "assistant"] = Field(
        description="Who speaks: system (instructions; 'developer' is read as system), user or assistant."
    )
    content: str | list[TextContentPart] = Field(
        description=f"The text, or a list of text parts joined in order; at most {MAX_MESSAGE_CHARS} characters."
    )
    name: str | None = Field(default=None, max_length=64, description="Optional speaker name (accepted, not used).")

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = STRICT

    include_usage: bool = Field(
        default=False, description="Send one more chunk with `usage` (and no choices) before `data: [DONE]`."
    )


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completions request (the subset a local single model can honour; unknown fields are ignored)."""

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "model": "smollm2-135m",
                    "messages": [{"role": "user", "content": "What is the capital of France?"}],
                    "max_tokens": 64,
                }
            ]
        },
    )

    messages: list[ChatMessageIn] = Field(
        min_length=1,
        max_length=MAX_MESSAGES,
        description=f"The conversation, oldest first, 1 to {MAX_MESSAGES} messages and {MAX_TOTAL_CHARS} characters in "
        "all. Without a system message the service's system prompt is prepended; the oldest turns are dropped "
        "when the conversation does not fit the context window.",
    )
    model: str | None = Field(
        default=None, max_length=256, description="Any value is accepted; responses name the model actually loaded."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS_CEILING,
        description="Reply length limit in tokens (default: LLM_DEFAULT_MAX_TOKENS, at most LLM_MAX_TOKENS_LIMIT).",
    )
    max_completion_tokens: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS_CEILING, description="Newer name of max_tokens; wins when both are given."
    )
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description="Sampling temperature, 0 (greedy, deterministic) to 2. Default: LLM_TEMPERATURE.",
    )
    top_p: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Nucleus sampling: keep the most likely tokens up to this probability mass.",
    )
    stop: str | list[str] | None = Field(
        default=None,
        description=f"Up to {MAX_STOP_SEQUENCES} non-empty strings; the reply ends before the first (not returned).",
    )
    seed: int | None = Field(
        default=None, description="Same seed, prompt and parameters -> same reply (on the same model and build)."
    )
    stream: bool = Field(default=False, description="Reply as Server-Sent Events of chat.completion.chunk objects.")
    stream_options: StreamOptions | None = Field(default=None, description="Streaming options (include_usage).")
    presence_penalty: float | None = Field(
        default=None, ge=-2.0, le=2.0, description="Penalty on tokens already present, -2 to 2 (default 0)."
    )
    frequency_penalty: float | None = Field(
        default=None, ge=-2.0, le=2.0, description="Penalty growing with a token's count so far, -2 to 2 (default 0)."
    )
    n: int = Field(default=1, ge=1, le=1, description="Number of choices; only 1 is supported.")

    @model_validator(mode="after")
    def _check_sizes(self) -> Self:
        if sum(len(message.text) for message in self.messages) > MAX_TOTAL_CHARS:
            raise ValueError(f"messages hold more than {MAX_TOTAL_CHARS} characters in all")
        if any(len(message.text) > MAX_MESSAGE_CHARS for message in self.messages):
            raise ValueError(f"a message holds more than {MAX_MESSAGE_CHARS} characters")
        stops = self.stop_sequences
        if len(stops) > MAX_STOP_SEQUENCES or any(not stop for stop in stops):
            raise ValueError(f"stop takes at most {MAX_STOP_SEQUENCES} non-empty strings")
        return self

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


FinishReason = Literal["stop", "length"]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The reply text.")


class Choice(BaseModel):
    index: int = Field(default=0, description="Always 0 (one choice).")
    message: AssistantMessage
    finish_reason: FinishReason = Field(
        description="'stop': the model ended its turn or a stop sequence was met; 'length': max_tokens reached."
    )


class Usage(BaseModel):
    prompt_tokens: int = Field(description="Tokens of the chat-formatted prompt after history trimming.")
    completion_tokens: int = Field(description="Tokens generated for the reply.")
    total_tokens: int = Field(description="prompt_tokens + completion_tokens.")


class ChatCompletion(BaseModel):
    """A whole reply (``stream: false``)."""

    id: str = Field(description="Unique id, 'chatcmpl-...'.")
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(description="Unix time (s) the request was received.")
    model: str = Field(description="The loaded model's id, whatever the request named.")
    choices: list[Choice]
    usage: Usage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = Field(default=None, description="Set on the first chunk only.")
    content: str | None = Field(default=None, description="Next piece of reply text.")


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = Field(default=None, description="Set on the last content chunk only.")


class ChatCompletionChunk(BaseModel):
    """One Server-Sent Event of a streamed reply (``stream: true``); the stream ends with ``data: [DONE]``."""

    id: str = Field(description="Same id on every chunk of one reply.")
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = Field(default=None, description="Only on the extra chunk sent when include_usage is set.")
