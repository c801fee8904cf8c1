"""``python -m tts_service``: serve the TTS app with uvicorn on ``TTS_HOST``:``TTS_PORT`` (default 127.0.0.1:8003)."""

from __future__ import annotations

import uvicorn

from .config import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "tts_service.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=settings.keep_alive_s,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep service_common's root logging format for uvicorn's loggers too
    )


if __name__ == "__main__":
    main()
