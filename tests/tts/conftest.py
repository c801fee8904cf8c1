"""Fixtures of the TTS tests: one app with the real embedded voice (loaded once), a real uvicorn server, helpers."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import uvicorn
from fastapi.testclient import TestClient

from tts_service.config import Settings
from tts_service.main import create_app

VOICE_RATE_HZ = 22_050  # en_US-joe-medium


class ExplicitSettings(Settings):
    """Settings from explicit values only: the developer's ``TTS_*`` variables (``make`` exports .env) are ignored."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *_sources, **_named):
        return (init_settings,)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return ExplicitSettings(cache_dir=tmp_path, **overrides)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("tts-cache"))


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with the real embedded Piper voice, lifespan run (model loaded and warmed up) once per session."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server_url(settings: Settings) -> Iterator[str]:
    """A real uvicorn server (in a thread of this process) serving its own app instance, for true HTTP streaming."""
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="tts-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the TTS test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Any container soundfile reads (wav, flac, mp3, ogg/opus) -> (float32 mono samples, rate in Hz)."""
    samples, rate_hz = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate_hz


def pcm16_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def assert_openai_error(response_json: dict, *, code: str | None = None, param: str | None = None) -> None:
    """The body is OpenAI's error shape, with the expected code and param when given."""
    assert set(response_json) == {"error"}
    error = response_json["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    assert error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
