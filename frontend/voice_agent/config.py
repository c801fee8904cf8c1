"""Frontend and pipeline settings, read from ``FRONTEND_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .text import FIRST_PHRASE_MIN_WORDS

ICE_URL_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


LANGUAGE_CHOICES = ["auto", "en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "zh", "ja"]
"""The languages the pages offer for speech recognition ("auto": the STT service detects it)."""


def default_data_dir() -> Path:
    """Where the page keeps its conversation store: ``$VOICE_AGENT_CACHE`` or ~/.cache/voice-agent, the directory the
    services download their models into (the page does not import the services' ``service_common``)."""
    return Path(os.environ.get("VOICE_AGENT_CACHE", Path.home() / ".cache" / "voice-agent")).expanduser()


class IceServer(BaseModel):
    """One RTCIceServer as the browser and aiortc take it: a STUN server (``urls`` only) or a TURN server
    (``urls``, ``username``, ``credential``)."""

    urls: str | list[str] = Field(description="stun:, stuns:, turn: or turns: URL(s), e.g. turn:turn.example.org:3478")
    username: str | None = Field(default=None, description="TURN user name.")
    credential: str | None = Field(default=None, description="TURN password (it reaches the browser).")

    @field_validator("urls")
    @classmethod
    def _ice_urls(cls, urls: str | list[str]) -> str | list[str]:
        for url in [urls] if isinstance(urls, str) else urls:
            if not url.startswith(ICE_URL_SCHEMES):
                raise ValueError(f"an ICE server URL starts with one of {', '.join(ICE_URL_SCHEMES)}: {url!r}")
        return urls


class ServiceClientSettings(BaseSettings):
    """Where the STT, LLM and TTS services are and how to call them (``Pipeline.from_settings``); any
    OpenAI-compatible server can fill a slot. The page's ``FRONTEND_*`` and the Realtime service's ``REALTIME_*``
    settings both have these fields."""

    stt_url: str = Field(default="http://127.0.0.1:8001", description="Base URL of the STT service (no /v1).")
    llm_url: str = Field(default="http://127.0.0.1:8002", description="Base URL of the LLM service (no /v1).")
    tts_url: str = Field(default="http://127.0.0.1:8003", description="Base URL of the TTS service (no /v1).")
    stt_api_key: SecretStr | None = Field(default=None, description="Bearer key for the STT service, if it has one.")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer key for the LLM service, if it has one.")
    tts_api_key: SecretStr | None = Field(default=None, description="Bearer key for the TTS service, if it has one.")
    stt_model: str = Field(default="whisper-1", description="Model name sent to the STT service.")
    llm_model: str = Field(default="local", description="Model name sent to the LLM service.")
    tts_model: str = Field(default="tts-1", description="Model name sent to the TTS service.")
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "Retries of a request that got no response yet (refused, timed out, 408/409/429/5xx), with exponential "
            "backoff; a reply or speech already streaming is never replayed."
        ),
    )
    connect_timeout_s: float = Field(default=3.0, gt=0, le=60, description="TCP connect timeout per request (s).")
    read_timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="Longest wait for the next bytes of a response (s)."
    )


class FrontendSettings(ServiceClientSettings):
    """Where the services are and how a turn is run; any OpenAI-compatible server can fill a slot."""

    model_config = SettingsConfigDict(env_prefix="FRONTEND_", extra="ignore", env_ignore_empty=True)

    voice: str = Field(default="alloy", description="TTS voice id (OpenAI names map to the default voice).")
    language: str | None = Field(default=None, description="ISO-639-1 language of the user's speech; None = auto.")
    system_prompt: str | None = Field(
        default=None, description="System prompt sent with every turn; None = the LLM service's default."
    )
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="LLM sampling temperature.")
    max_tokens: int = Field(default=160, ge=1, le=4096, description="Longest reply, in tokens.")
    first_phrase_min_words: int = Field(
        default=FIRST_PHRASE_MIN_WORDS,
        ge=0,
        le=50,
        description=(
            "Send the reply's first phrase to TTS at its first clause mark (comma, semicolon, colon, dash) once it "
            "has this many words, instead of waiting for the whole first sentence; 0 = always wait for the sentence."
        ),
    )
    mode: Literal["hands-free", "push-to-talk"] = Field(
        default="hands-free",
        description=(
            "The page's mode when it opens: hands-free (press START once, then talk; it answers when you pause and "
            "stops when you talk over it) or push-to-talk (record or upload a question, then it answers)."
        ),
    )
    ice_servers: list[IceServer] = Field(
        default_factory=list,
        description=(
            "STUN/TURN servers for hands-free mode's WebRTC connection, a JSON list of RTCIceServer objects, e.g. "
            '[{"urls": "stun:stun.example.org:3478"}, {"urls": "turn:turn.example.org:3478", "username": "u", '
            '"credential": "p"}]; empty = host candidates only (the browser on this machine or the same LAN).'
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address the Streamlit page binds to.")
    port: int = Field(default=8501, ge=1, le=65535, description="Port of the Streamlit page.")
    realtime_url: str | None = Field(
        default=None,
        description="Base URL of the Realtime service (no /v1), for the Admin page; None = the page leaves it out.",
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "Admin key sent as a bearer to every service's /admin routes (the operator sets the same "
            "<PREFIX>_ADMIN_API_KEY on each); None = the Admin page shows state and metrics, without Unload and Load."
        ),
    )
    store_conversations: bool = Field(
        default=True,
        description=(
            "Keep every finished turn (text, timings, settings, both sides' audio) in the conversation store, so a "
            "reload or a restart of the page resumes it; false = nothing is written and no past conversation is listed."
        ),
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description=(
            "Directory of the conversation store: the SQLite database voice-agent.db (unless database_url is set) and "
            "the audio of every turn under conversations/<conversation id>/."
        ),
    )
    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the conversation store's database, e.g. postgresql+psycopg://user:password@host/voice "
            "(the driver, psycopg, comes with the page's lock); None = SQLite in data_dir. Audio stays in data_dir."
        ),
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address of the page process's own Prometheus endpoint (GET /metrics)."
    )
    metrics_port: int = Field(
        default=8511,
        ge=0,
        le=65535,
        description="Port of the page process's Prometheus endpoint (its conversation engine's metrics); 0 = off.",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, data_dir: Path) -> Path:
        return data_dir.expanduser()


@lru_cache
def get_settings() -> FrontendSettings:
    return FrontendSettings()
