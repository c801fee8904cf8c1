"""The services as real processes on free ports, for the test suite (``tests/conftest.py``) and ``make bench``.

mirakuru starts each process in its own process group and waits until its readiness URL answers 200 (a service's
``GET /ready``); stopping sends SIGTERM to the group, then SIGKILL if it has not ended. Only the standard library and
mirakuru (``tests/requirements.txt``), because every test tier imports this from its own venv.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType

from mirakuru import HTTPExecutor
from mirakuru.exceptions import ExecutorError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
VENVS = REPO_ROOT / ".venvs"
READY_TIMEOUT_S = 300.0
"""Longest wait for a process to answer its readiness URL (a first start may build a model file)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReadyProcess:
    """``command`` run from the repository root with extra ``env``, its output appended to ``log_path``.

    ``start()`` returns once ``ready_url`` answers 200 to a GET; it raises RuntimeError with the log's tail if the
    process exits first or is not ready in ``ready_timeout_s``. Usable as a context manager (start, then stop).
    """

    def __init__(
        self,
        command: Sequence[str],
        ready_url: str,
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self.command = list(command)
        self.ready_url = ready_url
        self.log_path = log_path
        self.env = dict(env or {})
        self.ready_timeout_s = ready_timeout_s
        self._executor: HTTPExecutor | None = None

    @property
    def pid(self) -> int | None:
        """The process id while it runs, else None."""
        process = self._executor.process if self._executor else None
        return process.pid if process is not None else None

    def start(self) -> ReadyProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self._executor = HTTPExecutor(
                self.command, url=self.ready_url, status=200, method="GET", timeout=self.ready_timeout_s,
                envvars=self.env, cwd=str(REPO_ROOT), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                self._executor.start()
            except ExecutorError as err:  # exited before it was ready, or not ready in time
                self._executor.kill()
                raise RuntimeError(f"{self.command[-1]} did not get ready ({err}):\n{self.log_tail()}") from err
        return self

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL if it has not ended; a process that had crashed is only logged."""
        if self._executor is None:
            return
        try:
            self._executor.stop()
        except ExecutorError as err:
            logger.warning("%s had ended with an error: %s", self.command[-1], err)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown, connections drop mid-response."""
        if self._executor is not None:
            self._executor.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> ReadyProcess:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


class ServiceProcess(ReadyProcess):
    """One service (``stt``, ``llm``, ``tts``) from its own venv: ``.venvs/<name>/bin/python -m <name>_service``
    on a free port of 127.0.0.1 (``<NAME>_HOST``/``<NAME>_PORT``), ready when ``GET /ready`` answers 200."""

    def __init__(self, name: str, log_path: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        prefix = name.upper()
        super().__init__(
            [str(VENVS / name / "bin" / "python"), "-m", f"{name}_service"],
            f"{self.url}/ready",
            log_path,
            env={f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(self.port), **(env or {})},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_services(
    names: Sequence[str], log_dir: Path, env: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, ServiceProcess]:
    """Start ``names`` together (each with its extra ``env[name]``) and return ``{name: ServiceProcess}`` once all
    are ready. Raises RuntimeError (with the log's tail) if one does not get ready; then all of them are stopped."""
    services = {name: ServiceProcess(name, log_dir / f"{name}.log", env=(env or {}).get(name)) for name in names}
    with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
        starts = [pool.submit(service.start) for service in services.values()]
    failed = [start.exception() for start in starts if start.exception() is not None]
    if failed:
        stop_all(services.values())
        raise failed[0]  # type: ignore[misc]
    return services


def stop_all(processes: Iterable[ReadyProcess]) -> None:
    for process in processes:
        process.stop()


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO (\S+): (.*)$")


def llm_generations(log: Path) -> tuple[list[float], list[tuple[float, str]]]:
    """From the LLM service's log: when each chat completion's response started (epoch s) and how each generation
    ended (epoch s, ``finished`` or ``stopped early``), in order (the service generates one request at a time)."""
    starts: list[float] = []
    ends: list[tuple[float, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        match = LOG_LINE.match(line)
        if not match:
            continue
        at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # the log's local time
        if "POST /v1/chat/completions" in match[3] and '" 200' in match[3]:
            starts.append(at)
        elif match[2] == "llm_service.completions" and "generation stopped early" in match[3]:
            ends.append((at, "stopped early"))
        elif match[2] == "llm_service.completions" and " finish=" in match[3]:
            ends.append((at, "finished"))
    return starts, ends
