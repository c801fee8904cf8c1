"""Settings every service shares; each service subclasses with its own env prefix (``STT_``, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    """Where models assembled or downloaded at run time live: ``$VOICE_AGENT_CACHE`` or ~/.cache/voice-agent."""
    import os

    return Path(os.environ.get("VOICE_AGENT_CACHE", Path.home() / ".cache" / "voice-agent"))


class ServiceSettings(BaseSettings):
    """Network, logging and cache settings; subclasses set ``env_prefix`` and add model fields."""

    # an empty variable (`STT_LANGUAGE=` in .env) means "use the default", not the empty string
    model_config = SettingsConfigDict(env_file=None, extra="ignore", env_ignore_empty=True)

    host: str = Field(default="127.0.0.1", description="Address to bind; 0.0.0.0 inside a container.")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port to listen on.")
    log_level: str = Field(
        default="INFO", pattern=r"(?i)^(debug|info|warning|error|critical)$", description="Python logging level."
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir, description="Directory for models assembled or downloaded at run time."
    )
