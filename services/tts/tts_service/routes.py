"""``POST /v1/audio/speech`` (OpenAI-compatible, streamed) and ``GET /v1/audio/voices``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from service_common.audio import MEDIA_TYPES
from service_common.disconnect import client_gone
from service_common.errors import InferenceError, ServiceError
from service_common.schemas import ERROR_RESPONSES, ErrorResponse

from .deps import EngineDep, MetricsDep, SettingsDep, WorkerDep
from .encoding import make_encoder
from .schemas import SpeechRequest, VoiceCard, VoiceList
from .speech import check_input, encoded_speech, prepend, resolve_voice, voice_aliases

router = APIRouter(tags=["audio"])

SPEECH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media_type: {} for media_type in dict.fromkeys(MEDIA_TYPES.values())},
        "description": "Audio, chunked as it is synthesised (flac: in one piece at the end). Headers: "
        "X-Sample-Rate (Hz of the encoded audio), X-Voice (voice id that spoke).",
    },
    413: {"model": ErrorResponse, "description": "input longer than TTS_MAX_INPUT_CHARS"},
    **ERROR_RESPONSES,
}


@router.post(
    "/v1/audio/speech",
    response_class=StreamingResponse,
    responses=SPEECH_RESPONSES,
    summary="Text to speech (OpenAI-compatible), streamed sentence by sentence",
)
async def create_speech(
    request: Request,
    body: SpeechRequest,
    engine: EngineDep,
    worker: WorkerDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> StreamingResponse:
    """Speak ``input``; the first sentence's audio is sent before later sentences are synthesised.

    Errors (OpenAI shape): 400 empty input, unknown voice, speed outside 0.25-4.0 or unknown format;
    413 input too long; 503 model not ready; 500 synthesis failed before the first audio.
    """
    started_at = time.perf_counter()
    text = check_input(body.input, settings.max_input_chars)
    voice = resolve_voice(body.voice, engine)
    encoder = make_encoder(body.response_format, voice.sample_rate_hz)
    # until the response starts, a client that leaves (while this waits for the model) stops the synthesis;
    # afterwards StreamingResponse notices the disconnect itself
    async with client_gone(request) as gone:
        stream = worker.stream(
            lambda: encoded_speech(
                engine,
                text,
                voice=voice,
                speed=body.speed,
                instructions=body.instructions,
                encoder=encoder,
                response_format=body.response_format,
                started_at=started_at,
                client_gone=gone,
                metrics=metrics,
            )
        )
        # waiting for the first chunk here keeps failures of the first sentence a proper 500, not a cut stream
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = b""
        except ServiceError:
            await stream.aclose()
            raise
        except Exception as err:
            await stream.aclose()
            raise InferenceError(f"speech synthesis failed: {err}") from err
    headers = {"X-Sample-Rate": str(encoder.sample_rate_hz), "X-Voice": voice.id}
    return StreamingResponse(prepend(first, stream), media_type=MEDIA_TYPES[body.response_format], headers=headers)


@router.get("/v1/audio/voices", response_model=VoiceList, summary="The voices, plus OpenAI's names mapped to them")
async def list_voices(engine: EngineDep) -> VoiceList:
    return VoiceList(
        data=[VoiceCard(**vars(voice)) for voice in engine.voices()],
        default_voice=engine.default_voice,
        aliases=voice_aliases(engine),
    )
