"""``stream=true``: a recording of any length transcribed as it is decoded, sent as OpenAI's Server-Sent Events.

Events, each ``data: <json>`` and a blank line (``schemas``): ``transcript.text.delta`` per segment with text, as
soon as it is decoded; then one ``transcript.text.done`` with the whole text, ``usage`` (``{"type": "duration",
"seconds": ...}``), ``languages`` and, beyond OpenAI's fields, the ``segments`` (and ``words``) of verbose_json. A
failure after the response started (audio past the duration limit, bytes undecodable mid-file) sends one ``error``
event (``{"type": "error", "error": {OpenAI's error object}}``) instead of the done event, and ends the stream.

The engine's ``transcribe_stream`` is driven on the model's worker one event per hop (``WorkerSteps``) rather than
consumed there in one call, for two reasons. Requests that arrive meanwhile (a voice agent's question) are served
between two segments of an hour-long recording, not after it. And no work is done unless the next event is asked
for: a client that leaves stops the decoding within the event under way (one segment, or one piece of about a
minute of silence), and a slow reader holds the work back rather than piling events up in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Generator
from typing import Any, Generic, TypeVar

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service_common.errors import InferenceError, ServiceError
from service_common.schemas import ErrorDetail
from service_common.worker import ModelWorker

from .deps import SpooledAudio
from .engine import AudioDecoded, Segment, SegmentDecoded, StreamEvent, Transcriber
from .metrics import StreamOutcome, SttMetrics
from .schemas import (
    DurationUsage,
    TranscriptError,
    TranscriptionSegment,
    TranscriptionWord,
    TranscriptLanguage,
    TranscriptTextDelta,
    TranscriptTextDone,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""No cache, and no buffering in an nginx in front: each event should leave as soon as it is written."""

_closing: set[asyncio.Task[Any]] = set()
"""Close calls under way on a worker; held here because the event loop keeps only weak references to tasks."""


class WorkerSteps(Generic[T]):
    """Drives a blocking generator on ``worker`` one item per hop, so other calls on the worker run between items.

    ``processing_s`` adds up the seconds spent in the generator (queueing excluded). Not for concurrent use.
    """

    def __init__(self, worker: ModelWorker, generator: Generator[T, None, None]) -> None:
        self._worker = worker
        self._generator = generator
        self._finished = False
        self.processing_s = 0.0

    async def next(self) -> T | None:
        """The generator's next item, computed on the worker; None once it is exhausted. Raises what it raises."""
        if self._finished:
            return None
        try:
            item, spent_s = await self._worker.run(self._step)
        except Exception:
            self._finished = True  # a generator that raised is finished (a cancelled caller is not an Exception)
            raise
        self.processing_s += spent_s
        self._finished = item is None
        return item

    def _step(self) -> tuple[T | None, float]:
        started = time.perf_counter()
        item = next(self._generator, None)
        return item, time.perf_counter() - started

    def close(self) -> None:
        """Close the generator on the worker, after the hop under way if there is one. Returns at once, so it can be
        called while the caller is being cancelled (a client that left): nothing is awaited."""
        if self._finished:
            return
        self._finished = True
        task = asyncio.get_running_loop().create_task(self._worker.run(self._generator.close))
        _closing.add(task)
        task.add_done_callback(_closed)


def _closed(task: asyncio.Task[Any]) -> None:
    _closing.discard(task)
    if not task.cancelled() and task.exception() is not None:  # e.g. the worker was shut down with the app
        logger.warning("closing a streamed transcription failed: %r", task.exception())


async def stream_transcription(
    audio: SpooledAudio,
    *,
    engine: Transcriber,
    worker: ModelWorker,
    metrics: SttMetrics,
    language: str | None,
    prompt: str | None,
    temperature: float,
    word_timestamps: bool,
) -> StreamingResponse:
    """The ``text/event-stream`` response of a ``stream=true`` request (events: the module docstring).

    The first event is computed before the response starts (the first piece of the recording, up to a minute), so
    a file that is not audio, holds none or is too short still gets its HTTP error (415, 400) rather than an
    error event.
    """
    steps: WorkerSteps[StreamEvent] = WorkerSteps(
        worker,
        engine.transcribe_stream(
            audio.decoded(),
            language=language,
            prompt=prompt,
            temperature=temperature,
            word_timestamps=word_timestamps,
        ),
    )
    try:
        first = await steps.next()
    except ServiceError:
        raise
    except Exception as err:
        raise InferenceError(f"transcription failed: {type(err).__name__}: {err}") from err
    events = _events(first, steps, audio, metrics, word_timestamps=word_timestamps)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def _events(
    first: StreamEvent | None,
    steps: WorkerSteps[StreamEvent],
    audio: SpooledAudio,
    metrics: SttMetrics,
    *,
    word_timestamps: bool,
) -> AsyncIterator[bytes]:
    """The events of one streamed transcription; logs and counts (``metrics.observe_stream``) how it ended."""
    deltas: list[str] = []
    segments: list[Segment] = []  # for the done event: about 200 bytes per segment, some 100 kB for an hour of speech
    duration_s, language = 0.0, None
    outcome: StreamOutcome = "client_gone"  # unless the loop ends or fails: the response was cancelled or closed
    try:
        event = first
        while event is not None:
            if isinstance(event, SegmentDecoded):
                segments.append(event.segment)
                if event.delta:
                    deltas.append(event.delta)
                    yield _sse(
                        TranscriptTextDelta(delta=event.delta, start=event.segment.start_s, end=event.segment.end_s)
                    )
            elif isinstance(event, AudioDecoded):
                duration_s, language = event.duration_s, event.language
            event = await steps.next()
        outcome = "completed"
        yield _sse(
            TranscriptTextDone(
                text="".join(deltas),
                usage=DurationUsage(seconds=round(duration_s, 3)),
                languages=[TranscriptLanguage(code=language)] if language else [],
                segments=[TranscriptionSegment.from_segment(segment) for segment in segments],
                words=[TranscriptionWord.from_word(word) for segment in segments for word in segment.words]
                if word_timestamps
                else None,
            )
        )
    except ServiceError as err:
        outcome = "error"
        logger.warning("streamed transcription ended by an error at %.1f s of audio: %s", duration_s, err.message)
        error = ErrorDetail(message=err.message, type=err.error_type, code=err.code, param=err.param)
        yield _sse(TranscriptError(error=error))
    except Exception as err:
        outcome = "error"
        logger.exception("streamed transcription failed at %.1f s of audio", duration_s)
        message = f"transcription failed: {type(err).__name__}: {err}"
        yield _sse(TranscriptError(error=ErrorDetail(message=message, type="server_error", code="inference_error")))
    finally:
        steps.close()
        metrics.observe_stream(outcome, duration_s, steps.processing_s)
        speed = duration_s / steps.processing_s if steps.processing_s > 0 else 0.0
        logger.info(
            "streamed transcription %s: %.1f s of audio (%d bytes, %s) in %.2f s on the model (%.0f audio s per s), "
            "%d segments, language %s",
            "stopped: the client went away" if outcome == "client_gone" else outcome,
            duration_s,
            audio.size_bytes,
            audio.filename or "unnamed",
            steps.processing_s,
            speed,
            len(segments),
            language,
        )


def _sse(event: BaseModel) -> bytes:
    return f"data: {event.model_dump_json(exclude_none=True)}\n\n".encode()
