"""The fast tier: the app with an injected fake engine (a tone per sentence), for paths a real voice rarely takes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tts_service.engine import Synthesizer, VoiceInfo
from tts_service.main import create_app
from tts_service.sentences import split_for_speech

from .conftest import decode, make_settings

RATE_HZ = 16_000


class ToneSynthesizer:
    """Half a second of 440 Hz per sentence; a sentence containing FAIL raises, as a broken model would."""

    model_id = "tone"
    owned_by = "tests"
    default_voice = "tone"
    sample_rate_hz = RATE_HZ

    def __init__(self) -> None:
        self.warmed_up = False
        self.calls: list[tuple[str, float, str | None]] = []

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("tone", "Tone", "en_US", RATE_HZ, "fake")]

    def synthesize(
        self, text: str, *, voice: str, speed: float = 1.0, instructions: str | None = None
    ) -> Iterator[np.ndarray]:
        self.calls.append((voice, speed, instructions))
        for sentence in split_for_speech(text, 300):
            if "FAIL" in sentence:
                raise RuntimeError("the model broke")
            t = np.arange(int(0.5 * RATE_HZ / speed)) / RATE_HZ
            yield (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)

    def warm_up(self) -> None:
        self.warmed_up = True


@pytest.fixture
def engine() -> ToneSynthesizer:
    return ToneSynthesizer()


@pytest.fixture
def client(engine: ToneSynthesizer, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path), engine=engine), raise_server_exceptions=False) as client:
        yield client


def test_the_fake_satisfies_the_protocol(engine: ToneSynthesizer) -> None:
    assert isinstance(engine, Synthesizer)


def test_an_injected_engine_is_warmed_up_and_served(client: TestClient, engine: ToneSynthesizer) -> None:
    assert engine.warmed_up
    assert client.get("/ready").json()["model"] == "tone"
    response = client.post(
        "/v1/audio/speech", json={"input": "One. Two.", "voice": "echo", "speed": 2.0, "instructions": "softly"}
    )
    assert response.status_code == 200
    assert response.headers["x-sample-rate"] == str(RATE_HZ)
    samples, rate_hz = decode(response.content)
    assert (samples.size, rate_hz) == (2 * RATE_HZ // 4, RATE_HZ)
    assert engine.calls == [("tone", 2.0, "softly")]


def test_a_failure_in_the_first_sentence_is_a_500_in_openai_shape(client: TestClient) -> None:
    response = client.post("/v1/audio/speech", json={"input": "FAIL now. Never reached."})
    assert response.status_code == 500
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "inference_error")
    assert "the model broke" in error["message"]


def test_the_worker_survives_a_failed_request(client: TestClient) -> None:
    assert client.post("/v1/audio/speech", json={"input": "FAIL."}).status_code == 500
    assert client.post("/v1/audio/speech", json={"input": "Fine."}).status_code == 200
