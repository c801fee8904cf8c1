"""What the numbers were measured on: cores, CPU model, memory, date, commit, load average."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (runnable processes; above the core count means waiting for a CPU)."""
    return [round(value, 2) for value in os.getloadavg()]


def describe() -> dict[str, object]:
    """The machine and the code state; ``dirty`` lists files changed since the commit (work in progress)."""
    status = _git("status", "--porcelain") or ""
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty_files": len(status.splitlines()),
    }


def _cpu_ticks() -> dict[int, tuple[int, int, str]]:
    """pid -> (user + system clock ticks, parent pid, command line) for every process we can read."""
    ticks: dict[int, tuple[int, int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError):
            continue
        ticks[int(stat.parent.name)] = (int(fields[11]) + int(fields[12]), int(fields[1]), command[:120])
    return ticks


def busy_processes(window_s: float = 0.5, min_share: float = 0.2) -> list[dict[str, object]]:
    """Other processes using at least ``min_share`` of a core over ``window_s``: what competes with the benchmark.

    Our own process tree (the benchmark and the services it started) is left out. Linux only; [] elsewhere.
    """
    import time

    before = _cpu_ticks()
    time.sleep(window_s)
    after = _cpu_ticks()
    ours = {os.getpid()}
    changed = True
    while changed:  # every descendant of this process
        grown = {pid for pid, (_, parent, _) in after.items() if parent in ours} | ours
        changed, ours = grown != ours, grown
    hertz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (ticks, _, command) in after.items():
        if pid in ours or pid not in before:
            continue
        share = (ticks - before[pid][0]) / hertz / window_s
        if share >= min_share:
            busy.append({"pid": pid, "cpu_share": round(share, 2), "command": command})
    return sorted(busy, key=lambda process: -float(str(process["cpu_share"])))
