"""TTS_ENGINE=parler with a hub repo id, downloaded from a fake hub at start-up (progress on /ready and in the log),
then started again offline. This tier's huggingface_hub is 0.36 (pinned by transformers 4.46), so it also checks
service_common.hub against the older library.

The fake hub serves the tiny random Parler model (``tiny_parler.py``) as ``acme/tiny-parler``; its description
tokenizer stays a local directory, named by the model's config.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fake_hub import FakeHub, HubServiceProcess, repo_from_directory

from .conftest import CHUNK_S, MAX_NEW_TOKENS, decode

REPO_ID = "acme/tiny-parler"
PROGRESS_LINE = re.compile(r"TTS_PARLER_MODEL acme/tiny-parler: +\d+% \(\d+ of \d+ files\)")
"""huggingface_hub 0.36's progress hook counts files done, not bytes (see service_common.hub)."""

pytestmark = pytest.mark.slow


def parler_process(tmp_path: Path, name: str, **env: str) -> HubServiceProcess:
    variables = {
        "TTS_ENGINE": "parler",
        "TTS_PARLER_MODEL": REPO_ID,
        "TTS_PARLER_DEVICE": "cpu",
        "TTS_PARLER_CHUNK_S": str(CHUNK_S),
        "TTS_PARLER_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
        "TTS_CACHE_DIR": str(tmp_path / "cache"),
        **env,
    }
    return HubServiceProcess("tts-parler", "tts_service", "TTS_", variables, tmp_path / f"{name}.log")


def speak(url: str) -> None:
    request = {"model": "tts-1", "voice": "alloy", "input": "Hello there.", "response_format": "wav"}
    response = httpx.post(f"{url}/v1/audio/speech", json=request, timeout=120)
    assert response.status_code == 200, response.text
    samples, rate_hz = decode(response.content)
    assert rate_hz == 44_100
    assert samples.size > 0


def test_a_parler_repo_downloads_once_with_progress_then_starts_offline(
    fake_hub: FakeHub, tiny_model_dir: Path, tmp_path: Path
) -> None:
    repo = fake_hub.add(repo_from_directory(REPO_ID, tiny_model_dir))
    total_bytes = sum(repo.size(name) for name in repo.files)
    fake_hub.bytes_per_s = total_bytes / 2.5  # about 2.5 s, whatever the codec weighs

    first = parler_process(tmp_path, "first", HF_ENDPOINT=fake_hub.url).start()
    try:
        assert first.watch_ready(timeout_s=180) is None, first.log()
        models = httpx.get(f"{first.url}/v1/models", timeout=10).json()
        assert [model["id"] for model in models["data"]] == [REPO_ID]
        speak(first.url)
    finally:
        first.stop()

    progress = first.progress_readings
    assert any(0.0 < reading < 1.0 for reading in progress), first.readings
    assert progress == sorted(progress)
    log = first.log()
    assert len(PROGRESS_LINE.findall(log)) >= 3, log

    fake_hub.stop()  # the network is gone
    second = parler_process(tmp_path, "second", HF_HUB_OFFLINE="1", HF_ENDPOINT=fake_hub.url).start()
    try:
        assert second.watch_ready(timeout_s=180) is None, second.log()  # ready = loaded and warmed up (it spoke)
    finally:
        second.stop()
    assert second.progress_readings == []
    assert "using the cached snapshot" in second.log()


def test_an_unknown_parler_repo_fails_start_up_with_one_clear_line(fake_hub: FakeHub, tmp_path: Path) -> None:
    service = parler_process(tmp_path, "unknown", HF_ENDPOINT=fake_hub.url, TTS_PARLER_MODEL="acme/no-such-parler")
    service.start()
    try:
        status = service.watch_ready(timeout_s=120)
    finally:
        service.stop()
    log = service.log()
    assert status == 3, log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert "TTS_PARLER_MODEL acme/no-such-parler: neither in" in errors[0]
    assert "Repository Not Found" in errors[0]
