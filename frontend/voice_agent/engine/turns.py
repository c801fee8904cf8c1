"""End of turn: when has the user finished speaking? A streaming VAD finds the pause, a turn model judges it.

Silence alone either answers late (a second of silence on every turn) or cuts people mid-thought ("I'd like to
know... how far the moon is"). So a short pause (``TurnSettings.pause_ms``) only asks the turn model (Smart Turn
v3.2, which hears the turn's audio, prosody included) whether the turn is finished. Yes: the turn ends at once.
No: the detector keeps listening, and the turn ends on silence alone after ``max_silence_ms``, unless the user
goes on (a mid-sentence pause: the same turn continues). The pause is also where the engine may start its reply
speculatively.

The turn model is asked once per pause, when the silence reaches ``pause_ms``, about the pause's start: it hears the
turn up to ``turn_model_silence_ms`` after the speech. Measured on recorded speech (``python -m bench.turn_tuning``):
the more silence Smart Turn hears after a word inside a phrase, the more often it calls the turn finished (35 % of
inserted mid-phrase pauses after 96 ms of silence, 53 % after 224 ms, 67 % after 480 ms), while finished utterances
gain nothing (88 %, 85 %, 79 %). So it hears little silence, and it is not asked again as the silence grows; waiting
for ``pause_ms`` before asking skips the short gaps between words.

Audio time counts the 512-sample frames pushed (32 ms each, from 0 at the detector's creation), so a detector run
over a recording is deterministic and needs no wall clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from .vad import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ


class FrameVad(Protocol):
    """A streaming VAD, such as ``vad.SileroVad``: the speech probability of the stream's next 512-sample frame."""

    def probability(self, frame: np.ndarray) -> float: ...


class TurnModel(Protocol):
    """A turn model, such as ``SmartTurn``: the probability that the turn in the audio (float32, 16 kHz) is over."""

    def probability_complete(self, audio: np.ndarray) -> float: ...


class SmartTurn:
    """Smart Turn v3.2 (``smart-turn-v3.2-cpu.onnx``, int8, 8.7 MB, BSD-2-Clause; shipped inside the pipecat-ai wheel
    under ``pipecat/audio/turn/smart_turn/data``), run by pipecat's ``LocalSmartTurnAnalyzerV3`` with one onnxruntime
    thread. It hears the last 8 s of the turn (Whisper log-mel features of 16 kHz audio) and says how likely the
    speaker has finished. About 0.1 s of one core per decision on a 2-core machine (75-135 ms).

    It calls ``LocalSmartTurnAnalyzerV3._predict_endpoint``, a private method, on purpose: the class's public API is
    asynchronous and bound to pipecat's frame pipeline (its own speech buffer, VAD events and executor), while this
    method is exactly "audio in, ``{"prediction", "probability"}`` out" (8 s crop or zero pad, features, ONNX). The
    pipecat-ai version is pinned in the frontend's lock, and ``tests/frontend/test_turns.py`` fails loudly if the
    method's name, signature or answer change. Safe to share between streams (onnxruntime's ``run`` is thread-safe).
    """

    def __init__(self) -> None:
        from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

        self._analyzer = LocalSmartTurnAnalyzerV3(sample_rate=SAMPLE_RATE_HZ, cpu_count=1)

    def probability_complete(self, audio: np.ndarray) -> float:
        """Probability in [0, 1] that the turn in ``audio`` is finished.

        ``audio``: float32 mono in [-1, 1] at 16 kHz, shape (n,), the turn from just before its first word to now
        (only the last 8 s count). Raises ValueError for empty or multi-channel audio.
        """
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"the turn model takes mono audio with samples, got shape {audio.shape}")
        return float(self._analyzer._predict_endpoint(audio.astype(np.float32, copy=False))["probability"])


@dataclass(frozen=True)
class TurnSettings:
    """The detector's thresholds (Silero and Smart Turn probabilities) and lengths (ms of microphone audio).
    Chosen by measurement on recorded speech: ``python -m bench.turn_tuning`` (results in docs/benchmarks.md)."""

    vad_threshold: float = 0.5
    """Silero probability at or above which a frame is speech, to start a turn or to resume one after a pause."""
    silence_threshold: float = 0.35
    """Probability below which a frame is silence once speech began (hysteresis: soft sounds inside a word stay
    speech)."""
    speech_start_ms: int = 96
    """Speech this long (consecutive frames at or above ``vad_threshold``) starts a turn or resumes a paused one; a
    click or a knock is shorter."""
    min_speech_ms: int = 200
    """A turn with less speech than this when its first pause comes is dropped with no event (a cough, a knock)."""
    pause_ms: int = 224
    """Silence after speech that makes a pause: the turn model is asked (``VadPause``)."""
    turn_model_silence_ms: int = 96
    """Silence after the speech that the turn model hears when asked at a pause: it gets the turn's audio up to the
    speech's end plus this much (at most ``pause_ms``). Smart Turn calls more mid-sentence pauses finished the more
    silence it hears, so it is asked about the pause's start, once the pause has lasted ``pause_ms``."""
    turn_threshold: float = 0.7
    """Smart Turn probability at or above which the turn ends at the pause (``TurnEnd`` reason "turn_model")."""
    max_silence_ms: int = 1200
    """Silence after which the turn ends whatever the turn model said (``TurnEnd`` reason "silence")."""
    pre_roll_ms: int = 256
    """Audio kept before the first speech frame, so STT and the turn model hear the first word whole."""
    max_turn_s: float = 60.0
    """Longest turn audio kept; the start of a longer turn is dropped from ``speech_audio()``."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.silence_threshold <= self.vad_threshold <= 1.0:
            raise ValueError("need 0 <= silence_threshold <= vad_threshold <= 1")
        if not 0 < self.turn_model_silence_ms <= self.pause_ms <= self.max_silence_ms:
            raise ValueError("need 0 < turn_model_silence_ms <= pause_ms <= max_silence_ms")
        if min(self.speech_start_ms, self.min_speech_ms, self.pre_roll_ms) < 0 or self.max_turn_s <= 0:
            raise ValueError("lengths must not be negative")


@dataclass(frozen=True)
class VadSpeechStart:
    """Speech began: a turn starts."""

    audio_s: float
    """Audio time of the first speech frame's start (s): before the event, which needs ``speech_start_ms``."""


@dataclass(frozen=True)
class VadPause:
    """The silence after speech reached ``pause_ms``: the turn model was asked (the point to start a reply early)."""

    audio_s: float
    """Audio time now (s)."""
    speech_end_s: float
    """Audio time the speech ended (end of its last speech frame, s)."""
    probability: float | None = None
    """The turn model's probability that the turn is finished (None without a turn model)."""


@dataclass(frozen=True)
class VadResume:
    """Speech again after a ``VadPause`` that did not end the turn: it was a mid-sentence pause; the turn goes on."""

    audio_s: float
    """Audio time of the resumed speech's first frame (s)."""


@dataclass(frozen=True)
class TurnEnd:
    """The user's turn is over; ``speech_audio()`` still holds it until ``reset()`` or the next turn's start."""

    audio_s: float
    """Audio time now (s)."""
    speech_end_s: float
    """Audio time the speech ended (s): ``audio_s - speech_end_s`` is the end-of-turn delay in audio time."""
    reason: Literal["turn_model", "silence"]
    """Why it ended: "turn_model" (the model called it finished at the pause) or "silence" (``max_silence_ms``)."""
    probability: float | None
    """The turn model's answer at the pause (None if it was not asked)."""


TurnEvent = VadSpeechStart | VadPause | VadResume | TurnEnd


class TurnDetector:
    """Turn events from a stream of 512-sample frames (16 kHz mono): feed every frame, in order, to ``push``.

    States: idle -> (``speech_start_ms`` of speech) speaking -> (``pause_ms`` of silence) paused -> either ended
    (turn model sure, or ``max_silence_ms`` of silence) or speaking again (``speech_start_ms`` of speech: VadResume).
    A turn with less than ``min_speech_ms`` of speech at its first pause is dropped: ``in_turn`` turns False with no
    event. After a TurnEnd the detector is idle and listens for the next turn by itself; ``reset()`` forgets the
    turn's audio.

    ``vad``: this stream's own VAD (a ``SileroVad``). ``turn_model``: a ``SmartTurn`` (may be shared), or None for
    silence alone (the turn ends after ``max_silence_ms``). The turn model runs inside ``push`` (about 0.1 s, on the
    caller's thread), at most once per pause. Not thread-safe: one stream, one thread.
    """

    def __init__(self, settings: TurnSettings, vad: FrameVad, turn_model: TurnModel | None) -> None:
        self.settings, self._vad, self._turn_model = settings, vad, turn_model
        self._start_frames = max(1, _frames_in(settings.speech_start_ms))
        self._pause_frames = max(1, _frames_in(settings.pause_ms))
        self._model_silence_frames = min(self._pause_frames, max(1, _frames_in(settings.turn_model_silence_ms)))
        self._max_silence_frames = max(self._pause_frames, _frames_in(settings.max_silence_ms))
        self._frames = 0
        # the stream's recent frames: the pre-roll before a start, plus the start's own frames
        self._recent: deque[np.ndarray] = deque(maxlen=_frames_in(settings.pre_roll_ms) + self._start_frames)
        self._turn: deque[np.ndarray] = deque(maxlen=max(1, round(settings.max_turn_s / FRAME_S)))
        self._state: Literal["idle", "speaking", "paused", "ended"] = "idle"
        self._run = 0  # consecutive frames at or above the start threshold (idle, paused)
        self._speech_frames = 0
        self._silent_frames = 0
        self._probability: float | None = None

    @property
    def in_turn(self) -> bool:
        """True from VadSpeechStart until TurnEnd, or until a too-short turn is dropped."""
        return self._state in ("speaking", "paused")

    @property
    def speech_ms(self) -> float:
        """Speech in the current turn so far (frames judged speech), in ms; 0 when idle."""
        return self._speech_frames * FRAME_S * 1000

    @property
    def audio_s(self) -> float:
        """Audio time now: the end of the last frame pushed (s)."""
        return self._frames * FRAME_S

    def speech_audio(self) -> np.ndarray:
        """The current (or just ended) turn's audio, from ``pre_roll_ms`` before its first speech frame to the last
        frame pushed: float32 mono in [-1, 1] at 16 kHz, shape (n,); empty when no turn was started since the last
        ``reset()``."""
        if not self._turn:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._turn).astype(np.float32) / 32768.0

    def reset(self) -> None:
        """Forget the turn and go idle (the engine calls it once it has taken a turn's audio). The stream goes on:
        the VAD's state and the pre-roll are kept, audio time keeps counting."""
        self._state = "idle"
        self._run = self._speech_frames = self._silent_frames = 0
        self._probability = None
        self._turn.clear()

    def push(self, frame: np.ndarray, *, speech_threshold: float | None = None) -> list[TurnEvent]:
        """Take the stream's next frame; return the events it caused, in order (usually none).

        ``frame``: int16 PCM, shape (512,), 16 kHz mono. ``speech_threshold``: replaces ``vad_threshold`` for this
        frame (the echo guard raises it while the agent's reply plays, so only clear speech starts or resumes a
        turn). Raises ValueError for another frame shape or dtype.
        """
        if frame.dtype != np.int16:
            raise ValueError(f"a frame is int16 PCM, got {frame.dtype}")
        s = self.settings
        probability = self._vad.probability(frame)
        self._frames += 1
        now_s = self._frames * FRAME_S
        start_threshold = s.vad_threshold if speech_threshold is None else speech_threshold
        self._recent.append(frame)
        events: list[TurnEvent] = []

        if self._state in ("idle", "ended"):
            self._run = self._run + 1 if probability >= start_threshold else 0
            if self._run >= self._start_frames:
                self._state = "speaking"
                self._turn.clear()
                self._turn.extend(self._recent)
                self._speech_frames, self._silent_frames, self._probability = self._run, 0, None
                events.append(VadSpeechStart(now_s - self._run * FRAME_S))
                self._run = 0
            return events

        self._turn.append(frame)
        if self._state == "speaking":
            if probability >= s.silence_threshold:
                self._speech_frames += 1
                self._silent_frames = 0
                return events
            self._silent_frames += 1
            if self._silent_frames < self._pause_frames:
                return events
            speech_end_s = now_s - self._silent_frames * FRAME_S
            if self.speech_ms < s.min_speech_ms:
                self.reset()
                return events
            self._state = "paused"
            self._run = 0
            if self._turn_model is not None:
                audio = self.speech_audio()
                unheard = (self._silent_frames - self._model_silence_frames) * FRAME_SAMPLES
                self._probability = self._turn_model.probability_complete(audio[: len(audio) - unheard])
            events.append(VadPause(now_s, speech_end_s, self._probability))
            if self._probability is not None and self._probability >= s.turn_threshold:
                self._state = "ended"
                events.append(TurnEnd(now_s, speech_end_s, "turn_model", self._probability))
            return events

        # paused: speech again, or the silence limit
        self._silent_frames += 1
        self._run = self._run + 1 if probability >= start_threshold else 0
        if self._run >= self._start_frames:
            self._state = "speaking"
            self._speech_frames += self._run
            self._silent_frames, self._run = 0, 0
            events.append(VadResume(now_s - self._start_frames * FRAME_S))
        elif self._silent_frames >= self._max_silence_frames:
            self._state = "ended"
            speech_end_s = now_s - self._silent_frames * FRAME_S
            events.append(TurnEnd(now_s, speech_end_s, "silence", self._probability))
        return events


def _frames_in(ms: float) -> int:
    """Whole 32 ms frames in ``ms`` milliseconds, rounded up (a length is reached, never undershot)."""
    return int(np.ceil(ms / 1000 / FRAME_S - 1e-9))


__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE_HZ",
    "FrameVad",
    "SmartTurn",
    "TurnDetector",
    "TurnEnd",
    "TurnEvent",
    "TurnModel",
    "TurnSettings",
    "VadPause",
    "VadResume",
    "VadSpeechStart",
]
