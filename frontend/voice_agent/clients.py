"""Clients for the three OpenAI-shaped services, built on the official ``openai`` package.

Any OpenAI-compatible server can stand behind a URL: faster-whisper servers such as speaches for STT,
llama.cpp's server or vLLM for the LLM, any ``/v1/audio/speech`` server for TTS. Every failure becomes a
``StageError`` naming the stage, the service URL and what went wrong, so the caller can show it and keep the
conversation.

Retries are the ``openai`` client's own (``max_retries``, exponential backoff): a request is tried again only
while no response has begun (connection refused, timeout, 408/409/429/5xx), so a half-streamed reply or speech
is never replayed: a failure after the first bytes is reported as ``cut``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast

import httpx2
import openai
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

Stage = Literal["stt", "llm", "tts"]
FailureKind = Literal["unreachable", "timeout", "rejected", "not_ready", "server_error", "cut"]

OPENAI_PCM_SAMPLE_RATE_HZ = 24_000
"""OpenAI's speech endpoint sends ``pcm`` at 24 kHz with no header; ours says its rate in ``X-Sample-Rate``."""

NO_KEY = "sk-no-key-required"
"""The bearer sent to a service that has no key configured (the openai client always sends one)."""

STAGE_NAMES = {"stt": "speech recognition (STT)", "llm": "reply generation (LLM)", "tts": "speech synthesis (TTS)"}


class StageError(Exception):
    """A pipeline stage failed: ``stage`` (stt/llm/tts), ``url`` of the service, ``kind`` of failure."""

    def __init__(self, stage: Stage, url: str, kind: FailureKind, message: str) -> None:
        super().__init__(f"{STAGE_NAMES[stage]} failed at {url}: {message}")
        self.stage, self.url, self.kind, self.message = stage, url, kind, message


Message = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""


class Cancellation:
    """A stop signal for streamed requests, set from any thread (barge-in, a closed session).

    Setting it closes the HTTP responses registered with it, so the service sees its client go and stops working
    for nobody (the LLM service ends generation at its next token); a reader blocked on the closed stream then
    stops, and its ``StageError`` is the caller's to ignore once ``cancelled`` is true.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._closers: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def register(self, close: Callable[[], object]) -> None:
        """Call ``close`` on cancel (at once when already cancelled)."""
        with self._lock:
            if not self._event.is_set():
                self._closers.append(close)
                return
        close()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            closers, self._closers = self._closers, []
        for close in closers:
            # closing a response that another thread is reading may raise; the reader reports it, not the canceller
            with contextlib.suppress(Exception):
                close()

    @contextmanager
    def absorbs_failures(self) -> Iterator[None]:
        """Around a read of a registered stream: once cancelled, whatever the closed stream raises ends the read
        quietly (the reader asked for nothing more)."""
        try:
            yield
        except Exception:
            if not self.cancelled:
                raise


def _absorbing(cancellation: Cancellation | None) -> contextlib.AbstractContextManager[None]:
    return cancellation.absorbs_failures() if cancellation is not None else contextlib.nullcontext()


def _status_kind(status: int) -> FailureKind:
    return "rejected" if status < 500 else ("not_ready" if status == 503 else "server_error")


def _server_message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):  # the client hands over the body's "error" object when there is one
        return str(body.get("message") or body.get("error", {}).get("message") or body)
    return str(body or err.message)[:300]


@contextmanager
def failures_as_stage_errors(stage: Stage, url: str, *, streaming: bool = False) -> Iterator[None]:
    """Translate the openai client's failures into StageError for ``stage``.

    With ``streaming=True`` the response has begun: a broken connection is a ``cut``, not ``unreachable``.
    """
    try:
        yield
    except openai.APITimeoutError as err:
        raise StageError(stage, url, "timeout", "no answer in time") from err
    except openai.APIConnectionError as err:
        cause = err.__cause__ or err
        if streaming:
            raise StageError(stage, url, "cut", f"the connection broke mid-response ({cause})") from err
        raise StageError(stage, url, "unreachable", f"cannot connect ({cause})") from err
    except openai.APIStatusError as err:
        status = err.status_code
        raise StageError(stage, url, _status_kind(status), f"HTTP {status}: {_server_message(err)}") from err
    except openai.APIError as err:  # an error event inside a stream
        raise StageError(stage, url, "cut", err.message) from err
    except httpx2.TimeoutException as err:  # raw response bytes (speech) come straight from the transport
        raise StageError(stage, url, "timeout", f"no answer in time ({type(err).__name__})") from err
    except httpx2.HTTPError as err:
        raise StageError(stage, url, "cut", f"the connection broke mid-response ({err})") from err


@dataclass(frozen=True)
class ServiceStatus:
    """What ``GET /ready`` said: ``state`` is ready, loading, downloading, failed or down."""

    state: str
    model: str | None = None
    detail: str | None = None


class _ServiceClient:
    """One service: ``base_url`` without ``/v1``; the openai client talks to ``<base_url>/v1``."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 120.0,
        api_key: str | None = None,
        max_retries: int = 2,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        # without a key, a placeholder (servers without keys ignore it), never OPENAI_API_KEY: a user's OpenAI
        # key must not reach another server
        self.openai = OpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=api_key or NO_KEY,
            timeout=httpx2.Timeout(read_timeout_s, connect=connect_timeout_s),
            max_retries=max_retries,
            http_client=http_client,
        )

    def _get_json(self, path: str, timeout_s: float) -> Any:
        """GET ``<base_url><path>`` once (no retries) and return its JSON; raises the openai client's errors."""
        return self.openai.get(
            f"{self.base_url}{path}", cast_to=object, options={"timeout": timeout_s, "max_retries": 0}
        )

    def status(self) -> ServiceStatus:
        """Probe ``/ready`` (falls back to ``/v1/models`` for servers without it); never raises."""
        try:
            body = self._get_json("/ready", 2.0)
        except openai.NotFoundError:
            try:
                data = self.openai.with_options(timeout=2.0, max_retries=0).models.list().data
            except openai.OpenAIError:
                return ServiceStatus("down")
            return ServiceStatus("ready", data[0].id if data else None)
        except openai.APIStatusError as err:  # 503 while loading or downloading, with the same body
            body = err.body if isinstance(err.body, dict) else {}
            return ServiceStatus(body.get("status", "down"), body.get("model"), body.get("detail"))
        except openai.OpenAIError:
            return ServiceStatus("down")
        if not isinstance(body, dict):
            return ServiceStatus("ready")
        return ServiceStatus(body.get("status", "ready"), body.get("model"), body.get("detail"))

    def close(self) -> None:
        self.openai.close()


class SttClient(_ServiceClient):
    """``POST /v1/audio/transcriptions``: audio bytes in any container -> transcript text."""

    def transcribe(self, audio: bytes, *, filename: str = "audio.wav", language: str | None = None) -> str:
        """Transcribe one recording; raises StageError."""
        with failures_as_stage_errors("stt", self.base_url):
            transcription = self.openai.audio.transcriptions.create(
                file=(filename, audio),
                model=self.model,
                language=language or openai.omit,
                response_format="json",
            )
        return transcription.text.strip()


class LlmClient(_ServiceClient):
    """``POST /v1/chat/completions`` with ``stream=True``: yields the reply's text deltas."""

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        cancellation: Cancellation | None = None,
        on_usage: Callable[[dict[str, int]], None] | None = None,
    ) -> Iterator[str]:
        """Yield content deltas as the server generates them; stop quietly once ``cancellation`` is set.

        ``on_usage``, if given, gets the server's token counts (``prompt_tokens``, ``completion_tokens``,
        ``total_tokens``) from the stream's last chunk (asked for with ``stream_options.include_usage``).

        Raises StageError; kind ``cut`` when the stream breaks, carries an error event, or ends without a
        ``finish_reason`` (a server that dropped the stream, as llama-cpp-python's own server does under load).
        """
        with failures_as_stage_errors("llm", self.base_url):
            stream = self.openai.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", list(messages)),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stream_options={"include_usage": True} if on_usage is not None else openai.omit,
            )
        if cancellation is not None:
            cancellation.register(stream.close)
        finish_reason: str | None = None
        with _absorbing(cancellation), stream, failures_as_stage_errors("llm", self.base_url, streaming=True):
            for chunk in stream:
                if cancellation is not None and cancellation.cancelled:
                    break
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
                    finish_reason = choice.finish_reason or finish_reason
                if on_usage is not None and chunk.usage is not None:
                    on_usage(chunk.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}))
        if finish_reason is None and not (cancellation is not None and cancellation.cancelled):
            raise StageError("llm", self.base_url, "cut", "the reply stream ended without a finish_reason")


@dataclass(frozen=True)
class PcmChunk:
    """Signed 16-bit little-endian mono PCM bytes at ``sample_rate_hz``."""

    data: bytes
    sample_rate_hz: int


class TtsClient(_ServiceClient):
    """``POST /v1/audio/speech`` with ``response_format: pcm``: yields PCM chunks as they are synthesised."""

    def stream_pcm(
        self, text: str, *, voice: str, speed: float = 1.0, cancellation: Cancellation | None = None
    ) -> Iterator[PcmChunk]:
        """Yield PCM16 chunks of ``text`` spoken by ``voice`` as they arrive; raises StageError.

        Setting ``cancellation`` closes the response (the service stops synthesising) and ends the iteration.

        The sample rate comes from the response's ``X-Sample-Rate`` header (OpenAI's 24 kHz without it).
        """
        with ExitStack() as stack:
            with failures_as_stage_errors("tts", self.base_url):
                response = stack.enter_context(
                    self.openai.audio.speech.with_streaming_response.create(
                        model=self.model, input=text, voice=voice, response_format="pcm", speed=speed
                    )
                )
            if cancellation is not None:
                cancellation.register(response.close)
            with _absorbing(cancellation), failures_as_stage_errors("tts", self.base_url, streaming=True):
                rate = int(response.headers.get("x-sample-rate", OPENAI_PCM_SAMPLE_RATE_HZ))
                carry = b""
                for data in response.iter_bytes():
                    if cancellation is not None and cancellation.cancelled:
                        break
                    data = carry + data
                    cut = len(data) - len(data) % 2  # never split a 16-bit sample across chunks
                    carry = data[cut:]
                    if cut:
                        yield PcmChunk(data[:cut], rate)

    def voices(self) -> list[str]:
        """Voice ids from ``GET /v1/audio/voices`` (the default first), then OpenAI's aliases; [] if unavailable."""
        try:
            body = self._get_json("/v1/audio/voices", 3.0)
        except openai.OpenAIError:
            return []
        if not isinstance(body, dict):
            return []
        ids = [str(card["id"]) for card in body.get("data", []) if "id" in card]
        return ids + [alias for alias in body.get("aliases", {}) if alias not in ids]
