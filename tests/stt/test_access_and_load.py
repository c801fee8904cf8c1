"""The STT service behind the shared gate (real model): API keys, rate limit, CORS, bounded waiting, and a
client that leaves before its turn costs no transcription."""

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
from stt_helpers import OPEN_ACCESS, TRANSCRIPTIONS, encode_clip

from service_common.audio import decode_audio
from stt_service.config import Settings
from stt_service.engine import Transcription
from stt_service.main import create_app

KEYS = ("stt-key-auth", "stt-key-rate", "stt-key-load")
ORIGIN = "http://localhost:8501"
RATE = 4  # per minute and key
CLIP = (Path(__file__).parents[1] / "data" / "and_so_my_fellow_americans.wav").read_bytes()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def transcribe(client: TestClient | httpx.Client, key: str | None = None) -> Any:
    headers = bearer(key) if key else {}
    return client.post(TRANSCRIPTIONS, files={"file": ("clip.wav", CLIP, "audio/wav")}, headers=headers)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("stt-guarded"),
        api_key=",".join(KEYS),
        rate_limit=f"{RATE}/minute",
        cors_origins=ORIGIN,
        max_queued_requests=1,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_key_is_needed_for_v1_but_not_for_health_ready_and_docs(guarded: TestClient) -> None:
    for response in (transcribe(guarded), transcribe(guarded, "wrong"), guarded.get("/v1/models")):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.json()["error"]["type"] == "invalid_request_error"
    for path in ("/health", "/ready", "/docs", "/openapi.json"):
        assert guarded.get(path).status_code == 200
    response = transcribe(guarded, KEYS[0])
    assert response.status_code == 200
    assert "fellow americans" in response.json()["text"].lower()


def test_the_rate_limit_answers_429_with_retry_after(guarded: TestClient) -> None:
    statuses = [guarded.get("/v1/models", headers=bearer(KEYS[1])).status_code for _ in range(RATE)]
    assert statuses == [200] * RATE
    refused = transcribe(guarded, KEYS[1])
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1


def test_cors_preflight_is_answered_for_the_allowed_origin_only(guarded: TestClient) -> None:
    def preflight(origin: str) -> Any:
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        return guarded.options(TRANSCRIPTIONS, headers=headers)

    assert preflight(ORIGIN).headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in preflight("http://elsewhere.example").headers


def block_the_model(client: TestClient) -> tuple[threading.Event, Future[Any]]:
    """Occupy the model's worker thread until the returned event is set, as a long transcription would."""
    release = threading.Event()
    assert client.portal is not None
    busy = client.portal.start_task_soon(client.app.state.worker.run, release.wait, 60)  # type: ignore[attr-defined]
    return release, busy


def test_beyond_the_queue_503_with_retry_after_and_the_admitted_ones_succeed(guarded: TestClient) -> None:
    admission = guarded.app.state.admission  # type: ignore[attr-defined]
    release, busy = block_the_model(guarded)
    results: list[Any] = []
    admitted = [threading.Thread(target=lambda: results.append(transcribe(guarded, KEYS[2]))) for _ in range(2)]
    try:
        for thread in admitted:
            thread.start()
        deadline = time.monotonic() + 30
        while admission.in_flight < 2:  # one served (held by the blocked model) and one waiting
            assert time.monotonic() < deadline
            time.sleep(0.01)
        refused = transcribe(guarded, KEYS[2])
        assert refused.status_code == 503
        assert refused.json()["error"] == {
            "message": refused.json()["error"]["message"],
            "type": "server_error",
            "code": "overloaded",
            "param": None,
        }
        assert refused.headers["retry-after"] == "2"
        assert guarded.get("/ready").status_code == 200  # busy, not unready
    finally:
        release.set()
        busy.result(timeout=30)
        for thread in admitted:
            thread.join(timeout=60)
    assert [response.status_code for response in results] == [200, 200]
    assert all("fellow americans" in response.json()["text"].lower() for response in results)
    assert admission.in_flight == 0


class SlowTranscriber:
    """Takes ``seconds`` per transcription and counts them; the real decoder still reads the upload."""

    model_id = "slow"
    owned_by = "tests"
    supported_languages = frozenset({"en"})

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def transcribe(self, samples: np.ndarray, **_: object) -> Transcription:
        self.calls += 1
        time.sleep(self.seconds)
        return Transcription(text="done", language="en", duration_s=samples.size / 16_000, segments=[])

    def warm_up(self) -> None:
        pass


def test_a_request_whose_client_left_while_queued_is_not_transcribed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = SlowTranscriber(seconds=1.5)
    app = create_app(Settings(cache_dir=tmp_path, **OPEN_ACCESS), engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    audio = encode_clip(decode_audio(CLIP), 16_000, 1, "wav", "pcm_s16le")
    caplog.set_level(logging.INFO, logger="stt_service.routes")
    try:
        first: list[Any] = []
        served = threading.Thread(
            target=lambda: first.append(httpx.post(f"{url}{TRANSCRIPTIONS}", files={"file": audio}))
        )
        served.start()
        while engine.calls == 0:  # the first request holds the model
            time.sleep(0.01)
        with pytest.raises(httpx.ReadTimeout):  # the second gives up while it waits for its turn
            httpx.post(f"{url}{TRANSCRIPTIONS}", files={"file": audio}, timeout=httpx.Timeout(30, read=0.5))
        served.join(timeout=30)
        assert first[0].json() == {"text": "done"}
        deadline = time.monotonic() + 10
        while not any("skipped" in record.getMessage() for record in caplog.records):
            assert time.monotonic() < deadline, "the transcription of a departed client was not skipped"
            time.sleep(0.02)
        assert engine.calls == 1
        assert httpx.get(f"{url}/ready").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)
