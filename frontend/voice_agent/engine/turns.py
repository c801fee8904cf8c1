"""End of turn: when has the user finished speaking? Streaming VAD for the pause, a turn model for the meaning.

Silence alone either answers late (a second of silence on every turn) or cuts people mid-thought ("I'd like to
know... how far the moon is"). So a short pause (``pause_ms``) only asks: the turn model (Smart Turn v3.2, which
hears the turn's audio, prosody included) says whether the words so far make a finished turn. Yes: the turn ends
at once. No: the detector keeps listening, and ends the turn on silence alone after ``max_silence_ms``. The pause
is also where the engine starts its reply speculatively.

Audio time counts the 512-sample frames pushed (32 ms each), so a detector run on a recording is deterministic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .vad import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ, SileroVad


class SmartTurn:
    """Smart Turn v3.2 (``smart-turn-v3.2-cpu.onnx``, 8.7 MB, BSD-2, inside the pipecat-ai wheel) on one thread.

    It runs through pipecat's ``LocalSmartTurnAnalyzerV3._predict_endpoint``, a private method: the public API of
    that class is asynchronous and tied to pipecat's frame pipeline, while this private one is exactly "audio in,
    probability out" (last 8 s, Whisper log-mel features, ONNX). pipecat-ai is pinned in the lock, and a test fails
    if the method changes. About 80-110 ms per decision on a 2-core machine.
    """

    def __init__(self) -> None:
        from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

        self._analyzer = LocalSmartTurnAnalyzerV3(sample_rate=SAMPLE_RATE_HZ, cpu_count=1)

    def probability_complete(self, audio: np.ndarray) -> float:
        """Probability in [0, 1] that the turn in ``audio`` (float32 mono in [-1, 1] at 16 kHz) is finished."""
        return float(self._analyzer._predict_endpoint(audio.astype(np.float32))["probability"])


@dataclass(frozen=True)
class TurnSettings:
    """The detector's thresholds; lengths in ms of microphone audio. Chosen with ``python -m bench.turn_tuning``."""

    vad_threshold: float = 0.5
    """Silero probability at or above which a frame is speech."""
    silence_threshold: float = 0.35
    """Probability below which a frame counts as silence once speech began (hysteresis: breaths stay speech)."""
    speech_start_ms: int = 64
    """Speech this long starts a turn (a click does not)."""
    min_speech_ms: int = 200
    """A turn with less speech than this is dropped at its pause (a cough, a knock)."""
    pause_ms: int = 128
    """Silence after speech that makes a pause: the turn model is asked, the reply starts speculatively."""
    turn_threshold: float = 0.85
    """Smart Turn probability at or above which the turn ends at the pause."""
    max_silence_ms: int = 1400
    """Silence that ends the turn whatever the turn model said."""
    pre_roll_ms: int = 320
    """Audio kept before the speech onset, so the first word is heard whole."""
    max_turn_s: float = 60.0
    """Longest turn kept; older audio of a longer turn is dropped from the turn's audio."""


@dataclass(frozen=True)
class VadSpeechStart:
    audio_s: float
    """Audio time of the speech onset (s)."""


@dataclass(frozen=True)
class VadPause:
    audio_s: float
    """Audio time when the silence reached ``pause_ms``."""
    speech_end_s: float
    """Audio time the speech ended."""
    probability: float | None = None
    """The turn model's probability that the turn is complete (None without a turn model)."""


@dataclass(frozen=True)
class VadResume:
    audio_s: float
    """Audio time the speech went on after a pause."""


@dataclass(frozen=True)
class TurnEnd:
    audio_s: float
    speech_end_s: float
    reason: Literal["turn_model", "silence"]
    probability: float | None
    """The turn model's last answer (None if it was not asked)."""


TurnEvent = VadSpeechStart | VadPause | VadResume | TurnEnd


class TurnDetector:
    """Feed 512-sample frames; get turn events. Not thread-safe: one stream, one thread (the engine's)."""

    def __init__(self, settings: TurnSettings, vad: SileroVad, turn_model: SmartTurn | None) -> None:
        self.settings, self._vad, self._turn_model = settings, vad, turn_model
        self._frames = 0
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, round(settings.pre_roll_ms / 1000 / FRAME_S)))
        self._turn: deque[np.ndarray] = deque(maxlen=round(settings.max_turn_s / FRAME_S))
        self._in_turn = False
        self._onset_run = 0  # consecutive speech frames before a turn starts
        self._speech_frames = 0
        self._silent_frames = 0
        self._paused = False
        self.last_probability: float | None = None  # the turn model's answer at the last pause

    @property
    def in_turn(self) -> bool:
        """True from VadSpeechStart until TurnEnd (or until a too-short turn is dropped)."""
        return self._in_turn

    @property
    def speech_ms(self) -> float:
        """Speech (frames above the threshold) in the current turn, in ms."""
        return self._speech_frames * FRAME_S * 1000

    def speech_audio(self) -> np.ndarray:
        """The current turn's audio, pre-roll included, up to now: float32 mono in [-1, 1] at 16 kHz."""
        if not self._turn:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(list(self._turn)).astype(np.float32) / 32768.0

    def reset(self) -> None:
        """Forget the turn (the engine calls it once a turn has ended); the VAD's stream state is kept."""
        self._in_turn, self._paused = False, False
        self._onset_run = self._speech_frames = self._silent_frames = 0
        self._turn.clear()

    def push(self, frame: np.ndarray, *, speech_threshold: float | None = None) -> list[TurnEvent]:
        """One frame: int16 PCM, shape (512,), 16 kHz mono. ``speech_threshold`` overrides the VAD threshold for
        starting speech (the echo guard raises it while the agent's reply plays)."""
        s = self.settings
        self._frames += 1
        now_s = self._frames * FRAME_S
        probability = self._vad.probability(frame)
        start_threshold = max(s.vad_threshold, speech_threshold or 0.0)
        events: list[TurnEvent] = []
        if not self._in_turn:
            self._pre_roll.append(frame)
            self._onset_run = self._onset_run + 1 if probability >= start_threshold else 0
            if self._onset_run * FRAME_S * 1000 >= s.speech_start_ms:
                self._in_turn = True
                self._turn.clear()
                self._turn.extend(self._pre_roll)
                self._speech_frames, self._silent_frames, self._paused = self._onset_run, 0, False
                events.append(VadSpeechStart(now_s - self._onset_run * FRAME_S))
            return events

        self._turn.append(frame)
        if probability >= (s.vad_threshold if self._paused else s.silence_threshold):
            self._speech_frames += 1
            self._silent_frames = 0
            if self._paused:
                self._paused = False
                events.append(VadResume(now_s - FRAME_S))
            return events

        self._silent_frames += 1
        silence_ms = self._silent_frames * FRAME_S * 1000
        speech_end_s = now_s - self._silent_frames * FRAME_S
        if not self._paused and silence_ms >= s.pause_ms:
            if self.speech_ms < s.min_speech_ms:
                self.reset()
                return events
            self._paused = True
            self.last_probability = None
            if self._turn_model is not None:
                self.last_probability = self._turn_model.probability_complete(self.speech_audio())
            events.append(VadPause(now_s, speech_end_s, self.last_probability))
            if self.last_probability is not None and self.last_probability >= s.turn_threshold:
                self._in_turn = False
                events.append(TurnEnd(now_s, speech_end_s, "turn_model", self.last_probability))
        elif self._paused and silence_ms >= s.max_silence_ms:
            self._in_turn = False
            events.append(TurnEnd(now_s, speech_end_s, "silence", self.last_probability))
        return events


__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE_HZ",
    "SmartTurn",
    "TurnDetector",
    "TurnEnd",
    "TurnEvent",
    "TurnSettings",
    "VadPause",
    "VadResume",
    "VadSpeechStart",
]
