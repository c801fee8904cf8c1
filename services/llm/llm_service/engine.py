"""What the service needs from a chat model: a small Protocol plus the values that cross it.

Engines are blocking and not thread-safe: every method is called on the service's single model worker
thread (``service_common.worker.ModelWorker``), never from the event loop and never concurrently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation, content as plain text."""

    role: Role
    content: str


@dataclass(frozen=True)
class SamplingParams:
    """How to generate a reply. Token counts are model tokens; penalties follow llama.cpp's meaning."""

    max_tokens: int
    temperature: float
    """0 = greedy (deterministic); up to 2."""
    top_p: float
    stop: tuple[str, ...] = ()
    """The reply ends before the first occurrence of any of these strings (which are not returned)."""
    seed: int | None = None
    """Same seed + same prompt + same parameters -> same reply; None: a fresh random seed per request."""
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    time_limit_s: float | None = None
    """Wall-clock budget of the generation in seconds from its start; when spent, it ends as ``length``."""


@dataclass(frozen=True)
class PreparedPrompt:
    """A conversation that fits the context window, with its prompt already tokenized."""

    messages: tuple[ChatMessage, ...]
    """The messages kept after history trimming, system prompt first."""
    token_ids: tuple[int, ...]
    """The chat-formatted prompt as model token ids."""
    dropped_messages: int = 0
    """How many of the oldest messages trimming removed to make room."""

    @property
    def prompt_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(frozen=True)
class TextDelta:
    """A piece of reply text (one or a few tokens), in order; never contains a stop sequence."""

    text: str


@dataclass(frozen=True)
class GenerationEnd:
    """Last event of every generation: why it ended and the token counts for ``usage``."""

    finish_reason: FinishReason
    """``stop``: end-of-turn token or a stop sequence; ``length``: max_tokens (or the context window) reached."""
    prompt_tokens: int
    completion_tokens: int


GenerationEvent = TextDelta | GenerationEnd


class ChatModel(Protocol):
    """A loaded chat model. Blocking methods; call them on the model worker thread only."""

    model_id: str
    """Reported as ``model`` in responses and by ``GET /v1/models``."""
    owned_by: str
    n_ctx: int
    """Context window in tokens: prompt tokens + max_tokens must fit in it."""

    def prepare(self, messages: Sequence[ChatMessage], max_tokens: int) -> PreparedPrompt:
        """Format and tokenize ``messages``, dropping the oldest turns until prompt + ``max_tokens`` fit ``n_ctx``.

        Raises ``history.ContextLengthExceeded`` (400) when the system prompt and the latest user message
        alone do not fit.
        """
        ...

    def generate(self, prompt: PreparedPrompt, params: SamplingParams) -> Iterator[GenerationEvent]:
        """Yield ``TextDelta``s as tokens are sampled, then exactly one ``GenerationEnd``.

        Lazy: nothing runs until the first ``next``; closing the iterator stops generation. Ends with
        ``finish_reason="length"`` once ``params.time_limit_s`` is spent.
        """
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...
