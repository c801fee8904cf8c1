"""What the conversation engine tells its transport: events, the output it drives, and per-turn timings.

Every event carries ``at`` (``time.monotonic()`` seconds on this machine when the engine emitted it). Audio time
(seconds of microphone audio since the session started) is ``audio_s`` where an event refers to a moment in the
user's speech.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Protocol


class AudioOutput(Protocol):
    """Where the reply's audio goes (the page: a WebRTC source track; the Realtime service: its socket).

    Both methods are called from engine threads and must be thread-safe and quick.
    """

    def push(self, pcm16: bytes, sample_rate_hz: int) -> None:
        """Queue signed 16-bit little-endian mono PCM at ``sample_rate_hz`` to play after what is queued."""

    def clear(self) -> None:
        """Drop everything queued and not yet played (barge-in)."""


@dataclass
class HandsFreeTimings:
    """One hands-free turn's timings in milliseconds, each from one event to another; None when it did not happen.

    - ``end_of_turn_ms``: end of the user's speech (VAD) -> the turn confirmed (silence + turn model).
    - ``stt_ms``: the final transcription request, sent -> answered.
    - ``llm_first_phrase_ms``: LLM request sent -> first phrase complete.
    - ``tts_ttfa_ms``: first phrase sent to TTS -> its first audio bytes.
    - ``end_of_speech_to_audio_ms``: end of the user's speech (VAD, in audio time mapped to this clock) -> first
      reply audio handed to the output (before transport and the browser's jitter buffer).
    - ``speculative``: the reply was started at the pause, before the turn was confirmed.
    """

    end_of_turn_ms: float | None = None
    stt_ms: float | None = None
    llm_first_phrase_ms: float | None = None
    tts_ttfa_ms: float | None = None
    end_of_speech_to_audio_ms: float | None = None
    speculative: bool = False

    def as_dict(self) -> dict[str, float | bool | None]:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EngineEvent:
    at: float = field(default_factory=time.monotonic, kw_only=True)


@dataclass(frozen=True)
class SpeechStarted(EngineEvent):
    """The user started speaking (VAD), at ``audio_s`` seconds of microphone audio."""

    audio_s: float


@dataclass(frozen=True)
class SpeechStopped(EngineEvent):
    """The user stopped speaking (VAD, after the pause length), speech ended at ``audio_s``."""

    audio_s: float


@dataclass(frozen=True)
class TurnEnded(EngineEvent):
    """The user's turn is over (the turn detector decided, or the transport committed its audio), its speech ended
    at ``audio_s``; its final transcription follows (``FinalTranscript``)."""

    audio_s: float


@dataclass(frozen=True)
class TurnReopened(EngineEvent):
    """The user went on right after a turn ended, before any of its reply was heard: the reply was cancelled and
    the turn continues (its next ``TurnEnded`` and ``FinalTranscript`` cover all of its audio)."""


@dataclass(frozen=True)
class PartialTranscript(EngineEvent):
    """Words of the turn in progress: ``stable`` (two successive hypotheses agree) then ``unstable``."""

    stable: str
    unstable: str


@dataclass(frozen=True)
class FinalTranscript(EngineEvent):
    """What the user said in this turn (empty when the STT service heard no words); its reply, if any, follows."""

    text: str


@dataclass(frozen=True)
class ReplyStarted(EngineEvent):
    """The reply's generation starts (released once the turn is confirmed); ``ReplyDone``, ``Interrupted`` or
    ``StageFailed`` ends it."""


@dataclass(frozen=True)
class ReplyDelta(EngineEvent):
    """A piece of the reply text (released once the turn is confirmed)."""

    text: str


@dataclass(frozen=True)
class ReplyDone(EngineEvent):
    """The reply was generated and handed to the output whole; ``text`` is what was said; ``usage`` the LLM's token
    counts (``prompt_tokens``, ``completion_tokens``, ``total_tokens``) when its server reported them."""

    transcript: str
    text: str
    timings: HandsFreeTimings
    usage: dict[str, int] | None = None


@dataclass(frozen=True)
class Interrupted(EngineEvent):
    """Barge-in: the user spoke over the reply; playback was cleared, LLM and TTS requests closed.

    ``heard`` is the part of the reply that was played (what the history keeps); ``text`` what was generated.
    """

    transcript: str
    heard: str
    text: str
    timings: HandsFreeTimings


@dataclass(frozen=True)
class StageFailed(EngineEvent):
    """A service failed during a turn; the conversation goes on. ``stage`` is stt, llm or tts."""

    stage: str
    message: str
