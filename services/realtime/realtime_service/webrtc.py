"""Realtime over WebRTC (aiortc): ``POST /v1/realtime/calls`` takes an SDP offer and answers with SDP.

The caller's audio track is the microphone (Opus, decoded by aiortc, resampled here to 16 kHz mono for the engine);
the reply plays on the answer's audio track; client and server events travel as JSON on the ``oai-events`` data
channel the caller opens, exactly as over the WebSocket (minus ``response.output_audio.delta``: the audio is on the
track). ``POST /v1/realtime/calls/{call_id}/hangup`` or the peer connection closing ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import threading
import time
from collections import deque
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service_common.errors import InvalidRequest, ServiceError, error_body, error_response
from voice_agent.engine.vad import SAMPLE_RATE_HZ

from .config import Settings
from .routes import admit, end_session, new_session
from .session import RealtimeSession

logger = logging.getLogger(__name__)

router = APIRouter(tags=["realtime"])

TRACK_RATE_HZ = 48_000
"""The reply track's sample rate: Opus's own, so aiortc's encoder does not resample again."""
FRAME_SAMPLES = TRACK_RATE_HZ // 50  # 20 ms, aiortc's audio packet time


class ReplyTrack(MediaStreamTrack):
    """The reply as an aiortc audio track: PCM pushed by the engine, played in real time, silence in between.

    aiortc ships file and device players but no track fed from memory, so this one is ours: ``push`` (any rate,
    resampled once to 48 kHz by PyAV) and ``clear`` are the engine's ``AudioOutput`` (thread-safe, quick); ``recv``
    runs on the event loop and paces 20 ms frames by the wall clock, as aiortc's own ``AudioStreamTrack`` does.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._queue: deque[np.ndarray] = deque()
        self._queued = 0
        self._resamplers: dict[int, av.AudioResampler] = {}
        self._start: float | None = None
        self._timestamp = 0

    def push(self, pcm16: bytes, sample_rate_hz: int) -> None:
        samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2")
        if not samples.size:
            return
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate_hz
        with self._lock:
            resampler = self._resamplers.setdefault(
                sample_rate_hz, av.AudioResampler(format="s16", layout="mono", rate=TRACK_RATE_HZ)
            )
            for out in resampler.resample(frame):
                chunk = np.asarray(out.to_ndarray()[0], dtype=np.int16)
                self._queue.append(chunk)
                self._queued += chunk.size

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._queued = 0
            self._resamplers.clear()

    def _take(self, count: int) -> np.ndarray:
        out = np.zeros(count, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < count and self._queue:
                head = self._queue[0]
                n = min(count - filled, head.size)
                out[filled : filled + n] = head[:n]
                filled += n
                if n == head.size:
                    self._queue.popleft()
                else:
                    self._queue[0] = head[n:]
                self._queued -= n
        return out

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._timestamp += FRAME_SAMPLES
            await asyncio.sleep(max(0.0, self._start + self._timestamp / TRACK_RATE_HZ - time.time()))
        frame = av.AudioFrame.from_ndarray(self._take(FRAME_SAMPLES).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = TRACK_RATE_HZ
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, TRACK_RATE_HZ)
        return frame


class Call:
    """One WebRTC call: its peer connection, its session, the tasks that move audio and events."""

    def __init__(self, call_id: str, pc: RTCPeerConnection, session: RealtimeSession, track: ReplyTrack) -> None:
        self.id, self.pc, self.session, self.track = call_id, pc, session, track
        self.channel: Any = None
        self.channel_open = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.ended = False

    async def pump_microphone(self, track: MediaStreamTrack) -> None:
        """The caller's audio -> 16 kHz mono PCM16 -> the engine (aiortc decodes Opus to 48 kHz stereo s16)."""
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE_HZ)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                pcm = b"".join(out.to_ndarray().tobytes() for out in resampler.resample(frame))
                if pcm:
                    self.session.push_audio(pcm)

    async def pump_events(self) -> None:
        """Server events -> the data channel, once the caller's channel is open."""
        await self.channel_open.wait()
        while (event := await self.session.outgoing.get()) is not None:
            if self.channel is None or self.channel.readyState != "open":
                break
            self.channel.send(json.dumps(event))


def _ice_configuration(settings: Settings) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[RTCIceServer(**server.model_dump(exclude_none=True)) for server in settings.ice_servers]
    )


@router.post(
    "/v1/realtime/calls",
    status_code=201,
    summary="Start a Realtime session over WebRTC: SDP offer in, SDP answer out",
    response_class=Response,
    responses={201: {"content": {"application/sdp": {}}, "description": "The SDP answer; Location names the call."}},
)
async def create_call(request: Request, model: str | None = None) -> Response:
    """The body is the SDP offer (``application/sdp``), or a multipart form with ``sdp`` and an optional ``session``
    (the session object as JSON, as ``client.realtime.calls.create`` sends it). The offer needs one audio
    m-line (send and receive) and the ``oai-events`` data channel."""
    try:
        backend = admit(request)
        sdp, session_update = await _read_offer(request)
    except ServiceError as err:
        return error_response(err)
    settings: Settings = request.app.state.settings
    pc = RTCPeerConnection(_ice_configuration(settings))
    track = ReplyTrack()
    session = new_session(request, backend, model, audio_output=track)
    call = Call(session.config["id"].replace("sess_", "rtc_"), pc, session, track)
    calls: dict[str, Call] = request.app.state.calls

    @pc.on("track")
    def on_track(remote: MediaStreamTrack) -> None:
        if remote.kind == "audio":
            call.tasks.append(asyncio.create_task(call.pump_microphone(remote)))

    @pc.on("datachannel")
    def on_datachannel(channel: Any) -> None:
        if channel.label != "oai-events":
            return
        call.channel = channel
        call.channel_open.set()

        @channel.on("message")
        async def on_message(message: str | bytes) -> None:
            await session.handle(message)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            await hang_up(request.app.state, call)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not any(t.kind == "audio" for t in pc.getTransceivers()):
            raise ValueError("the offer has no audio m-line")
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendrecv"
        await pc.setLocalDescription(await pc.createAnswer())
    except ValueError as err:
        await hang_up(request.app.state, call)
        return error_response(InvalidRequest(f"invalid SDP offer: {err}", code="invalid_offer", param="sdp"))
    calls[call.id] = call
    await session.start()
    if session_update is not None:
        await session.handle(json.dumps({"type": "session.update", "session": session_update}))
    call.tasks.append(asyncio.create_task(call.pump_events()))
    logger.info("Realtime call %s answered (model %r)", call.id, model)
    return Response(
        content=pc.localDescription.sdp,
        status_code=201,
        media_type="application/sdp",
        headers={"Location": f"/v1/realtime/calls/{call.id}"},
    )


@router.post("/v1/realtime/calls/{call_id}/hangup", summary="End a WebRTC call and its session's work")
async def hang_up_call(call_id: str, request: Request) -> Response:
    call = request.app.state.calls.get(call_id)
    if call is None:
        return JSONResponse(
            error_body(f"no call {call_id!r}", "invalid_request_error", "call_not_found", "call_id"), 404
        )
    await hang_up(request.app.state, call)
    return Response(status_code=200)


async def hang_up(state: Any, call: Call) -> None:
    if call.ended:
        return
    call.ended = True
    state.calls.pop(call.id, None)
    for task in call.tasks:
        task.cancel()
    call.track.stop()
    await end_session(state, call.session)
    await call.pc.close()
    logger.info("Realtime call %s ended", call.id)


async def _read_offer(request: Request) -> tuple[str, dict[str, Any] | None]:
    """The SDP offer and the optional session object from the request body; raises InvalidRequest (400)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        sdp, session = form.get("sdp"), form.get("session")
        if hasattr(sdp, "read"):
            sdp = (await sdp.read()).decode("utf-8", "replace")  # type: ignore[union-attr]
        if hasattr(session, "read"):
            session = (await session.read()).decode("utf-8", "replace")  # type: ignore[union-attr]
        parsed = None
        if session:
            try:
                parsed = json.loads(str(session))
            except json.JSONDecodeError as err:
                raise InvalidRequest(f"'session' is not JSON: {err}", param="session", code="invalid_offer") from err
            if not isinstance(parsed, dict):
                raise InvalidRequest("'session' is a JSON object", param="session", code="invalid_offer")
        if not sdp:
            raise InvalidRequest("the form has no 'sdp' field", param="sdp", code="invalid_offer")
        return str(sdp), parsed
    body = (await request.body()).decode("utf-8", "replace")
    if not body.strip().startswith("v="):
        raise InvalidRequest(
            "the body is an SDP offer (application/sdp) or a form with 'sdp' and 'session'",
            param="sdp",
            code="invalid_offer",
        )
    return body, None
