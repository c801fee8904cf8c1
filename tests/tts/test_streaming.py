"""Streaming over real HTTP (uvicorn in a thread): audio leaves sentence by sentence, and stops when the client does."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from .conftest import VOICE_RATE_HZ, decode, rms

THREE_SENTENCES = (
    "Streaming starts with the first sentence. The second one follows while you listen. "
    "And the third sentence ends this short test."
)


def collect_chunks(server_url: str, **fields: object) -> tuple[httpx.Response, list[bytes]]:
    body = {"model": "tts-1", "voice": "alloy", "input": THREE_SENTENCES, **fields}
    with httpx.Client(base_url=server_url, timeout=60) as http, http.stream("POST", "/v1/audio/speech", json=body) as r:
        return r, [chunk for chunk in r.iter_raw() if chunk]


def test_wav_arrives_in_several_chunks_that_form_one_valid_wav(server_url: str) -> None:
    response, chunks = collect_chunks(server_url)
    assert response.status_code == 200
    assert response.headers.get("transfer-encoding") == "chunked"
    assert len(chunks) > 1
    # the first chunk already carries the header and the first sentence's audio
    assert chunks[0][:4] == b"RIFF" and len(chunks[0]) > 44 + VOICE_RATE_HZ
    samples, rate_hz = decode(b"".join(chunks))
    assert rate_hz == VOICE_RATE_HZ
    assert 0.2 * 20 <= samples.size / rate_hz <= 0.8 * 20
    assert rms(samples) > 0.02


@pytest.mark.parametrize("response_format", ["pcm", "mp3", "opus"])
def test_other_streamed_formats_arrive_in_several_chunks(server_url: str, response_format: str) -> None:
    response, chunks = collect_chunks(server_url, response_format=response_format)
    assert response.status_code == 200
    assert len(chunks) > 1


def test_errors_come_before_the_stream_with_a_real_status(server_url: str) -> None:
    response = httpx.post(f"{server_url}/v1/audio/speech", json={"input": "Hi.", "voice": "nobody"}, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_voice"


def test_synthesis_stops_when_the_client_goes_away(server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    long_text = " ".join(f"This is sentence number {n} of a long answer nobody will hear." for n in range(40))
    caplog.set_level(logging.INFO, logger="tts_service.speech")
    with httpx.Client(base_url=server_url, timeout=60) as http:
        with http.stream("POST", "/v1/audio/speech", json={"input": long_text}) as response:
            assert response.status_code == 200
            next(response.iter_raw())
        # the connection is closed here, after the first chunk of about forty sentences
        deadline = time.monotonic() + 60
        while not any("client went away" in record.getMessage() for record in caplog.records):
            assert time.monotonic() < deadline, "the server kept synthesising for a client that left"
            time.sleep(0.05)
        # the worker is free again: the next request is answered in full
        after = http.post("/v1/audio/speech", json={"input": "Still here."})
    assert after.status_code == 200
    assert decode(after.content)[0].size > 0
