"""Fixtures shared by every test tier (standard library only: each tier runs in its own venv)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Committed test clips, named by what they say, each with a ``.txt`` transcript beside it."""
    return DATA_DIR


@pytest.fixture(scope="session")
def jfk_wav() -> Path:
    """JFK, 11.0 s, 16 kHz mono PCM16, public domain (whisper.cpp's sample, shipped in pywhispercpp's sdist)."""
    return DATA_DIR / "jfk.wav"


@pytest.fixture(scope="session")
def jfk_transcript() -> str:
    return (DATA_DIR / "jfk.txt").read_text().strip()
