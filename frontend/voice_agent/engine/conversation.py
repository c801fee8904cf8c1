"""The hands-free conversation engine: microphone PCM in, events and reply audio out, no transport inside.

The page drives it through streamlit-webrtc and the Realtime service through its socket; both only call
``push_pcm`` with 16 kHz mono PCM16 and read ``events`` / ``snapshot``, while the reply's audio goes to the
``AudioOutput`` they pass in. One engine is one conversation (one browser tab, one Realtime session).

Inside, on the engine's own thread (never a transport's event loop):
```
frames -> TurnDetector (streaming Silero VAD; at a pause, Smart Turn on the turn's audio)
  speaking: partial transcriptions of the turn so far (STT service), shown as words two hypotheses agree on
  pause: the reply starts speculatively (final STT -> LLM stream -> first phrase -> TTS), its output held
  speech again: the speculative reply is cancelled (its requests closed) and discarded
  turn ended: the held output is released; reply audio goes to the output as TTS streams it
  speech again before any of the reply was heard: the turn model ended the turn too early; the reply is cancelled
    and the turn goes on (its audio so far is kept), so a mid-sentence pause costs nothing the user hears
  user speech while the reply plays (VAD at a higher threshold: the echo guard): playback is cleared at once;
    if the speech lasts ``barge_in_confirm_ms`` it is a barge-in (LLM and TTS requests closed, the history keeps
    only what was heard); shorter (a backchannel such as "mm-hm") and the reply resumes where it was cut
```
Threads: one engine thread per session, one for its partial transcriptions, one per reply (LLM) and one per
reply's speech (TTS); model work stays in the services, except the VAD and turn model (ONNX, one thread each).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..audio import pcm_to_wav
from ..clients import Cancellation, Message, StageError
from ..conversation import Turn, history_of
from ..text import SentenceBuffer
from .events import (
    AudioOutput,
    EngineEvent,
    FinalTranscript,
    HandsFreeTimings,
    Interrupted,
    PartialTranscript,
    ReplyDelta,
    ReplyDone,
    ReplyStarted,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    TurnEnded,
    TurnReopened,
)
from .metrics import EngineMetrics
from .transcript import StablePrefix
from .turns import SmartTurn, TurnDetector, TurnEnd, TurnSettings, VadPause, VadResume, VadSpeechStart
from .vad import FRAME_SAMPLES, SAMPLE_RATE_HZ, SileroVad

if TYPE_CHECKING:
    from ..pipeline import Pipeline, TurnOptions

logger = logging.getLogger(__name__)

State = Literal["listening", "user_speaking", "thinking", "speaking"]


@dataclass(frozen=True)
class EngineSettings:
    """How the engine listens and yields the floor; the turn detector's own settings are in ``turn``."""

    partial_interval_ms: int = 600
    """Transcribe the turn so far after this much more speech (ms); 0 = no partial transcripts."""
    speculative: bool = True
    """Start the reply at the pause, before the turn is confirmed (output held until it is)."""
    speculative_min_probability: float = 0.2
    """Only speculate when the turn model gives the pause at least this probability of being the turn's end: a
    pause it calls clearly unfinished would cost a transcription and an LLM prefill for nothing."""
    reopen_within_ms: int = 1500
    """Speech that starts this soon (ms) after the turn's speech ended, before any of the reply was heard, reopens
    the turn (a mid-sentence pause the turn model took for an end); later speech is a new turn."""
    echo_vad_threshold: float = 0.85
    """VAD speech threshold while the agent's reply is playing (the echo guard: residual echo that the browser's
    echo canceller lets through scores lower than a person close to the microphone)."""
    barge_in_confirm_ms: int = 400
    """User speech over the reply that lasts this long (ms) interrupts it; shorter speech (a backchannel, a cough)
    only pauses playback, which resumes where it was cut."""
    detect_turns: bool = True
    """Find the user's turns (VAD and turn model); False: push-to-talk, the transport ends each turn (``commit``)."""
    respond: bool = True
    """Reply when a turn ends; False: only transcribe it, the transport asks for replies (``respond``)."""
    barge_in: bool = True
    """User speech over the reply pauses it (and interrupts it if it lasts); False: the reply plays on, and ends when
    the user's new turn does."""
    speak: bool = True
    """Synthesize the reply (TTS); False: text only."""
    turn: TurnSettings = field(default_factory=TurnSettings)


class TurnModels:
    """The VAD and turn models, loaded once per process and shared by sessions (each gets its own VAD state)."""

    def __init__(self, smart_turn: SmartTurn, new_vad: Callable[[], SileroVad] = SileroVad) -> None:
        self.smart_turn = smart_turn
        self._new_vad = new_vad

    @classmethod
    def load(cls) -> TurnModels:
        """Load Silero VAD and Smart Turn v3.2 from the pipecat-ai wheel (ONNX, onnxruntime on the CPU)."""
        return cls(SmartTurn())

    def new_vad(self) -> SileroVad:
        return self._new_vad()


def _transcribe(pipeline: Pipeline, audio: np.ndarray, filename: str, language: str | None) -> str:
    """The STT service's transcript of ``audio`` (float32 mono in [-1, 1] at 16 kHz), sent as a 16-bit WAV file;
    raises StageError."""
    pcm16 = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return pipeline.stt.transcribe(pcm_to_wav(pcm16, SAMPLE_RATE_HZ), filename=filename, language=language)


@dataclass
class _Chunk:
    pcm: bytes
    sample_rate_hz: int
    piece: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate_hz


class _Playout:
    """What the listener has heard: the output plays pushed audio in order, in real time, from when it is pushed.

    A model of the output's clock (the same for a WebRTC track and a Realtime client), so that a barge-in can tell
    which part of the reply was heard without asking the transport.
    """

    def __init__(self) -> None:
        self.heard_before_s = 0.0  # heard before the current schedule began (a resumed reply)
        self._schedule: list[tuple[float, float]] = []  # (start, duration) on time.monotonic()
        self.end = 0.0

    def pushed(self, duration_s: float, now: float) -> None:
        start = max(now, self.end)
        self._schedule.append((start, duration_s))
        self.end = start + duration_s

    def heard_s(self, now: float) -> float:
        return self.heard_before_s + sum(min(max(now - start, 0.0), length) for start, length in self._schedule)

    def cut(self, now: float) -> float:
        """Stop the schedule (playback cleared) and return the seconds heard in all."""
        self.heard_before_s = self.heard_s(now)
        self._schedule, self.end = [], 0.0
        return self.heard_before_s


class _Reply:
    """One reply: final STT (unless typed) -> LLM stream -> pieces -> TTS stream -> audio, on its own threads."""

    def __init__(
        self,
        engine: ConversationEngine,
        number: int,
        *,
        audio: np.ndarray | None,
        text: str | None,
        speech_end_at: float | None,
        confirmed: bool,
        speech_end_s: float | None = None,
        respond: bool = True,
    ) -> None:
        self.engine, self.number = engine, number
        self.respond = respond  # False: transcribe only (set to True by ``respond`` while it transcribes)
        self.transcribe_only = False  # transcribed, and no reply was asked for
        self.speech_end_s = speech_end_s  # audio time the turn's speech ended (None for a typed turn)
        self.audio, self.transcript = audio, (text or "")
        self.speech_end_at = speech_end_at
        self.confirmed = confirmed
        self.speculative = not confirmed
        self.cancellation = Cancellation()
        self.timings = HandsFreeTimings(speculative=self.speculative)
        self.text = ""  # generated so far
        self.usage: dict[str, int] | None = None  # the LLM's token counts, once its stream ended
        self.pieces: list[str] = []
        self.chunks: list[_Chunk] = []  # all reply audio produced, in order
        self.pushed = 0  # chunks handed to the output (or to the held list's replay)
        self.held_events: list[EngineEvent] = []
        self.ducked = False
        self.generated = False  # LLM and TTS finished (or failed, or nothing was heard)
        self.failed: StageFailed | None = None
        self.nothing_heard = False
        self.first_audio_at: float | None = None
        self.playout = _Playout()
        self._pieces: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"reply-{number}", daemon=True)
        self._speech_thread = threading.Thread(target=self._speak, name=f"reply-{number}-tts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.cancellation.cancel()
        self._pieces.put(None)

    def _run(self) -> None:
        engine = self.engine
        pipeline, options = engine.pipeline, engine.options
        try:
            if self.audio is not None:
                stt_start = time.perf_counter()
                self.transcript = _transcribe(pipeline, self.audio, "turn.wav", options.language)
                self.timings.stt_ms = (time.perf_counter() - stt_start) * 1000
            with engine._lock:
                if self.cancellation.cancelled:
                    return
                if self.audio is not None or self.transcript:
                    engine._reply_event(self, FinalTranscript(self.transcript))
                if self.audio is not None and not self.transcript:
                    self.nothing_heard = True
                    return
                if not self.respond:
                    self.transcribe_only = True
                    engine._wake()
                    return
                engine._reply_event(self, ReplyStarted())
            messages: list[Message] = []
            if options.system_prompt:
                messages.append({"role": "system", "content": options.system_prompt})
            messages += [m for m in engine.history() if m["role"] != "system"]
            if self.transcript:
                messages.append({"role": "user", "content": self.transcript})
            speak = engine.settings.speak
            if speak:
                self._speech_thread.start()
            buffer = SentenceBuffer(options.language, first_phrase_min_words=options.first_phrase_min_words)
            llm_start = time.perf_counter()
            for delta in pipeline.llm.stream_chat(
                messages,
                max_tokens=options.max_tokens,
                temperature=options.temperature,
                cancellation=self.cancellation,
                on_usage=self._set_usage,
            ):
                self.text += delta
                engine._reply_event(self, ReplyDelta(delta))
                for piece in buffer.feed(delta):
                    if self.timings.llm_first_phrase_ms is None:
                        self.timings.llm_first_phrase_ms = (time.perf_counter() - llm_start) * 1000
                    if speak:
                        self._pieces.put(piece)
            tail = buffer.flush()
            if tail and speak and not self.cancellation.cancelled:
                if self.timings.llm_first_phrase_ms is None:
                    self.timings.llm_first_phrase_ms = (time.perf_counter() - llm_start) * 1000
                self._pieces.put(tail)
        except StageError as err:
            if not self.cancellation.cancelled:
                self.failed = StageFailed(err.stage, err.message)
        finally:
            self._pieces.put(None)
            if self._speech_thread.is_alive():
                self._speech_thread.join()
            self.generated = True
            engine._wake()

    def _set_usage(self, usage: dict[str, int]) -> None:
        self.usage = usage

    def _speak(self) -> None:
        engine, voice = self.engine, self.engine.options.voice
        try:
            while (piece := self._pieces.get()) is not None and not self.cancellation.cancelled:
                index = len(self.pieces)
                self.pieces.append(piece)
                sent_at = time.perf_counter()
                for chunk in engine.pipeline.tts.stream_pcm(piece, voice=voice, cancellation=self.cancellation):
                    if self.timings.tts_ttfa_ms is None:
                        self.timings.tts_ttfa_ms = (time.perf_counter() - sent_at) * 1000
                    engine._reply_audio(self, _Chunk(chunk.data, chunk.sample_rate_hz, index))
        except StageError as err:
            if not self.cancellation.cancelled:
                self.failed = StageFailed(err.stage, err.message)
                self.cancellation.cancel()

    def heard_text(self, heard_s: float) -> str:
        """The reply's words that were played in ``heard_s`` seconds of its audio (a piece partly played gives
        the share of its words that its played share of audio holds)."""
        durations = [0.0] * len(self.pieces)
        for chunk in self.chunks:
            durations[chunk.piece] += chunk.duration_s
        words: list[str] = []
        remaining = heard_s
        for piece, duration in zip(self.pieces, durations, strict=False):
            if duration <= 0 or remaining <= 0:
                break
            piece_words = piece.split()
            share = min(remaining / duration, 1.0)
            words += piece_words[: round(share * len(piece_words))]
            remaining -= duration
        return " ".join(words)


@dataclass
class EngineSnapshot:
    """The engine's state for a UI, copied under the lock."""

    state: State
    partial_stable: str
    partial_unstable: str
    transcript: str
    reply_text: str
    turns: list[Turn]
    interrupted: int
    listening_s: float


class ConversationEngine:
    """One hands-free conversation. Thread-safe public methods; see the module docstring for how it works.

    ``pipeline`` gives the STT, LLM and TTS clients (``Pipeline.from_settings``); ``options`` the per-turn choices;
    ``models`` the shared VAD and turn models (``TurnModels.load()``); ``output`` takes the reply's audio;
    ``listener``, if given, is called with each event as it is emitted, in order with the audio handed to ``output``
    (on an engine thread, under the engine's lock: it must only enqueue); ``metrics`` counts turns, barge-ins and
    the time from the end of speech to the first reply audio.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        options: TurnOptions,
        *,
        output: AudioOutput,
        models: TurnModels,
        settings: EngineSettings | None = None,
        history: Sequence[Turn] = (),
        listener: Callable[[EngineEvent], None] | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.pipeline, self.options, self.output = pipeline, options, output
        self.settings = settings or EngineSettings()
        self._models = models
        self._detector = TurnDetector(self.settings.turn, models.new_vad(), models.smart_turn)
        self._lock = threading.RLock()
        self._inbox: queue.Queue[bytes | Callable[[], None] | None] = queue.Queue()
        self._listener = listener
        self._metrics = metrics
        self._wake_event = threading.Event()
        self._events: list[EngineEvent] = []
        self._turns: list[Turn] = list(history)
        self._interrupted = 0
        self._state: State = "listening"
        self._reply: _Reply | None = None
        self._replies = 0
        self._tentative_since: float | None = None  # audio time of user speech over the reply, not yet a barge-in
        self._partial = StablePrefix()
        self._partial_turn = 0  # bumps at each new user turn: late partial results of an older turn are dropped
        self._partial_busy = False
        self._partial_at_ms = 0.0
        self._stt_pool = ThreadPoolExecutor(1, thread_name_prefix="partial-stt")
        self._samples = 0  # microphone samples received
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=500)  # (audio_s at end of a push, monotonic)
        self._pending = b""
        self._carry = np.zeros(0, dtype=np.float32)  # audio of a turn reopened because the user went on
        self._input: list[np.ndarray] = []  # push-to-talk (``detect_turns`` off): PCM16 since the last commit
        self._last_said: tuple[Turn, _Reply] | None = None  # the latest reply that entered the history
        self._detached: list[_Reply] = []  # earlier push-to-talk turns still being transcribed
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="conversation-engine", daemon=True)

    # ----- the transport's side -----
    def start(self) -> ConversationEngine:
        self._thread.start()
        return self

    def close(self) -> None:
        """End the session: stop listening, cancel the reply (its requests close), free the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._reply is not None:
                self._interrupt_reply()  # what was heard of the reply stays in the history
        self._inbox.put(None)
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._stt_pool.shutdown(wait=False, cancel_futures=True)

    def push_pcm(self, pcm16: bytes) -> None:
        """Microphone audio: 16 kHz mono signed 16-bit little-endian PCM, any length. Only enqueues."""
        if not self._closed:
            self._inbox.put(pcm16)

    def submit_text(self, text: str) -> None:
        """A typed turn: interrupts a reply in progress (keeping what was heard) and answers ``text``."""
        text = text.strip()
        if not text:
            return
        with self._lock:
            self._interrupt_reply()
            self._start_reply(audio=None, text=text, speech_end_at=None, confirmed=True)

    # Commands run on the engine thread, in order with the audio pushed before them.
    def commit(self) -> None:
        """Push-to-talk (``detect_turns`` off): the audio pushed since the last commit is the user's turn; it is
        transcribed (``TurnEnded``, ``FinalTranscript``) and, with ``respond`` set, answered. No audio: nothing."""
        self._command(self._commit)

    def clear_input(self) -> None:
        """Drop the user's audio not yet part of a finished turn."""
        self._command(self._clear_input)

    def add_message(self, role: Literal["user", "assistant"], text: str) -> None:
        """Add a message to the history without replying (a reply follows ``respond``)."""
        self._command(lambda: self._add_message(role, text))

    def respond(self) -> None:
        """Reply to the history now (or, while the last turn is being transcribed, right after it). Ignored while
        a reply is under way."""
        self._command(self._respond)

    def cancel_reply(self) -> None:
        """Stop the reply in progress as a barge-in would (the history keeps what was heard); none: nothing."""
        self._command(self._cancel_reply)

    def truncate(self, heard_s: float) -> None:
        """The listener heard only ``heard_s`` seconds of the latest reply: a reply still playing stops there, a
        finished one is cut to the words those seconds hold, in the history too."""
        self._command(lambda: self._truncate(heard_s))

    def configure(self, settings: EngineSettings) -> None:
        """New engine settings (how turns are found and answered), from the next audio on; a turn in progress is
        dropped."""
        self._command(lambda: self._configure(settings))

    def set_options(self, options: TurnOptions) -> None:
        """New per-turn choices (voice, language, prompt...); the next reply uses them."""
        with self._lock:
            self.options = options

    def events(self, since: int = 0) -> tuple[list[EngineEvent], int]:
        """Events from index ``since`` on, and the index to ask from next time."""
        with self._lock:
            return self._events[since:], len(self._events)

    def snapshot(self) -> EngineSnapshot:
        with self._lock:
            reply = self._reply
            stable, unstable = self._partial.text()
            return EngineSnapshot(
                state=self._state,
                partial_stable=stable,
                partial_unstable=unstable,
                transcript=reply.transcript if reply is not None and reply.confirmed else "",
                reply_text=reply.text if reply is not None and reply.confirmed else "",
                turns=list(self._turns),
                interrupted=self._interrupted,
                listening_s=self._samples / SAMPLE_RATE_HZ,
            )

    def history(self) -> list[Message]:
        with self._lock:
            return history_of(self._turns)

    # ----- the engine thread -----
    def _command(self, run: Callable[[], None]) -> None:
        if not self._closed:
            self._inbox.put(run)

    def _wake(self) -> None:
        self._wake_event.set()
        self._inbox.put(b"")

    def _loop(self) -> None:
        try:
            while not self._closed:
                try:
                    data = self._inbox.get(timeout=0.02)
                except queue.Empty:
                    data = b""
                if data is None:
                    break
                if callable(data):
                    with self._lock:
                        data()
                elif data:
                    self._receive(data)
                with self._lock:
                    self._tick()
        except Exception:  # a bug here must not take the page down silently: log it, end the session
            logger.exception("the conversation engine stopped")
            with self._lock:
                self._emit(StageFailed("engine", "the conversation engine stopped; press STOP and START again"))

    def _receive(self, data: bytes) -> None:
        now = time.monotonic()
        self._samples += len(data) // 2
        self._arrivals.append((self._samples / SAMPLE_RATE_HZ, now))
        if not self.settings.detect_turns:
            self._input.append(np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2"))
            return
        self._pending += data
        frame_bytes = FRAME_SAMPLES * 2
        while len(self._pending) >= frame_bytes:
            frame = np.frombuffer(self._pending[:frame_bytes], dtype="<i2")
            self._pending = self._pending[frame_bytes:]
            with self._lock:
                threshold = self.settings.echo_vad_threshold if self._agent_audible() else None
            events = self._detector.push(frame, speech_threshold=threshold)
            with self._lock:
                for event in events:
                    if self._on_detector(event):
                        break  # the turn was dropped: what else the detector said of it is moot
                self._after_frame()

    def _wall_of(self, audio_s: float) -> float:
        """The monotonic time at which microphone audio time ``audio_s`` arrived here."""
        for end_s, arrived in reversed(self._arrivals):
            if end_s <= audio_s:
                return arrived + (audio_s - end_s)
        return self._arrivals[0][1] - (self._arrivals[0][0] - audio_s) if self._arrivals else time.monotonic()

    def _agent_audible(self) -> bool:
        reply = self._reply
        return reply is not None and not reply.ducked and reply.playout.end > time.monotonic()

    def _on_detector(self, event: object) -> bool:
        """Act on one detector event; True when the turn was dropped (the detector was reset)."""
        reply = self._reply
        if isinstance(event, VadSpeechStart):
            self._emit(SpeechStarted(event.audio_s))
            self._partial_turn += 1
            self._partial.reset()
            self._partial_at_ms = 0.0
            ended_s = reply.speech_end_s if reply is not None else None
            reopen = ended_s is not None and event.audio_s - ended_s <= self.settings.reopen_within_ms / 1000
            if reply is not None and reply.confirmed and not reply.pushed and reply.audio is not None and reopen:
                # nothing of the reply was heard yet: the turn ended too early, it goes on
                reply.cancel()
                self._reply = None
                self._carry = reply.audio
                self._emit(TurnReopened())
            elif reply is not None and reply.confirmed and not reply.cancellation.cancelled and self.settings.barge_in:
                # over the reply: pause playback now; a barge-in only if the speech goes on (_after_frame)
                self._duck(reply)
                self._tentative_since = event.audio_s
            self._state = "user_speaking"
        elif isinstance(event, VadPause):
            self._emit(SpeechStopped(event.speech_end_s))
            if self._tentative_since is not None and reply is not None:
                # speech over the reply that stopped before it counted as a barge-in: a backchannel ("mm-hm"),
                # or the echo guard's residue; the reply goes on from where playback was cut
                self._tentative_since = None
                self._resume(reply)
                self._detector.reset()
                self._state = "speaking"
                return True
            likely_end = (event.probability or 0.0) >= self.settings.speculative_min_probability
            speculate = self.settings.speculative and self.settings.respond
            if self._tentative_since is None and speculate and self._reply is None and likely_end:
                self._start_reply(
                    audio=self._turn_audio(),
                    text=None,
                    speech_end_at=self._wall_of(event.speech_end_s),
                    confirmed=False,
                    speech_end_s=event.speech_end_s,
                )
        elif isinstance(event, VadResume):
            if reply is not None and not reply.confirmed:  # the user went on: the speculative reply is wrong
                reply.cancel()
                self._reply = None
            self._state = "user_speaking"
        elif isinstance(event, TurnEnd):
            self._end_turn(event)
        return False

    def _end_turn(self, event: TurnEnd) -> None:
        reply = self._reply
        if self._tentative_since is not None and reply is not None:
            # speech over the reply that ended before it counted as a barge-in: a backchannel; resume the reply
            self._tentative_since = None
            self._resume(reply)
            self._detector.reset()
            return
        end_at = self._wall_of(event.speech_end_s)
        self._emit(TurnEnded(event.speech_end_s))
        self._state = "thinking"
        self._partial.reset()  # the turn's words are its final transcript now
        if reply is not None and not reply.confirmed:
            reply.confirmed = True
            reply.timings.end_of_turn_ms = (time.monotonic() - end_at) * 1000
            for held in reply.held_events:
                self._emit(held)
            reply.held_events.clear()
            self._release_audio(reply)
        else:
            self._make_way()
            self._start_reply(
                audio=self._turn_audio(),
                text=None,
                speech_end_at=end_at,
                confirmed=True,
                speech_end_s=event.speech_end_s,
                respond=self.settings.respond,
            )
            assert self._reply is not None
            self._reply.timings.end_of_turn_ms = (time.monotonic() - end_at) * 1000
        self._carry = np.zeros(0, dtype=np.float32)
        self._detector.reset()

    def _turn_audio(self) -> np.ndarray:
        """The turn's audio: a reopened turn's first part, then what the detector holds."""
        return np.concatenate([self._carry, self._detector.speech_audio()])

    def _after_frame(self) -> None:
        reply = self._reply
        if self._tentative_since is not None and reply is not None:
            if self._detector.speech_ms >= self.settings.barge_in_confirm_ms:
                self._tentative_since = None
                if self._metrics is not None:
                    self._metrics.barge_ins.inc()
                self._interrupt_reply()
            elif not self._detector.in_turn:  # the speech was dropped as too short (a click, a cough)
                self._tentative_since = None
                self._resume(reply)
        if (
            self._state == "user_speaking"
            and self.settings.partial_interval_ms > 0
            and not self._partial_busy
            and self._detector.speech_ms - self._partial_at_ms >= self.settings.partial_interval_ms
        ):
            self._partial_at_ms = self._detector.speech_ms
            self._partial_busy = True
            self._stt_pool.submit(self._transcribe_partial, self._turn_audio(), self._partial_turn)

    def _transcribe_partial(self, audio: np.ndarray, turn: int) -> None:
        try:
            text = _transcribe(self.pipeline, audio, "partial.wav", self.options.language)
        except StageError as err:
            logger.info("partial transcription failed: %s", err)
            text = None
        with self._lock:
            self._partial_busy = False
            if text and turn == self._partial_turn:
                stable, unstable = self._partial.update(text)
                self._emit(PartialTranscript(stable, unstable))

    def _commit(self) -> None:
        pcm = np.concatenate(self._input) if self._input else np.zeros(0, dtype="<i2")
        self._input = []
        if not pcm.size:
            return
        end_s = self._samples / SAMPLE_RATE_HZ
        self._emit(TurnEnded(end_s))
        self._make_way()
        self._start_reply(
            audio=pcm.astype(np.float32) / 32768.0,
            text=None,
            speech_end_at=time.monotonic(),  # push-to-talk: the turn ends when the transport commits it
            confirmed=True,
            speech_end_s=end_s,
            respond=self.settings.respond,
        )

    def _configure(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._detector = TurnDetector(settings.turn, self._models.new_vad(), self._models.smart_turn)
        self._clear_input()

    def _make_way(self) -> None:
        """Before a new turn's reply: stop the reply in progress; a previous turn still being transcribed (no reply
        asked for) finishes on its own."""
        reply = self._reply
        if reply is not None and not reply.respond and not reply.transcribe_only:
            self._detached.append(reply)
            self._reply = None
        else:
            self._interrupt_reply()

    def _clear_input(self) -> None:
        self._input = []
        self._pending = b""
        self._carry = np.zeros(0, dtype=np.float32)
        self._detector.reset()
        self._partial_turn += 1
        self._partial.reset()
        if self._state == "user_speaking":
            self._state = "listening"

    def _add_message(self, role: Literal["user", "assistant"], text: str) -> None:
        user, assistant = (text, "") if role == "user" else ("", text)
        self._turns.append(Turn(transcript=user, reply=assistant, reply_wav=b"", timings_ms={}))

    def _respond(self) -> None:
        reply = self._reply
        if reply is not None and not reply.respond and not reply.transcribe_only:
            reply.respond = True  # still transcribing: the reply follows the transcript
            return
        self._tick()
        if self._reply is None:
            self._start_reply(audio=None, text=None, speech_end_at=None, confirmed=True)

    def _cancel_reply(self) -> None:
        reply = self._reply
        if reply is not None and reply.respond:
            self._interrupt_reply()

    def _truncate(self, heard_s: float) -> None:
        reply = self._reply
        if reply is not None and reply.respond and reply.confirmed:
            self._interrupt_reply(heard_s=heard_s)
        elif self._last_said is not None:
            turn, said = self._last_said
            turn.reply, turn.interrupted = said.heard_text(heard_s), True

    def _tick(self) -> None:
        """Finish a reply once it is generated and played (or failed, or heard nothing)."""
        for earlier in [r for r in self._detached if r.transcribe_only or r.generated]:
            self._detached.remove(earlier)
            if earlier.transcribe_only:
                self._add_message("user", earlier.transcript)
        reply = self._reply
        if reply is not None and reply.transcribe_only:  # a transcribed turn waiting for a ``respond``
            self._add_message("user", reply.transcript)
            self._reply = None
            self._state = "listening" if self._state != "user_speaking" else self._state
            return
        if reply is None or not reply.generated or not reply.confirmed or reply.ducked:
            return
        if reply.failed is not None:
            self._emit(reply.failed)
            self._reply = None
            self._state = "listening" if self._state != "user_speaking" else self._state
            return
        if reply.nothing_heard or reply.cancellation.cancelled:
            self._reply = None
            self._state = "listening" if self._state != "user_speaking" else self._state
            return
        if reply.pushed < len(reply.chunks) or reply.playout.end > time.monotonic():
            return
        self._record(reply, reply.text.strip(), interrupted=False)
        self._emit(ReplyDone(reply.transcript, reply.text.strip(), reply.timings, reply.usage))
        self._reply = None
        if self._state != "user_speaking":
            self._state = "listening"

    # ----- replies -----
    def _start_reply(
        self,
        *,
        audio: np.ndarray | None,
        text: str | None,
        speech_end_at: float | None,
        confirmed: bool,
        speech_end_s: float | None = None,
        respond: bool = True,
    ) -> None:
        self._replies += 1
        self._reply = _Reply(
            self,
            self._replies,
            audio=audio,
            text=text,
            speech_end_at=speech_end_at,
            confirmed=confirmed,
            speech_end_s=speech_end_s,
            respond=respond,
        )
        if confirmed:
            self._state = "thinking"
        self._reply.start()

    def _reply_event(self, reply: _Reply, event: EngineEvent) -> None:
        with self._lock:
            if (reply is not self._reply and reply not in self._detached) or reply.cancellation.cancelled:
                return
            if reply.confirmed:
                self._emit(event)
            else:
                reply.held_events.append(event)

    def _reply_audio(self, reply: _Reply, chunk: _Chunk) -> None:
        with self._lock:
            if reply is not self._reply or reply.cancellation.cancelled:
                return
            reply.chunks.append(chunk)
            if reply.confirmed and not reply.ducked:
                self._release_audio(reply)

    def _release_audio(self, reply: _Reply) -> None:
        """Hand the reply's audio not yet pushed to the output."""
        now = time.monotonic()
        while reply.pushed < len(reply.chunks):
            chunk = reply.chunks[reply.pushed]
            reply.pushed += 1
            if reply.first_audio_at is None:
                reply.first_audio_at = now
                if reply.speech_end_at is not None:
                    reply.timings.end_of_speech_to_audio_ms = (now - reply.speech_end_at) * 1000
                    if self._metrics is not None:
                        self._metrics.end_of_speech_to_audio.observe(now - reply.speech_end_at)
            self.output.push(chunk.pcm, chunk.sample_rate_hz)
            reply.playout.pushed(chunk.duration_s, now)
        if reply.pushed and self._state == "thinking":
            self._state = "speaking"

    def _duck(self, reply: _Reply) -> None:
        reply.ducked = True
        reply.playout.cut(time.monotonic())
        self.output.clear()

    def _resume(self, reply: _Reply) -> None:
        """Play the rest of a reply from where playback was cut (after a backchannel)."""
        reply.ducked = False
        skip_s = reply.playout.heard_before_s
        now = time.monotonic()
        replay: list[_Chunk] = []
        for chunk in reply.chunks[: reply.pushed]:
            if skip_s >= chunk.duration_s:
                skip_s -= chunk.duration_s
                continue
            if skip_s > 0:
                cut = int(skip_s * chunk.sample_rate_hz) * 2
                replay.append(replace(chunk, pcm=chunk.pcm[cut:]))
                skip_s = 0.0
            else:
                replay.append(chunk)
        for chunk in replay:
            self.output.push(chunk.pcm, chunk.sample_rate_hz)
            reply.playout.pushed(chunk.duration_s, now)
        self._release_audio(reply)
        self._state = "speaking" if reply.playout.end > now or not reply.generated else self._state

    def _interrupt_reply(self, heard_s: float | None = None) -> None:
        """Barge-in (or a typed turn): stop the reply, close its requests, keep in history what was heard
        (``heard_s`` seconds of its audio when the transport knows; else the output clock's count)."""
        reply = self._reply
        if reply is None:
            return
        self._reply = None
        self._tentative_since = None
        reply.cancel()
        if not reply.confirmed:
            return
        if not reply.respond or reply.transcribe_only:  # a turn being transcribed: it had no reply to stop
            if reply.transcript:
                self._add_message("user", reply.transcript)
            return
        now = time.monotonic()
        played_s = reply.playout.heard_before_s if reply.ducked else reply.playout.cut(now)
        if not reply.ducked:
            self.output.clear()
        heard = reply.heard_text(played_s if heard_s is None else heard_s)
        self._interrupted += 1
        if reply.transcript or reply.audio is None:
            self._record(reply, heard, interrupted=True)
        self._emit(Interrupted(reply.transcript, heard, reply.text.strip(), reply.timings))

    def _record(self, reply: _Reply, said: str, *, interrupted: bool) -> None:
        """The reply enters the history with what was ``said`` of it."""
        turn = self._turn_of(reply, said, interrupted=interrupted)
        self._turns.append(turn)
        self._last_said = (turn, reply)

    def _turn_of(self, reply: _Reply, said: str, *, interrupted: bool) -> Turn:
        pcm = b"".join(chunk.pcm for chunk in reply.chunks)
        rate = reply.chunks[0].sample_rate_hz if reply.chunks else None
        timings = {key: value for key, value in reply.timings.as_dict().items() if not isinstance(value, bool)}
        return Turn(
            transcript=reply.transcript,
            reply=said,
            reply_wav=pcm_to_wav(pcm, rate) if pcm and rate else b"",
            timings_ms=timings,
            interrupted=interrupted,
        )

    def _emit(self, event: EngineEvent) -> None:
        self._events.append(event)
        if self._metrics is not None:
            self._count(event, self._metrics)
        if self._listener is not None:
            self._listener(event)

    @staticmethod
    def _count(event: EngineEvent, metrics: EngineMetrics) -> None:
        if isinstance(event, TurnEnded):
            metrics.turns.inc()
        elif isinstance(event, TurnReopened):
            metrics.turns_reopened.inc()
