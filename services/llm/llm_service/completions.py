"""Chat completions on top of a ``ChatModel``: request -> prompt (system prompt, trimming) -> reply or SSE events.

All model work goes through one ``ModelWorker``: requests queue there and each runs to its end in arrival
order, so a new request never cuts a stream in progress.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from service_common.errors import ClientGone, InferenceError, InvalidRequest, ServiceError, error_body
from service_common.worker import ModelWorker

from .config import Settings
from .engine import (
    ChatMessage,
    ChatModel,
    FinishReason,
    GenerationEnd,
    GenerationEvent,
    PreparedPrompt,
    SamplingParams,
    TextDelta,
)
from .metrics import LlmMetrics
from .schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    Usage,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingCompletion:
    """A validated request whose prompt fits the context window, ready to generate."""

    id: str
    created: int
    received_at: float
    """time.perf_counter() when the request arrived: TTFT is measured from here (queueing included)."""
    prompt: PreparedPrompt
    params: SamplingParams
    include_usage: bool


class ChatCompletions:
    """Turns OpenAI chat requests into generations on ``engine`` through ``worker`` (its only caller)."""

    def __init__(
        self, engine: ChatModel, worker: ModelWorker, settings: Settings, metrics: LlmMetrics | None = None
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.settings = settings
        self.metrics = metrics

    def to_messages(self, request: ChatCompletionRequest) -> list[ChatMessage]:
        """Plain-text messages, 'developer' read as 'system', the configured system prompt prepended if none."""
        messages = [
            ChatMessage("system" if message.role == "developer" else message.role, message.text)
            for message in request.messages
        ]
        if self.settings.system_prompt and not any(message.role == "system" for message in messages):
            messages.insert(0, ChatMessage("system", self.settings.system_prompt))
        return messages

    def sampling_params(self, request: ChatCompletionRequest) -> SamplingParams:
        """Request values, server defaults for the rest. Raises InvalidRequest above LLM_MAX_TOKENS_LIMIT."""
        max_tokens = request.requested_max_tokens
        if max_tokens is None:
            max_tokens = self.settings.default_max_tokens
        elif max_tokens > self.settings.max_tokens_limit:
            param = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
            raise InvalidRequest(
                f"{param}={max_tokens} exceeds this service's limit of {self.settings.max_tokens_limit} tokens",
                param=param,
            )
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=self.settings.temperature if request.temperature is None else request.temperature,
            top_p=self.settings.top_p if request.top_p is None else request.top_p,
            stop=request.stop_sequences,
            seed=request.seed,
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
            repeat_penalty=self.settings.repeat_penalty,
            time_limit_s=self.settings.max_generation_s,
        )

    async def prepare(self, request: ChatCompletionRequest) -> PendingCompletion:
        """Validate and tokenize (on the worker) before any response starts, so errors still get their 4xx.

        Raises InvalidRequest (400), including ContextLengthExceeded when the latest message cannot fit.
        """
        received_at = time.perf_counter()
        params = self.sampling_params(request)
        prompt = await self.worker.run(self.engine.prepare, self.to_messages(request), params.max_tokens)
        if prompt.dropped_messages:
            logger.info(
                "history trimmed to fit n_ctx=%d: dropped the %d oldest messages, kept %d (system prompt kept: %s), "
                "prompt_tokens=%d",
                self.engine.n_ctx,
                prompt.dropped_messages,
                len(prompt.messages),
                prompt.messages[0].role == "system",
                prompt.prompt_tokens,
                extra={"dropped_messages": prompt.dropped_messages, "kept_roles": [m.role for m in prompt.messages]},
            )
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return PendingCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            received_at=received_at,
            prompt=prompt,
            params=params,
            include_usage=include_usage,
        )

    async def events(self, pending: PendingCompletion) -> AsyncGenerator[GenerationEvent, None]:
        """Generation events from the worker thread; at the end, logs and counts (``metrics``) the tokens, TTFT and
        decoding speed, or counts the generation as cut (the consumer closed it: ``client_gone``; it failed:
        ``error``)."""
        first_token_at: float | None = None
        deltas, ended, cut_reason = 0, False, "client_gone"
        try:
            async for event in self.worker.stream(lambda: self.engine.generate(pending.prompt, pending.params)):
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                if isinstance(event, GenerationEnd):
                    ended = True
                    self._observe(pending, event, first_token_at)
                else:
                    deltas += 1
                yield event
        except Exception:
            cut_reason = "error"
            raise
        finally:
            if not ended:
                if self.metrics is not None:
                    self.metrics.streams_cut.labels(cut_reason).inc()
                logger.info(
                    "%s: generation stopped early (%s) after %d text deltas",
                    pending.id,
                    cut_reason,
                    deltas,
                    extra={"completion_id": pending.id, "deltas": deltas},
                )

    def _observe(self, pending: PendingCompletion, end: GenerationEnd, first_token_at: float) -> None:
        now = time.perf_counter()
        ttft_s = first_token_at - pending.received_at
        decode_s = now - first_token_at
        tokens_per_s = (end.completion_tokens - 1) / decode_s if end.completion_tokens > 1 and decode_s > 0 else None
        logger.info(
            "%s: prompt_tokens=%d completion_tokens=%d finish=%s ttft_ms=%.0f total_ms=%.0f decode=%.1f tokens/s",
            pending.id,
            end.prompt_tokens,
            end.completion_tokens,
            end.finish_reason,
            ttft_s * 1000,
            (now - pending.received_at) * 1000,
            tokens_per_s or 0.0,
        )
        if self.metrics is None:
            return
        self.metrics.prompt_tokens.inc(end.prompt_tokens)
        self.metrics.completion_tokens.inc(end.completion_tokens)
        self.metrics.time_to_first_token.observe(ttft_s)
        if tokens_per_s is not None:
            self.metrics.tokens_per_second.observe(tokens_per_s)

    async def complete(self, pending: PendingCompletion, gone: threading.Event | None = None) -> ChatCompletion:
        """The whole reply as one ``chat.completion``. Raises InferenceError (500) if the model fails.

        ``gone`` (``service_common.disconnect.client_gone``) set: the client left; generation stops at the next
        token and ClientGone (499, read by nobody) is raised.
        """
        pieces: list[str] = []
        end: GenerationEnd | None = None
        try:
            # closed on the way out, so the worker stops at once when the client has gone
            async with contextlib.aclosing(self.events(pending)) as events:
                async for event in events:
                    if gone is not None and gone.is_set():
                        raise ClientGone("the client disconnected during generation")
                    if isinstance(event, TextDelta):
                        pieces.append(event.text)
                    else:
                        end = event
        except ServiceError:
            raise
        except Exception as err:
            raise InferenceError(f"generation failed: {type(err).__name__}: {err}") from err
        if end is None:
            raise InferenceError("the model ended without finishing its reply")
        return ChatCompletion(
            id=pending.id,
            created=pending.created,
            model=self.engine.model_id,
            choices=[Choice(message=AssistantMessage(content="".join(pieces)), finish_reason=end.finish_reason)],
            usage=_usage(end),
        )

    async def sse_events(self, pending: PendingCompletion) -> AsyncIterator[dict[str, str]]:
        """Server-Sent Events (sse-starlette dicts) of a streamed reply.

        First chunk: ``delta.role``; then content deltas; then one chunk with ``finish_reason`` and an empty
        delta; then the usage chunk if asked; then ``[DONE]``. If generation fails, one ``{"error": ...}``
        event ends the stream instead, without finish_reason or ``[DONE]``, so clients can tell it was cut.
        """
        yield self._chunk_event(pending, ChunkDelta(role="assistant", content=""))
        try:
            async for event in self.events(pending):
                if isinstance(event, TextDelta):
                    yield self._chunk_event(pending, ChunkDelta(content=event.text))
                    continue
                yield self._chunk_event(pending, ChunkDelta(), finish_reason=event.finish_reason)
                if pending.include_usage:
                    yield self._chunk_event(pending, None, usage=_usage(event))
        except Exception as err:
            logger.exception("generation failed mid-stream (%s)", pending.id)
            body = error_body(f"generation failed: {type(err).__name__}: {err}", "server_error", "inference_error")
            yield {"data": json.dumps(body)}
            return
        yield {"data": "[DONE]"}

    def _chunk_event(
        self,
        pending: PendingCompletion,
        delta: ChunkDelta | None,
        *,
        finish_reason: FinishReason | None = None,
        usage: Usage | None = None,
    ) -> dict[str, str]:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish_reason)]
        chunk = ChatCompletionChunk(
            id=pending.id, created=pending.created, model=self.engine.model_id, choices=choices, usage=usage
        )
        data = chunk.model_dump()
        if not pending.include_usage:
            del data["usage"]  # OpenAI sends the field (null until the last chunk) only when asked
        for choice in data["choices"]:
            choice["delta"] = {key: value for key, value in choice["delta"].items() if value is not None}
        return {"data": json.dumps(data, ensure_ascii=False)}


def _usage(end: GenerationEnd) -> Usage:
    return Usage(
        prompt_tokens=end.prompt_tokens,
        completion_tokens=end.completion_tokens,
        total_tokens=end.prompt_tokens + end.completion_tokens,
    )
