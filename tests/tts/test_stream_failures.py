"""A synthesis failure after the audio has started cannot change the status (200 is sent): the connection is cut
before the end of the chunked body, which every HTTP client reports as an incomplete response, never as a
normal end. Over real HTTP (uvicorn in a thread), with the fake engine that fails on a sentence saying FAIL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tts_service.main import create_app

from .conftest import make_settings
from .test_fake_engine import ToneSynthesizer


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    app = create_app(make_settings(tmp_path), engine=ToneSynthesizer())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.parametrize("response_format", ["wav", "pcm", "mp3"])
def test_a_failure_mid_stream_cuts_the_body_so_the_client_can_tell(server_url: str, response_format: str) -> None:
    body = {"input": "One fine sentence. Then FAIL here. Never reached.", "response_format": response_format}
    received = b""
    with httpx.Client(base_url=server_url, timeout=30) as http:
        with http.stream("POST", "/v1/audio/speech", json=body) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete"):
                for chunk in response.iter_raw():
                    received += chunk
        assert len(received) > 1000  # the first sentence did arrive
        # the service is still ready and serves the next request in full
        assert http.get("/ready").status_code == 200
        after = http.post("/v1/audio/speech", json={"input": "One. Two.", "response_format": "pcm"})
        assert after.status_code == 200 and len(after.content) == 2 * 2 * 8000  # two half-second tones at 16 kHz


def test_a_normal_stream_ends_with_a_complete_body(server_url: str) -> None:
    body = {"input": "One. Two.", "response_format": "pcm"}
    with httpx.Client(base_url=server_url, timeout=30) as http, http.stream("POST", "/v1/audio/speech", json=body) as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        assert len(r.read()) == 2 * 2 * 8000
