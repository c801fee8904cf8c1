"""One conversational turn: recorded audio -> STT -> streamed LLM reply -> TTS per piece, in order.

The stages overlap: the reply's first phrase, then each sentence, goes to TTS the moment the LLM finishes it
(``voice_agent.text.SentenceBuffer``), on a separate thread, while the LLM keeps writing; so the first reply audio
exists long before the reply is complete.
``Pipeline.turn`` is a generator of events that the Streamlit page and the command line both consume.

Timings, all in milliseconds from clocks on this side of the network:
- ``stt_ms``: the transcription request, upload to answer.
- ``llm_ttft_ms``: LLM request sent -> first reply text (time to first token).
- ``llm_first_phrase_ms``: LLM request sent -> the first phrase complete and handed to TTS.
- ``llm_total_ms``: LLM request sent -> end of the reply stream.
- ``tts_ttfa_ms``: first phrase sent to TTS -> its first audio bytes (time to first audio).
- ``voice_to_voice_ms``: the user's audio available -> first reply audio available (the number users feel).
- ``total_ms``: the user's audio available -> the last reply audio received.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from pydantic import SecretStr

from .audio import pcm_to_wav
from .clients import LlmClient, Message, StageError, SttClient, TtsClient
from .config import FrontendSettings, ServiceClientSettings
from .text import FIRST_PHRASE_MIN_WORDS, SentenceBuffer

Client = TypeVar("Client", SttClient, LlmClient, TtsClient)


@dataclass(frozen=True)
class TurnOptions:
    """Per-turn choices the user can change between turns."""

    voice: str = "alloy"
    language: str | None = None
    system_prompt: str | None = None
    temperature: float = 0.7
    max_tokens: int = 160
    first_phrase_min_words: int = FIRST_PHRASE_MIN_WORDS

    @classmethod
    def from_settings(cls, settings: FrontendSettings) -> TurnOptions:
        return cls(
            voice=settings.voice,
            language=settings.language,
            system_prompt=settings.system_prompt,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            first_phrase_min_words=settings.first_phrase_min_words,
        )


@dataclass
class TurnTimings:
    """Stage timings of one turn in milliseconds (see the module docstring); None when a stage did not run."""

    stt_ms: float | None = None
    llm_ttft_ms: float | None = None
    llm_first_phrase_ms: float | None = None
    llm_total_ms: float | None = None
    tts_ttfa_ms: float | None = None
    voice_to_voice_ms: float | None = None
    total_ms: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {key: (round(value, 1) if value is not None else None) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Transcript:
    """What the user said (or typed)."""

    text: str


@dataclass(frozen=True)
class ReplyDelta:
    """A piece of the reply text, as the LLM streams it."""

    text: str


@dataclass(frozen=True)
class ReplyAudio:
    """The audio of one piece of the reply (its first phrase, then each sentence): PCM16 mono bytes at
    ``sample_rate_hz``; ``index`` counts from 0, ``sentence`` is the text spoken."""

    index: int
    sentence: str
    pcm: bytes
    sample_rate_hz: int


@dataclass
class TurnResult:
    """A finished turn: transcript, reply text, the whole reply audio (PCM16 mono) and timings.

    ``sentences`` are the pieces sent to TTS, in order: the first phrase, then each sentence.
    """

    transcript: str
    reply: str
    pcm: bytes
    sample_rate_hz: int | None
    timings: TurnTimings
    sentences: list[str] = field(default_factory=list)

    @property
    def audio_duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate_hz if self.sample_rate_hz else 0.0

    def wav_bytes(self) -> bytes:
        """The whole reply as a 16-bit mono WAV file (empty bytes when the reply had no audio)."""
        if not self.pcm or not self.sample_rate_hz:
            return b""
        return pcm_to_wav(self.pcm, self.sample_rate_hz)


@dataclass(frozen=True)
class TurnDone:
    result: TurnResult


Event = Transcript | ReplyDelta | ReplyAudio | TurnDone


class NothingHeard(StageError):
    """The recording contained no recognisable speech."""


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


_DONE = object()


class _SpeechWorker:
    """Synthesises the reply's pieces in order on its own thread; results come back through ``results``."""

    def __init__(self, tts: TtsClient, voice: str, turn_start: float, timings: TurnTimings) -> None:
        self._tts, self._voice = tts, voice
        self._turn_start, self._timings = turn_start, timings
        self._sentences: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self.results: queue.Queue[object] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tts-client", daemon=True)
        self._thread.start()

    def say(self, index: int, sentence: str) -> None:
        self._sentences.put((index, sentence))

    def finish(self) -> None:
        self._sentences.put(None)

    def abort(self) -> None:
        self._stop.set()
        self._sentences.put(None)

    def _run(self) -> None:
        try:
            while (item := self._sentences.get()) is not None and not self._stop.is_set():
                index, sentence = item
                sent_at = time.perf_counter()
                parts: list[bytes] = []
                rate = 0
                for chunk in self._tts.stream_pcm(sentence, voice=self._voice):
                    if self._timings.voice_to_voice_ms is None:
                        self._timings.voice_to_voice_ms = _ms_since(self._turn_start)
                        self._timings.tts_ttfa_ms = _ms_since(sent_at)
                    parts.append(chunk.data)
                    rate = chunk.sample_rate_hz
                    if self._stop.is_set():
                        return
                self.results.put(ReplyAudio(index, sentence, b"".join(parts), rate))
        except StageError as err:
            self.results.put(err)
        self.results.put(_DONE)


class Pipeline:
    """Runs turns against three services; stateless: the caller owns the conversation history."""

    def __init__(self, stt: SttClient, llm: LlmClient, tts: TtsClient) -> None:
        self.stt, self.llm, self.tts = stt, llm, tts

    @classmethod
    def from_settings(cls, settings: ServiceClientSettings) -> Pipeline:
        def client(kind: type[Client], url: str, model: str, api_key: SecretStr | None) -> Client:
            return kind(
                url,
                model=model,
                api_key=api_key.get_secret_value() if api_key else None,
                connect_timeout_s=settings.connect_timeout_s,
                read_timeout_s=settings.read_timeout_s,
                max_retries=settings.max_retries,
            )

        return cls(
            client(SttClient, settings.stt_url, settings.stt_model, settings.stt_api_key),
            client(LlmClient, settings.llm_url, settings.llm_model, settings.llm_api_key),
            client(TtsClient, settings.tts_url, settings.tts_model, settings.tts_api_key),
        )

    def close(self) -> None:
        for client in (self.stt, self.llm, self.tts):
            client.close()

    def turn(
        self,
        history: Sequence[Message],
        options: TurnOptions,
        *,
        audio: bytes | None = None,
        filename: str = "audio.wav",
        text: str | None = None,
    ) -> Iterator[Event]:
        """Run one turn from recorded ``audio`` (any format the STT service decodes) or typed ``text``.

        Yields Transcript, then ReplyDelta and ReplyAudio events interleaved as they happen, then TurnDone.
        ``history`` is not modified: append the transcript and reply yourself once TurnDone arrives.
        Raises StageError (NothingHeard when the recording held no speech); no event follows an error.
        """
        turn_start = time.perf_counter()
        timings = TurnTimings()
        if audio is not None:
            stt_start = time.perf_counter()
            transcript = self.stt.transcribe(audio, filename=filename, language=options.language)
            timings.stt_ms = _ms_since(stt_start)
            if not transcript:
                raise NothingHeard("stt", self.stt.base_url, "rejected", "no speech was recognised in the recording")
        elif text and text.strip():
            transcript = text.strip()
        else:
            raise ValueError("a turn needs audio or text")
        yield Transcript(transcript)

        messages: list[Message] = []
        if options.system_prompt:
            messages.append({"role": "system", "content": options.system_prompt})
        messages += [m for m in history if m["role"] != "system"]
        messages.append({"role": "user", "content": transcript})

        speech = _SpeechWorker(self.tts, options.voice, turn_start, timings)
        sentences: list[str] = []
        audio_parts: dict[int, ReplyAudio] = {}
        reply_parts: list[str] = []
        buffer = SentenceBuffer(options.language, first_phrase_min_words=options.first_phrase_min_words)

        def queue_sentences(found: list[str]) -> None:
            if found and timings.llm_first_phrase_ms is None:
                timings.llm_first_phrase_ms = _ms_since(llm_start)
            for sentence in found:
                speech.say(len(sentences), sentence)
                sentences.append(sentence)

        def ready_audio(block: bool) -> Iterator[ReplyAudio]:
            while True:
                try:
                    item = speech.results.get(block=block)
                except queue.Empty:
                    return
                if item is _DONE:
                    return
                if isinstance(item, StageError):
                    raise item
                assert isinstance(item, ReplyAudio)
                audio_parts[item.index] = item
                yield item

        llm_start = time.perf_counter()
        try:
            deltas = self.llm.stream_chat(messages, max_tokens=options.max_tokens, temperature=options.temperature)
            for delta in deltas:
                if timings.llm_ttft_ms is None:
                    timings.llm_ttft_ms = _ms_since(llm_start)
                reply_parts.append(delta)
                yield ReplyDelta(delta)
                queue_sentences(buffer.feed(delta))
                yield from ready_audio(block=False)
            timings.llm_total_ms = _ms_since(llm_start)
            tail = buffer.flush()
            queue_sentences([tail] if tail else [])
            speech.finish()
            yield from ready_audio(block=True)
        except BaseException:
            speech.abort()
            raise
        timings.total_ms = _ms_since(turn_start)

        ordered = [audio_parts[i] for i in sorted(audio_parts)]
        rate = ordered[0].sample_rate_hz if ordered else None
        result = TurnResult(
            transcript=transcript,
            reply="".join(reply_parts).strip(),
            pcm=b"".join(part.pcm for part in ordered),
            sample_rate_hz=rate,
            timings=timings,
            sentences=sentences,
        )
        yield TurnDone(result)

    def run_turn(self, history: Sequence[Message], options: TurnOptions, **inputs: object) -> TurnResult:
        """Run a whole turn and return its result (the command line's way); raises StageError."""
        for event in self.turn(history, options, **inputs):  # type: ignore[arg-type]
            if isinstance(event, TurnDone):
                return event.result
        raise RuntimeError("the turn ended without a result")
