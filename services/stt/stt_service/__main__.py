"""``python -m stt_service``: serve on ``STT_HOST``:``STT_PORT`` (default 127.0.0.1:8001)."""

from __future__ import annotations

from service_common.app import serve

from .config import get_settings


def main() -> None:
    serve("stt_service.main:create_app", get_settings())


if __name__ == "__main__":
    main()
