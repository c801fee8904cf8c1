"""The LLM service behind the shared gate (real model): API keys, rate limit, CORS, bounded waiting; the
generation time limit; and a non-streamed reply whose client left stops generating."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from llm_test_helpers import make_settings, parse_sse, stream_chat, user

from llm_service.engine import ChatMessage, GenerationEnd, GenerationEvent, PreparedPrompt, SamplingParams, TextDelta
from llm_service.main import create_app

KEYS = ("llm-key-auth", "llm-key-rate", "llm-key-load")
ORIGIN = "http://localhost:8501"
RATE = 4  # per minute and key
CHAT = "/v1/chat/completions"
HELLO = {"messages": [user("Say hello.")], "max_tokens": 8, "temperature": 0}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def guarded() -> Iterator[TestClient]:
    settings = make_settings(
        api_key=",".join(KEYS),
        rate_limit=f"{RATE}/minute",
        cors_origins=ORIGIN,
        max_queued_requests=1,
        n_threads=1,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_key_is_needed_for_v1_but_not_for_health_ready_and_docs(guarded: TestClient) -> None:
    for response in (
        guarded.post(CHAT, json=HELLO),
        guarded.post(CHAT, json=HELLO, headers=bearer("sk-wrong")),
        guarded.get("/v1/models"),
    ):
        assert response.status_code == 401
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    for path in ("/health", "/ready", "/docs", "/openapi.json"):
        assert guarded.get(path).status_code == 200
    reply = guarded.post(CHAT, json=HELLO, headers=bearer(KEYS[0]))
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]


def test_the_rate_limit_answers_429_with_retry_after(guarded: TestClient) -> None:
    statuses = [guarded.get("/v1/models", headers=bearer(KEYS[1])).status_code for _ in range(RATE)]
    assert statuses == [200] * RATE
    refused = guarded.post(CHAT, json=HELLO, headers=bearer(KEYS[1]))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1


def test_cors_preflight_for_the_allowed_origin_only(guarded: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = guarded.options(CHAT, headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert (
        "access-control-allow-origin"
        not in guarded.options(CHAT, headers={"Origin": "http://x.org", **preflight}).headers
    )


def block_the_model(client: TestClient) -> tuple[threading.Event, Future[Any]]:
    """Occupy the model's worker thread until the returned event is set, as a long generation would."""
    release = threading.Event()
    assert client.portal is not None
    busy = client.portal.start_task_soon(client.app.state.worker.run, release.wait, 60)  # type: ignore[attr-defined]
    return release, busy


def test_beyond_the_queue_503_with_retry_after_and_the_admitted_ones_finish(guarded: TestClient) -> None:
    admission = guarded.app.state.admission  # type: ignore[attr-defined]
    release, busy = block_the_model(guarded)
    results: dict[str, Any] = {}

    def streamed() -> None:
        with guarded.stream("POST", CHAT, json={**HELLO, "stream": True}, headers=bearer(KEYS[2])) as response:
            results["stream"] = (response.status_code, parse_sse(response.iter_lines()))

    def whole() -> None:
        results["whole"] = guarded.post(CHAT, json=HELLO, headers=bearer(KEYS[2]))

    admitted = [threading.Thread(target=streamed), threading.Thread(target=whole)]
    try:
        admitted[0].start()
        while admission.in_flight < 1:
            time.sleep(0.01)
        admitted[1].start()
        deadline = time.monotonic() + 30
        while admission.in_flight < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        refused = guarded.post(CHAT, json=HELLO, headers=bearer(KEYS[2]))
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("server_error", "overloaded", None)
        assert refused.headers["retry-after"] == "2"
        assert guarded.get("/ready").status_code == 200
    finally:
        release.set()
        busy.result(timeout=30)
        for thread in admitted:
            thread.join(timeout=120)
    status, stream = results["stream"]
    assert status == 200 and stream.done and len(stream.finish_reasons) == 1 and stream.text
    assert results["whole"].status_code == 200
    assert admission.in_flight == 0


@pytest.fixture(scope="module")
def time_limited() -> Iterator[TestClient]:
    settings = make_settings(max_generation_s=0.5, max_tokens_limit=512, default_max_tokens=512, n_threads=1)
    with TestClient(create_app(settings)) as client:
        yield client


STORY = {"messages": [user("Write a very long story about a dragon who learns to bake bread.")], "max_tokens": 512}


def test_a_generation_over_the_time_limit_ends_with_finish_reason_length(time_limited: TestClient) -> None:
    started = time.perf_counter()
    reply = time_limited.post(CHAT, json={**STORY, "temperature": 0}).json()
    elapsed_s = time.perf_counter() - started
    assert reply["choices"][0]["finish_reason"] == "length"
    assert 0 < reply["usage"]["completion_tokens"] < 512
    assert reply["choices"][0]["message"]["content"]
    assert elapsed_s < 10  # 512 tokens would take far longer than the 0.5 s budget plus the prompt


def test_a_streamed_generation_over_the_time_limit_ends_normally_with_length(time_limited: TestClient) -> None:
    stream = stream_chat(time_limited, STORY)
    assert stream.done and not stream.errors and stream.finish_reasons == ["length"]


class SlowChat:
    """Three words per second; counts the words it produced (the warm-up is the first call)."""

    model_id = "slow"
    owned_by = "tests"
    n_ctx = 2048

    def __init__(self) -> None:
        self.produced = 0

    def prepare(self, messages: Sequence[ChatMessage], max_tokens: int) -> PreparedPrompt:
        return PreparedPrompt(tuple(messages), (1, 2, 3))

    def generate(self, prompt: PreparedPrompt, params: SamplingParams) -> Iterator[GenerationEvent]:
        for _ in range(params.max_tokens):
            time.sleep(0.33)
            self.produced += 1
            yield TextDelta(" word")
        yield GenerationEnd("length", prompt.prompt_tokens, params.max_tokens)

    def close(self) -> None:
        pass


def test_a_non_streamed_reply_stops_generating_when_its_client_leaves(caplog: pytest.LogCaptureFixture) -> None:
    engine = SlowChat()
    app = create_app(make_settings(default_max_tokens=1), engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    caplog.set_level(logging.INFO, logger="llm_service")
    try:
        warm_up = engine.produced
        body = {"messages": [user("Talk for ten seconds.")], "max_tokens": 30}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}{CHAT}", json=body, timeout=httpx.Timeout(30, read=1.0))
        deadline = time.monotonic() + 10
        while not any("stopped early" in record.getMessage() for record in caplog.records):
            assert time.monotonic() < deadline, "the generation went on for a client that had left"
            time.sleep(0.05)
        assert engine.produced - warm_up < 10  # of 30 words, about 1 s worth
        assert httpx.post(f"{url}{CHAT}", json={**body, "max_tokens": 2}, timeout=30).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)
