"""The STT service's own metrics on ``GET /metrics`` (next to the shared ones of ``service_common.metrics``)."""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram

from .engine import Transcription

REAL_TIME_FACTOR_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
"""Processing time / audio duration: a short question takes about 0.03-0.1 on 2 cores, a 30 s window up to 1."""


StreamOutcome = Literal["completed", "client_gone", "error"]
"""How a streamed transcription ended: its done event sent; its client left first; an error event sent instead."""
STREAM_OUTCOMES: tuple[StreamOutcome, ...] = get_args(StreamOutcome)


class SttMetrics:
    """``stt_audio_seconds_total``, ``stt_real_time_factor``, ``stt_short_window_total{outcome}`` and
    ``stt_streams_total{outcome}``; streamed transcriptions count in the first two as well."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.audio_seconds = Counter(
            "stt_audio_seconds", "Seconds of audio transcribed.", registry=registry
        )  # exported with the _total suffix
        self.real_time_factor = Histogram(
            "stt_real_time_factor",
            "Processing time / audio duration of each transcription (queueing excluded).",
            buckets=REAL_TIME_FACTOR_BUCKETS,
            registry=registry,
        )
        self.short_window = Counter(
            "stt_short_window",
            "Short-window decodings: accepted, or fell_back (a check failed; decoded again with 30 s windows).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("accepted", "fell_back"):
            self.short_window.labels(outcome)
        self.streams = Counter(
            "stt_streams",
            "Streamed transcriptions (stream=true) by how they ended: completed, client_gone (the client left and "
            "the decoding stopped) or error.",
            ["outcome"],
            registry=registry,
        )
        for outcome in STREAM_OUTCOMES:
            self.streams.labels(outcome)

    def observe(self, result: Transcription, processing_s: float) -> None:
        """Count one transcription of ``result.duration_s`` seconds that took ``processing_s`` on the model."""
        self.audio_seconds.inc(result.duration_s)
        if result.duration_s > 0:
            self.real_time_factor.observe(processing_s / result.duration_s)
        if result.short_window is not None:
            self.short_window.labels(result.short_window).inc()

    def observe_stream(self, outcome: StreamOutcome, duration_s: float, processing_s: float) -> None:
        """Count one streamed transcription that ended with ``outcome`` (``STREAM_OUTCOMES``) after transcribing
        ``duration_s`` seconds of audio in ``processing_s`` on the model; its real-time factor only if completed."""
        self.streams.labels(outcome).inc()
        self.audio_seconds.inc(duration_s)
        if outcome == "completed" and duration_s > 0:
            self.real_time_factor.observe(processing_s / duration_s)
