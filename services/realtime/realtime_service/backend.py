"""What the Realtime service loads once and shares between sessions: the VAD and turn models, and the clients of
the STT, LLM and TTS services."""

from __future__ import annotations

import numpy as np

from voice_agent.engine.conversation import TurnModels
from voice_agent.engine.vad import FRAME_SAMPLES, SAMPLE_RATE_HZ
from voice_agent.pipeline import Pipeline

from .config import Settings


class RealtimeBackend:
    """The service's "engine" in the shared lifecycle's terms: ``model_id`` is the turn model's name (the service
    has no model of its own besides the VAD and turn model; the conversation's models are in the other services).

    ``models``: Silero VAD and Smart Turn v3.2 from the pipecat-ai wheel (ONNX on the CPU), shared by sessions.
    ``pipeline``: openai clients of the three services (thread-safe, one connection pool each), shared by sessions.
    """

    model_id = "smart-turn-v3.2"
    owned_by = "pipecat-ai"

    def __init__(self, models: TurnModels, pipeline: Pipeline) -> None:
        self.models, self.pipeline = models, pipeline

    @classmethod
    def load(cls, settings: Settings) -> RealtimeBackend:
        return cls(TurnModels.load(), Pipeline.from_settings(settings))

    def warm_up(self) -> None:
        """One VAD frame and one turn-model decision on a second of silence (loads the ONNX sessions' kernels)."""
        vad = self.models.new_vad()
        vad.probability(np.zeros(FRAME_SAMPLES, dtype=np.int16))
        self.models.smart_turn.probability_complete(np.zeros(SAMPLE_RATE_HZ, dtype=np.float32))

    def close(self) -> None:
        self.pipeline.close()
