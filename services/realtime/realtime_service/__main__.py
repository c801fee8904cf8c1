"""``python -m realtime_service``: serve on ``REALTIME_HOST``:``REALTIME_PORT`` (default 127.0.0.1:8004)."""

from __future__ import annotations

from service_common.app import serve

from .config import get_settings


def main() -> None:
    settings = get_settings()
    # the socket takes messages twice the event limit, so an event over the limit gets an error event, not a close
    serve("realtime_service.main:create_app", settings, ws_max_size=2 * settings.max_event_bytes)


if __name__ == "__main__":
    main()
