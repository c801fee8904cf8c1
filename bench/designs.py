"""The two designs under test, on the same services, models and inputs.

- Streaming: ``voice_agent.pipeline.Pipeline``, exactly as the page and ``make talk`` run a turn (STT, then the
  LLM reply streamed and cut into sentences, each sentence spoken by TTS on its own thread while the LLM writes).
- Sequential: whole transcript, then the whole reply (one non-streaming chat completion), then the whole speech
  (the complete TTS response); its first audio is when the whole speech has arrived.

Both send the same request fields (no system message, so the LLM service adds its default one; temperature 0,
so decoding is greedy and the replies match), over kept-alive httpx connections.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from voice_agent.clients import SttClient
from voice_agent.config import FrontendSettings
from voice_agent.pipeline import Pipeline, TurnOptions

SEED = 1234
"""Sent where the API takes a seed; with temperature 0 decoding is greedy and the seed changes nothing."""


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def frontend_settings(urls: dict[str, str]) -> FrontendSettings:
    """The page's settings (its defaults and timeouts) pointed at ``urls``: ``{"stt": url, "llm": url, "tts": url}``."""
    return FrontendSettings(stt_url=urls["stt"], llm_url=urls["llm"], tts_url=urls["tts"])


def turn_options(settings: FrontendSettings, *, max_tokens: int | None = None, **changes: Any) -> TurnOptions:
    """The page's per-turn options with temperature 0 (comparable replies) and optional changes.

    ``changes`` may name fields a given version of ``TurnOptions`` lacks (e.g. ``first_clause_min_words``);
    those are dropped, so the benchmark runs against whatever the pipeline offers.
    """
    options = TurnOptions.from_settings(settings)
    known = {field.name for field in dataclasses.fields(options)}
    updates: dict[str, Any] = {"temperature": 0.0, **{k: v for k, v in changes.items() if k in known}}
    if max_tokens is not None:
        updates["max_tokens"] = max_tokens
    return dataclasses.replace(options, **updates)


@dataclass
class StreamingTurn:
    """One pipeline turn: its ``TurnTimings`` as a dict plus what was said."""

    timings: dict[str, float | None]
    transcript: str
    reply: str
    first_sentence: str
    sentences: int
    audio_s: float


OTHER_QUESTION = "Hello, how are you today?"


def forget_question(llm_url: str, options: TurnOptions, model: str = "local") -> None:
    """Leave llama.cpp's prompt cache as a real conversation's next turn finds it: the system prompt cached, the
    question not. llama-cpp-python reuses the longest common prefix of the previous prompt, so a turn that repeats
    the last one's question would skip reading it (time to first token about 20 ms instead of 75-160 ms): a
    one-token request with another question, outside the timed turn, replaces that prefix."""
    messages = [{"role": "system", "content": options.system_prompt}] if options.system_prompt else []
    messages.append({"role": "user", "content": OTHER_QUESTION})
    body = {"model": model, "messages": messages, "max_tokens": 1, "temperature": 0.0, "stream": False}
    httpx.post(f"{llm_url}/v1/chat/completions", json=body, timeout=60.0).raise_for_status()


def streaming_turn(
    pipeline: Pipeline, options: TurnOptions, audio: bytes, filename: str, *, fresh: bool = True
) -> StreamingTurn:
    """Run one turn with an empty history; raises StageError if a stage fails.

    ``fresh``: first make the LLM forget the question (``forget_question``), as before every timed turn; the
    concurrent sessions skip it, since the request would land inside another session's turn.
    """
    if fresh:
        forget_question(pipeline.llm.base_url, options)
    result = pipeline.run_turn([], options, audio=audio, filename=filename)
    return StreamingTurn(
        timings=result.timings.as_dict(),
        transcript=result.transcript,
        reply=result.reply,
        first_sentence=result.sentences[0] if result.sentences else "",
        sentences=len(result.sentences),
        audio_s=round(result.audio_duration_s, 2),
    )


@dataclass
class SequentialTurn:
    """One sequential turn, milliseconds: ``first_audio_ms`` = stt + llm + tts (+ the gaps between them)."""

    timings: dict[str, float | None]
    transcript: str
    reply: str
    completion_tokens: int
    audio_s: float


class SequentialDesign:
    """Whole transcript -> whole reply -> whole speech, with the same clients' settings as the pipeline."""

    def __init__(self, settings: FrontendSettings) -> None:
        self.settings = settings
        timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        self._stt = SttClient(settings.stt_url, model=settings.stt_model, read_timeout_s=settings.read_timeout_s)
        self._llm = httpx.Client(base_url=settings.llm_url, timeout=timeout)
        self._tts = httpx.Client(base_url=settings.tts_url, timeout=timeout)

    def close(self) -> None:
        self._stt.close()
        self._llm.close()
        self._tts.close()

    def reply(self, transcript: str, options: TurnOptions) -> tuple[str, int]:
        """The whole reply to ``transcript`` and its completion tokens (non-streaming chat completion)."""
        messages = [{"role": "system", "content": options.system_prompt}] if options.system_prompt else []
        messages.append({"role": "user", "content": transcript})
        body = {
            "model": self.settings.llm_model,
            "messages": messages,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "seed": SEED,
            "stream": False,
        }
        response = self._llm.post("/v1/chat/completions", json=body)
        response.raise_for_status()
        data = response.json()
        return str(data["choices"][0]["message"]["content"]).strip(), int(data["usage"]["completion_tokens"])

    def speech(self, text: str, voice: str) -> tuple[bytes, int]:
        """The whole speech of ``text``: PCM16 bytes (the complete response body) and their sample rate (Hz)."""
        body = {"model": self.settings.tts_model, "input": text, "voice": voice, "response_format": "pcm"}
        response = self._tts.post("/v1/audio/speech", json=body)
        response.raise_for_status()
        return response.content, int(response.headers.get("x-sample-rate", 24_000))

    def turn(self, options: TurnOptions, audio: bytes, filename: str) -> SequentialTurn:
        """One turn; raises StageError (STT) or httpx.HTTPError (LLM, TTS) if a stage fails."""
        forget_question(self.settings.llm_url, options, self.settings.llm_model)
        start = time.perf_counter()
        transcript = self._stt.transcribe(audio, filename=filename, language=options.language)
        stt_ms = _ms_since(start)
        llm_start = time.perf_counter()
        reply, completion_tokens = self.reply(transcript, options)
        llm_ms = _ms_since(llm_start)
        tts_start = time.perf_counter()
        pcm, rate = self.speech(reply, options.voice) if reply else (b"", 1)
        tts_ms = _ms_since(tts_start)
        timings = {
            "stt_ms": stt_ms,
            "llm_total_ms": llm_ms,
            "tts_total_ms": tts_ms,
            "first_audio_ms": _ms_since(start),
        }
        return SequentialTurn(
            timings={key: round(value, 1) for key, value in timings.items()},
            transcript=transcript,
            reply=reply,
            completion_tokens=completion_tokens,
            audio_s=round(len(pcm) / 2 / rate, 2),
        )


def concurrent_sessions(
    settings: FrontendSettings, options: TurnOptions, audio: bytes, filename: str, sessions: int, turns: int
) -> tuple[list[StreamingTurn], float]:
    """``sessions`` users at once, each with its own Pipeline running ``turns`` turns back to back.

    All sessions start together (a barrier). Returns every turn and the wall time in seconds. Raises the error
    of the first session that failed, once all have ended.
    """
    barrier = threading.Barrier(sessions)

    def session(_: int) -> list[StreamingTurn]:
        pipeline = Pipeline.from_settings(settings)
        try:
            barrier.wait(timeout=60)
            return [streaming_turn(pipeline, options, audio, filename, fresh=False) for _ in range(turns)]
        finally:
            pipeline.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        results = [turn for session_turns in pool.map(session, range(sessions)) for turn in session_turns]
    return results, time.perf_counter() - started
