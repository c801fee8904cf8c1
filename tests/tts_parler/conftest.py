"""Fixtures of the Parler-TTS tests (run in .venvs/tts-parler only: they need torch and parler-tts).

A tiny random Parler model is built once per session (``tiny_parler.py``) and loaded by the app through
``TTS_PARLER_MODEL=<its directory>``: the code path a real checkpoint takes. The hub is switched off for the
whole session (HF_HUB_OFFLINE=1), so any attempt to reach it fails loudly instead of waiting on the network.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tts_service.config import Settings
from tts_service.main import create_app
from tts_service.parler_engine import ParlerSynthesizer

from .tiny_parler import build_tiny_parler

CHUNK_S = 0.12  # 10 codec frames per streamed chunk (the least the 9-codebook streamer allows)
MAX_NEW_TOKENS = 36  # generation steps per sentence: at most 28 frames (0.33 s) of noise, so tests stay quick


class ExplicitSettings(Settings):
    """Settings from explicit values only: the developer's ``TTS_*`` variables (``make`` exports .env) are ignored."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *_sources, **_named):
        return (init_settings,)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "engine": "parler",
        "parler_chunk_s": CHUNK_S,
        "parler_max_new_tokens": MAX_NEW_TOKENS,
        **overrides,
    }
    return ExplicitSettings(cache_dir=tmp_path, **values)


@pytest.fixture(scope="session", autouse=True)
def _no_hub() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.delenv("HF_HOME", raising=False)
        patch.delenv("HF_HUB_CACHE", raising=False)
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_parler(tmp_path_factory.mktemp("tiny-parler"))


@pytest.fixture(scope="session")
def settings(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("tts-cache"), parler_model=str(tiny_model_dir))


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with TTS_ENGINE=parler; its lifespan loads the tiny model from disk and warms it up, once."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def engine(client: TestClient) -> ParlerSynthesizer:
    """The synthesiser the app loaded (tests call it directly, never while a request runs)."""
    loaded = client.app.state.engine
    assert isinstance(loaded, ParlerSynthesizer)
    return loaded


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Any container soundfile reads (wav, flac, mp3, ogg/opus) -> (float32 mono samples, rate in Hz)."""
    samples, rate_hz = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate_hz


def assert_audio(samples: np.ndarray) -> None:
    """Float32 mono samples of a real signal: non-empty, finite, within [-1, 1], not digital silence."""
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert samples.size > 0
    assert np.isfinite(samples).all()
    assert np.abs(samples).max() <= 1.0
    assert np.abs(samples).max() > 0.0
