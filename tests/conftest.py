"""Fixtures shared by every test tier (standard library only: each tier runs in its own venv)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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


# --- the three services as real processes (used by the page and end-to-end tiers) -------------------------------


SERVICE_NAMES = ("stt", "llm", "tts")
READY_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class ServiceProcess:
    """One service started from its own venv (``.venvs/<name>``) on a free 127.0.0.1 port."""

    name: str
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        python = REPO_ROOT / ".venvs" / self.name / "bin" / "python"
        prefix = self.name.upper()
        env = {**os.environ, f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(self.port), **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(python), "-m", f"{self.name}_service"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if http_status(f"{self.url}/ready") == 200:
                return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown, connections drop mid-response."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


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
    logs = tmp_path_factory.mktemp("service-logs")
    services = {name: ServiceProcess(name, free_port(), logs / f"{name}.log") for name in SERVICE_NAMES}
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        yield RunningServices(**services)
    finally:
        for service in services.values():
            service.stop()
        sys.stdout.flush()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """``start_service("llm", LLM_API_KEY="...")``: a private instance of one service, ready, stopped after the test.

    For tests that kill or restart a service without disturbing the shared ``running_services``.
    """
    started: list[ServiceProcess] = []

    def start(name: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(name, free_port(), tmp_path / f"{name}.log", env=env)
        started.append(service)
        service.start()
        service.wait_ready()
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def running_page(running_services: RunningServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Streamlit page as a real process on a free port, pointed at the running services; yields its URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("page") / "streamlit.log"
    env = {**os.environ, **running_services.frontend_env(), "FRONTEND_TEMPERATURE": "0", "FRONTEND_MAX_TOKENS": "60"}
    command = [
        str(REPO_ROOT / ".venvs" / "frontend" / "bin" / "streamlit"), "run", str(REPO_ROOT / "frontend" / "app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while http_status(f"{url}/_stcore/health") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the page did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


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
