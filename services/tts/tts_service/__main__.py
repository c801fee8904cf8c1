"""``python -m tts_service``: serve on ``TTS_HOST``:``TTS_PORT`` (default 127.0.0.1:8003)."""

from __future__ import annotations

from service_common.app import serve

from .config import get_settings


def main() -> None:
    serve("tts_service.main:create_app", get_settings())


if __name__ == "__main__":
    main()
