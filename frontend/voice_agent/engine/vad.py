"""Streaming voice activity detection (VAD): Silero VAD on 32 ms frames of 16 kHz mono audio, state kept across frames.

The model file ships inside the pipecat-ai wheel (``pipecat/audio/vad/data/silero_vad.onnx``, Silero VAD v5, MIT) and
runs through pipecat's ``SileroOnnxModel`` (onnxruntime, one intra-op and one inter-op thread): no hub download, no
torch. About 0.3 ms of one core per 32 ms frame on a 2-core machine, 1 % of a core per stream (``python -m
bench.turn_tuning`` measures it).
"""

from __future__ import annotations

from importlib import resources

import numpy as np
from loguru import logger as _loguru

# pipecat logs a banner and debug lines through loguru at import; this package logs through `logging`
_loguru.disable("pipecat")

from pipecat.audio.vad.silero import SileroOnnxModel  # noqa: E402

SAMPLE_RATE_HZ = 16_000
FRAME_SAMPLES = 512
"""Silero's frame at 16 kHz: 512 samples."""
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE_HZ
"""One frame in seconds (0.032)."""
MODEL_PATH = resources.files("pipecat.audio.vad.data") / "silero_vad.onnx"


class SileroVad:
    """One audio stream's VAD. The model carries a recurrent state from frame to frame, so each stream (each
    conversation) needs its own instance; loading one takes a few ms and about 2 MB. Not thread-safe."""

    def __init__(self) -> None:
        self._model = SileroOnnxModel(str(MODEL_PATH))

    def probability(self, frame: np.ndarray) -> float:
        """Speech probability in [0, 1] of the next frame of the stream.

        ``frame``: shape (512,), 16 kHz mono, int16 PCM or float32 in [-1, 1]. Raises ValueError for another shape
        or dtype.
        """
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a VAD frame is {FRAME_SAMPLES} samples at 16 kHz, got shape {frame.shape}")
        if frame.dtype == np.int16:
            samples = frame.astype(np.float32) / 32768.0
        elif frame.dtype == np.float32:
            samples = frame
        else:
            raise ValueError(f"a VAD frame is int16 or float32, got {frame.dtype}")
        return float(self._model(samples, SAMPLE_RATE_HZ)[0][0])

    def reset(self) -> None:
        """Forget the stream (a new one starts)."""
        self._model.reset_states()


__all__ = ["FRAME_S", "FRAME_SAMPLES", "MODEL_PATH", "SAMPLE_RATE_HZ", "SileroVad"]
