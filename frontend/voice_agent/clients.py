"""Typed HTTP clients for the three OpenAI-shaped services (httpx, explicit timeouts).

Any OpenAI-compatible server can stand behind a URL: faster-whisper servers such as speaches for STT,
llama.cpp's server or vLLM for the LLM, any ``/v1/audio/speech`` server for TTS. Every failure becomes a
``StageError`` naming the stage, the service URL and what went wrong, so the caller can show it and keep the
conversation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import httpx
from httpx_sse import SSEError, connect_sse
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

Stage = Literal["stt", "llm", "tts"]
FailureKind = Literal["unreachable", "timeout", "rejected", "not_ready", "server_error", "cut"]

OPENAI_PCM_SAMPLE_RATE_HZ = 24_000
"""OpenAI's speech endpoint sends ``pcm`` at 24 kHz with no header; ours says its rate in ``X-Sample-Rate``."""

STAGE_NAMES = {"stt": "speech recognition (STT)", "llm": "reply generation (LLM)", "tts": "speech synthesis (TTS)"}


class StageError(Exception):
    """A pipeline stage failed: ``stage`` (stt/llm/tts), ``url`` of the service, ``kind`` of failure."""

    def __init__(self, stage: Stage, url: str, kind: FailureKind, message: str) -> None:
        super().__init__(f"{STAGE_NAMES[stage]} failed at {url}: {message}")
        self.stage, self.url, self.kind, self.message = stage, url, kind, message


Message = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""


def _server_message(response: httpx.Response) -> str:
    try:
        body = json.loads(response.read())
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300] or response.reason_phrase


@contextmanager
def _failures_as_stage_errors(stage: Stage, url: str) -> Iterator[None]:
    """Translate httpx failures into StageError for ``stage``."""
    try:
        yield
    except httpx.ConnectError as err:
        raise StageError(stage, url, "unreachable", f"cannot connect ({err})") from err
    except httpx.TimeoutException as err:
        raise StageError(stage, url, "timeout", f"no answer in time ({type(err).__name__})") from err
    except httpx.HTTPStatusError as err:
        status = err.response.status_code
        kind: FailureKind = "rejected" if status < 500 else ("not_ready" if status == 503 else "server_error")
        raise StageError(stage, url, kind, f"HTTP {status}: {_server_message(err.response)}") from err
    except (httpx.RemoteProtocolError, httpx.ReadError, SSEError) as err:
        raise StageError(stage, url, "cut", f"the connection broke mid-response ({err})") from err
    except httpx.HTTPError as err:
        raise StageError(stage, url, "server_error", str(err)) from err


RETRYABLE: frozenset[FailureKind] = frozenset({"unreachable", "not_ready"})
"""Failures that happened before the server did any work: safe to try again."""


def _is_retryable(err: BaseException) -> bool:
    return isinstance(err, StageError) and err.kind in RETRYABLE


def retrying(attempts: int = 3) -> Retrying:
    """Retry a request that failed before the server did any work (refused, 503), with exponential backoff.

    Used for whole requests (transcription, speech) and for the opening of a stream, never for a stream that
    has already delivered data: a half-streamed reply is reported as cut, not silently replayed.
    """
    return Retrying(
        retry=retry_if_exception(_is_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.25, max=2.0),
        reraise=True,
    )


def _client(base_url: str, connect_timeout_s: float, read_timeout_s: float, api_key: str | None) -> httpx.Client:
    # retries= covers connection failures only, which are always safe to retry
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
        transport=httpx.HTTPTransport(retries=2),
        headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
    )


@dataclass(frozen=True)
class ServiceStatus:
    """What ``GET /ready`` said: ``state`` is ready, loading, downloading, failed or down."""

    state: str
    model: str | None = None
    detail: str | None = None


class _ServiceClient:
    stage: Stage

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 120.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._http = _client(self.base_url, connect_timeout_s, read_timeout_s, api_key)

    def status(self) -> ServiceStatus:
        """Probe ``/ready`` (falls back to ``/v1/models`` for servers without it); never raises."""
        try:
            response = self._http.get("/ready", timeout=2.0)
            if response.status_code == 404:
                models = self._http.get("/v1/models", timeout=2.0)
                models.raise_for_status()
                data = models.json().get("data") or [{}]
                return ServiceStatus("ready", data[0].get("id"))
            body = response.json()
            return ServiceStatus(body.get("status", "ready"), body.get("model"), body.get("detail"))
        except (httpx.HTTPError, ValueError):
            return ServiceStatus("down")

    def close(self) -> None:
        self._http.close()


class SttClient(_ServiceClient):
    """``POST /v1/audio/transcriptions``: audio bytes in any container -> transcript text."""

    stage: Stage = "stt"

    def transcribe(self, audio: bytes, *, filename: str = "audio.wav", language: str | None = None) -> str:
        """Transcribe one recording; raises StageError."""
        data = {"model": self.model, "response_format": "json"}
        if language:
            data["language"] = language
        for attempt in retrying():
            with attempt, _failures_as_stage_errors("stt", self.base_url):
                response = self._http.post("/v1/audio/transcriptions", data=data, files={"file": (filename, audio)})
                response.raise_for_status()
                return str(response.json()["text"]).strip()
        raise AssertionError("unreachable: retrying() re-raises the last error")


class LlmClient(_ServiceClient):
    """``POST /v1/chat/completions`` with ``stream: true``: yields the reply's text deltas."""

    stage: Stage = "llm"

    def stream_chat(self, messages: Sequence[Message], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield content deltas as the server generates them.

        Raises StageError; kind ``cut`` when the stream ends without a ``finish_reason`` (a server that
        dropped the stream) or with an error event.
        """
        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        # a refused or 503 request is tried again; once deltas have flowed, a failure is reported as a cut
        for attempt in retrying():
            with attempt:
                yield from self._stream_once(body)

    def _stream_once(self, body: dict) -> Iterator[str]:
        finish_reason: str | None = None
        with (
            _failures_as_stage_errors("llm", self.base_url),
            connect_sse(self._http, "POST", "/v1/chat/completions", json=body) as source,
        ):
            if source.response.is_error:
                source.response.read()
                source.response.raise_for_status()
            for event in source.iter_sse():
                if event.data.strip() == "[DONE]":
                    break
                chunk = json.loads(event.data)
                if "error" in chunk:
                    raise StageError("llm", self.base_url, "cut", str(chunk["error"].get("message", chunk)))
                for choice in chunk.get("choices", []):
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        yield delta
                    finish_reason = choice.get("finish_reason") or finish_reason
        if finish_reason is None:
            raise StageError("llm", self.base_url, "cut", "the reply stream ended without a finish_reason")


@dataclass(frozen=True)
class PcmChunk:
    """Signed 16-bit little-endian mono PCM bytes at ``sample_rate_hz``."""

    data: bytes
    sample_rate_hz: int


class TtsClient(_ServiceClient):
    """``POST /v1/audio/speech`` with ``response_format: pcm``: yields PCM chunks as they are synthesised."""

    stage: Stage = "tts"

    def stream_pcm(self, text: str, *, voice: str, speed: float = 1.0) -> Iterator[PcmChunk]:
        """Yield PCM16 chunks of ``text`` spoken by ``voice`` as they arrive; raises StageError."""
        body = {"model": self.model, "input": text, "voice": voice, "response_format": "pcm", "speed": speed}
        for attempt in retrying():
            with attempt:
                yield from self._stream_once(body)

    def _stream_once(self, body: dict) -> Iterator[PcmChunk]:
        with (
            _failures_as_stage_errors("tts", self.base_url),
            self._http.stream("POST", "/v1/audio/speech", json=body) as response,
        ):
            if response.is_error:
                response.read()
                response.raise_for_status()
            rate = int(response.headers.get("x-sample-rate", OPENAI_PCM_SAMPLE_RATE_HZ))
            carry = b""
            for data in response.iter_bytes():
                data = carry + data
                cut = len(data) - len(data) % 2  # never split a 16-bit sample across chunks
                carry = data[cut:]
                if cut:
                    yield PcmChunk(data[:cut], rate)

    def voices(self) -> list[str]:
        """Voice ids from ``GET /v1/audio/voices`` (the default first), then OpenAI's aliases; [] if unavailable."""
        try:
            response = self._http.get("/v1/audio/voices", timeout=3.0)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return []
        ids = [str(card["id"]) for card in body.get("data", []) if "id" in card]
        return ids + [alias for alias in body.get("aliases", {}) if alias not in ids]
