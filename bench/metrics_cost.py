"""What ``GET /metrics`` costs the services: one scrape's time, size and CPU, and whether scraping moves latency.

The three services run (``bench.processes``); per service, requests on corpus inputs alternate between a quiet
phase and a phase during which a scraper reads ``/metrics`` of all three services every ``scrape_interval_s``
(0.5 s: thirty times Prometheus' usual 15 s), so a drift of this host's speed hits both phases alike; each pair runs
the same input in both phases, the first phase alternating. Reported per
service: the request's latency (STT: whole transcription; LLM: time to first token of a streamed reply; TTS: time
to first audio) in both phases and their p50 difference; and per scrape: wall time, response size, and the CPU
time the service's process spent on it (from ``/proc/<pid>/stat`` over a burst of scrapes at idle).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx2
from openai import OpenAI

from .corpus import Clip
from .processes import ServiceProcess, start_services, stop_all
from .stats import summarize

SCRAPE_INTERVAL_S = 0.5
IDLE_SCRAPES = 200
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Scraper:
    """Reads ``/metrics`` of ``urls`` every ``interval_s`` on a thread while ``active`` is set."""

    def __init__(self, urls: Sequence[str], interval_s: float) -> None:
        self.urls, self.interval_s = urls, interval_s
        self.active = threading.Event()
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx2.Client(timeout=10) as client:
            while not self._stop.is_set():
                if self.active.is_set():
                    for url in self.urls:
                        client.get(f"{url}/metrics").raise_for_status()
                        self.scrapes += 1
                self._stop.wait(self.interval_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def one_scrape(service: ServiceProcess) -> dict[str, Any]:
    """Wall time and size of ``IDLE_SCRAPES`` scrapes back to back, and the service's CPU time per scrape."""
    pid = service.pid
    assert pid is not None
    walls, size = [], 0
    with httpx2.Client(timeout=10) as client:
        client.get(f"{service.url}/metrics")  # first connection
        cpu_before = cpu_seconds(pid)
        for _ in range(IDLE_SCRAPES):
            started = time.perf_counter()
            response = client.get(f"{service.url}/metrics")
            walls.append((time.perf_counter() - started) * 1000)
            size = len(response.content)
        cpu_after = cpu_seconds(pid)
    return {
        "wall_ms": summarize(walls, 2),
        "bytes": size,
        "cpu_ms_per_scrape": round((cpu_after - cpu_before) * 1000 / IDLE_SCRAPES, 2),
    }


def measure(clips: Sequence[Clip], texts: Sequence[str], pairs: int, log_dir: Path) -> dict[str, Any]:
    services = start_services(["stt", "llm", "tts"], log_dir)
    clients = {name: OpenAI(base_url=f"{s.url}/v1", api_key="unused", max_retries=0) for name, s in services.items()}
    scraper = Scraper([service.url for service in services.values()], SCRAPE_INTERVAL_S)

    def stt(index: int) -> float:
        clip = clips[index % len(clips)]
        started = time.perf_counter()
        clients["stt"].audio.transcriptions.create(model="whisper-1", file=(clip.path.name, clip.audio))
        return (time.perf_counter() - started) * 1000

    asked = iter(range(1_000_000))

    def llm(index: int) -> float:
        # a number of its own at the start of every question: no request finds its prompt in llama.cpp's cache
        # (a repeated question would, and its time to first token would fall by about 100 ms)
        question = f"Question {next(asked)}: {texts[index % len(texts)]}"
        started = time.perf_counter()
        stream = clients["llm"].chat.completions.create(
            model="local",
            stream=True,
            max_tokens=40,
            temperature=0,
            messages=[{"role": "user", "content": question}],
        )
        ttft_ms = None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and ttft_ms is None:
                ttft_ms = (time.perf_counter() - started) * 1000
        assert ttft_ms is not None
        return ttft_ms

    def tts(index: int) -> float:
        started, ttfa_ms = time.perf_counter(), None
        with clients["tts"].audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=texts[index % len(texts)], response_format="pcm"
        ) as response:
            for data in response.iter_bytes():
                if data and ttfa_ms is None:
                    ttfa_ms = (time.perf_counter() - started) * 1000
        assert ttfa_ms is not None
        return ttfa_ms

    work: dict[str, tuple[str, Callable[[int], float]]] = {
        "stt": ("whole transcription of a corpus clip", stt),
        "llm": ("time to first token of a streamed 40-token reply", llm),
        "tts": ("time to first audio of a corpus transcript", tts),
    }
    out: dict[str, Any] = {"scrape_interval_s": SCRAPE_INTERVAL_S, "pairs": pairs}
    try:
        for name, (what, request) in work.items():
            request(0)  # warm-up
            quiet: list[float] = []
            scraped: list[float] = []
            for index in range(pairs):
                # which phase goes first alternates, so neither always follows the other
                for phase in (quiet, scraped) if index % 2 == 0 else (scraped, quiet):
                    if phase is scraped:
                        scraper.active.set()
                        time.sleep(SCRAPE_INTERVAL_S)  # the scraper is running when the request starts
                    else:
                        scraper.active.clear()
                    phase.append(request(index))
            scraper.active.clear()
            q, s = summarize(quiet), summarize(scraped)
            assert q is not None and s is not None
            out[name] = {
                "measures": what,
                "quiet_ms": q,
                "scraped_ms": s,
                "p50_difference_ms": round(s["p50"] - q["p50"], 1),
                "scrape": one_scrape(services[name]),
            }
    finally:
        scraper.close()
        for client in clients.values():
            client.close()
        stop_all(services.values())
    out["scrapes_during_requests"] = scraper.scrapes
    return out


def markdown(section: dict[str, Any]) -> str:
    """The ``/metrics`` part of ``docs/benchmarks.md`` from ``measure``'s result."""
    if "error" in section:
        return f"## Cost of /metrics scraping\n\nThe run failed: `{section['error']}`\n"
    lines = [
        "## Cost of /metrics scraping",
        "",
        f"Each service's request, {section['pairs']} times without a scraper and {section['pairs']} times while "
        f"`/metrics` of all three services is read every {section['scrape_interval_s']} s (thirty times "
        "Prometheus' usual 15 s), alternating. One scrape: wall time over back-to-back scrapes at idle, response "
        "size, and the CPU time the service's process spent per scrape.",
        "",
        "| service | measures | quiet p50 / p95 (ms) | scraped p50 / p95 (ms) | p50 difference (ms) "
        "| one scrape: wall p50 (ms) | bytes | CPU per scrape (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("stt", "llm", "tts"):
        row = section[name]
        lines.append(
            f"| {name} | {row['measures']} | {row['quiet_ms']['p50']:.0f} / {row['quiet_ms']['p95']:.0f} | "
            f"{row['scraped_ms']['p50']:.0f} / {row['scraped_ms']['p95']:.0f} | {row['p50_difference_ms']:+.0f} | "
            f"{row['scrape']['wall_ms']['p50']:.1f} | {row['scrape']['bytes']} | {row['scrape']['cpu_ms_per_scrape']} |"
        )
    return "\n".join(lines) + "\n"
