"""``python -m llm_service``: serve on ``LLM_HOST``:``LLM_PORT`` (default 127.0.0.1:8002)."""

from __future__ import annotations

from service_common.app import serve

from .config import get_settings


def main() -> None:
    serve("llm_service.main:create_app", get_settings())


if __name__ == "__main__":
    main()
