"""``/metrics`` and the admin routes of the STT service on the real embedded Whisper model."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from scrape import scrape
from stt_helpers import OPEN_ACCESS, TRANSCRIPTIONS

from stt_service.config import Settings
from stt_service.main import create_app

ADMIN = {"Authorization": "Bearer stt-admin"}


def post(client: TestClient, wav: Path) -> object:
    return client.post(TRANSCRIPTIONS, files={"file": (wav.name, wav.read_bytes(), "audio/wav")})


def test_a_transcription_adds_its_audio_seconds_real_time_factor_and_short_window_outcome(
    client: TestClient, jfk_wav: Path
) -> None:
    before = scrape(client)
    response = post(client, jfk_wav)
    assert response.status_code == 200  # type: ignore[attr-defined]
    after = scrape(client)
    assert after.value("stt_audio_seconds_total") - before.value("stt_audio_seconds_total") == 11.0
    assert after.value("stt_real_time_factor_count") - before.value("stt_real_time_factor_count") == 1
    rtf = after.value("stt_real_time_factor_sum") - before.value("stt_real_time_factor_sum")
    assert 0 < rtf < 1  # tiny.en transcribes faster than real time, even on 2 busy cores
    outcomes = [
        after.value("stt_short_window_total", outcome=outcome) - before.value("stt_short_window_total", outcome=outcome)
        for outcome in ("accepted", "fell_back")
    ]
    assert sum(outcomes) == 1  # the 11 s question went through the short window, accepted or decoded again
    handler = {"handler": TRANSCRIPTIONS, "method": "POST", "status": "200"}
    assert after.value("http_requests_total", **handler) - before.value("http_requests_total", **handler) == 1
    assert after.value("model_info", model="tiny.en", device="cpu") == 1


def test_unload_refuses_transcriptions_clearly_and_load_brings_the_model_back(tmp_path: Path, jfk_wav: Path) -> None:
    settings = Settings(cache_dir=tmp_path, admin_api_key="stt-admin", **OPEN_ACCESS)
    with TestClient(create_app(settings)) as client:
        loaded = client.get("/admin/status", headers=ADMIN).json()
        assert loaded["model"]["id"] == "tiny.en" and loaded["memory"]["rss_bytes"] > 0
        unloaded = client.post("/admin/model/unload", headers=ADMIN).json()
        assert unloaded["state"] == "unloaded" and unloaded["model"] is None
        assert client.get("/ready").json()["status"] == "unloaded"
        refused = post(client, jfk_wav)
        assert refused.status_code == 503  # type: ignore[attr-defined]
        assert refused.json()["error"]["code"] == "model_not_ready"  # type: ignore[attr-defined]
        assert "unloaded" in refused.json()["error"]["message"]  # type: ignore[attr-defined]
        assert scrape(client).value("model_loaded") == 0

        assert client.post("/admin/model/load", headers=ADMIN).json()["state"] == "ready"
        again = post(client, jfk_wav)
        assert again.status_code == 200  # type: ignore[attr-defined]
        assert again.json()["text"].lower().startswith("and so my fellow americans")  # type: ignore[attr-defined]
        assert scrape(client).value("model_loaded") == 1
