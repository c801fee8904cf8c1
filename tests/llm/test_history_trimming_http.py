"""History trimming through HTTP on a 512-token context window, with the model's real tokenizer."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from llm_test_helpers import user

from llm_service.config import DEFAULT_SYSTEM_PROMPT
from llm_service.engine import ChatMessage


def long_history(turns: int) -> list[dict[str, str]]:
    messages = []
    for turn in range(turns):
        messages.append(user(f"Question {turn}: tell me something about the number {turn} and why it matters."))
        messages.append(
            {
                "role": "assistant",
                "content": f"The number {turn} is interesting because it comes right after {turn - 1}, "
                "and people have counted with it for thousands of years in many cultures.",
            }
        )
    messages.append(user("What is the capital of France?"))
    return messages


def trim_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if hasattr(record, "dropped_messages")]


def test_long_history_is_trimmed_and_the_system_prompt_kept(
    small_ctx_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    messages = long_history(20)  # about 1,300 tokens: far more than 512 - 64
    with caplog.at_level(logging.INFO, logger="llm_service"):
        response = small_ctx_client.post(
            "/v1/chat/completions", json={"messages": messages, "max_tokens": 64, "temperature": 0}
        )
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["choices"][0]["message"]["content"].strip()
    assert reply["usage"]["prompt_tokens"] + 64 <= 512

    (record,) = trim_records(caplog)
    dropped, kept_roles = record.__dict__["dropped_messages"], record.__dict__["kept_roles"]
    assert dropped > 0
    assert dropped % 2 == 0  # whole user/assistant pairs
    assert kept_roles[0] == "system"  # the configured system prompt, prepended, survived
    assert kept_roles[-1] == "user"
    assert len(kept_roles) == 1 + len(messages) - dropped


def test_prepare_keeps_system_prompt_and_latest_question(small_ctx_client: TestClient) -> None:
    """The engine's own view, called on its worker thread as the service does."""
    state = small_ctx_client.app.state  # type: ignore[attr-defined]
    messages = [ChatMessage("system", DEFAULT_SYSTEM_PROMPT)] + [
        ChatMessage(m["role"], m["content"])  # type: ignore[arg-type]
        for m in long_history(20)
    ]
    prompt = small_ctx_client.portal.call(state.worker.run, state.engine.prepare, messages, 64)  # type: ignore[union-attr]
    assert prompt.messages[0] == messages[0]
    assert prompt.messages[-1] == messages[-1]
    assert 0 < prompt.dropped_messages < len(messages) - 2
    assert prompt.prompt_tokens <= 512 - 64
    # The fewest turns were dropped: one more turn would not have fitted.
    one_more = prompt.dropped_messages - 2
    bigger = [messages[0], *messages[1 + one_more :]]
    tokens = small_ctx_client.portal.call(state.worker.run, state.engine.tokenize_chat, bigger)  # type: ignore[union-attr]
    assert len(tokens) > 512 - 64


def test_a_history_that_fits_is_not_trimmed(small_ctx_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llm_service"):
        response = small_ctx_client.post("/v1/chat/completions", json={"messages": long_history(1), "max_tokens": 8})
    assert response.status_code == 200
    assert trim_records(caplog) == []


def test_an_over_long_single_message_is_400_context_length_exceeded(small_ctx_client: TestClient) -> None:
    too_long = "Please repeat these words back to me. " * 120  # about 1,000 tokens
    for stream in (False, True):
        response = small_ctx_client.post(
            "/v1/chat/completions", json={"messages": [user(too_long)], "max_tokens": 32, "stream": stream}
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded"
        assert error["type"] == "invalid_request_error"
        assert error["param"] == "messages"


def test_the_service_still_answers_after_a_rejected_request(small_ctx_client: TestClient) -> None:
    response = small_ctx_client.post("/v1/chat/completions", json={"messages": [user("Hi!")], "max_tokens": 8})
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] > 0
