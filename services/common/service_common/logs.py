"""One logging setup for every service: timestamp, level, logger name, message."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once (idempotent); uvicorn's loggers propagate to it."""
    root = logging.getLogger()
    if not any(getattr(handler, "_voice_agent", False) for handler in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._voice_agent = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
