"""Annotated dependencies of the STT routes: settings, the model and its worker, and the validated upload."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Depends, File, UploadFile

from service_common.audio import WHISPER_SAMPLE_RATE_HZ, decode_audio
from service_common.errors import EmptyInput, InputTooLarge, InvalidRequest
from service_common.lifecycle import app_settings, model_metrics, model_worker, ready_engine
from service_common.worker import ModelWorker

from .config import Settings
from .engine import Transcriber
from .metrics import SttMetrics

logger = logging.getLogger(__name__)

MIN_AUDIO_DURATION_S = 0.1
"""OpenAI's shortest accepted audio (s); shorter audio gets 400 ``audio_too_short``."""
RESAMPLING_SLACK_S = 0.001
"""Resampling to 16 kHz may shorten a clip by a sample or two: a 0.1 s clip at another rate still counts as 0.1 s."""

SettingsDep = Annotated[Settings, Depends(app_settings)]
EngineDep = Annotated[Transcriber, Depends(ready_engine)]
MetricsDep = Annotated[SttMetrics, Depends(model_metrics)]
"""The loaded, warmed-up model; 503 ``model_not_ready`` before."""
WorkerDep = Annotated[ModelWorker, Depends(model_worker)]


@dataclass(frozen=True)
class DecodedAudio:
    """An upload decoded to float32 mono 16 kHz samples in [-1, 1], shape ``(n,)``."""

    samples: np.ndarray
    size_bytes: int
    filename: str | None

    @property
    def duration_s(self) -> float:
        return self.samples.size / WHISPER_SAMPLE_RATE_HZ


async def read_audio_upload(
    file: Annotated[
        UploadFile,
        File(
            description=(
                "The audio: wav (any rate and channels), flac, mp3, ogg/opus, webm, m4a: whatever a browser "
                "records. At most STT_MAX_UPLOAD_BYTES (default 25 MiB) and STT_MAX_AUDIO_DURATION_S "
                "(default 600 s)."
            )
        ),
    ],
    settings: SettingsDep,
) -> DecodedAudio:
    """Read, bound and decode the uploaded file.

    Raises EmptyInput (400) for zero bytes, InvalidRequest ``audio_too_short`` (400) below 0.1 s, InputTooLarge
    (413) above the byte or duration limit, AudioDecodeError (415) when the bytes are not decodable audio. Decoding
    runs in a thread, off the event loop, and not on the model's worker, so it overlaps with another request's
    inference.
    """
    limit = settings.max_upload_bytes
    if file.size is not None and file.size > limit:
        raise InputTooLarge(f"the upload has {file.size} bytes; the limit is {limit}", param="file")
    data = await file.read(limit + 1)
    if not data:
        raise EmptyInput("the uploaded file is empty", param="file")
    if len(data) > limit:
        raise InputTooLarge(f"the upload is larger than the limit of {limit} bytes", param="file")

    max_duration_s = settings.max_audio_duration_s
    declared_s = await asyncio.to_thread(_declared_duration_s, data)
    if declared_s is not None and declared_s > max_duration_s + 1.0:
        # refuse before decoding: 25 MB of low-bitrate opus decodes to gigabytes of float32
        raise InputTooLarge(f"the audio lasts {declared_s:.1f} s; the limit is {max_duration_s:.0f} s", param="file")
    samples = await asyncio.to_thread(decode_audio, data, WHISPER_SAMPLE_RATE_HZ)
    audio = DecodedAudio(samples=samples, size_bytes=len(data), filename=file.filename)
    if audio.duration_s > max_duration_s:
        raise InputTooLarge(
            f"the audio lasts {audio.duration_s:.1f} s; the limit is {max_duration_s:.0f} s", param="file"
        )
    if audio.samples.size == 0:
        raise EmptyInput("the file contains no audio samples", param="file")
    if audio.duration_s + RESAMPLING_SLACK_S < MIN_AUDIO_DURATION_S:
        raise InvalidRequest(
            f"the audio is too short ({audio.duration_s:.3f} s); the minimum is {MIN_AUDIO_DURATION_S} s",
            code="audio_too_short",
            param="file",
        )
    return audio


AudioUpload = Annotated[DecodedAudio, Depends(read_audio_upload)]


def _declared_duration_s(data: bytes) -> float | None:
    """Duration the container header states, in seconds, or None if unknown or unreadable.

    Browser recordings (webm from MediaRecorder) carry no duration; undecodable bytes are left for
    ``decode_audio`` to report.
    """
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if container.duration is None:
                return None
            return float(container.duration) / av.time_base
    except (av.FFmpegError, ValueError, IndexError, UnicodeDecodeError):
        return None


def check_language(language: str | None, transcriber: Transcriber, default: str | None) -> str | None:
    """The language to decode in: the request's ISO-639-1 code (lower-cased), else ``default``, else None
    (detect). Raises InvalidRequest (400) when the model does not know the language, e.g. 'fr' with an
    English-only ``.en`` model.
    """
    code = (language or default or "").lower() or None
    if code is not None and code not in transcriber.supported_languages:
        supported = "only 'en'" if transcriber.supported_languages == {"en"} else "another language"
        raise InvalidRequest(
            f"model {transcriber.model_id!r} cannot transcribe language {code!r}; use {supported}",
            code="unsupported_language",
            param="language",
        )
    return code
