"""Sampling profiles of the running service processes with py-spy (no code change in the services).

``py-spy record --native`` attaches to each service's PID while the pipeline runs turns, and writes collapsed
stacks ("frame;frame;... count"). ``summarize_stacks`` turns them into the few lines a reader needs: where the
samples end (leaf functions, native ones included: llama.cpp's kernels, CTranslate2, ONNX Runtime) and which
Python functions hold them (inclusive).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLE_RATE_HZ = 100
_LOCATION = re.compile(r"\s*\([^()]*\)$")


def py_spy() -> str | None:
    """Path of the py-spy binary (requirements-dev.txt puts it in the frontend venv), or None."""
    beside = Path(__file__).resolve().parent.parent / ".venvs" / "frontend" / "bin" / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextmanager
def recording(pids: dict[str, int], out_dir: Path) -> Iterator[dict[str, Path]]:
    """Record every process in ``pids`` (name -> PID) while the block runs; yields name -> output file.

    Raises RuntimeError when py-spy is missing. A process py-spy may not attach to (no ptrace permission)
    leaves no file; the caller reports that instead of failing.
    """
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed (make venv-frontend installs requirements-dev.txt)")
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {name: out_dir / f"{name}.collapsed.txt" for name in pids}
    recorders = []
    for name, pid in pids.items():
        command = [
            binary, "record", "--pid", str(pid), "--native", "--rate", str(SAMPLE_RATE_HZ),
            "--format", "raw", "--output", str(outputs[name]),
        ]  # fmt: skip
        log = (out_dir / f"{name}.py-spy.log").open("wb")
        recorders.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        yield outputs
    finally:
        for recorder, _ in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for recorder, log in recorders:
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()
            log.close()


GENERIC_FRAMES = (
    "threading.py", "concurrent/", "asyncio/", "uvicorn/", "anyio/", "starlette/", "fastapi/", "sse_starlette/",
    "selectors.py", "<frozen", "runpy.py", "queue.py", "socket.py", "contextlib.py", "service_common/worker.py",
    "__main__.py",
)  # fmt: skip
"""Frames every thread or request passes through (thread start-up, event loop, ASGI stack): not worth a line."""


def _function(frame: str) -> str:
    """'transcribe (faster_whisper/transcribe.py:123)' -> 'transcribe (faster_whisper/transcribe.py)';
    an unsymbolised native frame '0x7f... (libgomp.so.1.0.0)' -> 'libgomp.so.1.0.0 (native, no symbol)'."""
    name = _LOCATION.sub("", frame).strip()
    location = frame[len(name) :].strip(" ()")
    where = location.rsplit(":", 1)[0] if location else ""
    if name.startswith("0x") and where:
        return f"{where.rsplit('/', 1)[-1]} (native, no symbol)"
    return f"{name} ({where})" if where else name


def _library(frame: str) -> str:
    """The shared library or top-level Python package a frame belongs to."""
    location = frame[len(_LOCATION.sub("", frame)) :].strip(" ()").rsplit(":", 1)[0]
    if not location:
        return "unknown"
    if ".so" in location:
        return location.rsplit("/", 1)[-1].split(".so")[0] + ".so"
    return location.split("/", 1)[0] if "/" in location else location


def summarize_stacks(path: Path, top: int = 8) -> dict[str, object]:
    """Samples, seconds of activity, and shares of the samples: by the library the sample ended in, by leaf
    function, and by Python function anywhere on the stack (generic thread/event-loop frames left out).

    py-spy samples Python threads only: work a library hands to its own native threads (CTranslate2's workers,
    OpenMP pools) shows up as the calling thread waiting, so read the Python functions as "who waits for what".
    """
    libraries: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw_frames = [frame for frame in stack.split(";") if frame]
        if not raw_frames:
            continue
        total += count
        libraries[_library(raw_frames[-1])] += count
        leaves[_function(raw_frames[-1])] += count
        for frame in {_function(frame) for frame in raw_frames}:
            if ".py)" in frame and not any(generic in frame for generic in GENERIC_FRAMES):
                inclusive[frame] += count

    def shares(counter: Counter[str]) -> list[dict[str, object]]:
        return [{"function": name, "share": round(n / total, 3)} for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "active_s": round(total / SAMPLE_RATE_HZ, 2),
        "by_library": shares(libraries) if total else [],
        "top_leaf": shares(leaves) if total else [],
        "top_python_inclusive": shares(inclusive) if total else [],
    }
