"""Streaming voice activity detection: Silero VAD on 32 ms frames at 16 kHz, state kept across frames.

The model file ships inside the pipecat-ai wheel (``pipecat/audio/vad/data/silero_vad.onnx``) and runs through
pipecat's ``SileroOnnxModel`` (onnxruntime, one thread): no hub download, no torch.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
from loguru import logger as _loguru

_loguru.disable("pipecat")  # pipecat logs a banner and debug lines through loguru; ours go through logging

from pipecat.audio.vad.silero import SileroOnnxModel  # noqa: E402

SAMPLE_RATE_HZ = 16_000
FRAME_SAMPLES = 512
"""Silero's frame at 16 kHz: 512 samples = 32 ms."""
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE_HZ
MODEL_PATH = resources.files("pipecat.audio.vad.data") / "silero_vad.onnx"


class SileroVad:
    """One stream's VAD (each conversation needs its own: the model carries state from frame to frame)."""

    def __init__(self) -> None:
        self._model = SileroOnnxModel(str(MODEL_PATH))

    def probability(self, frame: np.ndarray) -> float:
        """Speech probability in [0, 1] of one frame: shape (512,), int16 PCM or float32 in [-1, 1], 16 kHz mono.

        Raises ValueError for another frame length.
        """
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a VAD frame is {FRAME_SAMPLES} samples at 16 kHz, got shape {frame.shape}")
        samples = frame.astype(np.float32) / 32768.0 if frame.dtype == np.int16 else frame.astype(np.float32)
        return float(self._model(samples, SAMPLE_RATE_HZ)[0][0])

    def reset(self) -> None:
        self._model.reset_states()
