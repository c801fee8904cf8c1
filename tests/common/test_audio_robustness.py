"""Uploads that once crashed or stalled the decoder: many channels, NaN and infinite samples."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from service_common.audio import decode_audio


def wav_bytes(samples: np.ndarray, rate: int = 16_000, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("channels", [1, 2, 6, 8, 9, 16, 64])
def test_any_channel_count_decodes_to_the_exact_mean(channels: int) -> None:
    # PyAV crashes the whole process (segfault) when a planar frame has more than 8 channels
    frames = np.zeros((16_000, channels), dtype=np.float32)
    frames[:, 0] = 0.5
    samples = decode_audio(wav_bytes(frames))
    assert samples.shape == (16_000,)
    assert np.allclose(samples[100:-100], 0.5 / channels, atol=1e-4)


def test_many_channels_do_not_crash_a_fresh_interpreter() -> None:
    """The crash killed the interpreter, which a test in the same process could not even report."""
    code = (
        "import io, numpy as np, soundfile as sf\n"
        "from service_common.audio import decode_audio\n"
        "b = io.BytesIO(); sf.write(b, np.full((8000, 12), 0.1, np.float32), 16000, format='WAV')\n"
        "print(decode_audio(b.getvalue()).size)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8000"


def test_nan_and_infinite_samples_become_finite() -> None:
    samples = np.full(16_000, 0.25, dtype=np.float32)
    samples[10:20] = np.nan
    samples[30] = np.inf
    samples[40] = -np.inf
    decoded = decode_audio(wav_bytes(samples, subtype="FLOAT"))
    assert np.isfinite(decoded).all()
    assert decoded.min() >= -1.0 and decoded.max() <= 1.0
    assert decoded[1000] == pytest.approx(0.25, abs=1e-3)
