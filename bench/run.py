"""``make bench``: what a user hears, over a varied corpus, on this machine; then ``latest.json`` and the docs.

Sections, in order (``--sections`` picks some); each is recorded with the load average and the other busy processes
around it. A section that fails is recorded with its error and the run goes on, then exits 1; a slow number never
fails the run.

- ``turns``: every corpus clip (``bench.corpus``) through the three services: a streaming pipeline turn, then a
  sequential one, alternating, so both see the same load. The headline voice-to-voice p50/p95 pools every streaming
  turn of every clip.
- ``overhead``: each service against its bare library, interleaved (``bench.overhead``).
- ``stt_accuracy``: the STT's word error rate over ``tests/data/wer`` and how often each short-window check fired
  and was wrong (``bench/stt_accuracy.py``, in the STT venv). Not in a QUICK run.
- ``handsfree``: hands-free conversations in headless Chromium over WebRTC, inside a private network namespace
  (``bench.handsfree``): end of user speech -> first reply sound at the listener's ear, barge-in silence, with 1, 2
  and 4 sessions at once (QUICK: 1 and 2).
- ``realtime``: the Realtime service over a WebSocket with the official ``openai`` client (``bench.realtime``): end
  of speech -> first ``response.output_audio.delta``, push-to-talk and server_vad, 1, 2 and 4 sessions at once, and
  what the service adds to the engine's own time.
- ``metrics``: what ``GET /metrics`` costs: one scrape's time, size and CPU per service, and each service's latency
  with and without a scraper reading every 0.5 s (``bench.metrics_cost``).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voice_agent.config import FrontendSettings

from . import handsfree, metrics_cost, overhead, realtime, report
from .corpus import Clip, corpus
from .machine import busy_processes, describe, load_average
from .processes import REPO_ROOT, VENVS, start_services, stop_all
from .stats import summarize, summarize_fields
from .turns import Designs, Turn

logger = logging.getLogger("bench")

RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
SECTIONS = ("turns", "overhead", "stt_accuracy", "handsfree", "realtime", "metrics")
SEQUENTIAL_FIELDS = ("stt_ms", "llm_total_ms", "tts_total_ms", "first_audio_ms")
TARGETS_MS = {"p50": 400, "p95": 700}
"""Voice-to-voice over the corpus, push-to-talk, 2 cores, embedded defaults."""


@dataclass(frozen=True)
class Plan:
    """How much to run: the full run takes about 6 minutes on a quiet 2-core machine, ``--quick`` about 2."""

    quick: bool = False
    turns_per_clip: int = 4
    overhead_pairs: int = 14
    llm_max_tokens: int = 60
    stt_accuracy: bool = True

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(quick=True, turns_per_clip=1, overhead_pairs=4, stt_accuracy=False)


class Bench:
    """Runs the sections in order, collecting results and errors into one dict."""

    def __init__(self, plan: Plan, work_dir: Path) -> None:
        self.plan, self.work_dir = plan, work_dir
        self.clips = corpus()
        self.results: dict[str, Any] = {}
        self.failed: list[str] = []

    def section(self, name: str, action: Callable[[], dict[str, Any]]) -> None:
        """Run one section; record its result (or its error) with the load average and competing processes."""
        logger.info("== %s (load average %s)", name, load_average())
        started, load_before, competing = time.perf_counter(), load_average(), busy_processes()
        if competing:
            logger.warning("other busy processes: %s", "; ".join(str(p["command"])[:60] for p in competing))
        try:
            result = action()
        except Exception as err:  # noqa: BLE001 - any failure is recorded and the run goes on
            logger.error("section %s failed: %s", name, err)
            result = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-4000:]}
            self.failed.append(name)
        self.results[name] = {
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "other_busy_processes_before": competing,
            "seconds": round(time.perf_counter() - started, 1),
            **result,
        }

    def turns(self) -> dict[str, Any]:
        """Streaming and sequential turns on every clip, alternating; one row per clip."""
        services = start_services(["stt", "llm", "tts"], self.work_dir / "logs" / "turns")
        urls = {f"{name}_url": service.url for name, service in services.items()}
        settings = FrontendSettings().model_copy(update=urls)  # the FRONTEND_* environment, these services' URLs
        designs = Designs(settings)
        try:
            designs.streaming(self.clips[0])  # warm-up: first connections, first requests
            designs.sequential(self.clips[0])
            rows = [self._clip(designs, clip) for clip in self.clips]
        finally:
            designs.close()
            stop_all(services.values())
        return {"turn_options": asdict(designs.options), "clips": rows}

    def _clip(self, designs: Designs, clip: Clip) -> dict[str, Any]:
        logger.info("clip %s (%.2f s, %s)", clip.name, clip.duration_s, clip.speaker)
        streamed: list[Turn] = []
        whole: list[Turn] = []
        try:
            for _ in range(self.plan.turns_per_clip):
                streamed.append(designs.streaming(clip))
                whole.append(designs.sequential(clip))
        except Exception as err:  # noqa: BLE001 - one clip failing leaves the others' rows
            logger.error("clip %s failed: %s", clip.name, err)
            self.failed.append(f"clip {clip.name}")
            return {"clip": clip.name, "duration_s": clip.duration_s, "error": f"{type(err).__name__}: {err}"}
        fields = list(streamed[0].timings)
        return {
            "clip": clip.name,
            "duration_s": clip.duration_s,
            "speaker": clip.speaker,
            "expected_transcript": clip.transcript,
            "transcript": streamed[-1].transcript,
            "reply": streamed[-1].reply,
            "first_phrase": streamed[-1].first_phrase,
            "same_reply_both_designs": all(s.reply == w.reply for s, w in zip(streamed, whole, strict=True)),
            "streaming": summarize_fields([turn.timings for turn in streamed], fields),
            "sequential": summarize_fields([turn.timings for turn in whole], SEQUENTIAL_FIELDS),
            "raw_streaming": [turn.timings for turn in streamed],
            "raw_sequential": [turn.timings for turn in whole],
        }

    def overhead(self) -> dict[str, Any]:
        logs, pairs = self.work_dir / "logs" / "overhead", self.plan.overhead_pairs
        texts = [clip.transcript for clip in self.clips]
        parts: dict[str, Callable[[], dict[str, Any]]] = {
            "stt": lambda: overhead.stt(self.clips, pairs, logs),
            "llm": lambda: overhead.llm(texts, pairs, self.plan.llm_max_tokens, logs),
            "tts": lambda: overhead.tts(texts, pairs, logs),
        }
        out: dict[str, Any] = {}
        for name, action in parts.items():
            try:
                out[name] = action()
            except Exception as err:  # noqa: BLE001 - recorded; the other services are still compared
                logger.error("overhead %s failed: %s", name, err)
                self.failed.append(f"overhead {name}")
                out[name] = {"error": f"{type(err).__name__}: {err}"}
        return out

    def stt_accuracy(self) -> dict[str, Any]:
        """``bench/stt_accuracy.py`` in the STT venv (no service running); its JSON as it prints it."""
        done = subprocess.run(
            [str(VENVS / "stt" / "bin" / "python"), str(REPO_ROOT / "bench" / "stt_accuracy.py")],
            capture_output=True, text=True, cwd=REPO_ROOT, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"stt_accuracy.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def handsfree(self) -> dict[str, Any]:
        plan = handsfree.Plan.quick_plan() if self.plan.quick else handsfree.Plan()
        return handsfree.measure(plan)  # raw levels, screenshots and logs in artifacts/handsfree/

    def realtime(self) -> dict[str, Any]:
        plan = realtime.Plan.quick_plan() if self.plan.quick else realtime.Plan()
        return realtime.measure(plan, log_dir=self.work_dir / "logs" / "realtime")

    def metrics(self) -> dict[str, Any]:
        texts = [clip.transcript for clip in self.clips]
        pairs = self.plan.overhead_pairs
        return metrics_cost.measure(self.clips, texts, pairs, self.work_dir / "logs" / "metrics")

    def run(self, sections: Sequence[str]) -> dict[str, Any]:
        started = time.perf_counter()
        self.results.update(machine=describe(), plan=asdict(self.plan), load_average_start=load_average())
        self.results["clips"] = [
            {"name": clip.name, "duration_s": clip.duration_s, "speaker": clip.speaker, "source": clip.source}
            for clip in self.clips
        ]
        actions = {
            "turns": self.turns,
            "overhead": self.overhead,
            "stt_accuracy": self.stt_accuracy,
            "handsfree": self.handsfree,
            "realtime": self.realtime,
            "metrics": self.metrics,
        }
        for name in SECTIONS:
            if name in sections and (name != "stt_accuracy" or self.plan.stt_accuracy):
                self.section(name, actions[name])
        self.results.update(
            load_average_end=load_average(),
            seconds=round(time.perf_counter() - started, 1),
            failed_sections=self.failed,
            **headline(self.results),
        )
        return self.results


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """Voice-to-voice p50/p95 over every streaming turn of every clip, sequential first audio likewise, targets."""
    rows = [row for row in results.get("turns", {}).get("clips", []) if "error" not in row]
    if not rows:
        return {}
    streaming = summarize(t.get("voice_to_voice_ms") for row in rows for t in row["raw_streaming"])
    sequential = summarize(t.get("first_audio_ms") for row in rows for t in row["raw_sequential"])
    ratio = round(sequential["p50"] / streaming["p50"], 2) if streaming and sequential else None
    return {
        "voice_to_voice_ms": streaming,
        "streaming_first_audio_ms": streaming,
        "sequential_first_audio_ms": sequential,
        "first_audio_ratio": ratio,
        "targets": {
            f"voice_to_voice_{key}_le_{limit}_ms": bool(streaming and streaming[key] <= limit)
            for key, limit in TARGETS_MS.items()
        },
    }


def merged(previous: dict[str, Any], new: dict[str, Any], sections: Sequence[str]) -> dict[str, Any]:
    """``previous`` results with ``sections`` replaced by ``new``'s, each stamped with the run that measured it
    (``measured``: machine, date, commit, load average), so the doc says which numbers come from which run."""
    results = dict(previous)
    for name in sections:
        if name in new:
            results[name] = {**new[name], "measured": {"machine": new.get("machine"), "plan": new.get("plan")}}
    results["failed_sections"] = sorted(
        set(previous.get("failed_sections", [])) - set(sections) | set(new["failed_sections"])
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 turn per clip, 4 overhead pairs, no STT accuracy")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only, leave docs/ untouched")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the sections run in the existing --out file (each marked with its own date and commit)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)  # the libraries' request logs stay quiet
    sections = [name for name in args.sections.split(",") if name]
    if set(sections) - set(SECTIONS):
        parser.error(f"unknown sections {sorted(set(sections) - set(SECTIONS))}")

    with tempfile.TemporaryDirectory(prefix="voice-agent-bench-") as work:
        bench = Bench(Plan.quick_plan() if args.quick else Plan(), Path(work))
        results = bench.run(sections)
        if bench.failed:  # keep the service logs for the post-mortem
            import shutil

            shutil.rmtree(args.out.parent / "logs", ignore_errors=True)
            shutil.copytree(Path(work) / "logs", args.out.parent / "logs", dirs_exist_ok=True)
    if args.merge and args.out.exists():
        results = merged(json.loads(args.out.read_text()), results, sections)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    logger.info("wrote %s", args.out)
    if not args.no_docs:
        for path in report.write(results):
            logger.info("wrote %s", path)
    print(report.summary_text(results))
    if bench.failed:
        logger.error("failed: %s (logs in %s)", ", ".join(bench.failed), args.out.parent / "logs")
        return 1
    return 0
