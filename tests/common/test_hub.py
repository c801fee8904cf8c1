"""service_common.hub against a fake hub: our configuration of snapshot_download (progress through its tqdm_class,
the cache first, one-line errors), not the library's HTTP.

Runs in the STT venv (huggingface_hub 2.x); the Parler tier exercises the same code with huggingface_hub 0.36.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import pytest
from fake_hub import FakeHub, FakeRepo

from service_common.health import Readiness
from service_common.hub import HubDownloadError, fetch_snapshot

REPO_ID = "acme/tiny-model"
MODEL_BYTES = 4_000_000
CHUNK_BYTES = 256 * 1024
PROGRESS_LINE = re.compile(r"acme/tiny-model: +\d+% \([\d.]+ of [\d.]+ MB at [\d.]+ MB/s\)")


class RecordingReadiness(Readiness):
    """A Readiness that keeps every progress reading it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.readings: list[float] = []

    def mark_downloading(self, progress: float) -> None:
        self.readings.append(progress)
        super().mark_downloading(progress)


@pytest.fixture(autouse=True)
def _small_download_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub writes 10 MB at a time; smaller chunks let a 4 MB file arrive in several steps."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", CHUNK_BYTES)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(fake_hub: FakeHub) -> FakeRepo:
    return fake_hub.add(
        FakeRepo(
            REPO_ID,
            {
                "config.json": b'{"model_type": "tiny"}',
                "tokenizer.json": b'{"version": "1.0"}',
                "README.md": b"# a model card nobody needs",
                "weights/model.bin": os.urandom(MODEL_BYTES),
            },
        )
    )


def fetch(hub: FakeHub, cache_dir: Path, **options: object) -> Path:
    options.setdefault("ignore_patterns", ["*.md"])
    return fetch_snapshot(REPO_ID, cache_dir=cache_dir, what="TEST_MODEL", endpoint=hub.url, **options)  # type: ignore[arg-type]


def test_a_download_reports_rising_progress_to_readiness_and_the_log(
    fake_hub: FakeHub, repo: FakeRepo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_hub.bytes_per_s = 5_000_000  # about 0.8 s for the 4 MB file
    readiness = RecordingReadiness()
    with caplog.at_level(logging.INFO, logger="service_common.hub"):
        snapshot = fetch(fake_hub, tmp_path, readiness=readiness)

    assert sorted(path.relative_to(snapshot).as_posix() for path in snapshot.rglob("*") if path.is_file()) == [
        "config.json",
        "tokenizer.json",
        "weights/model.bin",
    ]
    assert (snapshot / "weights" / "model.bin").read_bytes() == repo.files["weights/model.bin"]
    assert readiness.readings[0] == 0.0
    assert readiness.readings[-1] == 1.0
    assert readiness.readings == sorted(readiness.readings), "progress never goes back"
    assert len({reading for reading in readiness.readings if 0.0 < reading < 1.0}) >= 3
    assert (readiness.state, readiness.progress) == ("loading", None)

    messages = [record.getMessage() for record in caplog.records]
    progress_lines = [message for message in messages if PROGRESS_LINE.search(message)]
    assert len(progress_lines) >= 3, messages
    assert any("100% (4.0 of 4.0 MB at" in line for line in progress_lines)
    assert any(re.search(r"downloaded 4\.0 of 4\.0 MB at [\d.]+ MB/s", message) for message in messages)
    assert ("GET", f"/{REPO_ID}/resolve/{repo.commit}/README.md") not in fake_hub.requests


def test_a_cached_snapshot_is_used_with_the_hub_gone_and_offline_mode_on(
    fake_hub: FakeHub, repo: FakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = fetch(fake_hub, tmp_path)
    served = len(fake_hub.requests)
    assert fetch(fake_hub, tmp_path) == snapshot, "a second start needs no network"
    assert len(fake_hub.requests) == served

    fake_hub.stop()
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    readiness = RecordingReadiness()
    assert fetch(fake_hub, tmp_path, readiness=readiness) == snapshot
    assert readiness.readings == [], "nothing to download, nothing reported"


def test_an_interrupted_download_fetches_only_what_is_missing(
    fake_hub: FakeHub, repo: FakeRepo, tmp_path: Path
) -> None:
    fetch(fake_hub, tmp_path, allow_patterns=["config.json"])  # as if the first start stopped after one file
    fake_hub.requests.clear()

    snapshot = fetch(fake_hub, tmp_path, complete=lambda path: (path / "weights" / "model.bin").is_file())

    downloads = [path for method, path in fake_hub.requests if method == "GET" and "/resolve/" in path]
    assert sorted(Path(path).name for path in downloads) == ["model.bin", "tokenizer.json"]
    assert (snapshot / "config.json").is_file()


def test_an_unknown_repo_is_a_one_line_error(fake_hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(
        HubDownloadError,
        match=r"TEST_MODEL acme/tiny-model: neither in .* nor downloadable: RepositoryNotFoundError: .*Not Found",
    ) as error:
        fetch(fake_hub, tmp_path)
    assert "\n" not in str(error.value)


def test_an_unreachable_hub_is_a_one_line_error(repo: FakeRepo, tmp_path: Path) -> None:
    hub = FakeHub({REPO_ID: repo}).start()
    hub.stop()
    with pytest.raises(HubDownloadError, match=r"neither in .* nor downloadable: .*(Connect|Connection)"):
        fetch(hub, tmp_path)


def test_offline_mode_without_a_cache_never_calls_the_hub(
    fake_hub: FakeHub, repo: FakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read from the environment once, at import
    with pytest.raises(HubDownloadError, match=r"nor downloadable: OfflineModeIsEnabled: .*HF_HUB_OFFLINE"):
        fetch(fake_hub, tmp_path)
    assert fake_hub.requests == []


def test_patterns_that_select_nothing_are_an_error(fake_hub: FakeHub, repo: FakeRepo, tmp_path: Path) -> None:
    with pytest.raises(HubDownloadError, match=r"lacks files the service needs \(\['\*\.gguf'\]\)"):
        fetch(fake_hub, tmp_path, allow_patterns=["*.gguf"])


def test_stopping_the_service_abandons_a_download(fake_hub: FakeHub, repo: FakeRepo, tmp_path: Path) -> None:
    fake_hub.bytes_per_s = 500_000  # 8 s for the whole file: far longer than the test waits
    readiness = RecordingReadiness()
    errors: list[BaseException] = []

    def download() -> None:
        try:
            fetch(fake_hub, tmp_path, readiness=readiness)
        except HubDownloadError as err:
            errors.append(err)

    thread = threading.Thread(target=download)
    thread.start()
    deadline = time.monotonic() + 10
    while readiness.state != "downloading" and time.monotonic() < deadline:
        time.sleep(0.02)
    readiness.stopping.set()
    thread.join(timeout=2)
    assert not thread.is_alive(), "the download thread must give up within a poll interval"
    assert errors and "abandoned" in str(errors[0])
