"""Fitting a conversation into the context window by dropping its oldest turns (pure, model-independent)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service_common.errors import InvalidRequest

from .engine import ChatMessage


class ContextLengthExceeded(InvalidRequest):
    """The system prompt plus the latest user message plus max_tokens do not fit the context window (400)."""

    default_code = "context_length_exceeded"


@dataclass(frozen=True)
class TrimmedHistory:
    messages: tuple[ChatMessage, ...]
    prompt_tokens: int
    """Tokens of the kept messages, as counted by the caller's ``count_tokens``."""
    dropped_messages: int


def _droppable_turns(messages: Sequence[ChatMessage]) -> list[list[int]]:
    """Indices of the messages that may go, grouped into whole turns, oldest first.

    Protected: every system message and everything from the latest user message on. A turn is a user
    message with the assistant replies that follow it; assistant messages before the first user message
    form a turn of their own.
    """
    user_indices = [i for i, message in enumerate(messages) if message.role == "user"]
    protected_from = user_indices[-1] if user_indices else len(messages)
    turns: list[list[int]] = []
    for index in range(protected_from):
        role = messages[index].role
        if role == "system":
            continue
        if role == "user" or not turns:
            turns.append([index])
        else:
            turns[-1].append(index)
    return turns


def trim_history(
    messages: Sequence[ChatMessage],
    count_tokens: Callable[[Sequence[ChatMessage]], int],
    max_prompt_tokens: int,
) -> TrimmedHistory:
    """Keep as much recent history as fits in ``max_prompt_tokens`` (= n_ctx - max_tokens).

    ``count_tokens`` measures a whole candidate prompt (chat template included). The fewest oldest whole
    turns are dropped (binary search: counting is monotonic in the number of turns dropped); system
    messages and the latest user message are always kept, in their original order.
    Raises ContextLengthExceeded when even the protected messages alone do not fit.
    """
    tokens = count_tokens(messages)
    if tokens <= max_prompt_tokens:
        return TrimmedHistory(tuple(messages), tokens, 0)

    turns = _droppable_turns(messages)

    def without_oldest(n_turns: int) -> tuple[ChatMessage, ...]:
        dropped = {index for turn in turns[:n_turns] for index in turn}
        return tuple(message for i, message in enumerate(messages) if i not in dropped)

    minimal = without_oldest(len(turns))
    minimal_tokens = count_tokens(minimal)
    if minimal_tokens > max_prompt_tokens:
        raise ContextLengthExceeded(
            f"the system prompt and the latest message need {minimal_tokens} tokens, more than the "
            f"{max_prompt_tokens} tokens left in the context window after max_tokens; shorten the message "
            "or lower max_tokens",
            param="messages",
        )
    # Invariant: dropping `high` turns fits, dropping `low` turns does not.
    low, high, high_tokens = 0, len(turns), minimal_tokens
    while high - low > 1:
        middle = (low + high) // 2
        middle_tokens = count_tokens(without_oldest(middle))
        if middle_tokens <= max_prompt_tokens:
            high, high_tokens = middle, middle_tokens
        else:
            low = middle
    kept = without_oldest(high)
    return TrimmedHistory(kept, high_tokens, len(messages) - len(kept))
