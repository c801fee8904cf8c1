"""The Transcribe page's pure helpers (``voice_agent.transcribe``): txt, srt and vtt built from a transcript, against
hand-written expected files; the done event read into a ``FinishedTranscription``; durations from file headers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voice_agent.store import content_sha256
from voice_agent.transcribe import (
    audio_duration_s,
    clock_text,
    download_name,
    finished_transcription,
    to_srt,
    to_txt,
    to_vtt,
)

SEGMENTS = [
    {"start": 0.0, "end": 2.5, "text": " And so my fellow Americans,"},
    {"start": 2.5, "end": 3.2, "text": "   "},  # no text: no cue
    {"start": 3.2, "end": 7.9996, "text": " ask not what your country can do for you"},
    {"start": 3725.04, "end": 3724.0, "text": " <laughs> & then -->\nmore"},  # past an hour; an end before its start
]

EXPECTED_SRT = """\
1
00:00:00,000 --> 00:00:02,500
And so my fellow Americans,

2
00:00:03,200 --> 00:00:08,000
ask not what your country can do for you

3
01:02:05,040 --> 01:02:05,040
<laughs> & then --> more

"""

EXPECTED_VTT = """\
WEBVTT

00:00:00.000 --> 00:00:02.500
And so my fellow Americans,

00:00:03.200 --> 00:00:08.000
ask not what your country can do for you

01:02:05.040 --> 01:02:05.040
&lt;laughs&gt; &amp; then --&gt; more

"""


def test_srt_numbers_one_cue_per_segment_with_text_in_hours_minutes_seconds_commas_milliseconds() -> None:
    assert to_srt(SEGMENTS) == EXPECTED_SRT


def test_vtt_has_its_header_dotted_milliseconds_and_escaped_cue_text() -> None:
    assert to_vtt(SEGMENTS) == EXPECTED_VTT


def test_no_segments_make_empty_subtitles() -> None:
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n\n"


def test_txt_is_the_text_and_one_newline() -> None:
    assert to_txt("  And so my fellow Americans.\n") == "And so my fellow Americans.\n"
    assert to_txt("") == "\n"


def test_download_names_keep_the_recordings_name() -> None:
    assert download_name("meeting 2024.m4a", "srt") == "meeting 2024.srt"
    assert download_name("archive.tar.flac", "vtt") == "archive.tar.vtt"
    assert download_name("", "txt") == "transcript.txt"


def test_clock_text() -> None:
    assert [clock_text(s) for s in (0, 7.4, 82, 3723)] == ["0:00", "0:07", "1:22", "1:02:03"]


def test_the_done_event_keeps_text_language_duration_and_the_timed_text_of_its_segments() -> None:
    done = {
        "type": "transcript.text.done",
        "text": " And so my fellow Americans",
        "usage": {"type": "duration", "seconds": 11.0},
        "languages": [{"code": "en"}],
        "segments": [{"id": 0, "start": 0.3, "end": 2.1, "text": " And so", "tokens": [1, 2], "avg_logprob": -0.2}],
    }
    finished = finished_transcription(done, elapsed_s=1.5)
    assert finished.text == "And so my fellow Americans"
    assert finished.language == "en"
    assert finished.duration_s == 11.0
    assert finished.segments == [{"start": 0.3, "end": 2.1, "text": " And so"}]
    assert finished.elapsed_s == 1.5
    bare = finished_transcription({"type": "transcript.text.done", "text": ""}, elapsed_s=0.1)
    assert (bare.text, bare.language, bare.duration_s, bare.segments) == ("", None, None, [])


def test_the_duration_comes_from_the_files_header_and_is_none_for_bytes_that_are_not_audio(jfk_wav: Path) -> None:
    assert audio_duration_s(jfk_wav.read_bytes()) == pytest.approx(11.0, abs=0.01)
    flac = io.BytesIO()
    sf.write(flac, np.zeros(16_000 * 3, np.float32), 16_000, format="FLAC")
    assert audio_duration_s(flac.getvalue()) == pytest.approx(3.0, abs=0.01)
    assert audio_duration_s(b"not audio at all") is None
    assert audio_duration_s(b"") is None


def test_a_transcript_is_found_by_the_sha256_of_the_files_bytes(jfk_wav: Path) -> None:
    data = jfk_wav.read_bytes()
    assert content_sha256(data) == content_sha256(bytes(data))
    assert len(content_sha256(data)) == 64
    assert content_sha256(data) != content_sha256(data + b"\0")
    assert content_sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
