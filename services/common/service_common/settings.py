"""Settings every service shares; each service subclasses with its own env prefix (``STT_``, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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

    # --- access and load: enforced by service_common.guard in front of every /v1 route ---------------------------
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "API key(s) clients must send as 'Authorization: Bearer <key>' on /v1 routes; several separated by "
            "commas (one per client, to rotate). Unset: no key needed. /health, /ready and /docs stay open."
        ),
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key for the admin routes (GET /admin/status, POST /admin/model/unload and /load), sent as "
            "'Authorization: Bearer <key>'. Unset: the admin routes answer 403. Separate from the API keys of /v1."
        ),
    )
    rate_limit: str | None = Field(
        default=None,
        description=(
            "Requests allowed per API key (per client address when no key is set) on /v1 routes, in the notation "
            "of the 'limits' library: '60/minute', several separated by ';' ('5/second;300/hour'). Unset: "
            "unlimited. Beyond it: 429 with Retry-After."
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Browser origins allowed to call the service from their pages (CORS), comma-separated, e.g. "
            "'http://localhost:8501'; '*' allows any. Empty: no cross-origin access (same-origin and non-browser "
            "clients are unaffected)."
        ),
    )
    max_queued_requests: int = Field(
        default=8,
        ge=0,
        le=1000,
        description=(
            "Requests to the model (POST /v1/...) that may wait while one is being served; one more gets 503 with "
            "Retry-After at once instead of waiting behind them."
        ),
    )
    nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description=(
            "Scheduling niceness of the process (0 = normal, 19 = lowest priority), set at start before any model "
            "thread exists. On a shared CPU, a higher value makes this service yield to the others when they "
            "compete for a core."
        ),
    )
    keep_alive_s: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="Seconds an idle HTTP keep-alive connection is kept open (uvicorn's timeout_keep_alive).",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("rate_limit")
    @classmethod
    def _parse_rate_limit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from limits import parse_many  # local: only the services install limits

        try:
            parse_many(value)
        except ValueError as err:
            raise ValueError(f"not a rate limit such as '60/minute' or '5/second;300/hour': {value!r}") from err
        return value

    @field_validator("api_key", "admin_api_key")
    @classmethod
    def _has_a_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not any(key.strip() for key in value.get_secret_value().split(",")):
            raise ValueError("the API key list is empty")
        return value

    @property
    def api_keys(self) -> tuple[str, ...]:
        """The configured API keys (empty: no key needed)."""
        return _split_keys(self.api_key)

    @property
    def admin_api_keys(self) -> tuple[str, ...]:
        """The configured admin keys (empty: the admin routes are off)."""
        return _split_keys(self.admin_api_key)

    @property
    def env_prefix(self) -> str:
        """The prefix of this service's variables (``STT_``, ...), for messages that name a setting."""
        return str(self.model_config.get("env_prefix", ""))


def _split_keys(value: SecretStr | None) -> tuple[str, ...]:
    """The comma-separated keys of ``value``, stripped, empty ones dropped."""
    if value is None:
        return ()
    return tuple(key.strip() for key in value.get_secret_value().split(",") if key.strip())
