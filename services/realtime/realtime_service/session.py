"""One Realtime session: OpenAI's GA Realtime events in and out, a ``ConversationEngine`` inside.

The transport (WebSocket or WebRTC data channel) hands each client event's text to ``handle`` and sends what
``outgoing`` yields; audio of a WebRTC call goes straight to ``push_audio`` and, out, to ``output`` (a
``voice_agent.engine.events.AudioOutput``) instead of ``response.output_audio.delta`` events.

Threads: ``handle`` runs on the event loop and only decodes, resamples (PyAV, a few hundred microseconds per
chunk) and enqueues commands for the engine; the engine's events and reply audio come back from its threads through
``loop.call_soon_threadsafe`` in the order the engine made them, and are turned into server events on the loop.

How the engine maps onto the protocol:
- ``turn_detection`` ``server_vad``: the engine's VAD ends a turn after ``silence_duration_ms`` of silence (the turn
  model only decides whether to start the reply early, output held); ``semantic_vad``: the engine's Smart Turn
  decides, ``eagerness`` sets how readily; ``null``: the client commits, then asks with ``response.create``.
- A new user turn: ``input_audio_buffer.speech_started`` (its ``item_id`` is the user item to come), partial
  transcripts as ``conversation.item.input_audio_transcription.delta`` while the user speaks, then at the end of the
  turn ``speech_stopped``, ``committed``, ``conversation.item.added``, and after the STT service answered,
  ``...transcription.completed`` and ``conversation.item.done``.
- A turn the user resumed right after it ended (before any reply audio): the reply is cancelled
  (``response.done`` cancelled) and the committed item deleted (``conversation.item.deleted``); the next commit holds
  the whole turn.
- Barge-in (``interrupt_response``): speech during a response cancels it at once, as OpenAI's server does;
  ``conversation.item.truncate`` then cuts the history to what the client played.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from openai.types.realtime import (
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    OutputAudioBufferClearEvent,
    RealtimeClientEvent,
    ResponseCancelEvent,
    ResponseCreateEvent,
    SessionUpdateEvent,
)
from pydantic import TypeAdapter, ValidationError

from voice_agent.engine.conversation import ConversationEngine, EngineSettings, TurnModels
from voice_agent.engine.events import (
    AudioOutput,
    EngineEvent,
    FinalTranscript,
    Interrupted,
    PartialTranscript,
    ReplyDelta,
    ReplyDone,
    ReplyStarted,
    SpeechStarted,
    StageFailed,
    TurnEnded,
    TurnReopened,
)
from voice_agent.engine.metrics import EngineMetrics
from voice_agent.engine.turns import TurnSettings
from voice_agent.engine.vad import SAMPLE_RATE_HZ
from voice_agent.pipeline import Pipeline, TurnOptions

from .audio import Resampler

logger = logging.getLogger(__name__)

PCM_RATE_HZ = 24_000
"""The only audio format served: ``audio/pcm``, 16-bit little-endian mono at 24 kHz, OpenAI's default."""
MIN_COMMIT_MS = 100
"""OpenAI's smallest committable input buffer."""
SEMANTIC_EAGERNESS = {"low": (0.85, 2000), "medium": (0.7, 1200), "auto": (0.7, 1200), "high": (0.5, 800)}
"""``semantic_vad`` eagerness -> (Smart Turn probability that ends the turn, silence limit in ms); medium is the
page's measured setting (docs/benchmarks.md)."""

_client_events: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


class ClientError(Exception):
    """A client event the session refuses: sent back as an ``error`` event; the session goes on."""

    def __init__(self, message: str, *, code: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.message, self.code, self.param, self.kind = message, code, param, kind


@dataclass
class _Response:
    id: str
    item_id: str
    modalities: list[str]
    text: str = ""
    cancel_reason: str = "turn_detected"


@dataclass
class _Item:
    item: dict[str, Any]
    audio_samples: int = 0  # an assistant item's audio, at 24 kHz (sent, or played on a call's track)

    @property
    def audio_ms(self) -> float:
        return self.audio_samples / PCM_RATE_HZ * 1000


@dataclass
class SessionLimits:
    max_event_bytes: int
    max_input_audio_s: float


@dataclass
class SessionDefaults:
    """A new session's settings (from the service's ``REALTIME_*`` settings)."""

    voice: str
    instructions: str | None
    temperature: float
    max_output_tokens: int
    limits: SessionLimits = field(default_factory=lambda: SessionLimits(16 * 1024 * 1024, 120.0))


def default_config(model: str, defaults: SessionDefaults) -> dict[str, Any]:
    """The session object a new session starts with (OpenAI's defaults where we follow them: ``server_vad`` with
    threshold 0.5, 300 ms prefix padding, 500 ms silence)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": defaults.instructions or "",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE_HZ},
                "transcription": {"model": "whisper-1"},
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "create_response": True,
                    "interrupt_response": True,
                    "idle_timeout_ms": None,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": PCM_RATE_HZ}, "voice": defaults.voice, "speed": 1.0},
        },
        "max_output_tokens": defaults.max_output_tokens,
        "tools": [],
        "tool_choice": "auto",
        "tracing": None,
        "expires_at": int(time.time()) + 3600,
    }


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "turn_detection":
            _merge(into[key], value)
        else:
            into[key] = value


def engine_settings(config: dict[str, Any]) -> EngineSettings:
    """The engine's settings for a session object; raises ClientError for a turn detection it cannot do."""
    speak = "audio" in config.get("output_modalities", ["audio"])
    transcription_only = config.get("type") == "transcription"
    detection = config["audio"]["input"].get("turn_detection")
    if detection is None:
        return EngineSettings(detect_turns=False, respond=False, speculative=False, partial_interval_ms=0, speak=speak)
    kind = detection.get("type")
    respond = bool(detection.get("create_response", True)) and not transcription_only
    barge_in = bool(detection.get("interrupt_response", True))
    base = TurnSettings()
    if kind == "server_vad":
        threshold = float(detection.get("threshold") if detection.get("threshold") is not None else 0.5)
        silence_ms = int(detection.get("silence_duration_ms") or 500)
        pause_ms = min(base.pause_ms, silence_ms)
        turn = replace(
            base,
            vad_threshold=threshold,
            silence_threshold=min(base.silence_threshold, threshold),
            pre_roll_ms=int(
                detection.get("prefix_padding_ms") if detection.get("prefix_padding_ms") is not None else 300
            ),
            pause_ms=pause_ms,
            turn_model_silence_ms=min(base.turn_model_silence_ms, pause_ms),
            max_silence_ms=silence_ms,
            turn_threshold=2.0,  # silence alone ends the turn; the turn model only picks speculative starts
        )
    elif kind == "semantic_vad":
        eagerness = detection.get("eagerness") or "auto"
        turn_threshold, max_silence_ms = SEMANTIC_EAGERNESS[eagerness]
        turn = replace(base, turn_threshold=turn_threshold, max_silence_ms=max_silence_ms)
    else:
        raise ClientError(
            f"unknown turn_detection type {kind!r}",
            code="invalid_value",
            param="session.audio.input.turn_detection.type",
        )
    try:
        turn.__post_init__()
    except ValueError as err:
        raise ClientError(
            f"turn_detection: {err}", code="invalid_value", param="session.audio.input.turn_detection"
        ) from err
    # OpenAI cancels a response at the start of speech; a backchannel pause/resume would send audio twice over a socket
    return EngineSettings(
        turn=turn, respond=respond, barge_in=barge_in, barge_in_confirm_ms=0, speak=speak, speculative=respond
    )


def turn_options(config: dict[str, Any]) -> TurnOptions:
    transcription = config["audio"]["input"].get("transcription") or {}
    max_tokens = config.get("max_output_tokens", 160)
    return TurnOptions(
        voice=str(config["audio"].get("output", {}).get("voice") or "alloy"),
        language=transcription.get("language") or None,
        system_prompt=config.get("instructions") or None,
        temperature=float(config.get("temperature", 0.7)),
        max_tokens=4096 if max_tokens == "inf" else int(max_tokens),
    )


def _check_formats(config: dict[str, Any]) -> None:
    for side in ("input", "output"):
        fmt = config["audio"].get(side, {}).get("format") or {}
        if fmt.get("type", "audio/pcm") != "audio/pcm" or fmt.get("rate", PCM_RATE_HZ) != PCM_RATE_HZ:
            raise ClientError(
                f"audio {side} format {fmt} is not supported: only audio/pcm at 24000 Hz",
                code="invalid_value",
                param=f"session.audio.{side}.format",
            )


class RealtimeSession:
    """One Realtime conversation. ``handle`` client events; read server events (dicts) from ``outgoing``.

    ``pipeline`` gives the STT, LLM and TTS clients; ``models`` the shared VAD and turn models; ``model`` the name
    the client asked for. With ``audio_output`` (a WebRTC call) reply audio goes there instead of into events;
    ``transcription`` starts a transcription session (``?intent=transcription``; ``session.update`` can also switch
    a session's ``type``).
    """

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        models: TurnModels,
        model: str,
        defaults: SessionDefaults,
        loop: asyncio.AbstractEventLoop,
        audio_output: AudioOutput | None = None,
        transcription: bool = False,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.pipeline, self.models, self.loop = pipeline, models, loop
        self.metrics = metrics
        self.limits = defaults.limits
        self.config = default_config(model, defaults)
        if transcription:  # a transcription session: turns are transcribed, never answered
            self.config["type"] = "transcription"
        self.config.setdefault("temperature", defaults.temperature)
        self.outgoing: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._track_output = audio_output
        self._input = Resampler(PCM_RATE_HZ, SAMPLE_RATE_HZ)
        self._output: Resampler | None = None
        self._items: dict[str, _Item] = {}
        self._last_item: str | None = None
        self._speech_item: str | None = None  # the user item the current speech will become
        self._speech_start_ms = 0
        self._partial_sent = ""
        self._committed: deque[str] = deque()  # user items waiting for their transcript
        self._response: _Response | None = None
        self._response_requested = False
        self._buffered_samples = 0  # input (24 kHz) since the last commit or clear
        self._closed = False
        self.engine = self._new_engine()

    # ----- the engine -----
    def _new_engine(self, history: list[Any] | None = None) -> ConversationEngine:
        return ConversationEngine(
            self.pipeline,
            turn_options(self.config),
            output=_LoopOutput(self),
            models=self.models,
            settings=engine_settings(self.config),
            history=history or [],
            listener=lambda event: self.to_loop(self._on_engine, event),
            metrics=self.metrics,
        ).start()

    def to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the session's event loop (from an engine thread); nothing once the loop has
        closed (the service is shutting down)."""
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            logger.debug("event loop closed; %s dropped", getattr(callback, "__name__", callback))

    async def start(self) -> None:
        self._send({"type": "session.created", "session": self.config})

    async def close(self) -> None:
        """End the session: the engine closes its requests to every service (on a worker thread: it joins threads)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self.engine.close)
        self.outgoing.put_nowait(None)

    def push_audio(self, pcm16_16k: bytes) -> None:
        """Microphone audio of a WebRTC call, already 16 kHz mono PCM16."""
        self.engine.push_pcm(pcm16_16k)

    # ----- client events -----
    async def handle(self, raw: str | bytes) -> None:
        """One client event (JSON text). Anything wrong becomes an ``error`` event; the session goes on."""
        event_id: str | None = None
        try:
            if len(raw) > self.limits.max_event_bytes:
                raise ClientError(
                    f"event of {len(raw)} bytes is larger than the {self.limits.max_event_bytes} allowed",
                    code="event_too_large",
                )
            if isinstance(raw, bytes):
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ClientError("events are JSON text; got binary data", code="invalid_json") from err
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as err:
                raise ClientError(f"the event is not valid JSON: {err}", code="invalid_json") from err
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                raise ClientError("an event is a JSON object with a string 'type'", code="invalid_event")
            event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
            try:
                event = _client_events.validate_python(data)
            except ValidationError as err:
                raise _invalid(data["type"], err) from err
            await self._dispatch(event)
        except ClientError as err:
            self._send(
                {
                    "type": "error",
                    "error": {
                        "type": err.kind,
                        "code": err.code,
                        "message": err.message,
                        "param": err.param,
                        "event_id": event_id,
                    },
                }
            )

    async def _dispatch(self, event: Any) -> None:
        if isinstance(event, InputAudioBufferAppendEvent):
            self._append(event.audio)
        elif isinstance(event, SessionUpdateEvent):
            self._update_session(event)
        elif isinstance(event, InputAudioBufferCommitEvent):
            self._commit()
        elif isinstance(event, InputAudioBufferClearEvent):
            self.engine.clear_input()
            self._buffered_samples = 0
            self._speech_item = None
            self._send({"type": "input_audio_buffer.cleared"})
        elif isinstance(event, ConversationItemCreateEvent):
            self._create_item(event)
        elif isinstance(event, ResponseCreateEvent):
            self._create_response()
        elif isinstance(event, ResponseCancelEvent):
            if self._response is None and not self._response_requested:
                raise ClientError("there is no response in progress to cancel", code="response_cancel_not_active")
            if self._response is not None:
                self._response.cancel_reason = "client_cancelled"
            self._response_requested = False
            self.engine.cancel_reply()
        elif isinstance(event, ConversationItemTruncateEvent):
            self._truncate(event)
        elif isinstance(event, ConversationItemRetrieveEvent):
            item = self._items.get(event.item_id)
            if item is None:
                raise ClientError(f"no item {event.item_id!r}", code="item_not_found", param="item_id")
            self._send({"type": "conversation.item.retrieved", "item": item.item})
        elif isinstance(event, ConversationItemDeleteEvent):
            raise ClientError("deleting items is not supported by this server", code="unsupported_event")
        elif isinstance(event, OutputAudioBufferClearEvent):
            if self._track_output is None:
                raise ClientError("output_audio_buffer.clear is for WebRTC calls only", code="unsupported_event")
            self._track_output.clear()
            self._send({"type": "output_audio_buffer.cleared", "response_id": self._response_id()})

    def _append(self, audio_b64: str) -> None:
        try:
            pcm = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ClientError("'audio' is not valid base64", code="invalid_value", param="audio") from err
        if len(pcm) % 2:
            raise ClientError(
                "audio/pcm is 16-bit samples: an even number of bytes", code="invalid_value", param="audio"
            )
        samples = len(pcm) // 2
        if self._buffered_samples + samples > self.limits.max_input_audio_s * PCM_RATE_HZ:
            raise ClientError(
                f"the input audio buffer holds at most {self.limits.max_input_audio_s:g} s; commit or clear it",
                code="input_audio_buffer_full",
            )
        if self.engine.settings.detect_turns is False:
            self._buffered_samples += samples
        self.engine.push_pcm(self._input.convert(pcm))

    def _commit(self) -> None:
        if self.engine.settings.detect_turns:
            raise ClientError(
                "with turn_detection set the server commits turns; set turn_detection to null to commit yourself",
                code="unsupported_event",
            )
        buffered_ms = self._buffered_samples / PCM_RATE_HZ * 1000
        if buffered_ms < MIN_COMMIT_MS:
            raise ClientError(
                f"buffer too small: expected at least {MIN_COMMIT_MS} ms of audio, the buffer has {buffered_ms:.2f} ms",
                code="input_audio_buffer_commit_empty",
            )
        self._buffered_samples = 0
        self.engine.commit()

    def _update_session(self, event: SessionUpdateEvent) -> None:
        update = event.session.model_dump(exclude_unset=True, mode="json")
        if "output_modalities" in update and update["output_modalities"] not in (["audio"], ["text"]):
            raise ClientError(
                "output_modalities is ['audio'] or ['text']", code="invalid_value", param="session.output_modalities"
            )
        config = copy.deepcopy(self.config)
        _merge(config, update)
        _check_formats(config)
        settings = engine_settings(config)
        options = turn_options(config)
        self.config = config
        self.engine.set_options(options)
        if settings != self.engine.settings:
            self.engine.configure(settings)
            self._buffered_samples = 0
        self._send({"type": "session.updated", "session": self.config})

    def _create_item(self, event: ConversationItemCreateEvent) -> None:
        item = event.item.model_dump(mode="json", exclude_none=True)
        if item.get("type") != "message" or item.get("role") not in ("user", "assistant", "system"):
            raise ClientError(
                f"only message items are supported (user, assistant, system); got {item.get('type')!r}",
                code="unsupported_item",
                param="item.type",
            )
        texts = [part.get("text") or part.get("transcript") or "" for part in item.get("content", [])]
        if any(part.get("type") in ("input_audio", "input_image") for part in item.get("content", [])):
            raise ClientError(
                "message content is text here (input_text, output_text); send audio with input_audio_buffer.append",
                code="unsupported_content",
                param="item.content",
            )
        text = " ".join(t for t in texts if t).strip()
        if not text:
            raise ClientError("the message has no text", code="invalid_value", param="item.content")
        role = item["role"]
        if role == "system":  # the session's instructions get the message's text appended
            instructions = "\n".join(part for part in (self.config.get("instructions"), text) if part)
            self.config["instructions"] = instructions
            self.engine.set_options(turn_options(self.config))
        else:
            self.engine.add_message(role, text)
        item_id = item.get("id") or new_id("item")
        item.update(id=item_id, object="realtime.item", status="completed")
        self._add_item(item)
        self._send({"type": "conversation.item.done", "previous_item_id": None, "item": item})

    def _create_response(self) -> None:
        if self.config["type"] == "transcription":
            raise ClientError("a transcription session does not respond", code="unsupported_event")
        if self._response is not None or self._response_requested:
            raise ClientError(
                "the conversation already has an active response", code="conversation_already_has_active_response"
            )
        self._response_requested = True
        self.engine.respond()

    def _truncate(self, event: ConversationItemTruncateEvent) -> None:
        item = self._items.get(event.item_id)
        if item is None or item.item.get("role") != "assistant":
            raise ClientError(f"no assistant item {event.item_id!r}", code="item_not_found", param="item_id")
        latest = [i for i, it in self._items.items() if it.item.get("role") == "assistant" and it.audio_ms > 0]
        if not latest or latest[-1] != event.item_id:
            raise ClientError(
                "only the latest assistant audio item can be truncated", code="invalid_value", param="item_id"
            )
        if event.audio_end_ms > item.audio_ms + 1:
            raise ClientError(
                f"audio_end_ms {event.audio_end_ms} is beyond the item's audio ({item.audio_ms:.0f} ms)",
                code="invalid_value",
                param="audio_end_ms",
            )
        if self._response is not None and self._response.item_id == event.item_id:
            self._response.cancel_reason = "client_cancelled"
        self.engine.truncate(event.audio_end_ms / 1000)
        self._send(
            {
                "type": "conversation.item.truncated",
                "item_id": event.item_id,
                "content_index": event.content_index,
                "audio_end_ms": event.audio_end_ms,
            }
        )

    # ----- engine events, on the loop -----
    def _on_engine(self, event: EngineEvent) -> None:
        if self._closed:
            return
        if isinstance(event, SpeechStarted):
            self._speech_item = new_id("item")
            self._speech_start_ms = round(event.audio_s * 1000)
            self._partial_sent = ""
            self._send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": self._speech_start_ms,
                    "item_id": self._speech_item,
                }
            )
        elif isinstance(event, PartialTranscript):
            if self._speech_item is not None and event.stable.startswith(self._partial_sent):
                delta = event.stable[len(self._partial_sent) :]
                if delta.strip():
                    self._partial_sent = event.stable
                    self._send(
                        {
                            "type": "conversation.item.input_audio_transcription.delta",
                            "item_id": self._speech_item,
                            "content_index": 0,
                            "delta": delta,
                        }
                    )
        elif isinstance(event, TurnEnded):
            self._turn_ended(event)
        elif isinstance(event, TurnReopened):
            if self._committed:
                item_id = self._committed.pop()
                self._items.pop(item_id, None)
                self._send({"type": "conversation.item.deleted", "item_id": item_id})
            if self._response is not None:
                self._finish_response("cancelled")
        elif isinstance(event, FinalTranscript):
            self._transcribed(event.text)
        elif isinstance(event, ReplyStarted):
            self._start_response()
        elif isinstance(event, ReplyDelta):
            self._reply_text(event.text)
        elif isinstance(event, ReplyDone):
            if self._response is not None:
                self._finish_response(
                    "completed", transcript=event.text, timings=event.timings.as_dict(), usage=event.usage
                )
        elif isinstance(event, Interrupted):
            if self._response is not None:
                self._finish_response("cancelled", transcript=event.heard, timings=event.timings.as_dict())
        elif isinstance(event, StageFailed):
            self._stage_failed(event)

    def _turn_ended(self, event: TurnEnded) -> None:
        item_id = self._speech_item or new_id("item")
        end_ms = round(event.audio_s * 1000)
        if self.engine.settings.detect_turns:
            self._send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": item_id})
        self._send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": self._last_item})
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._add_item(item)
        self._committed.append(item_id)
        self._speech_item = None
        self._partial_sent = ""

    def _transcribed(self, text: str) -> None:
        if not self._committed:
            return
        item_id = self._committed.popleft()
        entry = self._items.get(item_id)
        if entry is None:
            return
        entry.item["content"][0]["transcript"] = text
        self._send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": 0.0},
            }
        )
        self._send({"type": "conversation.item.done", "previous_item_id": None, "item": entry.item})

    def _start_response(self) -> None:
        modalities = ["audio"] if self.engine.settings.speak else ["text"]
        response = _Response(id=new_id("resp"), item_id=new_id("item"), modalities=modalities)
        self._response, self._response_requested = response, False
        self._send({"type": "response.created", "response": self._response_object(response, "in_progress", [])})
        item = self._assistant_item(response, "in_progress")
        self._send({"type": "response.output_item.added", "response_id": response.id, "output_index": 0, "item": item})
        self._add_item(item)
        self._send(
            {
                "type": "response.content_part.added",
                "response_id": response.id,
                "item_id": response.item_id,
                "output_index": 0,
                "content_index": 0,
                "part": self._part(response),
            }
        )

    def _reply_text(self, delta: str) -> None:
        response = self._response
        if response is None:
            return
        response.text += delta
        kind = (
            "response.output_audio_transcript.delta" if "audio" in response.modalities else "response.output_text.delta"
        )
        self._send(self._in_response(response, {"type": kind, "delta": delta}))

    def on_audio(self, pcm16: bytes, sample_rate_hz: int) -> None:
        """Reply audio from the engine (on the loop): 24 kHz ``response.output_audio.delta`` events."""
        response = self._response
        if response is None or self._closed:
            return
        if self._output is None or self._output.from_hz != sample_rate_hz:
            self._output = Resampler(sample_rate_hz, PCM_RATE_HZ)
        pcm = self._output.convert(pcm16)
        if not pcm:
            return
        self._items[response.item_id].audio_samples += len(pcm) // 2
        self._send(
            self._in_response(
                response, {"type": "response.output_audio.delta", "delta": base64.b64encode(pcm).decode("ascii")}
            )
        )

    def on_audio_track(self, pcm16: bytes, sample_rate_hz: int) -> None:
        """Reply audio played on a WebRTC call's track: counted for ``truncate``, not sent as events."""
        response = self._response
        if response is not None:
            self._items[response.item_id].audio_samples += round(len(pcm16) / 2 * PCM_RATE_HZ / sample_rate_hz)

    def _finish_response(
        self,
        status: str,
        *,
        transcript: str | None = None,
        timings: dict[str, Any] | None = None,
        usage: dict[str, int] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        response = self._response
        if response is None:
            return
        self._response = None
        said = (transcript if transcript is not None else response.text).strip()
        audio = "audio" in response.modalities
        if status == "completed":
            if audio:
                self._send(self._in_response(response, {"type": "response.output_audio.done"}))
                self._send(
                    self._in_response(response, {"type": "response.output_audio_transcript.done", "transcript": said})
                )
            else:
                self._send(self._in_response(response, {"type": "response.output_text.done", "text": said}))
        item_status = "completed" if status == "completed" else "incomplete"
        item = self._assistant_item(response, item_status, said)
        self._items[response.item_id].item = item
        part = {"type": "audio", "transcript": said} if audio else {"type": "text", "text": said}
        self._send(self._in_response(response, {"type": "response.content_part.done", "part": part}))
        self._send({"type": "response.output_item.done", "response_id": response.id, "output_index": 0, "item": item})
        self._send({"type": "conversation.item.done", "previous_item_id": None, "item": item})
        body = self._response_object(response, status, [item])
        if status == "cancelled":
            body["status_details"] = {"type": "cancelled", "reason": response.cancel_reason}
        elif status == "failed":
            body["status_details"] = {"type": "failed", "error": error}
        if usage:
            body["usage"] = {
                "input_tokens": usage.get("prompt_tokens"),
                "output_tokens": usage.get("completion_tokens"),
                "total_tokens": usage.get("total_tokens"),
            }
        if timings:
            body["metadata"] = {key: str(value) for key, value in timings.items() if value is not None}
        self._send({"type": "response.done", "response": body})

    def _stage_failed(self, event: StageFailed) -> None:
        error = {"type": "server_error", "code": f"{event.stage}_failed", "message": event.message}
        if self._response is not None:
            self._finish_response("failed", error=error)
            return
        if event.stage == "stt" and self._committed:
            item_id = self._committed.popleft()
            self._send(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item_id,
                    "content_index": 0,
                    "error": error,
                }
            )
        self._response_requested = False
        self._send({"type": "error", "error": {**error, "param": None, "event_id": None}})

    # ----- helpers -----
    def _send(self, event: dict[str, Any]) -> None:
        event = {"event_id": new_id("event"), **event}
        self.outgoing.put_nowait(event)

    def _add_item(self, item: dict[str, Any]) -> None:
        self._items[item["id"]] = _Item(item)
        self._send({"type": "conversation.item.added", "previous_item_id": self._last_item, "item": item})
        self._last_item = item["id"]

    def _response_id(self) -> str | None:
        return self._response.id if self._response is not None else None

    def _response_object(self, response: _Response, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": None,
            "output": output,
            "conversation_id": "conv_default",
            "output_modalities": response.modalities,
            "max_output_tokens": self.config.get("max_output_tokens"),
            "audio": {
                "output": {"format": {"type": "audio/pcm", "rate": PCM_RATE_HZ}, "voice": self.engine.options.voice}
            },
            "usage": None,
            "metadata": None,
        }

    def _assistant_item(self, response: _Response, status: str, said: str | None = None) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if said is not None:
            audio = "audio" in response.modalities
            content = [{"type": "output_audio", "transcript": said} if audio else {"type": "output_text", "text": said}]
        return {
            "id": response.item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content,
        }

    @staticmethod
    def _part(response: _Response) -> dict[str, Any]:
        return {"type": "audio", "transcript": ""} if "audio" in response.modalities else {"type": "text", "text": ""}

    @staticmethod
    def _in_response(response: _Response, event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "response_id": response.id, "item_id": response.item_id, "output_index": 0, "content_index": 0}


class _LoopOutput:
    """The engine's ``AudioOutput`` for a session: hands reply audio to the loop, in order with the events (a
    WebRTC call's track gets it at once, so playback does not wait for the loop)."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session

    def push(self, pcm16: bytes, sample_rate_hz: int) -> None:
        track = self.session._track_output
        if track is not None:
            track.push(pcm16, sample_rate_hz)
            self.session.to_loop(self.session.on_audio_track, pcm16, sample_rate_hz)
        else:
            self.session.to_loop(self.session.on_audio, pcm16, sample_rate_hz)

    def clear(self) -> None:
        track = self.session._track_output
        if track is not None:
            track.clear()


def _invalid(kind: str, err: ValidationError) -> ClientError:
    """A schema error of a client event, named like OpenAI's (the first bad field as ``param``)."""
    known = {
        "session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
        "conversation.item.create", "conversation.item.truncate", "conversation.item.delete",
        "conversation.item.retrieve", "response.create", "response.cancel", "output_audio_buffer.clear",
    }  # fmt: skip
    if kind not in known:
        return ClientError(f"unknown event type {kind!r}", code="invalid_event_type", param="type")
    mine = [e for e in err.errors() if kind in str(e.get("loc", ()))] or err.errors()
    first = mine[0]
    loc = [str(part) for part in first.get("loc", ()) if str(part) != kind and not str(part).endswith("Event")]
    return ClientError(
        f"invalid {kind}: {first.get('msg')} at {'.'.join(loc) or 'the event'}",
        code="invalid_value",
        param=".".join(loc) or None,
    )
