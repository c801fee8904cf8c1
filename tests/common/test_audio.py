"""Decoding (PyAV) of every container a browser or user sends, and encoding of replies (soundfile)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from service_common.audio import decode_audio, encode_audio, to_pcm16, wav_header
from service_common.errors import AudioDecodeError, EmptyInput


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode_with_av(samples: np.ndarray, rate: int, container: str, codec: str, layout: str = "mono") -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        channels = 2 if layout == "stereo" else 1
        frame = av.AudioFrame.from_ndarray(
            np.tile(samples, (channels, 1)).astype(np.float32), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("container", "codec", "rate", "layout"),
    [
        ("wav", "pcm_s16le", 48_000, "stereo"),
        ("wav", "pcm_s16le", 8_000, "mono"),
        ("flac", "flac", 44_100, "mono"),
        ("mp3", "libmp3lame", 44_100, "stereo"),
        ("ogg", "libopus", 48_000, "mono"),
        ("webm", "libopus", 48_000, "stereo"),
        ("ipod", "aac", 44_100, "mono"),  # m4a
    ],
)
def test_decodes_browser_and_user_formats_to_16k_mono(container: str, codec: str, rate: int, layout: str) -> None:
    data = encode_with_av(tone(2.0, rate), rate, container, codec, layout)
    samples = decode_audio(data)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / 16_000 - 2.0) < 0.1  # codec padding is a few ms at most
    assert np.abs(samples).max() <= 1.0
    assert 0.25 < np.sqrt(np.mean(samples[1600:-1600] ** 2)) < 0.45  # a 0.5-amplitude sine has RMS 0.354


def test_decodes_the_real_clip(jfk_wav: Path) -> None:
    samples = decode_audio(jfk_wav.read_bytes())
    assert len(samples) == 11 * 16_000


def test_empty_and_undecodable_uploads_raise_domain_errors(tmp_path: Path) -> None:
    with pytest.raises(EmptyInput):
        decode_audio(b"")
    with pytest.raises(AudioDecodeError):
        decode_audio(np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioDecodeError):
        decode_audio(b"\x89PNG\r\n\x1a\n" + bytes(200))  # an image renamed .wav
    with pytest.raises(AudioDecodeError):
        decode_audio(b"RIFF\x24\x00\x00\x00WAVEfmt ")  # a truncated WAV header


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_encoded_replies_decode_back_with_the_same_duration(fmt: str) -> None:
    samples = tone(1.5, 22_050)
    data = encode_audio(samples, 22_050, fmt)
    decoded, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 22_050
    assert abs(len(decoded) / rate - 1.5) < 0.1


def test_formats_that_stream_are_not_encoded_in_one_piece() -> None:
    with pytest.raises(ValueError, match="mp3"):
        encode_audio(tone(0.1, 22_050), 22_050, "mp3")


def test_pcm_and_streaming_wav_header() -> None:
    samples = tone(0.5, 16_000)
    pcm = to_pcm16(samples)
    assert len(pcm) == 2 * len(samples)
    header = wav_header(16_000)
    assert header[:4] == b"RIFF" and len(header) == 44
    # a stream whose length was unknown still decodes to all of its samples
    decoded = decode_audio(header + pcm)
    assert abs(len(decoded) - len(samples)) <= 1
