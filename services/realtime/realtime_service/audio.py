"""Sample-rate conversion at the service's edge: Realtime clients speak 24 kHz PCM, the engine hears 16 kHz and
the TTS service speaks at its voice's rate (22 050 Hz for the embedded Piper voice)."""

from __future__ import annotations

import av
import numpy as np


class Resampler:
    """Signed 16-bit little-endian mono PCM from ``from_hz`` to ``to_hz``, one stream at a time (PyAV's libswresample
    resampler keeps its filter state between calls, so chunk edges leave no clicks). Same rates: passed through."""

    def __init__(self, from_hz: int, to_hz: int) -> None:
        self.from_hz, self.to_hz = from_hz, to_hz
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=to_hz) if from_hz != to_hz else None
        self._pts = 0

    def convert(self, pcm16: bytes) -> bytes:
        """``pcm16`` (any even length) at ``from_hz`` -> PCM16 at ``to_hz``; the resampler may hold back a few
        samples until the next call."""
        if self._resampler is None or not pcm16:
            return pcm16
        samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.from_hz
        frame.pts = self._pts
        self._pts += samples.shape[1]
        return b"".join(bytes(out.to_ndarray().astype("<i2").tobytes()) for out in self._resampler.resample(frame))
