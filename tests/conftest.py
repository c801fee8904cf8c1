"""Fixtures shared by every test tier (standard library, pytest and tests/requirements.txt only: each tier runs in
its own venv). Processes are started by ``bench.processes``, which ``make bench`` uses too."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.processes import ReadyProcess, ServiceProcess, free_port, start_services, stop_all

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Committed test clips, named by what they say, each with a ``.txt`` transcript beside it."""
    return DATA_DIR


@pytest.fixture(scope="session")
def jfk_wav() -> Path:
    """JFK, 11.0 s, 16 kHz mono PCM16, public domain (whisper.cpp's sample, shipped in pywhispercpp's sdist)."""
    return DATA_DIR / "jfk.wav"


@pytest.fixture(scope="session")
def jfk_transcript() -> str:
    return (DATA_DIR / "jfk.txt").read_text().strip()


@pytest.fixture(scope="session", autouse=True)
def page_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``FRONTEND_DATA_DIR`` for every page the tests open (AppTest in this process, page processes it starts): the
    conversations they store go to a temporary directory, never to the developer's own store."""
    data_dir = tmp_path_factory.mktemp("page-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRONTEND_DATA_DIR", str(data_dir))
        yield data_dir


# --- the three services as real processes (used by the page and end-to-end tiers) -------------------------------


SERVICE_NAMES = ("stt", "llm", "tts")


@dataclass
class RunningServices:
    stt: ServiceProcess
    llm: ServiceProcess
    tts: ServiceProcess

    def frontend_env(self) -> dict[str, str]:
        """``FRONTEND_*_URL`` variables pointing the pipeline at these processes."""
        return {f"FRONTEND_{svc.name.upper()}_URL": svc.url for svc in (self.stt, self.llm, self.tts)}


@pytest.fixture(scope="session")
def running_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    """STT, LLM and TTS started as real processes on free ports, each from its own venv, once per session."""
    services = start_services(SERVICE_NAMES, tmp_path_factory.mktemp("service-logs"))
    try:
        yield RunningServices(**services)
    finally:
        stop_all(services.values())
        sys.stdout.flush()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """``start_service("llm", LLM_API_KEY="...")``: a private instance of one service, ready, stopped after the test.

    For tests that kill or restart a service without disturbing the shared ``running_services``.
    """
    started: list[ServiceProcess] = []

    def start(name: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(name, tmp_path / f"{name}.log", env=env)
        started.append(service)
        return service.start()

    yield start
    stop_all(started)


@pytest.fixture(scope="module")
def page_metrics_port() -> int:
    """The port ``running_page`` serves its Prometheus metrics on (``FRONTEND_METRICS_PORT``)."""
    return free_port()


def page_process(running_services: RunningServices, log_dir: Path, **env: str) -> tuple[ReadyProcess, str]:
    """A Streamlit page process on a free port, pointed at the running services, in push-to-talk mode (hands-free
    needs WebRTC, which the tests run in a network namespace of their own), with ``env`` added; and its URL."""
    port = free_port()
    full_env = {
        **running_services.frontend_env(),
        "FRONTEND_TEMPERATURE": "0",
        "FRONTEND_MAX_TOKENS": "60",
        "FRONTEND_MODE": "push-to-talk",
        **env,
    }
    command = [
        str(REPO_ROOT / ".venvs" / "frontend" / "bin" / "streamlit"), "run", str(REPO_ROOT / "frontend" / "app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    health = f"{url}/_stcore/health"
    process = ReadyProcess(command, health, log_dir / "streamlit.log", env=full_env, ready_timeout_s=120)
    return process, url


@pytest.fixture
def start_page(running_services: RunningServices, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start_page(**env)``: one more page process (``page_process``), ready; its URL; stopped after the test."""
    started: list[ReadyProcess] = []

    def start(**env: str) -> str:
        process, url = page_process(running_services, tmp_path, **env)
        started.append(process.start())
        return url

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def running_page(
    running_services: RunningServices, page_metrics_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The page (``page_process``) serving its metrics on ``page_metrics_port``; yields its URL."""
    process, url = page_process(
        running_services, tmp_path_factory.mktemp("page"), FRONTEND_METRICS_PORT=str(page_metrics_port)
    )
    with process:
        yield url


# --- .env.example documents every setting ------------------------------------------------------------------------


def env_example_values() -> dict[str, str]:
    """Variables set or shown (commented out) in .env.example, with their example values."""
    values: dict[str, str] = {}
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        text = line.lstrip("# ").strip()
        name, sep, value = text.partition("=")
        if sep and name.isupper() and name.replace("_", "").isalnum():
            values[name] = value
    return values


def _assert_env_example_covers(settings_cls: type, prefix: str) -> None:
    """Every field of ``settings_cls`` appears in .env.example, and the example values load."""
    documented = env_example_values()
    missing = [
        f"{prefix}{name.upper()}" for name in settings_cls.model_fields if f"{prefix}{name.upper()}" not in documented
    ]
    assert not missing, f".env.example does not document {missing}"
    example = {k: v for k, v in documented.items() if k.startswith(prefix) and "~" not in v}
    old = {k: os.environ.get(k) for k in example}
    os.environ.update(example)
    try:
        settings_cls()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def assert_env_example_covers():  # type: ignore[no-untyped-def]
    """``assert_env_example_covers(SettingsClass, "PREFIX_")``: .env.example documents every field, values load."""
    return _assert_env_example_covers


# --- a local stand-in for the Hugging Face Hub (tests/fake_hub.py) ------------------------------------------------


@pytest.fixture
def fake_hub():  # type: ignore[no-untyped-def]
    """A fake Hugging Face Hub on a free 127.0.0.1 port (``fake_hub.FakeHub``), stopped after the test.

    Add repos with ``fake_hub.add(FakeRepo(...))`` or ``repo_from_directory``; point ``HF_ENDPOINT`` (or
    ``fetch_snapshot(endpoint=...)``) at ``fake_hub.url``; set ``fake_hub.bytes_per_s`` to slow transfers down.
    """
    from fake_hub import FakeHub

    hub = FakeHub().start()
    try:
        yield hub
    finally:
        hub.stop()
