"""Incremental encoders on a synthetic tone (no model needed): every format decodes to the audio fed in."""

from __future__ import annotations

import numpy as np
import pytest

from tts_service.encoding import make_encoder

from .conftest import decode, pcm16_to_float

RATE_HZ = 22_050


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE_HZ), dtype=np.float32) / RATE_HZ
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def encode_in_pieces(response_format: str, pieces: list[np.ndarray]) -> tuple[list[bytes], int]:
    encoder = make_encoder(response_format, RATE_HZ)  # type: ignore[arg-type]
    parts = [encoder.start(), *(encoder.encode(piece) for piece in pieces), encoder.finish()]
    encoder.close()
    return parts, encoder.sample_rate_hz


@pytest.mark.parametrize(
    ("response_format", "out_rate_hz"), [("wav", RATE_HZ), ("flac", RATE_HZ), ("mp3", RATE_HZ), ("opus", 48_000)]
)
def test_pieces_decode_to_the_total_duration(response_format: str, out_rate_hz: int) -> None:
    parts, rate_hz = encode_in_pieces(response_format, [tone(1.0), tone(0.5), tone(1.5)])
    assert rate_hz == out_rate_hz
    samples, decoded_rate_hz = decode(b"".join(parts))
    assert decoded_rate_hz == out_rate_hz
    # mp3 adds encoder padding (tens of ms); the others are exact or nearly
    assert samples.size / decoded_rate_hz == pytest.approx(3.0, abs=0.08)


@pytest.mark.parametrize("response_format", ["wav", "pcm", "mp3", "opus"])
def test_streamed_formats_give_bytes_before_the_end(response_format: str) -> None:
    parts, _ = encode_in_pieces(response_format, [tone(1.0), tone(1.0), tone(1.0)])
    assert all(parts[1:4]), "every second of audio should produce bytes right away"


def test_flac_comes_in_one_piece_at_the_end() -> None:
    parts, _ = encode_in_pieces("flac", [tone(1.0), tone(1.0)])
    assert parts[:-1] == [b"", b"", b""] and parts[-1][:4] == b"fLaC"


def test_pcm_is_the_samples_as_pcm16() -> None:
    parts, _ = encode_in_pieces("pcm", [tone(0.5)])
    np.testing.assert_allclose(pcm16_to_float(b"".join(parts)), tone(0.5), atol=1e-4)


def test_mp3_keeps_the_pitch() -> None:
    parts, _ = encode_in_pieces("mp3", [tone(1.0, hz=1000.0)])
    samples, rate_hz = decode(b"".join(parts))
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.fft.rfftfreq(samples.size, 1 / rate_hz)[spectrum.argmax()] == pytest.approx(1000.0, abs=5.0)
