"""Settings of the Realtime service, read from ``REALTIME_*`` environment variables (never at import time)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from service_common.settings import ServiceSettings
from voice_agent.config import IceServer


class Settings(ServiceSettings):
    """Realtime settings; every field maps to ``REALTIME_<FIELD>`` (e.g. ``REALTIME_STT_URL``)."""

    model_config = SettingsConfigDict(env_prefix="REALTIME_", extra="ignore")

    port: int = Field(default=8004, ge=1, le=65535, description="TCP port to listen on.")
    stt_url: str = Field(default="http://127.0.0.1:8001", description="Base URL of the STT service (no /v1).")
    llm_url: str = Field(default="http://127.0.0.1:8002", description="Base URL of the LLM service (no /v1).")
    tts_url: str = Field(default="http://127.0.0.1:8003", description="Base URL of the TTS service (no /v1).")
    stt_api_key: SecretStr | None = Field(default=None, description="Bearer key for the STT service, if it has one.")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer key for the LLM service, if it has one.")
    tts_api_key: SecretStr | None = Field(default=None, description="Bearer key for the TTS service, if it has one.")
    stt_model: str = Field(default="whisper-1", description="Model name sent to the STT service.")
    llm_model: str = Field(default="local", description="Model name sent to the LLM service.")
    tts_model: str = Field(default="tts-1", description="Model name sent to the TTS service.")
    voice: str = Field(
        default="alloy", description="Output voice of a new session (OpenAI names map to the TTS default)."
    )
    instructions: str | None = Field(
        default=None, description="System prompt of a new session; None = the LLM service's default."
    )
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="LLM sampling temperature.")
    max_output_tokens: int = Field(default=160, ge=1, le=4096, description="Longest reply of a new session, in tokens.")
    max_sessions: int = Field(
        default=4,
        ge=1,
        le=1000,
        description=(
            "Realtime sessions (WebSocket or WebRTC) held at once; one more is refused with 503 and Retry-After "
            "before the WebSocket upgrade (or the SDP answer)."
        ),
    )
    max_event_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest client event (one WebSocket message or data-channel message) in bytes; larger: error.",
    )
    max_input_audio_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Most input audio (seconds) waiting in the input buffer for a commit (turn_detection null); audio "
            "beyond it is refused with an error event."
        ),
    )
    ice_servers: list[IceServer] = Field(
        default_factory=list,
        description=(
            "STUN/TURN servers for WebRTC calls (POST /v1/realtime/calls), a JSON list of RTCIceServer objects; "
            "empty = host candidates only (clients on this machine or the same LAN)."
        ),
    )
    max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a request to a service that got no response."
    )
    connect_timeout_s: float = Field(default=3.0, gt=0, le=60, description="TCP connect timeout per request (s).")
    read_timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="Longest wait for a response's next bytes (s)."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
