"""Transcripts of uploaded recordings: the STT service's ``stream=true`` transcription, and subtitles built from it.

``stream_transcription`` sends one recording with the official ``openai`` client and yields the transcript as it
grows (one ``TranscriptDelta`` per ``transcript.text.delta`` event, a decoded segment), then one
``FinishedTranscription`` from the ``transcript.text.done`` event, whose ``segments`` (beyond OpenAI's fields, as in
``verbose_json``) give every phrase's ``start`` and ``end`` in seconds from the start of the recording
(docs/transcription.md). Each delta also says where its segment ends in the recording (``end``, beyond OpenAI's
fields): how far the transcription is; ``audio_duration_s`` reads the length the file's header states, the total.

``to_txt``, ``to_srt`` and ``to_vtt`` turn a transcript into the three downloads; they are pure functions of the
text or of the segments (JSON objects with ``start``, ``end`` in s and ``text``, as the store keeps them).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import av
import openai

from .clients import StageError, SttClient, failures_as_stage_errors

SEGMENT_FIELDS = ("start", "end", "text")
"""What is kept of each of the done event's segments (it also has ``tokens``, ``avg_logprob``, ...)."""


@dataclass(frozen=True)
class TranscriptDelta:
    """The transcript so far, after one more ``transcript.text.delta`` event."""

    text: str
    """Every delta received, joined (the service puts the space before each one but the first)."""
    phrases: int
    """How many deltas (segments with text) have arrived."""
    elapsed_s: float
    """Seconds since the request was sent."""
    done_s: float | None = None
    """Where the latest segment ends in the recording (seconds): how far the transcription is; None if not said."""


@dataclass(frozen=True)
class FinishedTranscription:
    """What the ``transcript.text.done`` event says."""

    text: str
    segments: list[dict[str, Any]]
    """``{"start": s, "end": s, "text": str}`` per segment, in order (``SEGMENT_FIELDS``)."""
    language: str | None
    """ISO-639-1 code the service was given or detected; None if it said none."""
    duration_s: float | None
    """Seconds of audio the service decoded (the event's ``usage.seconds``); None if it said none."""
    elapsed_s: float
    """Seconds from sending the request to the done event."""


def stream_transcription(
    client: SttClient, audio: bytes, *, filename: str, language: str | None = None
) -> Iterator[TranscriptDelta | FinishedTranscription]:
    """Transcribe ``audio`` (a file in any container the service decodes) with ``stream=true``: a
    ``TranscriptDelta`` per decoded segment with text, then one ``FinishedTranscription``.

    Raises ``StageError`` (stage ``stt``): ``rejected`` with the service's message for an HTTP error before the
    stream (413 over the service's stream limits, 415 not audio, 400 empty or too short), ``unreachable``,
    ``timeout``, and ``cut`` for an ``error`` event, a broken connection or a stream that ends without a done event.
    Closing the iterator early closes the response, and the service stops decoding.
    """
    started = time.perf_counter()
    with failures_as_stage_errors("stt", client.base_url):
        stream = client.openai.audio.transcriptions.create(
            file=(filename, audio), model=client.model, language=language or openai.omit, stream=True
        )
    deltas: list[str] = []
    with stream, failures_as_stage_errors("stt", client.base_url, streaming=True):
        for event in stream:
            if event.type == "transcript.text.delta":
                deltas.append(event.delta)
                end = (event.model_extra or {}).get("end")
                yield TranscriptDelta(
                    "".join(deltas),
                    len(deltas),
                    time.perf_counter() - started,
                    float(end) if isinstance(end, int | float) else None,
                )
            elif event.type == "transcript.text.done":
                yield finished_transcription(event.to_dict(), time.perf_counter() - started)
                return
    raise StageError("stt", client.base_url, "cut", "the transcription stream ended without its done event")


def finished_transcription(done: dict[str, Any], elapsed_s: float) -> FinishedTranscription:
    """A ``transcript.text.done`` event's JSON object as a ``FinishedTranscription`` (missing fields: None, [])."""
    usage = done.get("usage") or {}
    seconds = usage.get("seconds") if usage.get("type") == "duration" else None
    languages = done.get("languages") or []
    return FinishedTranscription(
        text=str(done.get("text", "")).strip(),
        segments=[{field: segment[field] for field in SEGMENT_FIELDS} for segment in done.get("segments") or []],
        language=languages[0].get("code") if languages else None,
        duration_s=float(seconds) if seconds is not None else None,
        elapsed_s=elapsed_s,
    )


def audio_duration_s(audio: bytes) -> float | None:
    """The duration (s) the file's header states, read with PyAV without decoding; None when it states none (a
    browser's webm) or the bytes are not a container PyAV opens."""
    try:
        with av.open(io.BytesIO(audio), mode="r") as container:
            if container.duration is not None:
                return float(container.duration / av.time_base)
            for stream in container.streams.audio:
                if stream.duration is not None and stream.time_base is not None:
                    return float(stream.duration * stream.time_base)
    except (av.FFmpegError, ValueError):
        return None
    return None


# ----- downloads -------------------------------------------------------------------------------------------------


def to_txt(text: str) -> str:
    """The transcript as a text file: its text and one newline."""
    return f"{text.strip()}\n"


def _timestamp(seconds: float, decimal_mark: str) -> str:
    """``HH:MM:SS<mark>mmm``, rounded to the millisecond; negative times are 0."""
    milliseconds = max(0, round(seconds * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole_seconds, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole_seconds:02d}{decimal_mark}{milliseconds:03d}"


def _cues(segments: Sequence[dict[str, Any]]) -> Iterator[tuple[float, float, str]]:
    """(start s, end s, text) of every segment with text; an end before its start is moved to the start."""
    for segment in segments:
        text = " ".join(str(segment.get("text", "")).split())
        if text:
            start = float(segment["start"])
            yield start, max(start, float(segment["end"])), text


def to_srt(segments: Sequence[dict[str, Any]]) -> str:
    """SubRip subtitles: one numbered cue per segment with text, ``00:00:01,500 --> 00:00:04,000``."""
    return "".join(
        f"{number}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n\n"
        for number, (start, end, text) in enumerate(_cues(segments), start=1)
    )


def _vtt_text(text: str) -> str:
    # WebVTT cue text is markup: &, < and > must be escaped, and "-->" may not appear in it
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments: Sequence[dict[str, Any]]) -> str:
    """WebVTT subtitles: the ``WEBVTT`` header, then one cue per segment with text, ``00:00:01.500 --> ...``."""
    cues = "".join(
        f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{_vtt_text(text)}\n\n"
        for start, end, text in _cues(segments)
    )
    return f"WEBVTT\n\n{cues}"


def download_name(file_name: str, extension: str) -> str:
    """``meeting.m4a`` -> ``meeting.srt``: the recording's name with the download's extension."""
    stem = PurePath(file_name).stem or "transcript"
    return f"{stem}.{extension}"


def clock_text(seconds: float) -> str:
    """``0:07``, ``1:22``, ``1:02:03``: a duration as a clock shows it (rounded to the second)."""
    minutes, whole_seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{whole_seconds:02d}" if hours else f"{minutes}:{whole_seconds:02d}"
