"""Settings of the Realtime service, read from ``REALTIME_*`` environment variables (never at import time)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_common.settings import ServiceSettings
from voice_agent.config import IceServer, ServiceClientSettings


class Settings(ServiceSettings, ServiceClientSettings):
    """Realtime settings; every field maps to ``REALTIME_<FIELD>`` (e.g. ``REALTIME_STT_URL``). Where the STT, LLM and
    TTS services are and how they are called: ``ServiceClientSettings``, the same fields as the page's."""

    model_config = SettingsConfigDict(env_prefix="REALTIME_", extra="ignore", env_ignore_empty=True, env_file=None)

    port: int = Field(default=8004, ge=1, le=65535, description="TCP port to listen on.")
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
        description=(
            "Largest client event (one WebSocket or data-channel message) in bytes; a larger one gets an error event "
            "(the WebSocket accepts messages up to twice this size; a still larger one closes it, code 1009)."
        ),
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
