"""Bad and borderline input, case by case: a clear 4xx in OpenAI's shape, or 200 with no invented words, and
the service stays ready after each.

The app has small limits (20 s, 1 MB) so the "too long" and "too large" cases stay small and quick.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from stt_helpers import OPEN_ACCESS, TRANSCRIPTIONS, assert_openai_error, encode_clip, normalise, resample
from test_api import tiny_png

from service_common.audio import decode_audio, wav_header
from stt_service.config import Settings
from stt_service.main import create_app

RATE_HZ = 16_000
MAX_DURATION_S = 20.0
MAX_UPLOAD_BYTES = 1_000_000
JFK = decode_audio((Path(__file__).parents[1] / "data" / "jfk.wav").read_bytes())
RNG = np.random.default_rng(20_260_101)


def at_dbfs(samples: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale to an RMS level in dB relative to full scale (-30 dBFS: a hissy microphone in a quiet room)."""
    return (samples / np.sqrt(np.mean(samples**2)) * 10 ** (dbfs / 20)).astype(np.float32)


def pink_noise(n: int) -> np.ndarray:
    """1/f noise (equal energy per octave, like room rumble and fans), by shaping white noise's spectrum."""
    spectrum = np.fft.rfft(RNG.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    return np.fft.irfft(spectrum, n)


def wav(samples: np.ndarray, rate: int = RATE_HZ, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def nan_wav() -> bytes:
    """Silence whose float samples hold NaN and infinities (a broken float WAV): Whisper looped on it for 30 s."""
    samples = np.zeros(RATE_HZ, dtype=np.float32)
    samples[100:4000] = np.nan
    samples[5000] = np.inf
    samples[6000] = -np.inf
    return wav(samples, subtype="FLOAT")


def seconds(n: float) -> int:
    return int(n * RATE_HZ)


@dataclass(frozen=True)
class Case:
    """One upload: how to build it, what to send with it, what must come back."""

    payload: Callable[[], bytes]
    status: int
    code: str | None = None
    """OpenAI error code (errors) or None."""
    message: str | None = None
    """A word the error message must contain, naming the problem."""
    text: str | None = None
    """200: the transcript must be empty ("") or contain these words."""
    fields: dict[str, str] = field(default_factory=dict)
    filename: str = "recording.wav"
    param: str | None = "file"


ERRORS: dict[str, Case] = {
    # empty and truncated uploads
    "empty-file": Case(lambda: b"", 400, "empty_input", "empty"),
    "wav-header-without-samples": Case(lambda: wav_header(RATE_HZ, data_bytes=0), 415, "audio_decode_error", "audio"),
    "wav-cut-inside-the-header": Case(lambda: wav(JFK)[:20], 415, "audio_decode_error", "decode"),
    "mp3-first-100-bytes": Case(
        lambda: encode_clip(JFK, RATE_HZ, 1, "mp3", "libmp3lame")[:100], 415, "audio_decode_error", "decode"
    ),
    "webm-first-200-bytes": Case(
        lambda: encode_clip(resample(JFK, RATE_HZ, 48_000), 48_000, 1, "webm", "libopus", {"live": "1"})[:200],
        415,
        "audio_decode_error",
        "decode",
    ),
    "ogg-first-30-bytes": Case(
        lambda: encode_clip(resample(JFK, RATE_HZ, 48_000), 48_000, 1, "ogg", "libopus")[:30],
        415,
        "audio_decode_error",
        "decode",
    ),
    "flac-cut-in-half": Case(
        lambda: half(encode_clip(JFK, RATE_HZ, 1, "flac", "flac")), 415, "audio_decode_error", "decode"
    ),
    # not audio at all, whatever the name says
    "random-bytes": Case(lambda: RNG.bytes(32_000), 415, "audio_decode_error", "decode"),
    "zero-bytes": Case(lambda: bytes(8_000), 415, "audio_decode_error", "decode"),
    "png-image-renamed-wav": Case(tiny_png, 415, "audio_decode_error", "audio"),
    "jpeg-signature-renamed-wav": Case(lambda: b"\xff\xd8\xff\xe0" + bytes(2_000), 415, "audio_decode_error", "audio"),
    "pdf-renamed-mp3": Case(
        lambda: b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" * 20,
        415,
        "audio_decode_error",
        "decode",
        filename="talk.mp3",
    ),
    "text-file": Case(lambda: b"This is a text file, not a recording.\n" * 40, 415, "audio_decode_error", "decode"),
    "json-document": Case(lambda: b'{"text": "json is not audio"}', 415, "audio_decode_error", "decode"),
    "html-page": Case(lambda: b"<html><body><p>hello</p></body></html>", 415, "audio_decode_error", "decode"),
    "gzip-archive": Case(lambda: gzip.compress(b"hello " * 500), 415, "audio_decode_error", "decode"),
    # shorter than OpenAI's minimum of 0.1 s (400)
    "a-single-sample": Case(lambda: wav(JFK[seconds(1.0) : seconds(1.0) + 1]), 400, "audio_too_short", "short"),
    "wav-of-60-bytes": Case(lambda: wav(JFK[seconds(1.0) : seconds(1.0) + 8]), 400, "audio_too_short", "short"),
    "silence-of-0.09s": Case(lambda: wav(np.zeros(seconds(0.09), np.float32)), 400, "audio_too_short", "short"),
    # over the limits (413)
    "upload-over-the-byte-limit": Case(lambda: RNG.bytes(MAX_UPLOAD_BYTES + 1), 413, "input_too_large", "limit"),
    "mp3-longer-than-the-limit": Case(  # the header states the duration: refused before decoding
        lambda: encode_clip(np.tile(JFK, 2), RATE_HZ, 1, "mp3", "libmp3lame"), 413, "input_too_large", "limit"
    ),
    "webm-longer-than-the-limit": Case(  # a browser recording states no duration: refused once decoded
        lambda: encode_clip(resample(np.tile(JFK, 2), RATE_HZ, 48_000), 48_000, 1, "webm", "libopus", {"live": "1"}),
        413,
        "input_too_large",
        "limit",
    ),
    # invalid fields next to good audio (400)
    "unsupported-language": Case(
        lambda: wav(JFK[: seconds(2)]),
        400,
        "unsupported_language",
        "language",
        fields={"language": "fr"},
        param="language",
    ),
    "malformed-language": Case(
        lambda: wav(JFK[: seconds(2)]),
        400,
        "invalid_request",
        "language",
        fields={"language": "english"},
        param="language",
    ),
    "unknown-response-format": Case(
        lambda: wav(JFK[: seconds(2)]),
        400,
        "invalid_request",
        "response_format",
        fields={"response_format": "docx"},
        param="response_format",
    ),
    "temperature-above-1": Case(
        lambda: wav(JFK[: seconds(2)]),
        400,
        "invalid_request",
        "temperature",
        fields={"temperature": "1.5"},
        param="temperature",
    ),
    "temperature-not-a-number": Case(
        lambda: wav(JFK[: seconds(2)]),
        400,
        "invalid_request",
        "temperature",
        fields={"temperature": "warm"},
        param="temperature",
    ),
    "unknown-timestamp-granularity": Case(
        lambda: wav(JFK[: seconds(2)]),
        400,
        "invalid_request",
        "timestamp_granularities",
        fields={"timestamp_granularities[]": "char"},
        param=None,
    ),
    "prompt-too-long": Case(
        lambda: wav(JFK[: seconds(2)]), 400, "invalid_request", "prompt", fields={"prompt": "x" * 2001}, param="prompt"
    ),
    "model-name-too-long": Case(
        lambda: wav(JFK[: seconds(2)]), 400, "invalid_request", "model", fields={"model": "m" * 257}, param="model"
    ),
}

SILENT: dict[str, Case] = {
    # no speech: 200 with empty text, not "Thank you." or "you"
    "digital-silence-5s": Case(lambda: wav(np.zeros(seconds(5), np.float32)), 200, text=""),
    "dithered-silence-5s": Case(lambda: wav(at_dbfs(RNG.standard_normal(seconds(5)), -70)), 200, text=""),
    "white-noise-at-minus-30-dbfs": Case(lambda: wav(at_dbfs(RNG.standard_normal(seconds(5)), -30)), 200, text=""),
    "white-noise-at-minus-20-dbfs": Case(lambda: wav(at_dbfs(RNG.standard_normal(seconds(5)), -20)), 200, text=""),
    "pink-noise-at-minus-30-dbfs": Case(lambda: wav(at_dbfs(pink_noise(seconds(5)), -30)), 200, text=""),
    "pink-noise-at-minus-20-dbfs": Case(lambda: wav(at_dbfs(pink_noise(seconds(5)), -20)), 200, text=""),
    "mains-hum-50hz": Case(
        lambda: wav(at_dbfs(np.sin(2 * np.pi * 50 * np.arange(seconds(5)) / RATE_HZ), -25)), 200, text=""
    ),
    # too short to hold a word, but as long as OpenAI's minimum
    "speech-clip-of-0.1s": Case(lambda: wav(JFK[seconds(1.0) : seconds(1.1)]), 200, text=""),
    "silence-of-0.1s": Case(lambda: wav(np.zeros(seconds(0.1), np.float32)), 200, text=""),
    "nan-and-infinite-samples": Case(nan_wav, 200, text=""),
}

SPEECH: dict[str, Case] = {
    # damaged or unusual but still speech: what is there is transcribed
    "wav-cut-in-half": Case(lambda: half(wav(JFK)), 200, text="and so my fellow americans"),
    "mp3-cut-in-half": Case(lambda: half(encode_clip(JFK, RATE_HZ, 1, "mp3", "libmp3lame")), 200, text="fellow"),
    "nine-channels": Case(lambda: wav(np.tile(JFK[: seconds(3), None], (1, 9))), 200, text="fellow americans"),
    "8-bit-8khz": Case(lambda: wav(resample(JFK, RATE_HZ, 8_000), 8_000, "PCM_U8"), 200, text="your country"),
}

CORPUS = {**ERRORS, **SILENT, **SPEECH}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("stt-corpus"),
        max_audio_duration_s=MAX_DURATION_S,
        max_upload_bytes=MAX_UPLOAD_BYTES,
        **OPEN_ACCESS,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("case", CORPUS.values(), ids=CORPUS.keys())
def test_bad_input_gets_a_clear_answer_and_the_service_stays_ready(limited: TestClient, case: Case) -> None:
    files = {"file": (case.filename, case.payload(), "application/octet-stream")}
    response = limited.post(TRANSCRIPTIONS, files=files, data=case.fields)
    if case.status == 200:
        assert response.status_code == 200, response.text
        text = normalise(response.json()["text"])
        assert text == case.text if case.text == "" else case.text in text, text
    else:
        error = assert_openai_error(response, case.status, param=case.param)
        assert error["code"] == case.code
        assert case.message is not None and case.message in error["message"].lower(), error["message"]
    ready = limited.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_the_corpus_counts() -> None:
    assert (len(ERRORS), len(SILENT), len(SPEECH)) == (30, 10, 4)
    assert len(ERRORS["wav-of-60-bytes"].payload()) == 60  # a 44-byte header and 8 samples


def test_silence_and_noise_cost_little(limited: TestClient) -> None:
    """The VAD cuts them before Whisper: no 30 s decoding window is paid for a silent recording."""
    import time

    started = time.perf_counter()
    for name in ("digital-silence-5s", "white-noise-at-minus-20-dbfs", "nan-and-infinite-samples"):
        files = {"file": ("x.wav", SILENT[name].payload(), "audio/wav")}
        assert limited.post(TRANSCRIPTIONS, files=files).json() == {"text": ""}
    assert time.perf_counter() - started < 3.0


def test_after_the_corpus_speech_is_still_transcribed(limited: TestClient) -> None:
    files = {"file": ("jfk.wav", wav(JFK), "audio/wav")}
    response = limited.post(TRANSCRIPTIONS, files=files, data={"response_format": "verbose_json"})
    assert response.status_code == 200
    assert "ask not what your country" in normalise(response.json()["text"])
