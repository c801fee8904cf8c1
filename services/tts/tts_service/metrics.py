"""The TTS service's own metrics on ``GET /metrics`` (next to the shared ones of ``service_common.metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from service_common.metrics import LATENCY_BUCKETS_S


class TtsMetrics:
    """Characters synthesised, audio produced and time to first audio."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.characters = Counter(
            "tts_characters", "Input characters of the speech requests synthesised.", registry=registry
        )  # exported as tts_characters_total
        self.audio_seconds = Counter(
            "tts_audio_seconds", "Seconds of audio synthesised (counted chunk by chunk).", registry=registry
        )
        self.time_to_first_audio = Histogram(
            "tts_time_to_first_audio_seconds",
            "Request arrival -> first encoded audio bytes ready to send (queueing included).",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
