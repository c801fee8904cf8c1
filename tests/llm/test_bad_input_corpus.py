"""Bad and borderline chat requests, case by case, with the real model: 400 in OpenAI's shape for what cannot be
answered (before any stream starts), 200 for what can (long histories are trimmed, odd text is just text), and
the service stays ready after each case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from llm_test_helpers import make_settings, parse_sse, user

from llm_service.main import create_app

N_CTX = 512
MAX_TOKENS_LIMIT = 64
CHAT = "/v1/chat/completions"
HI = [user("Hi!")]


@dataclass(frozen=True)
class Refusal:
    body: Any = None
    param: str | None = None
    code: str = "invalid_request"
    raw: bytes | None = None
    """Sent as is instead of ``body``, with ``content_type``."""
    content_type: str = "application/json"


def long_history(turns: int) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for turn in range(turns):
        messages.append(user(f"Question {turn}: tell me something about the number {turn}."))
        messages.append({"role": "assistant", "content": f"The number {turn} comes right after {turn - 1}. " * 3})
    return [*messages, user("What is the capital of France?")]


REFUSALS: dict[str, Refusal] = {
    # the conversation itself
    "messages-empty": Refusal({"messages": []}, "messages"),
    "messages-missing": Refusal({}, "messages"),
    "messages-null": Refusal({"messages": None}, "messages"),
    "messages-a-string": Refusal({"messages": "hello"}, "messages"),
    "message-a-string": Refusal({"messages": ["hello"]}, "messages.0"),
    "role-unknown": Refusal({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    "role-tool": Refusal({"messages": [{"role": "tool", "content": "42"}]}, "messages.0.role"),
    "role-function": Refusal({"messages": [{"role": "function", "content": "42"}]}, "messages.0.role"),
    "role-empty": Refusal({"messages": [{"role": "", "content": "hi"}]}, "messages.0.role"),
    "role-missing": Refusal({"messages": [{"content": "hi"}]}, "messages.0.role"),
    "content-missing": Refusal({"messages": [{"role": "user"}]}, "messages.0.content"),
    "content-null": Refusal({"messages": [{"role": "user", "content": None}]}, "messages.0.content"),
    "content-a-number": Refusal({"messages": [{"role": "user", "content": 42}]}, "messages.0.content"),
    "content-an-image-part": Refusal(
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        "messages.0.content",
    ),
    "content-part-without-text": Refusal(
        {"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content"
    ),
    "name-too-long": Refusal({"messages": [{"role": "user", "content": "hi", "name": "n" * 65}]}, "messages.0.name"),
    "a-message-over-65536-characters": Refusal({"messages": [user("x" * 65_537)]}),
    "over-262144-characters-in-all": Refusal({"messages": [user("word " * 12_000)] * 5}),
    "over-512-messages": Refusal({"messages": HI * 513}, "messages"),
    "prompt-far-beyond-the-context-window": Refusal(
        {"messages": [user("Please summarise this. " + "The quick brown fox jumps. " * 2_000)]},
        "messages",
        "context_length_exceeded",
    ),
    "prompt-beyond-the-context-window-streamed": Refusal(
        {"messages": [user("word " * 5_000)], "stream": True}, "messages", "context_length_exceeded"
    ),
    # sampling parameters
    "temperature-above-2": Refusal({"messages": HI, "temperature": 2.5}, "temperature"),
    "temperature-negative": Refusal({"messages": HI, "temperature": -0.1}, "temperature"),
    "temperature-a-word": Refusal({"messages": HI, "temperature": "hot"}, "temperature"),
    "temperature-a-numeric-string": Refusal({"messages": HI, "temperature": "0.5"}, "temperature"),
    "top-p-above-1": Refusal({"messages": HI, "top_p": 1.5}, "top_p"),
    "max-tokens-zero": Refusal({"messages": HI, "max_tokens": 0}, "max_tokens"),
    "max-tokens-negative": Refusal({"messages": HI, "max_tokens": -5}, "max_tokens"),
    "max-tokens-a-fraction": Refusal({"messages": HI, "max_tokens": 1.5}, "max_tokens"),
    "max-tokens-above-the-service-limit": Refusal({"messages": HI, "max_tokens": MAX_TOKENS_LIMIT + 1}, "max_tokens"),
    "max-completion-tokens-above-the-limit": Refusal(
        {"messages": HI, "max_completion_tokens": 100_000}, "max_completion_tokens"
    ),
    "n-above-1": Refusal({"messages": HI, "n": 2}, "n"),
    "presence-penalty-above-2": Refusal({"messages": HI, "presence_penalty": 3}, "presence_penalty"),
    "frequency-penalty-below-minus-2": Refusal({"messages": HI, "frequency_penalty": -3}, "frequency_penalty"),
    "five-stop-sequences": Refusal({"messages": HI, "stop": ["a", "b", "c", "d", "e"]}),
    "empty-stop-sequence": Refusal({"messages": HI, "stop": [""]}),
    "stop-a-number": Refusal({"messages": HI, "stop": 7}, "stop"),
    "stream-a-string": Refusal({"messages": HI, "stream": "yes"}, "stream"),
    "stream-options-a-string": Refusal({"messages": HI, "stream": True, "stream_options": "usage"}, "stream_options"),
    "seed-a-string": Refusal({"messages": HI, "seed": "abc"}, "seed"),
    "model-name-too-long": Refusal({"messages": HI, "model": "m" * 257}, "model"),
    "invalid-and-streamed": Refusal({"messages": [], "stream": True}, "messages"),
    # the body itself
    "body-not-json": Refusal(raw=b'{"messages": [{"role": "user", "content": "hi"}'),
    "body-a-json-array": Refusal([{"role": "user", "content": "hi"}]),
    "body-json-null": Refusal(raw=b"null"),
    "body-empty": Refusal(raw=b""),
    "body-form-encoded": Refusal(raw=b"messages=hi", content_type="application/x-www-form-urlencoded"),
    "body-json-sent-as-text-plain": Refusal(raw=json.dumps({"messages": HI}).encode(), content_type="text/plain"),
}

ANSWERED: dict[str, Any] = {
    "history-far-beyond-the-context-window-is-trimmed": {"messages": long_history(40)},
    "empty-user-message": {"messages": [user("")]},
    "only-a-system-message": {"messages": [{"role": "system", "content": "Say hello."}]},
    "ends-with-an-assistant-message": {"messages": [user("Count to three."), {"role": "assistant", "content": "One,"}]},
    "emoji-and-markup": {"messages": [user("<b>Hi</b> 👋🏽 &amp; {json}: [1, 2]")]},
    "control-characters-and-nul": {"messages": [user("Hello\x00\x07\x1b[31m there\u202e")]},
    "right-to-left-and-cjk-text": {"messages": [user("مرحبا 你好 こんにちは")]},
    "unknown-openai-fields-are-ignored": {
        "messages": HI,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "user": "someone",
    },
    "huge-and-negative-seeds": {"messages": HI, "seed": -(2**70)},
    "streamed-with-usage": {"messages": HI, "stream": True, "stream_options": {"include_usage": True}},
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """Real model, small window; one thread, so a busy 2-core machine does not slow it to a crawl."""
    settings = make_settings(n_ctx=N_CTX, max_tokens_limit=MAX_TOKENS_LIMIT, default_max_tokens=8, n_threads=1)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_still_ready(client: TestClient) -> None:
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_what_cannot_be_answered_is_a_400_in_openai_shape(client: TestClient, case: Refusal) -> None:
    if case.raw is not None:
        response = client.post(CHAT, content=case.raw, headers={"content-type": case.content_type})
    else:
        response = client.post(CHAT, json=case.body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")  # a status, never a started stream
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    error = body["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    assert (error["code"], error["param"]) == (case.code, case.param), error
    assert_still_ready(client)


@pytest.mark.parametrize("body", ANSWERED.values(), ids=ANSWERED.keys())
def test_borderline_requests_are_answered(client: TestClient, body: dict[str, Any]) -> None:
    if body.get("stream"):
        with client.stream("POST", CHAT, json=body) as response:
            assert response.status_code == 200
            stream = parse_sse(response.iter_lines())
        assert stream.done and not stream.errors and len(stream.finish_reasons) == 1
    else:
        response = client.post(CHAT, json=body)
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["choices"][0]["finish_reason"] in ("stop", "length")
        assert reply["usage"]["prompt_tokens"] + 8 <= N_CTX
    assert_still_ready(client)


def test_the_corpus_counts() -> None:
    assert (len(REFUSALS), len(ANSWERED)) == (48, 10)
