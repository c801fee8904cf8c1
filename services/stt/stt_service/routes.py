"""``POST /v1/audio/transcriptions``: OpenAI's speech-to-text endpoint."""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import TypeAdapter

from service_common.disconnect import client_gone
from service_common.errors import ClientGone
from service_common.schemas import ERROR_RESPONSES, ErrorResponse

from .deps import AudioUpload, EngineDep, MetricsDep, SettingsDep, SpooledAudio, WorkerDep, check_language
from .engine import Transcription
from .formats import to_srt, to_vtt
from .schemas import (
    LANGUAGE_PATTERN,
    ResponseFormat,
    TimestampGranularity,
    TranscriptError,
    TranscriptionJson,
    TranscriptionVerbose,
    TranscriptTextDelta,
    TranscriptTextDone,
)
from .streaming import stream_transcription

logger = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000

router = APIRouter(tags=["audio"])


def _inline_refs(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``{"$ref": "#/$defs/<name>"}`` replaced by the definition (none is recursive), so it
    stands alone inside the OpenAPI document, whose root has no ``$defs``."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline_refs(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inline_refs(value, definitions) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(item, definitions) for item in schema]
    return schema


_EVENT_SCHEMA = TypeAdapter(TranscriptTextDelta | TranscriptTextDone | TranscriptError).json_schema()
SSE_EVENT_SCHEMA = {
    "type": "object",
    "description": "One Server-Sent Event (OpenAPI 3.2's reading of text/event-stream: the schema describes each "
    "event). `data` is a transcript.text.delta per decoded segment, then one transcript.text.done; or, when the "
    "transcription fails after the response started, one error event and no done event.",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": _inline_refs(_EVENT_SCHEMA, _EVENT_SCHEMA.get("$defs", {})),
        }
    },
}


@router.post(
    "/v1/audio/transcriptions",
    summary="Transcribe audio (OpenAI-compatible)",
    response_model=TranscriptionJson | TranscriptionVerbose,
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "json/verbose_json as JSON; text as text/plain; srt and vtt as subtitle text; with "
            "stream=true Server-Sent Events as the audio is transcribed.",
            "content": {
                "text/plain": {},
                "application/x-subrip": {},
                "text/vtt": {},
                "text/event-stream": {"schema": SSE_EVENT_SCHEMA},
            },
        },
        413: {
            "model": ErrorResponse,
            "description": "Upload or audio duration above the configured limit (with stream=true, the stream limits; "
            "a duration the header does not state is found while decoding: an error event then)",
        },
        415: {"model": ErrorResponse, "description": "The file is not decodable audio"},
    },
)
async def create_transcription(
    request: Request,
    audio: AudioUpload,
    engine: EngineDep,
    worker: WorkerDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    model: Annotated[
        str, Form(max_length=256, description="Any value is accepted (e.g. whisper-1); the loaded model answers.")
    ] = "whisper-1",
    language: Annotated[
        str | None,
        Form(
            pattern=LANGUAGE_PATTERN,
            description=(
                "ISO-639-1 code of the spoken language (e.g. 'en', 'de'). Omit to detect it (an extra pass on "
                "multilingual models). English-only models accept only 'en'."
            ),
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        Form(
            max_length=MAX_PROMPT_CHARS,
            description="Text that guides the style and spelling (names, jargon); Whisper keeps its last ~220 tokens.",
        ),
    ] = None,
    response_format: Annotated[
        ResponseFormat,
        Form(description="json: {text}; verbose_json: with language, duration, segments; text; srt; vtt."),
    ] = "json",
    temperature: Annotated[
        float,
        Form(
            ge=0.0,
            le=1.0,
            description=(
                "Sampling temperature, 0 to 1. 0: deterministic, raised step by step only for a stretch that "
                "decodes badly (a repetition loop), as OpenAI does."
            ),
        ),
    ] = 0.0,
    timestamp_granularities: Annotated[
        list[TimestampGranularity] | None,
        Form(
            alias="timestamp_granularities[]",
            description="'segment' (always given) and/or 'word': word times in verbose_json (costs a little more).",
        ),
    ] = None,
) -> Response:
    """Transcribe the uploaded audio with the loaded Whisper model; with stream=true as Server-Sent Events, in
    bounded memory whatever the recording's length (``streaming``).

    Errors (OpenAI's shape): 400 empty file, bad field or unsupported language; 413 upload or audio above the
    limits; 415 undecodable file; 503 model not ready.
    """
    decode_language = check_language(language, engine, settings.language)
    word_timestamps = "word" in (timestamp_granularities or [])
    if isinstance(audio, SpooledAudio):
        return await stream_transcription(
            audio,
            engine=engine,
            worker=worker,
            metrics=metrics,
            language=decode_language,
            prompt=prompt,
            temperature=temperature,
            word_timestamps=word_timestamps,
        )

    def transcribe_timed(gone: threading.Event) -> tuple[Transcription, float]:
        if gone.is_set():  # the client left while this waited for the model: nobody would read the text
            logger.info("client went away before its %.2f s of audio were transcribed; skipped", audio.duration_s)
            raise ClientGone("the client disconnected before the transcription started")
        # timed from the worker thread, so the logged processing time excludes the wait in the queue
        started = time.perf_counter()
        result = engine.transcribe(
            audio.samples,
            language=decode_language,
            prompt=prompt,
            temperature=temperature,
            word_timestamps=word_timestamps,
        )
        return result, started

    submitted = time.perf_counter()
    async with client_gone(request) as gone:
        result, started = await worker.run(transcribe_timed, gone)
    processing_s = time.perf_counter() - started
    metrics.observe(result, processing_s)
    logger.info(
        "transcribed %.2f s of audio (%d bytes) in %.2f s (RTF %.3f, queued %.2f s), language %s, %d segments, %s",
        audio.duration_s,
        audio.size_bytes,
        processing_s,
        processing_s / audio.duration_s,
        started - submitted,
        result.language,
        len(result.segments),
        response_format,
    )

    if response_format == "json":
        return JSONResponse(TranscriptionJson(text=result.text).model_dump())
    if response_format == "verbose_json":
        verbose = TranscriptionVerbose.from_transcription(result, with_words=word_timestamps)
        return JSONResponse(verbose.model_dump(exclude_none=True))
    if response_format == "srt":
        return PlainTextResponse(to_srt(result), media_type="application/x-subrip")
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(result), media_type="text/vtt")
    return PlainTextResponse(result.text)
