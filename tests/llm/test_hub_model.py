"""A GGUF repo + file glob, downloaded from a fake hub at start-up (progress on /ready and in the log), then offline.

The fake hub serves the embedded SmolLM2 GGUF as one quantisation of a repo that has others too, so the service
runs its real hub path: list, select the file the glob names, download it into LLM_CACHE_DIR, load, answer.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from fake_hub import HUB_VARIABLES, REPO_ROOT, FakeHub, FakeRepo, HubServiceProcess

from llm_service.embedded import EMBEDDED_GGUF_NAME, embedded_model_path

REPO_ID = "acme/SmolLM2-135M-Instruct-GGUF"
PROGRESS_LINE = re.compile(r"LLM_MODEL acme/SmolLM2-135M-Instruct-GGUF: +\d+% \([\d.]+ of [\d.]+ MB at [\d.]+ MB/s\)")

pytestmark = pytest.mark.slow


@pytest.fixture
def gguf_repo(fake_hub: FakeHub) -> FakeRepo:
    return fake_hub.add(
        FakeRepo(
            REPO_ID,
            {
                "README.md": b"# SmolLM2 135M Instruct, GGUF",
                EMBEDDED_GGUF_NAME: embedded_model_path(),  # SmolLM2-135M-Instruct.Q4_1.gguf, 98 MB
                "SmolLM2-135M-Instruct.Q8_0.gguf": b"GGUF: another quantisation, never downloaded",
            },
        )
    )


def llm_process(tmp_path: Path, name: str, **env: str) -> HubServiceProcess:
    variables = {
        "LLM_MODEL": REPO_ID,
        "LLM_MODEL_FILE": "*Q4_1.gguf",
        "LLM_CACHE_DIR": str(tmp_path / "cache"),
        "LLM_N_CTX": "512",
        **env,
    }
    return HubServiceProcess("llm", "llm_service", "LLM_", variables, tmp_path / f"{name}.log")


def chat(url: str) -> dict[str, object]:
    request = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4, "temperature": 0}
    response = httpx.post(f"{url}/v1/chat/completions", json=request, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_hub_gguf_downloads_once_with_progress_then_starts_offline(
    fake_hub: FakeHub, gguf_repo: FakeRepo, tmp_path: Path
) -> None:
    fake_hub.bytes_per_s = 50_000_000  # 98 MB in about 2 s: long enough to watch

    first = llm_process(tmp_path, "first", HF_ENDPOINT=fake_hub.url).start()
    try:
        assert first.watch_ready() is None, first.log()
        reply = chat(first.url)
        assert reply["model"] == f"{REPO_ID}/*Q4_1.gguf"
        assert reply["choices"][0]["message"]["content"]  # type: ignore[index]
    finally:
        first.stop()

    progress = first.progress_readings
    assert any(0.0 < reading < 1.0 for reading in progress), first.readings
    assert progress == sorted(progress)
    log = first.log()
    assert len(PROGRESS_LINE.findall(log)) >= 3, log
    size_mb = gguf_repo.size(EMBEDDED_GGUF_NAME) / 1e6
    assert f"downloaded {size_mb:.1f} of {size_mb:.1f} MB" in log, "only the file the glob selects"
    downloads = {Path(path).name for method, path in fake_hub.requests if method == "GET" and "/resolve/" in path}
    assert downloads == {EMBEDDED_GGUF_NAME}

    fake_hub.stop()  # the network is gone
    second = llm_process(tmp_path, "second", HF_HUB_OFFLINE="1", HF_ENDPOINT=fake_hub.url).start()
    try:
        assert second.watch_ready() is None, second.log()  # ready = loaded and warmed up (it generated)
    finally:
        second.stop()
    assert second.progress_readings == []
    assert "using the cached snapshot" in second.log()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLM_MODEL": "acme/no-such-repo"}, "LLM_MODEL acme/no-such-repo: neither in"),
        ({"LLM_MODEL_FILE": "*.gguf"}, "LLM_MODEL_FILE='*.gguf' matches 2 files in acme/SmolLM2-135M-Instruct-GGUF"),
    ],
    ids=["unknown-repo", "ambiguous-glob"],
)
def test_a_bad_hub_model_fails_start_up_with_one_clear_line(
    fake_hub: FakeHub, gguf_repo: FakeRepo, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    service = llm_process(tmp_path, "bad", HF_ENDPOINT=fake_hub.url, **env).start()
    try:
        status = service.watch_ready(timeout_s=60)
    finally:
        service.stop()
    log = service.log()
    assert status == 3, log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert message in errors[0]
    downloads = [path for method, path in fake_hub.requests if method == "GET" and "/resolve/" in path]
    assert not downloads, "nothing is downloaded"


SHARDS_CHECK = """
import sys
from pathlib import Path
from llm_service.model_source import ModelSource, fetch_hub_gguf

def source(pattern):
    return ModelSource("hub", "acme/big-GGUF/" + pattern, "acme", repo_id="acme/big-GGUF", filename=pattern)

try:
    fetch_hub_gguf(source("*Q4_K_M-00001-of-00002.gguf"), Path(sys.argv[1]))
except ValueError as err:
    print("refused:", err)
first = fetch_hub_gguf(source("*Q4_K_M*.gguf"), Path(sys.argv[1]))
print("opened:", first.name)
print("fetched:", sorted(path.name for path in first.parent.iterdir()))
"""


def test_a_glob_over_the_shards_of_a_split_gguf_fetches_them_all(fake_hub: FakeHub, tmp_path: Path) -> None:
    shards = {f"Big-Model-Q4_K_M-0000{index}-of-00002.gguf": f"shard {index}".encode() for index in (1, 2)}
    fake_hub.add(FakeRepo("acme/big-GGUF", {**shards, "Big-Model-Q8_0.gguf": b"another quantisation"}))
    env = {key: value for key, value in os.environ.items() if key not in HUB_VARIABLES}
    python = REPO_ROOT / ".venvs" / "llm" / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", SHARDS_CHECK, str(tmp_path)],
        env={**env, "HF_ENDPOINT": fake_hub.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("refused: LLM_MODEL_FILE='*Q4_K_M-00001-of-00002.gguf' selects 1 of the 2 shards")
    assert lines[1] == "opened: Big-Model-Q4_K_M-00001-of-00002.gguf"
    assert lines[2] == f"fetched: {sorted(shards)}"
