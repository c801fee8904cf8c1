"""``GET /v1/realtime`` (WebSocket) and ``POST /v1/realtime/calls`` (WebRTC): admission, keys, the session's life.

Before the WebSocket upgrade (or the SDP answer) a caller is refused with an HTTP error in OpenAI's shape: 401
without a valid key (when ``REALTIME_API_KEY`` is set), 503 while the service is loading, 503 with ``Retry-After``
when ``REALTIME_MAX_SESSIONS`` sessions are open. A closed socket or peer connection ends the session, and its
engine closes its requests to every service at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.requests import HTTPConnection

from service_common.errors import InvalidApiKey, Overloaded, ServiceError, error_response
from service_common.guard import ApiKeys
from service_common.health import readiness_of

from .backend import RealtimeBackend
from .config import Settings
from .metrics import RealtimeMetrics
from .session import RealtimeSession, SessionDefaults, SessionLimits

logger = logging.getLogger(__name__)

router = APIRouter()

RETRY_AFTER_S = 5


class Sessions:
    """The open sessions (on the event loop only): at most ``limit``; gauged and refusals counted in ``metrics``."""

    def __init__(self, limit: int, metrics: RealtimeMetrics) -> None:
        self.limit = limit
        self.open: set[RealtimeSession] = set()
        self.metrics = metrics
        metrics.sessions_active.set_function(lambda: len(self.open))

    def check_room(self) -> None:
        """Raises Overloaded (503, Retry-After) when every place is taken."""
        if len(self.open) >= self.limit:
            self.metrics.sessions_refused.inc()
            raise Overloaded(
                f"{len(self.open)} Realtime sessions are open, the most this service holds; try again in "
                f"{RETRY_AFTER_S} s",
                retry_after_s=RETRY_AFTER_S,
            )


def admit(connection: HTTPConnection) -> RealtimeBackend:
    """Key, readiness and room for one more session; raises the ServiceError to answer with."""
    settings: Settings = connection.app.state.settings
    ApiKeys(settings.api_keys).caller(_bearer(connection))
    readiness_of(connection).require_ready()
    sessions: Sessions = connection.app.state.sessions
    sessions.check_room()
    backend: RealtimeBackend = connection.app.state.engine
    return backend


def _bearer(connection: HTTPConnection) -> bytes | None:
    header = connection.headers.get("authorization")
    if header is None:  # browsers cannot set headers on a WebSocket: OpenAI's subprotocol carries the key
        for protocol in connection.headers.get("sec-websocket-protocol", "").split(","):
            protocol = protocol.strip()
            if protocol.startswith("openai-insecure-api-key."):
                header = "Bearer " + protocol.removeprefix("openai-insecure-api-key.")
    return header.encode() if header is not None else None


def new_session(
    connection: HTTPConnection, backend: RealtimeBackend, model: str | None, **kwargs: Any
) -> RealtimeSession:
    settings: Settings = connection.app.state.settings
    defaults = SessionDefaults(
        voice=settings.voice,
        instructions=settings.instructions,
        temperature=settings.temperature,
        max_output_tokens=settings.max_output_tokens,
        limits=SessionLimits(settings.max_event_bytes, settings.max_input_audio_s),
    )
    sessions: Sessions = connection.app.state.sessions
    session = RealtimeSession(
        pipeline=backend.pipeline,
        models=backend.models,
        model=model or "voice-agent",
        defaults=defaults,
        loop=asyncio.get_running_loop(),
        metrics=sessions.metrics.conversation,
        **kwargs,
    )
    sessions.open.add(session)
    return session


async def end_session(state: Any, session: RealtimeSession) -> None:
    """Forget the session (``state`` is the app's) and close it: its engine closes its requests to every service."""
    sessions: Sessions = state.sessions
    sessions.open.discard(session)
    await session.close()


@router.websocket("/v1/realtime")
async def realtime_websocket(websocket: WebSocket, model: str | None = None, intent: str | None = None) -> None:
    """A Realtime session over a WebSocket: OpenAI's GA client and server events as JSON text messages;
    ``intent=transcription`` opens a transcription session."""
    try:
        backend = admit(websocket)
    except ServiceError as err:
        if isinstance(err, InvalidApiKey | Overloaded):
            logger.warning("Realtime connection refused (%d): %s", err.status_code, err.message)
        await websocket.send_denial_response(error_response(err))
        return
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
    session = new_session(websocket, backend, model, transcription=intent == "transcription")
    logger.info("Realtime session %s opened over a WebSocket (model %r)", session.config["id"], model)
    sender = asyncio.create_task(_send_events(websocket, session))
    try:
        await session.start()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("text")
            await session.handle(data if data is not None else message.get("bytes") or b"")
    except WebSocketDisconnect:
        pass
    finally:
        await end_session(websocket.app.state, session)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        logger.info("Realtime session %s closed", session.config["id"])


async def _send_events(websocket: WebSocket, session: RealtimeSession) -> None:
    try:
        while (event := await session.outgoing.get()) is not None:
            await websocket.send_text(json.dumps(event))
    except (WebSocketDisconnect, RuntimeError):  # the client went away: the receiver ends the session
        pass
