"""What the Realtime service loads once and shares between sessions: the VAD and turn models, and the clients of
the STT, LLM and TTS services."""

from __future__ import annotations

import numpy as np
from pydantic import SecretStr

from voice_agent.clients import LlmClient, SttClient, TtsClient
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
        def key(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value else None

        timeouts = {
            "connect_timeout_s": settings.connect_timeout_s,
            "read_timeout_s": settings.read_timeout_s,
            "max_retries": settings.max_retries,
        }
        pipeline = Pipeline(
            SttClient(settings.stt_url, model=settings.stt_model, api_key=key(settings.stt_api_key), **timeouts),
            LlmClient(settings.llm_url, model=settings.llm_model, api_key=key(settings.llm_api_key), **timeouts),
            TtsClient(settings.tts_url, model=settings.tts_model, api_key=key(settings.tts_api_key), **timeouts),
        )
        return cls(TurnModels.load(), pipeline)

    def warm_up(self) -> None:
        """One VAD frame and one turn-model decision on a second of silence (loads the ONNX sessions' kernels)."""
        vad = self.models.new_vad()
        vad.probability(np.zeros(FRAME_SAMPLES, dtype=np.int16))
        self.models.smart_turn.probability_complete(np.zeros(SAMPLE_RATE_HZ, dtype=np.float32))

    def close(self) -> None:
        self.pipeline.close()
