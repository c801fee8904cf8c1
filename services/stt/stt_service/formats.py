"""Subtitle renderings of a transcription: SubRip (``.srt``) and WebVTT (``.vtt``), one cue per segment."""

from __future__ import annotations

from .engine import Transcription


def _timestamp(seconds: float, decimal_marker: str) -> str:
    milliseconds = max(0, round(seconds * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{milliseconds:03d}"


def to_srt(result: Transcription) -> str:
    """SubRip: numbered cues from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, a blank line after each cue."""
    cues = [
        f"{number}\n{_timestamp(segment.start_s, ',')} --> {_timestamp(segment.end_s, ',')}\n{segment.text}\n"
        for number, segment in enumerate(result.segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(result: Transcription) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``, a blank line before each."""
    cues = [
        f"{_timestamp(segment.start_s, '.')} --> {_timestamp(segment.end_s, '.')}\n{segment.text}\n"
        for segment in result.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)
