"""Helpers of the STT tests (imported by the test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import io
import re
from typing import Any

import av
import jiwer
import numpy as np

WER_BOUND = 0.15
TRANSCRIPTIONS = "/v1/audio/transcriptions"
OPEN_ACCESS: dict[str, Any] = {"api_key": None, "rate_limit": None, "max_queued_requests": 8}
"""Settings overrides so that STT_API_KEY, STT_RATE_LIMIT or a tiny queue in a developer's environment (make exports
.env) do not lock the tests out."""


def normalise(text: str) -> str:
    """Lower case, numbers as words, "mr." as "mister", hyphens and punctuation removed, whitespace collapsed: WER
    counts words, not how they are written ("10" = "ten", "open-source" = "open source")."""
    from num2words import num2words

    text = re.sub(r"\bmr\.", "mister", text.lower())
    text = re.sub(r"\d+", lambda number: f" {num2words(int(number.group()))} ", text)
    return " ".join(re.sub(r"[^\w\s']", " ", text).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def corpus_word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Word errors over all clips divided by all reference words (not a mean of per-clip rates)."""
    return float(jiwer.wer([normalise(text) for text in references], [normalise(text) for text in hypotheses]))


def encode_clip(
    samples: np.ndarray,
    sample_rate_hz: int,
    channels: int,
    container: str,
    codec: str,
    options: dict[str, str] | None = None,
) -> bytes:
    """Encode float32 mono samples with PyAV into a whole file (the same channel copied to every channel).

    ``options`` are the muxer's: ``{"live": "1"}`` for webm writes no duration, like a browser's MediaRecorder.
    """
    layout = "stereo" if channels == 2 else "mono"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container, options=options or {}) as output:
        stream = output.add_stream(codec, rate=sample_rate_hz, layout=layout)
        assert isinstance(stream, av.audio.stream.AudioStream)
        frame = av.AudioFrame.from_ndarray(
            np.tile(samples.astype(np.float32), (channels, 1)), format="fltp", layout=layout
        )
        frame.sample_rate = sample_rate_hz
        for packet in stream.encode(frame):
            output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def assert_openai_error(response: Any, status_code: int, param: str | None = None) -> dict[str, Any]:
    """The response has ``status_code`` and OpenAI's error body; returns the inner error object."""
    assert response.status_code == status_code, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    assert error["type"] == ("invalid_request_error" if status_code < 500 else "server_error")
    if param is not None:
        assert error["param"] == param
    return error


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """float32 mono samples at ``from_hz`` -> at ``to_hz``, with FFmpeg's resampler (PyAV), as a recorder would."""
    frame = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = from_hz
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_hz)
    out = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(out).astype(np.float32)
