"""``python -m realtime_service``: serve on ``REALTIME_HOST``:``REALTIME_PORT`` (default 127.0.0.1:8004)."""

from __future__ import annotations

from service_common.app import serve

from .config import get_settings


def main() -> None:
    serve("realtime_service.main:create_app", get_settings())


if __name__ == "__main__":
    main()
