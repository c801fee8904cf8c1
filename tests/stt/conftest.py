"""Fixtures of the STT tests: one app with the real embedded tiny.en model per session, clips, WER."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from stt_helpers import OPEN_ACCESS, TRANSCRIPTIONS

from service_common.audio import decode_audio
from stt_service.config import Settings
from stt_service.main import create_app


@pytest.fixture(scope="session")
def stt_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Defaults (embedded tiny.en), with a private cache directory so tests never touch ~/.cache."""
    return Settings(cache_dir=tmp_path_factory.mktemp("stt-cache"), **OPEN_ACCESS)


@pytest.fixture(scope="session")
def client(stt_settings: Settings) -> Iterator[TestClient]:
    """The real app with the real model, loaded and warmed up once for the whole session."""
    with TestClient(create_app(stt_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def jfk_bytes(jfk_wav: Path) -> bytes:
    return jfk_wav.read_bytes()


@pytest.fixture(scope="session")
def jfk_samples(jfk_bytes: bytes) -> np.ndarray:
    """jfk.wav as float32 mono 16 kHz."""
    return decode_audio(jfk_bytes)


@pytest.fixture(scope="session")
def transcribe(client: TestClient) -> Callable[..., object]:
    """POST a file to the transcription endpoint: ``transcribe(data, filename="clip.wav", **form_fields)``."""

    def post(data: bytes, filename: str = "clip.wav", content_type: str = "application/octet-stream", **fields):
        return client.post(TRANSCRIPTIONS, files={"file": (filename, data, content_type)}, data=fields)

    return post
