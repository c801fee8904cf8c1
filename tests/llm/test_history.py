"""History trimming as a pure function, with a transparent token counter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llm_service.engine import ChatMessage
from llm_service.history import ContextLengthExceeded, trim_history

TEMPLATE_TOKENS_PER_MESSAGE = 4


def count_words(messages: Sequence[ChatMessage]) -> int:
    """A stand-in tokenizer: one token per word plus a per-message template overhead."""
    return sum(len(message.content.split()) + TEMPLATE_TOKENS_PER_MESSAGE for message in messages)


SYSTEM = ChatMessage("system", "be brief")  # 2 words -> 6 tokens


def conversation(turns: int, words_per_message: int = 6) -> list[ChatMessage]:
    """System prompt, ``turns`` user/assistant pairs (10 tokens per message), then a final user question."""
    messages = [SYSTEM]
    for turn in range(turns):
        messages.append(ChatMessage("user", " ".join([f"q{turn}"] * words_per_message)))
        messages.append(ChatMessage("assistant", " ".join([f"a{turn}"] * words_per_message)))
    messages.append(ChatMessage("user", "what now"))  # 6 tokens
    return messages


def test_a_conversation_that_fits_is_kept_whole() -> None:
    messages = conversation(3)
    result = trim_history(messages, count_words, max_prompt_tokens=1000)
    assert result.messages == tuple(messages)
    assert result.dropped_messages == 0
    assert result.prompt_tokens == count_words(messages)


def test_the_oldest_whole_turns_go_first_and_the_fewest_are_dropped() -> None:
    messages = conversation(5)  # 6 + 5 * 20 + 6 = 112 tokens
    result = trim_history(messages, count_words, max_prompt_tokens=60)
    # 60 tokens hold the system prompt (6), the question (6) and two turns (40), not three (60 + 12).
    assert result.messages == (SYSTEM, *messages[7:11], messages[-1])
    assert result.dropped_messages == 6
    assert result.prompt_tokens == 52 <= 60


def test_pairs_are_never_split() -> None:
    messages = conversation(4)
    for budget in range(12, 100):
        kept = trim_history(messages, count_words, budget).messages
        middle = kept[1:-1]
        assert len(middle) % 2 == 0
        assert all(m.role == "user" for m in middle[::2]) and all(m.role == "assistant" for m in middle[1::2])


def test_system_prompt_and_latest_user_message_always_survive() -> None:
    messages = conversation(6)
    result = trim_history(messages, count_words, max_prompt_tokens=12)
    assert result.messages == (SYSTEM, messages[-1])
    assert result.dropped_messages == 12


def test_too_long_latest_message_is_a_400_context_length_exceeded() -> None:
    messages = [SYSTEM, ChatMessage("user", "word " * 100)]
    with pytest.raises(ContextLengthExceeded) as caught:
        trim_history(messages, count_words, max_prompt_tokens=50)
    assert caught.value.status_code == 400
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"


def test_system_messages_inside_the_history_are_kept_in_place() -> None:
    reminder = ChatMessage("system", "stay polite")
    messages = [SYSTEM, *conversation(2)[1:3], reminder, *conversation(2)[3:]]
    result = trim_history(messages, count_words, max_prompt_tokens=count_words(messages) - 1)
    assert result.messages[0] == SYSTEM
    assert reminder in result.messages
    assert result.messages[-1] == messages[-1]
    assert result.messages.index(reminder) < len(result.messages) - 1


def test_an_assistant_greeting_before_the_first_question_is_a_turn_of_its_own() -> None:
    greeting = ChatMessage("assistant", "hello how can I help")
    messages = [SYSTEM, greeting, *conversation(1)[1:]]
    result = trim_history(messages, count_words, max_prompt_tokens=count_words(messages) - 1)
    assert greeting not in result.messages
    assert result.messages[1:] == tuple(messages[2:])


def test_messages_after_the_latest_user_message_are_protected() -> None:
    prefill = ChatMessage("assistant", "Sure,")
    messages = [*conversation(3), prefill]
    result = trim_history(messages, count_words, max_prompt_tokens=20)
    assert result.messages == (SYSTEM, messages[-2], prefill)
