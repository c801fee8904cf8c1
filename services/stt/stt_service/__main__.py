"""``python -m stt_service``: serve the app with uvicorn on ``STT_HOST:STT_PORT`` (default 127.0.0.1:8001)."""

from __future__ import annotations

import uvicorn

from service_common.logs import setup_logging

from .config import get_settings


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    # log_config=None: uvicorn's loggers propagate to the one root handler set up above
    uvicorn.run(
        "stt_service.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=settings.keep_alive_s,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
