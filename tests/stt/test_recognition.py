"""What the service hears: WER on a real recording, every response format, every browser format."""

from __future__ import annotations

import re

import numpy as np
import pytest
from stt_helpers import WER_BOUND, encode_clip, resample, word_error_rate

JFK_DURATION_S = 11.0

SRT_CUE = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)$")
VTT_CUE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+)$")


def seconds(timestamp: str) -> float:
    hours, minutes, rest = timestamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def test_json_transcript_of_jfk_is_within_wer_bound(transcribe, jfk_bytes: bytes, jfk_transcript: str) -> None:
    response = transcribe(jfk_bytes, filename="jfk.wav", content_type="audio/wav", response_format="json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"text"}
    wer = word_error_rate(jfk_transcript, body["text"])
    print(f"tiny.en WER on jfk.wav: {wer:.3f} ({body['text']!r})")
    assert wer < WER_BOUND


def test_text_format_is_plain_text(transcribe, jfk_bytes: bytes, jfk_transcript: str) -> None:
    response = transcribe(jfk_bytes, response_format="text")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert word_error_rate(jfk_transcript, response.text) < WER_BOUND


def test_verbose_json_has_language_duration_and_segments(transcribe, jfk_bytes: bytes, jfk_transcript: str) -> None:
    response = transcribe(jfk_bytes, response_format="verbose_json")
    assert response.status_code == 200
    body = response.json()
    assert body["task"] == "transcribe"
    assert body["language"] == "en"
    assert body["duration"] == pytest.approx(JFK_DURATION_S, abs=0.05)
    assert word_error_rate(jfk_transcript, body["text"]) < WER_BOUND
    assert "words" not in body  # only with timestamp_granularities[]=word
    segments = body["segments"]
    assert [segment["id"] for segment in segments] == list(range(len(segments)))
    assert len(segments) >= 1
    previous_end = 0.0
    for segment in segments:
        assert 0.0 <= segment["start"] < segment["end"] <= JFK_DURATION_S
        assert segment["start"] >= previous_end - 0.01  # in time order, not overlapping
        assert segment["text"] and segment["text"] == segment["text"].strip()
        assert segment["tokens"]
        assert 0.0 <= segment["no_speech_prob"] <= 1.0
        previous_end = segment["end"]
    joined = " ".join(segment["text"] for segment in segments)
    assert word_error_rate(body["text"], joined) == 0.0


def test_word_timestamps_in_verbose_json(transcribe, jfk_bytes: bytes, jfk_transcript: str) -> None:
    response = transcribe(
        jfk_bytes, response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}
    )
    assert response.status_code == 200
    body = response.json()
    words = body["words"]
    assert word_error_rate(jfk_transcript, " ".join(word["word"] for word in words)) < WER_BOUND
    for word in words:
        assert 0.0 <= word["start"] <= word["end"] <= JFK_DURATION_S
        assert word["word"] == word["word"].strip()
    starts = [word["start"] for word in words]
    assert starts == sorted(starts)
    # "country" closes the speech, in its last 3 seconds
    assert words[-1]["word"].lower().strip(".,") == "country"
    assert words[-1]["end"] > JFK_DURATION_S - 3.0


def test_srt_is_well_formed(transcribe, jfk_bytes: bytes, jfk_transcript: str) -> None:
    response = transcribe(jfk_bytes, response_format="srt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-subrip")
    blocks = response.text.strip().split("\n\n")
    texts = []
    for number, block in enumerate(blocks, start=1):
        match = SRT_CUE.match(block)
        assert match, block
        assert int(match.group(1)) == number
        start, end = seconds(match.group(2)), seconds(match.group(3))
        assert 0.0 <= start < end <= JFK_DURATION_S
        texts.append(match.group(4))
    assert word_error_rate(jfk_transcript, " ".join(texts)) < WER_BOUND


def test_vtt_is_well_formed(transcribe, jfk_bytes: bytes, jfk_transcript: str) -> None:
    response = transcribe(jfk_bytes, response_format="vtt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/vtt")
    header, *blocks = response.text.strip().split("\n\n")
    assert header == "WEBVTT"
    assert blocks
    texts = []
    for block in blocks:
        match = VTT_CUE.match(block)
        assert match, block
        start, end = seconds(match.group(1)), seconds(match.group(2))
        assert 0.0 <= start < end <= JFK_DURATION_S
        texts.append(match.group(3))
    assert word_error_rate(jfk_transcript, " ".join(texts)) < WER_BOUND


def test_prompt_and_temperature_are_accepted(transcribe, jfk_bytes: bytes, jfk_transcript: str) -> None:
    response = transcribe(jfk_bytes, prompt="President Kennedy's inaugural address, 1961.", temperature="0.2")
    assert response.status_code == 200, response.text
    assert word_error_rate(jfk_transcript, response.json()["text"]) < WER_BOUND


def test_silence_gives_no_text(transcribe) -> None:
    silence = encode_clip(np.zeros(2 * 16_000, dtype=np.float32), 16_000, 1, "wav", "pcm_s16le")
    response = transcribe(silence, response_format="verbose_json")
    assert response.status_code == 200
    body = response.json()
    assert body["duration"] == pytest.approx(2.0, abs=0.05)
    assert body["text"] == ""  # the VAD (on by default) leaves Whisper nothing to hallucinate from
    assert body["segments"] == []


# (container, codec, sample rate in Hz, channels, muxer options): what browsers and phones record, plus files.
ENCODINGS: dict[str, tuple[str, str, int, int, dict[str, str]]] = {
    "webm-opus": ("webm", "libopus", 48_000, 1, {}),
    "webm-opus-no-duration": ("webm", "libopus", 48_000, 1, {"live": "1"}),  # as Chrome's MediaRecorder writes
    "ogg-opus": ("ogg", "libopus", 48_000, 2, {}),
    "wav-48k-stereo": ("wav", "pcm_s16le", 48_000, 2, {}),
    "mp3": ("mp3", "libmp3lame", 44_100, 2, {}),
    "flac": ("flac", "flac", 16_000, 1, {}),
    "m4a-aac": ("ipod", "aac", 44_100, 2, {}),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_reencoded_jfk_is_within_wer_bound(
    transcribe, jfk_samples: np.ndarray, jfk_transcript: str, encoding: str
) -> None:
    container, codec, sample_rate_hz, channels, options = ENCODINGS[encoding]
    samples = resample(jfk_samples, 16_000, sample_rate_hz)
    data = encode_clip(samples, sample_rate_hz, channels, container, codec, options)
    extension = {"ipod": "m4a"}.get(container, container)
    response = transcribe(data, filename=f"jfk.{extension}", response_format="verbose_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["duration"] == pytest.approx(JFK_DURATION_S, abs=0.1)  # codec padding: a few ms
    wer = word_error_rate(jfk_transcript, body["text"])
    print(f"{encoding}: WER {wer:.3f}")
    assert wer < WER_BOUND
