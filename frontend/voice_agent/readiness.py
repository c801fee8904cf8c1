"""Wait until every service answers ``GET /ready`` with 200, then print where everything is.

``python -m voice_agent.readiness`` is the last process of ``make run``: it prints the URLs once the agent
can take a turn and then stays up, so the process runner keeps the group together until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.error
import urllib.request

from .config import FrontendSettings

REALTIME_DEFAULT_PORT = 8004


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(urls: dict[str, str], *, timeout_s: float = 600.0, poll_s: float = 0.5) -> dict[str, float]:
    """Poll ``<url>`` (a full readiness URL) for each name until it answers 200.

    Returns the seconds each took; raises TimeoutError naming the services still not ready.
    """
    start = time.monotonic()
    ready_after: dict[str, float] = {}
    while len(ready_after) < len(urls):
        for name, url in urls.items():
            if name not in ready_after and _answers_200(url):
                ready_after[name] = time.monotonic() - start
        if len(ready_after) == len(urls):
            break
        if time.monotonic() - start > timeout_s:
            missing = sorted(set(urls) - set(ready_after))
            raise TimeoutError(f"not ready after {timeout_s:.0f} s: {', '.join(missing)}")
        time.sleep(poll_s)
    return ready_after


def realtime_address() -> str:
    """``127.0.0.1:<port>`` of the Realtime service that ``make run`` starts (``REALTIME_PORT``, default 8004)."""
    return f"127.0.0.1:{os.environ.get('REALTIME_PORT') or REALTIME_DEFAULT_PORT}"


def main() -> int:
    parser = argparse.ArgumentParser(description="Wait for the voice agent's services, print the URLs, stay up.")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every service")
    parser.add_argument("--exit", action="store_true", help="exit once ready instead of staying up")
    args = parser.parse_args()
    settings = FrontendSettings()
    page_url = f"http://{settings.host}:{settings.port}"
    realtime = realtime_address()
    urls = {
        "stt": f"{settings.stt_url}/ready",
        "llm": f"{settings.llm_url}/ready",
        "tts": f"{settings.tts_url}/ready",
        "realtime": f"http://{realtime}/ready",
        "page": f"{page_url}/_stcore/health",
    }
    try:
        took = wait_until_ready(urls, timeout_s=args.timeout)
    except TimeoutError as err:
        print(f"voice agent: {err}", file=sys.stderr, flush=True)
        return 1
    print(
        "\n"
        f"  Voice agent ready in {max(took.values()):.1f} s. Open {page_url} and press record.\n"
        f"  Realtime API: ws://{realtime}/v1/realtime\n"
        f"  Swagger UI: STT {settings.stt_url}/docs  LLM {settings.llm_url}/docs  TTS {settings.tts_url}/docs"
        f"  Realtime http://{realtime}/docs\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    if not args.exit:
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
