"""Choosing voices: TTS_VOICE as id or path, TTS_VOICES_DIR, and speaking with an extra voice."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tts_service.embedded import EMBEDDED_VOICE_ID, embedded_voice_paths
from tts_service.main import create_app
from tts_service.piper_engine import resolve_voice_files

from .conftest import VOICE_RATE_HZ, decode, make_settings


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the embedded voice linked under another id, as a user would drop a downloaded voice."""
    folder = tmp_path_factory.mktemp("voices")
    model_path, config_path = embedded_voice_paths()
    (folder / "en_US-copy-medium.onnx").symlink_to(model_path)
    (folder / "en_US-copy-medium.onnx.json").symlink_to(config_path)
    return folder


def test_default_voice_is_the_embedded_one() -> None:
    [files] = resolve_voice_files(EMBEDDED_VOICE_ID, None)
    assert (files.id, files.model_path) == (EMBEDDED_VOICE_ID, embedded_voice_paths()[0])


def test_voice_can_be_a_path_to_an_onnx_file(voices_dir: Path) -> None:
    [files] = resolve_voice_files(str(voices_dir / "en_US-copy-medium.onnx"), None)
    assert files.id == "en_US-copy-medium"
    assert files.config_path == voices_dir / "en_US-copy-medium.onnx.json"


def test_voice_can_be_an_id_in_the_voices_dir_and_comes_first(voices_dir: Path) -> None:
    assert [files.id for files in resolve_voice_files("en_US-copy-medium", voices_dir)] == ["en_US-copy-medium"]
    assert [files.id for files in resolve_voice_files(EMBEDDED_VOICE_ID, voices_dir)] == [
        EMBEDDED_VOICE_ID,
        "en_US-copy-medium",
    ]


def test_a_voice_without_its_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lonely.onnx").write_bytes(b"not a model")
    with pytest.raises(FileNotFoundError, match=r"lonely\.onnx\.json"):
        resolve_voice_files(str(tmp_path / "lonely.onnx"), None)


def test_an_unknown_voice_id_is_refused_with_the_reason() -> None:
    with pytest.raises(FileNotFoundError, match="not the embedded voice"):
        resolve_voice_files("en_GB-nobody-low", None)


def test_voices_dir_adds_voices_that_requests_can_choose(tmp_path: Path, voices_dir: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, voices_dir=voices_dir))) as client:
        voices = client.get("/v1/audio/voices").json()
        assert [voice["id"] for voice in voices["data"]] == [EMBEDDED_VOICE_ID, "en_US-copy-medium"]
        assert voices["default_voice"] == EMBEDDED_VOICE_ID

        response = client.post("/v1/audio/speech", json={"input": "Another voice.", "voice": "en_US-copy-medium"})
        assert response.status_code == 200
        assert response.headers["x-voice"] == "en_US-copy-medium"
        samples, rate_hz = decode(response.content)
        assert rate_hz == VOICE_RATE_HZ and samples.size > 0
