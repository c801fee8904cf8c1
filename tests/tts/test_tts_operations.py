"""``/metrics`` and the admin routes of the TTS service on the real embedded Piper voice."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from scrape import scrape

from tts_service.main import create_app

from .conftest import decode, make_settings

ADMIN = {"Authorization": "Bearer tts-admin"}
SPEECH = "/v1/audio/speech"
TEXT = "Hello there. The weather is fine today."


def test_speech_adds_its_characters_audio_seconds_and_time_to_first_audio(client: TestClient) -> None:
    before = scrape(client)
    response = client.post(SPEECH, json={"model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "wav"})
    assert response.status_code == 200
    after = scrape(client)
    samples, rate = decode(response.content)
    assert after.value("tts_characters_total") - before.value("tts_characters_total") == len(TEXT)
    produced_s = after.value("tts_audio_seconds_total") - before.value("tts_audio_seconds_total")
    assert abs(produced_s - samples.size / rate) < 0.01
    assert (
        after.value("tts_time_to_first_audio_seconds_count") - before.value("tts_time_to_first_audio_seconds_count")
        == 1
    )
    assert (
        0
        < after.value("tts_time_to_first_audio_seconds_sum") - before.value("tts_time_to_first_audio_seconds_sum")
        < 10
    )


def test_unload_refuses_speech_clearly_and_load_brings_the_voice_back(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, admin_api_key="tts-admin"))) as client:
        assert client.post("/admin/model/unload", headers=ADMIN).json()["state"] == "unloaded"
        refused = client.post(SPEECH, json={"model": "tts-1", "input": TEXT, "voice": "alloy"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_not_ready"
        assert client.get("/v1/audio/voices").status_code == 503
        assert client.post("/admin/model/load", headers=ADMIN).json()["state"] == "ready"
        spoken = client.post(SPEECH, json={"model": "tts-1", "input": TEXT, "voice": "alloy"})
        assert spoken.status_code == 200 and len(spoken.content) > 10_000
