"""Annotated dependencies of the STT routes: settings, the model and its worker, and the validated upload."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, BinaryIO

import numpy as np
from fastapi import Depends, File, Form, UploadFile

from service_common.audio import WHISPER_SAMPLE_RATE_HZ, decode_audio, iter_decoded_audio
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


@dataclass(frozen=True)
class SpooledAudio:
    """An upload for ``stream=true``, left where FastAPI spooled it (a temporary file on disk above 1 MB) and decoded
    frame by frame while it is transcribed (``decoded``), so its length costs no memory.
    """

    file: BinaryIO
    size_bytes: int
    filename: str | None
    max_duration_s: float

    def decoded(self) -> Iterator[np.ndarray]:
        """float32 mono 16 kHz frames in [-1, 1] (``iter_decoded_audio``), read from the file as they are needed.

        Raises, while iterating: AudioDecodeError (415) for undecodable bytes, InputTooLarge (413, ``file``) once the
        audio passes ``max_duration_s``, EmptyInput (400) when it holds no sample, InvalidRequest
        ``audio_too_short`` (400) when it ends under 0.1 s. Reads its own descriptor of the file: the upload's is
        closed when the response ends, which a client that leaves makes happen while this may still be reading.
        """
        max_samples = int(self.max_duration_s * WHISPER_SAMPLE_RATE_HZ)
        decoded_samples = 0
        with (
            os.fdopen(os.dup(self.file.fileno()), "rb") as file,  # fileno() moves a small spooled upload to disk
            contextlib.closing(iter_decoded_audio(file, WHISPER_SAMPLE_RATE_HZ)) as frames,
        ):
            file.seek(0)
            for samples in frames:
                decoded_samples += samples.size
                if decoded_samples > max_samples:
                    raise InputTooLarge(
                        f"the audio lasts more than the limit of {self.max_duration_s:.0f} s", param="file"
                    )
                yield samples
        if decoded_samples == 0:
            raise EmptyInput("the file contains no audio samples", param="file")
        duration_s = decoded_samples / WHISPER_SAMPLE_RATE_HZ
        if duration_s + RESAMPLING_SLACK_S < MIN_AUDIO_DURATION_S:
            raise InvalidRequest(
                f"the audio is too short ({duration_s:.3f} s); the minimum is {MIN_AUDIO_DURATION_S} s",
                code="audio_too_short",
                param="file",
            )


async def read_audio_upload(
    file: Annotated[
        UploadFile,
        File(
            description=(
                "The audio: wav (any rate and channels), flac, mp3, ogg/opus, webm, m4a: whatever a browser "
                "records. At most STT_MAX_UPLOAD_BYTES (default 25 MiB) and STT_MAX_AUDIO_DURATION_S "
                "(default 600 s); with stream=true at most STT_MAX_STREAM_UPLOAD_BYTES (default 512 MiB) and "
                "STT_MAX_STREAM_AUDIO_DURATION_S (default 4 h)."
            )
        ),
    ],
    settings: SettingsDep,
    stream: Annotated[
        bool,
        Form(
            description=(
                "true: answer with Server-Sent Events as the audio is transcribed (OpenAI's transcript.text.delta "
                "per segment, then transcript.text.done with the text, usage, segments), for recordings of any "
                "length up to the stream limits; response_format is then ignored."
            )
        ),
    ] = False,
) -> DecodedAudio | SpooledAudio:
    """Read, bound and decode the uploaded file; with ``stream`` bound it and leave it spooled (``SpooledAudio``).

    Raises EmptyInput (400) for zero bytes, InvalidRequest ``audio_too_short`` (400) below 0.1 s, InputTooLarge
    (413) above the byte or duration limit, AudioDecodeError (415) when the bytes are not decodable audio. Decoding
    runs in a thread, off the event loop, and not on the model's worker, so it overlaps with another request's
    inference. With ``stream`` only the size and the duration the header states are checked here; the rest while
    decoding (``SpooledAudio.decoded``).
    """
    if stream:
        return await _spooled_upload(file, settings)
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


AudioUpload = Annotated[DecodedAudio | SpooledAudio, Depends(read_audio_upload)]
"""The upload decoded whole (``DecodedAudio``), or with ``stream=true`` bounded and left spooled (``SpooledAudio``)."""


async def _spooled_upload(file: UploadFile, settings: Settings) -> SpooledAudio:
    """Bound a ``stream=true`` upload by ``max_stream_upload_bytes`` and, when its header states one, by the duration
    ``max_stream_audio_duration_s``, before any event is sent. Raises EmptyInput (400), InputTooLarge (413)."""
    limit = settings.max_stream_upload_bytes
    size = file.size
    if size is None:  # Starlette counts the bytes as it spools them; a hand-built UploadFile may not have
        size = await asyncio.to_thread(file.file.seek, 0, io.SEEK_END)
    if size > limit:
        raise InputTooLarge(f"the upload has {size} bytes; the limit with stream=true is {limit}", param="file")
    if size == 0:
        raise EmptyInput("the uploaded file is empty", param="file")
    max_duration_s = settings.max_stream_audio_duration_s
    declared_s = await asyncio.to_thread(_declared_duration_s, file.file)
    if declared_s is not None and declared_s > max_duration_s + 1.0:
        raise InputTooLarge(
            f"the audio lasts {declared_s:.1f} s; the limit with stream=true is {max_duration_s:.0f} s", param="file"
        )
    return SpooledAudio(
        file=file.file,
        size_bytes=size,
        filename=file.filename,
        max_duration_s=max_duration_s,
    )


def _declared_duration_s(data: bytes | BinaryIO) -> float | None:
    """Duration the container header states, in seconds, or None if unknown or unreadable.

    ``data``: the upload's bytes, or its file (read from the start, and left at the start). Browser recordings (webm
    from MediaRecorder) carry no duration; undecodable bytes are left for the decoder to report.
    """
    import av

    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        source.seek(0)
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if container.duration is None:
                return None
            return float(container.duration) / av.time_base
    except (av.FFmpegError, ValueError, IndexError, UnicodeDecodeError):
        return None
    finally:
        source.seek(0)


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
