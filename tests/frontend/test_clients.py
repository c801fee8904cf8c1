"""The clients' contract where the real services cannot be made to misbehave: a stand-in server on 127.0.0.1.

What it checks is ours, not the openai package's: a stream without a ``finish_reason`` is reported as cut and not
replayed, one retry layer (the client's ``max_retries``) is all there is, and the speech stream's sample rate is
read from ``X-Sample-Rate``. The real services are exercised by tests/e2e.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from voice_agent.clients import LlmClient, StageError, TtsClient


@dataclass
class Script:
    """What the stand-in answers: ``statuses`` first (one per request), then ``chunks`` as SSE or raw bytes."""

    statuses: list[int] = field(default_factory=list)
    chunks: list[dict] = field(default_factory=list)
    pcm: bytes = b""
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), **body})
            if script.statuses:
                status = script.statuses.pop(0)
                error = json.dumps({"error": {"message": "busy", "type": "overloaded", "code": None}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(error)))
                self.end_headers()
                self.wfile.write(error)
                return
            self.send_response(200)
            if self.path.endswith("/audio/speech"):
                self.send_header("Content-Type", "audio/pcm")
                self.send_header("X-Sample-Rate", "22050")
                self.send_header("Content-Length", str(len(script.pcm)))
                self.end_headers()
                self.wfile.write(script.pcm)
                return
            events = [f"data: {json.dumps(chunk)}\n\n" for chunk in script.chunks] + ["data: [DONE]\n\n"]
            payload = "".join(events).encode()
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def chunk(content: str, finish_reason: str | None = None) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "local",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}],
    }


MESSAGES = [{"role": "user", "content": "Hi"}]


def test_a_stream_that_ends_without_a_finish_reason_is_cut_and_not_replayed(server: tuple[str, Script]) -> None:
    url, script = server
    script.chunks = [chunk("Hello"), chunk(" there")]
    client = LlmClient(url, model="local")
    received: list[str] = []
    with pytest.raises(StageError) as caught:
        for delta in client.stream_chat(MESSAGES, max_tokens=8, temperature=0.0):
            received.append(delta)
    assert caught.value.kind == "cut" and caught.value.stage == "llm" and "finish_reason" in caught.value.message
    assert received == ["Hello", " there"]
    assert len(script.requests) == 1, "a half-streamed reply was requested again"


def test_a_complete_stream_yields_its_deltas_and_sends_the_key(server: tuple[str, Script]) -> None:
    url, script = server
    script.chunks = [chunk("Hello"), chunk(" there", "stop")]
    client = LlmClient(url, model="local", api_key="sk-test")
    assert list(client.stream_chat(MESSAGES, max_tokens=8, temperature=0.0)) == ["Hello", " there"]
    [request] = script.requests
    assert request["authorization"] == "Bearer sk-test" and request["stream"] is True and request["max_tokens"] == 8


def test_one_retry_layer_the_clients_max_retries(server: tuple[str, Script]) -> None:
    url, script = server
    script.chunks = [chunk("Hi", "stop")]
    script.statuses = [503, 503]
    assert list(LlmClient(url, model="local", max_retries=2).stream_chat(MESSAGES, max_tokens=4, temperature=0)) == [
        "Hi"
    ]
    assert len(script.requests) == 3  # the first try and two retries, no more
    script.requests.clear()
    script.statuses = [503]
    with pytest.raises(StageError) as caught:
        list(LlmClient(url, model="local", max_retries=0).stream_chat(MESSAGES, max_tokens=4, temperature=0))
    assert caught.value.kind == "not_ready" and "HTTP 503: busy" in caught.value.message
    assert len(script.requests) == 1


def test_speech_streams_pcm_at_the_rate_the_server_states(server: tuple[str, Script]) -> None:
    url, script = server
    script.pcm = bytes(range(256)) * 40 + b"\x01"  # an odd byte at the end: half a sample is never passed on
    chunks = list(TtsClient(url, model="tts-1").stream_pcm("Hello.", voice="alloy"))
    assert {c.sample_rate_hz for c in chunks} == {22_050}
    assert b"".join(c.data for c in chunks) == script.pcm[:-1]
    assert all(len(c.data) % 2 == 0 for c in chunks)
    [request] = script.requests
    assert request["response_format"] == "pcm" and request["input"] == "Hello." and request["voice"] == "alloy"
