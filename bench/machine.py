"""What the numbers were measured on: cores, CPU model, memory, commit, and how busy the machine was."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import time

import psutil

from .processes import REPO_ROOT


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (runnable processes; above the core count means waiting for a CPU)."""
    return [round(value, 2) for value in os.getloadavg()]


def describe() -> dict[str, object]:
    """The machine and the code state; ``dirty_files`` counts files changed since the commit."""
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty_files": len((_git("status", "--porcelain") or "").splitlines()),
    }


def busy_processes(window_s: float = 0.5, min_share: float = 0.2) -> list[dict[str, object]]:
    """Other processes using at least ``min_share`` of a core over ``window_s``: what competes with the benchmark.

    This process and its children (the services it started) are left out. ``cpu_share`` 1.0 = one whole core.
    """
    ours = {os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))}
    others = [process for process in psutil.process_iter(["pid", "cmdline"]) if process.pid not in ours]
    for process in others:
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)  # starts the window
    time.sleep(window_s)
    busy = []
    for process in others:
        try:
            share = process.cpu_percent(None) / 100.0
        except psutil.Error:
            continue
        if share >= min_share:
            command = " ".join(process.info["cmdline"] or []) or process.name()
            busy.append({"pid": process.pid, "cpu_share": round(share, 2), "command": command[:120]})
    return sorted(busy, key=lambda entry: -float(str(entry["cpu_share"])))
