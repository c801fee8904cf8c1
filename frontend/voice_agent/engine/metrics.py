"""Prometheus metrics of the conversation engine, shared by the page's process and the Realtime service.

The page serves them on ``FRONTEND_METRICS_PORT`` (``serve_metrics``); the Realtime service registers them in its
own registry and serves them on its ``GET /metrics``.
"""

from __future__ import annotations

import functools
import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

logger = logging.getLogger(__name__)

END_OF_SPEECH_TO_AUDIO_BUCKETS_S = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0)
"""End of the user's speech -> first reply audio: about 1-3 s on 2 cores, with a tail under load."""


class EngineMetrics:
    """``conversation_turns_total``, ``conversation_turns_reopened_total``, ``conversation_barge_ins_total`` and
    ``conversation_end_of_speech_to_audio_seconds``, for every ``ConversationEngine`` given this object."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.turns = Counter(
            "conversation_turns",
            "User turns ended (a turn reopened because the user went on counts again when it ends).",
            registry=registry,
        )  # exported as conversation_turns_total
        self.turns_reopened = Counter(
            "conversation_turns_reopened",
            "Turns ended too early: the user went on before any reply audio was played.",
            registry=registry,
        )
        self.barge_ins = Counter(
            "conversation_barge_ins",
            "Replies interrupted by the user speaking over them (not by a typed turn, a cancel or a hang-up).",
            registry=registry,
        )
        self.end_of_speech_to_audio = Histogram(
            "conversation_end_of_speech_to_audio_seconds",
            "End of the user's speech -> first reply audio handed to the transport (end-of-turn wait, STT, LLM, "
            "TTS; the transport's own delay excluded).",
            buckets=END_OF_SPEECH_TO_AUDIO_BUCKETS_S,
            registry=registry,
        )


@functools.cache
def page_metrics(host: str, port: int) -> EngineMetrics:
    """The page process's engine metrics, in prometheus_client's default registry (with the process metrics), served
    on ``host:port`` at ``/metrics`` from a daemon thread (prometheus_client's own server); ``port`` 0: not served.

    Once per process whatever Streamlit's caches do (a second registration of the same names would raise). A port
    already taken (a second page process) is logged and the page goes on without serving.
    """
    metrics = EngineMetrics()
    if port:
        try:
            start_http_server(port, addr=host)
            logger.info("Prometheus metrics of the page on http://%s:%d/metrics", host, port)
        except OSError as err:
            logger.warning("page metrics not served on %s:%d: %s", host, port, err)
    return metrics
