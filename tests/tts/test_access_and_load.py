"""The TTS service behind the shared gate (real voice): API keys, rate limit, CORS and bounded waiting; and a client
that leaves while its request waits for the model costs no synthesis (fake slow engine, real HTTP)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from tts_service.engine import VoiceInfo
from tts_service.main import create_app
from tts_service.sentences import split_for_speech

from .conftest import decode, make_settings

KEYS = ("tts-key-auth", "tts-key-rate", "tts-key-load")
ORIGIN = "http://localhost:8501"
RATE = 4  # per minute and key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def speak(client: TestClient, key: str | None = None, text: str = "Hello there.") -> Any:
    return client.post("/v1/audio/speech", json={"input": text}, headers=bearer(key) if key else {})


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("tts-guarded"),
        api_key=",".join(KEYS),
        rate_limit=f"{RATE}/minute",
        cors_origins=ORIGIN,
        max_queued_requests=1,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_key_is_needed_for_v1_but_not_for_health_ready_and_docs(guarded: TestClient) -> None:
    for response in (speak(guarded), speak(guarded, "wrong"), guarded.get("/v1/audio/voices")):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    for path in ("/health", "/ready", "/docs", "/openapi.json"):
        assert guarded.get(path).status_code == 200
    response = speak(guarded, KEYS[0])
    assert response.status_code == 200 and decode(response.content)[0].size > 0


def test_the_rate_limit_answers_429_with_retry_after(guarded: TestClient) -> None:
    statuses = [guarded.get("/v1/audio/voices", headers=bearer(KEYS[1])).status_code for _ in range(RATE)]
    assert statuses == [200] * RATE
    refused = speak(guarded, KEYS[1])
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1


def test_cors_headers_for_the_allowed_origin_only(guarded: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = guarded.options("/v1/audio/speech", headers={"Origin": ORIGIN, **preflight})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = guarded.options("/v1/audio/speech", headers={"Origin": "http://elsewhere.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    response = guarded.get("/v1/audio/voices", headers={"Origin": ORIGIN, **bearer(KEYS[0])})
    assert "x-sample-rate" in response.headers["access-control-expose-headers"].lower()


def block_the_model(client: TestClient) -> tuple[threading.Event, Future[Any]]:
    """Occupy the voice's worker thread until the returned event is set, as a long synthesis would."""
    release = threading.Event()
    assert client.portal is not None
    busy = client.portal.start_task_soon(client.app.state.worker.run, release.wait, 60)  # type: ignore[attr-defined]
    return release, busy


def test_beyond_the_queue_503_with_retry_after_and_the_admitted_ones_succeed(guarded: TestClient) -> None:
    admission = guarded.app.state.admission  # type: ignore[attr-defined]
    release, busy = block_the_model(guarded)
    results: list[Any] = []
    admitted = [threading.Thread(target=lambda: results.append(speak(guarded, KEYS[2]))) for _ in range(2)]
    try:
        for thread in admitted:
            thread.start()
        deadline = time.monotonic() + 30
        while admission.in_flight < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        refused = speak(guarded, KEYS[2])
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "overloaded")
        assert refused.headers["retry-after"] == "2"
        assert guarded.get("/ready").status_code == 200
    finally:
        release.set()
        busy.result(timeout=30)
        for thread in admitted:
            thread.join(timeout=60)
    assert [response.status_code for response in results] == [200, 200]
    assert all(decode(response.content)[0].size > 0 for response in results)
    assert admission.in_flight == 0


def test_the_default_queue_is_8(tmp_path: Path) -> None:
    assert make_settings(tmp_path).max_queued_requests == 8


class SlowTone:
    """A second per sentence of a 440 Hz tone at 16 kHz; counts the sentences it spoke."""

    model_id = "slow-tone"
    owned_by = "tests"
    default_voice = "tone"
    sample_rate_hz = 16_000

    def __init__(self) -> None:
        self.sentences = 0

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("tone", "Tone", "en_US", 16_000, "fake")]

    def synthesize(
        self, text: str, *, voice: str, speed: float = 1.0, instructions: str | None = None
    ) -> Iterator[np.ndarray]:
        for _ in split_for_speech(text, 300):
            time.sleep(1.0)
            self.sentences += 1
            yield (0.3 * np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)).astype(np.float32)

    def warm_up(self) -> None:
        pass


def test_a_request_whose_client_left_while_queued_is_not_synthesised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = SlowTone()
    app = create_app(make_settings(tmp_path), engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1/audio/speech"
    caplog.set_level(logging.INFO, logger="tts_service.speech")
    try:
        first: list[httpx.Response] = []
        served = threading.Thread(target=lambda: first.append(httpx.post(url, json={"input": "One. Two."}, timeout=30)))
        served.start()
        while engine.sentences == 0 and served.is_alive():
            time.sleep(0.01)
        with pytest.raises(httpx.ReadTimeout):  # gives up while the first request holds the model
            httpx.post(url, json={"input": "Three. Four."}, timeout=httpx.Timeout(30, read=0.5))
        served.join(timeout=30)
        assert first[0].status_code == 200
        deadline = time.monotonic() + 10
        while not any("synthesis stopped after 0 chunks" in record.getMessage() for record in caplog.records):
            assert time.monotonic() < deadline, "the speech of a departed client was synthesised anyway"
            time.sleep(0.02)
        assert engine.sentences == 2  # "One." and "Two." only
    finally:
        server.should_exit = True
        thread.join(timeout=30)
