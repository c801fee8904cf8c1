"""The Realtime service's own metrics on ``GET /metrics``: its sessions and their conversation engines."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from voice_agent.engine.metrics import EngineMetrics


class RealtimeMetrics:
    """``realtime_sessions_active``, ``realtime_sessions_refused_total`` and the engines' ``conversation_*``
    metrics (``conversation``, given to every session's engine)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.conversation = EngineMetrics(registry)
        self.sessions_active = Gauge(
            "realtime_sessions_active", "Realtime sessions open (WebSocket and WebRTC).", registry=registry
        )
        self.sessions_refused = Counter(
            "realtime_sessions_refused",
            "Realtime sessions refused because REALTIME_MAX_SESSIONS were open (503).",
            registry=registry,
        )
