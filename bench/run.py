"""``make bench``: every measurement in one run on one machine, then ``bench/results/latest.json`` and the docs.

Sections, in order (``--sections`` picks some), each recorded with the load average and the other busy processes
around it; a part that fails is recorded with its error and the run goes on, then exits 1; a slow number never
fails the run:

- ``designs``: (1) streaming, ``voice_agent.pipeline.Pipeline`` against the three services as processes, on every
  clip; (2) sequential, whole transcript -> whole reply -> whole speech, interleaved turn by turn with (1) so both
  see the same load; (5) the scaling with reply length (both designs) and with concurrent sessions; the py-spy
  profile of the three services.
- ``overhead``: (3) each service alone vs its bare library in its own venv (never both at once).
- ``llm_servers``: (4) our LLM service vs ``python -m llama_cpp.server``, 1 and 4 concurrent streaming clients.
- ``experiments``: settings a lead could change (thread counts, OpenMP wait policy, VAD, first-clause release),
  each measured against a baseline restarted the same way, with 1 user and some with 2 (``--experiments`` picks).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from voice_agent.pipeline import Pipeline

from . import overhead, report
from .clips import TARGET_CLIP, Clip, benchmark_clips
from .designs import (
    SequentialDesign,
    StreamingTurn,
    concurrent_sessions,
    frontend_settings,
    streaming_turn,
    turn_options,
)
from .llm_load import concurrent_streams
from .machine import REPO_ROOT, busy_processes, describe, load_average
from .processes import LlamaServerProcess, running_services
from .profile import recording, summarize_stacks
from .stats import ratio, summarize, summarize_fields

logger = logging.getLogger("bench")

RESULTS_DIR = REPO_ROOT / "bench" / "results"
STREAMING_FIELDS = (
    "stt_ms", "llm_ttft_ms", "llm_first_sentence_ms", "llm_total_ms", "tts_ttfa_ms", "voice_to_voice_ms", "total_ms",
)  # fmt: skip
SEQUENTIAL_FIELDS = ("stt_ms", "llm_total_ms", "tts_total_ms", "first_audio_ms")
SERVICES = ("stt", "llm", "tts")
SECTIONS = ("designs", "overhead", "llm_servers", "experiments")


@dataclass(frozen=True)
class Plan:
    """How much of everything to run; ``quick()`` fits in under 3 minutes, ``full()`` in about 15."""

    quick: bool
    turns_per_clip: int
    target_clip_turns: int
    reply_lengths: tuple[int, ...] = (20, 60, 150)
    reply_turns: int = 6
    sessions: tuple[int, ...] = (1, 2, 4)
    turns_per_session: int = 4
    overhead_runs: int = 12
    llm_stream_max_tokens: int = 150
    llm_rounds_one: int = 3
    llm_rounds_many: int = 2
    llm_clients_many: int = 4
    experiment_turns: int = 8
    experiments: bool = True
    profile_turns: int = 6
    only_experiments: tuple[str, ...] = ()
    stt_bare_variants: tuple[str, ...] = (
        "default", "short_window=false", "vad_filter=false", "cpu_threads=0", "cpu_threads=2",
        "short_window=false,without_timestamps=true",
    )  # fmt: skip

    @classmethod
    def full(cls) -> Plan:
        return cls(quick=False, turns_per_clip=8, target_clip_turns=16)

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(
            quick=True,
            turns_per_clip=2,
            target_clip_turns=4,
            reply_lengths=(20, 150),
            reply_turns=2,
            turns_per_session=2,
            overhead_runs=3,
            llm_rounds_one=1,
            llm_rounds_many=1,
            experiments=False,
            profile_turns=0,
            stt_bare_variants=("default", "short_window=false"),
        )


@dataclass(frozen=True)
class Experiment:
    """A change to try: extra environment per service and/or changed per-turn options; ``sessions`` users at once."""

    name: str
    description: str
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    sessions: int = 1


EXPERIMENTS = (
    Experiment("baseline", "the defaults, restarted like the variants"),
    Experiment("llm_nice_0", "LLM_NICE=0: llama.cpp competes with STT/TTS on equal terms",
               env={"llm": {"LLM_NICE": "0"}}),
    Experiment("llm_nice_5", "LLM_NICE=5: a milder yield to STT/TTS", env={"llm": {"LLM_NICE": "5"}}),
    Experiment("llm_n_threads_2", "LLM_N_THREADS=2: llama.cpp on both cores (at nice 10)",
               env={"llm": {"LLM_N_THREADS": "2"}}),
    Experiment("llm_n_threads_2_nice_0", "LLM_N_THREADS=2 + LLM_NICE=0: both cores, equal priority",
               env={"llm": {"LLM_N_THREADS": "2", "LLM_NICE": "0"}}),
    Experiment("llm_n_threads_batch_1", "LLM_N_THREADS_BATCH=1: the prompt read on one core, as the reply is written",
               env={"llm": {"LLM_N_THREADS_BATCH": "1"}}),
    Experiment("stt_30s_windows", "STT_SHORT_WINDOW_MAX_S=0: Whisper's standard 30 s windows",
               env={"stt": {"STT_SHORT_WINDOW_MAX_S": "0"}}),
    Experiment("stt_cpu_threads_2", "STT_CPU_THREADS=2: CTranslate2 on both cores",
               env={"stt": {"STT_CPU_THREADS": "2"}}),
    Experiment("stt_no_vad", "STT_VAD_FILTER=false: no Silero VAD pass before Whisper",
               env={"stt": {"STT_VAD_FILTER": "false"}}),
    Experiment("whole_first_sentence", "FRONTEND_FIRST_CLAUSE_MIN_WORDS=0: wait for the whole first sentence",
               options={"first_clause_min_words": 0}),
    # two users at once: STT and TTS of one turn then run while the LLM decodes for the other
    Experiment("baseline_2_sessions", "the defaults, 2 users at once", sessions=2),
    Experiment("llm_nice_0_2_sessions", "LLM_NICE=0, 2 users at once", env={"llm": {"LLM_NICE": "0"}}, sessions=2),
    Experiment("llm_nice_5_2_sessions", "LLM_NICE=5, 2 users at once", env={"llm": {"LLM_NICE": "5"}}, sessions=2),
    Experiment("llm_n_threads_2_2_sessions", "LLM_N_THREADS=2 (nice 10), 2 users at once",
               env={"llm": {"LLM_N_THREADS": "2"}}, sessions=2),
)  # fmt: skip


class Bench:
    """Runs the plan's sections in order, collecting results and errors into one dict."""

    def __init__(self, plan: Plan, work_dir: Path) -> None:
        self.plan = plan
        self.work_dir = work_dir
        self.clips = benchmark_clips(work_dir / "clips")
        self.target = next(clip for clip in self.clips if clip.name == TARGET_CLIP)
        self.results: dict[str, Any] = {}
        self.failed: list[str] = []
        self.streaming_turns: dict[str, list[StreamingTurn]] = {}

    def section(self, name: str, action: Callable[[], Any]) -> None:
        """Run one section; record its result (or its error) with the load average before and after."""
        logger.info("== %s (load average %s)", name, load_average())
        started = time.perf_counter()
        load_before = load_average()
        competing = busy_processes()
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
            **(result if isinstance(result, dict) else {"value": result}),
        }

    # --- 1, 2, 5: the two designs on every clip, reply length, concurrent sessions --------------------------------

    def designs(self) -> dict[str, Any]:
        """Streaming and sequential turns on every clip, interleaved, plus reply-length and concurrency scaling.

        Each clip, reply length, session count and the profile is guarded on its own: a part that fails (a stage
        timing out on an overloaded machine) is recorded with its error and the others still run.
        """
        out: dict[str, Any] = {}
        with running_services(SERVICES, self.work_dir / "logs" / "designs") as services:
            urls = {name: service.url for name, service in services.items()}
            settings = frontend_settings(urls)
            options = turn_options(settings)
            out["turn_options"] = asdict(options)
            pipeline = Pipeline.from_settings(settings)
            sequential = SequentialDesign(settings)
            try:
                streaming_turn(pipeline, options, self.target.audio, self.target.path.name)  # warm-up
                sequential.turn(options, self.target.audio, self.target.path.name)
                out["clips"] = [
                    self._guarded(f"clip {clip.name}", {"clip": clip.name, "duration_s": clip.duration_s},
                                  partial(self._clip, clip, pipeline, sequential, options))
                    for clip in self.clips
                ]  # fmt: skip
                out["reply_length"] = [
                    self._guarded(f"reply length {n}", {"max_tokens": n},
                                  partial(self._reply_length, pipeline, sequential, settings, n))
                    for n in self.plan.reply_lengths
                ]  # fmt: skip
            finally:
                pipeline.close()
                sequential.close()
            out["concurrency"] = [
                self._guarded(f"{n} sessions", {"sessions": n}, partial(self._sessions, settings, options, n))
                for n in self.plan.sessions
            ]
            if self.plan.profile_turns:
                out["profile"] = self._guarded("profile", {}, lambda: self._profile(services, settings, options))
        return out

    def _guarded(self, name: str, label: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``action()``, or ``label`` + the error when it raises (the run then exits 1, with the others done)."""
        try:
            return action()
        except Exception as err:  # noqa: BLE001 - recorded; the rest of the section still runs
            logger.error("%s failed: %s", name, err)
            self.failed.append(name)
            return {**label, "error": f"{type(err).__name__}: {err}"}

    def _clip(self, clip: Clip, pipeline: Pipeline, sequential: SequentialDesign, options: Any) -> dict[str, Any]:
        turns = self.plan.target_clip_turns if clip is self.target else self.plan.turns_per_clip
        logger.info("clip %s (%.2f s): %d streaming + %d sequential turns", clip.name, clip.duration_s, turns, turns)
        streamed, whole = [], []
        for _ in range(turns):
            streamed.append(streaming_turn(pipeline, options, clip.audio, clip.path.name))
            whole.append(sequential.turn(options, clip.audio, clip.path.name))
        self.streaming_turns[clip.name] = streamed
        streaming = summarize_fields([turn.timings for turn in streamed], STREAMING_FIELDS)
        sequential_summary = summarize_fields([turn.timings for turn in whole], SEQUENTIAL_FIELDS)
        return {
            "clip": clip.name,
            "duration_s": clip.duration_s,
            "expected_transcript": clip.transcript,
            "transcript": streamed[-1].transcript,
            "reply": streamed[-1].reply,
            "first_sentence": streamed[-1].first_sentence,
            "reply_audio_s": streamed[-1].audio_s,
            "same_reply_both_designs": all(s.reply == w.reply for s, w in zip(streamed, whole, strict=True)),
            "distinct_transcripts": sorted({t.transcript for t in streamed} | {t.transcript for t in whole}),
            "distinct_replies": sorted({t.reply for t in streamed} | {t.reply for t in whole}),
            "completion_tokens": whole[-1].completion_tokens,
            "streaming": streaming,
            "sequential": sequential_summary,
            **_ratios(streaming, sequential_summary),
            "raw_streaming": [turn.timings for turn in streamed],
            "raw_sequential": [turn.timings for turn in whole],
        }

    def _reply_length(
        self, pipeline: Pipeline, sequential: SequentialDesign, settings: Any, max_tokens: int
    ) -> dict[str, Any]:
        options = turn_options(settings, max_tokens=max_tokens)
        logger.info("reply length: max_tokens=%d, %d turns of each design", max_tokens, self.plan.reply_turns)
        streamed, whole = [], []
        for _ in range(self.plan.reply_turns):
            streamed.append(streaming_turn(pipeline, options, self.target.audio, self.target.path.name))
            whole.append(sequential.turn(options, self.target.audio, self.target.path.name))
        streaming = summarize_fields([turn.timings for turn in streamed], STREAMING_FIELDS)
        sequential_summary = summarize_fields([turn.timings for turn in whole], SEQUENTIAL_FIELDS)
        return {
            "max_tokens": max_tokens,
            "reply_words": len(streamed[-1].reply.split()),
            "reply_audio_s": streamed[-1].audio_s,
            "sentences": streamed[-1].sentences,
            "reply": streamed[-1].reply,
            "completion_tokens": whole[-1].completion_tokens,
            **streaming,
            "sequential": sequential_summary,
            **_ratios(streaming, sequential_summary),
        }

    def _sessions(self, settings: Any, options: Any, sessions: int) -> dict[str, Any]:
        logger.info("concurrency: %d sessions x %d turns", sessions, self.plan.turns_per_session)
        turns, wall_s = concurrent_sessions(
            settings, options, self.target.audio, self.target.path.name, sessions, self.plan.turns_per_session
        )
        return {
            "sessions": sessions,
            "turns": len(turns),
            "wall_s": round(wall_s, 1),
            "turns_per_minute": round(len(turns) / wall_s * 60, 1),
            **summarize_fields([turn.timings for turn in turns], STREAMING_FIELDS),
        }

    def _profile(self, services: dict[str, Any], settings: Any, options: Any) -> dict[str, Any]:
        """py-spy on the three services while the pipeline runs turns on the target clip."""
        pids = {name: service.process.pid for name, service in services.items()}
        out_dir = self.work_dir / "profile"
        pipeline = Pipeline.from_settings(settings)
        try:
            with recording(pids, out_dir) as outputs:
                time.sleep(1.0)  # let py-spy attach before the first turn
                turns = [
                    streaming_turn(pipeline, options, self.target.audio, self.target.path.name)
                    for _ in range(self.plan.profile_turns)
                ]
        finally:
            pipeline.close()
        profile: dict[str, Any] = {
            "turns": len(turns),
            "voice_to_voice_ms_while_profiled": summarize(turn.timings["voice_to_voice_ms"] for turn in turns),
        }
        for name, path in outputs.items():
            if path.exists() and path.stat().st_size:
                profile[name] = summarize_stacks(path)
            else:
                log = out_dir / f"{name}.py-spy.log"
                profile[name] = {"error": log.read_text(errors="replace")[-500:] if log.exists() else "no output"}
        return profile

    # --- 3: each service against its bare library -----------------------------------------------------------------

    def overhead(self) -> dict[str, Any]:
        """Service over HTTP vs bare library, each alone, on the target clip's work."""
        turns = self.streaming_turns.get(self.target.name)
        transcript = turns[-1].transcript if turns else self.target.transcript
        first_sentence = turns[-1].first_sentence if turns else ""
        reply = turns[-1].reply if turns else "That is a famous line. It asks people to serve their country."
        runs = self.plan.overhead_runs
        logs = self.work_dir / "logs"
        variants = list(self.plan.stt_bare_variants)
        texts = [text for text in (first_sentence, reply) if text]
        return {
            "stt": self._guarded(
                "overhead stt", {}, partial(overhead.stt_overhead, self.target.path, runs, logs, variants)
            ),
            "llm": self._guarded(
                "overhead llm",
                {},
                partial(
                    overhead.llm_overhead,
                    transcript,
                    160,
                    first_sentence,
                    runs,
                    logs,
                    thread_variants=not self.plan.quick,
                ),
            ),
            "tts": self._guarded("overhead tts", {}, partial(overhead.tts_overhead, texts, runs, logs)),
        }

    # --- 4: our LLM service vs llama-cpp-python's server --------------------------------------------------------

    def llm_servers(self) -> dict[str, Any]:
        """1 and N concurrent streaming clients against each server, alone on the machine, same prompt."""
        system_prompt = overhead.service_system_prompt()
        messages = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": self.target.transcript},
        ]
        body = {
            "model": "local",
            "messages": messages,
            "max_tokens": self.plan.llm_stream_max_tokens,
            "temperature": 0.0,
            "seed": 1234,
        }
        plan = self.plan

        def load(url: str) -> dict[str, Any]:
            concurrent_streams(url, body, 1, 1)  # warm-up
            return {
                "one_client": concurrent_streams(url, body, 1, plan.llm_rounds_one),
                "many_clients": concurrent_streams(url, body, plan.llm_clients_many, plan.llm_rounds_many),
            }

        out: dict[str, Any] = {"max_tokens": plan.llm_stream_max_tokens, "prompt": self.target.transcript}
        with running_services(["llm"], self.work_dir / "logs" / "llm-servers") as services:
            out["ours"] = load(services["llm"].url)
        n_threads = int(overhead.service_llm_setting("n_threads"))
        out["n_threads"] = n_threads
        with LlamaServerProcess(self.work_dir / "logs" / "llama-server.log", n_threads=n_threads) as server:
            out["llama_cpp_server"] = load(server.url)
        return out

    # --- 6: settings to try -------------------------------------------------------------------------------------

    def experiments(self) -> dict[str, Any]:
        """Each experiment: services started with its environment, a warm-up turn, then turns on the target clip."""
        rows = []
        for experiment in EXPERIMENTS:
            if self.plan.only_experiments and experiment.name not in self.plan.only_experiments:
                continue
            logger.info("experiment %s: %s", experiment.name, experiment.description)
            log_dir = self.work_dir / "logs" / f"experiment-{experiment.name}"
            competing = busy_processes()
            with running_services(SERVICES, log_dir, env=experiment.env) as services:
                settings = frontend_settings({name: service.url for name, service in services.items()})
                options = turn_options(settings, **experiment.options)
                pipeline = Pipeline.from_settings(settings)
                try:
                    streaming_turn(pipeline, options, self.target.audio, self.target.path.name)
                    if experiment.sessions == 1:
                        turns = [
                            streaming_turn(pipeline, options, self.target.audio, self.target.path.name)
                            for _ in range(self.plan.experiment_turns)
                        ]
                    else:
                        per_session = max(1, self.plan.experiment_turns // experiment.sessions)
                        turns, _ = concurrent_sessions(
                            settings, options, self.target.audio, self.target.path.name, experiment.sessions,
                            per_session,
                        )  # fmt: skip
                finally:
                    pipeline.close()
            rows.append(
                {
                    "name": experiment.name,
                    "description": experiment.description,
                    "sessions": experiment.sessions,
                    "env": experiment.env,
                    "options": experiment.options,
                    "options_applied": {k: getattr(options, k) for k in experiment.options if hasattr(options, k)},
                    "first_sentence": turns[-1].first_sentence,
                    "load_average": load_average(),
                    "other_busy_processes": competing,
                    **summarize_fields([turn.timings for turn in turns], STREAMING_FIELDS),
                }
            )
        return {"clip": self.target.name, "rows": rows}

    def run(self, sections: Sequence[str] = SECTIONS) -> dict[str, Any]:
        """Run ``sections`` (in the fixed order of ``SECTIONS``) and return every result."""
        started = time.perf_counter()
        self.results["machine"] = describe()
        self.results["plan"] = asdict(self.plan)
        self.results["load_average_start"] = load_average()
        actions = {
            "designs": self.designs,
            "overhead": self.overhead,
            "llm_servers": self.llm_servers,
            "experiments": self.experiments,
        }
        for name in SECTIONS:
            if name in sections and (name != "experiments" or self.plan.experiments):
                self.section(name, actions[name])
        self.results["load_average_end"] = load_average()
        self.results["seconds"] = round(time.perf_counter() - started, 1)
        self.results["failed_sections"] = self.failed
        self.results.update(headline(self.results, self.target.name))
        return self.results


def _p50(summary: Any) -> float | None:
    return float(summary["p50"]) if summary else None


def _ratios(streaming: dict[str, Any], sequential: dict[str, Any]) -> dict[str, float | None]:
    """First audio, sequential p50 / streaming p50: all of it, and after the transcript (the part streaming
    changes; both designs wait for the same STT first)."""
    stream_p50, whole_p50 = _p50(streaming["voice_to_voice_ms"]), _p50(sequential["first_audio_ms"])
    stream_stt, whole_stt = _p50(streaming["stt_ms"]), _p50(sequential["stt_ms"])
    after_stt = None
    if None not in (stream_p50, whole_p50, stream_stt, whole_stt):
        assert stream_p50 is not None and whole_p50 is not None and stream_stt is not None and whole_stt is not None
        after_stt = ratio(whole_p50 - whole_stt, stream_p50 - stream_stt)
    return {"first_audio_ratio_p50": ratio(whole_p50, stream_p50), "first_audio_ratio_after_stt_p50": after_stt}


def headline(results: dict[str, Any], target: str) -> dict[str, Any]:
    """The top-level numbers (target clip) and the verdict against the targets."""
    clips = {row["clip"]: row for row in results.get("designs", {}).get("clips", [])}
    row = clips.get(target)
    if row is None or "error" in row:
        return {}
    streaming, sequential = row["streaming"], row["sequential"]
    v2v = streaming["voice_to_voice_ms"]
    over = results.get("overhead", {})
    ratios = {
        "stt": over.get("stt", {}).get("overhead_ratio"),
        "llm": over.get("llm", {}).get("overhead_ratio"),
        "tts": max(
            (text["overhead_ratio"] for text in over.get("tts", {}).get("texts", []) if text["overhead_ratio"]),
            default=None,
        ),
    }
    first_audio_ratio = row["first_audio_ratio_p50"]
    return {
        "target_clip": target,
        "voice_to_voice_ms": v2v,
        "streaming_first_audio_ms": v2v,
        "sequential_first_audio_ms": sequential["first_audio_ms"],
        "first_audio_ratio": first_audio_ratio,
        "first_audio_ratio_after_stt": row.get("first_audio_ratio_after_stt_p50"),
        "targets": {
            "voice_to_voice_p50_le_600_ms": bool(v2v and v2v["p50"] <= 600),
            "voice_to_voice_p95_le_900_ms": bool(v2v and v2v["p95"] <= 900),
            "first_audio_ratio_ge_3": bool(first_audio_ratio and first_audio_ratio >= 3),
            "service_overhead_ratios": ratios,
            "services_within_5_percent": all(value is not None and value <= 1.05 for value in ratios.values()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced run (under 3 minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only, leave docs/ untouched")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument(
        "--experiments", default="", help=f"comma-separated subset of {','.join(e.name for e in EXPERIMENTS)}"
    )
    parser.add_argument(
        "--merge", action="store_true", help="replace only the sections run in the existing --out file, keep the rest"
    )
    parser.add_argument("--profile-turns", type=int, default=None, help="turns under py-spy (0: no profile)")
    parser.add_argument("--overhead-runs", type=int, default=None, help="timed runs per service and library")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    plan = Plan.quick_plan() if args.quick else Plan.full()
    if args.profile_turns is not None:
        plan = replace(plan, profile_turns=args.profile_turns)
    if args.overhead_runs is not None:
        plan = replace(plan, overhead_runs=args.overhead_runs)
    if args.experiments:
        plan = replace(plan, experiments=True, only_experiments=tuple(args.experiments.split(",")))
    sections = [name for name in args.sections.split(",") if name]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    with tempfile.TemporaryDirectory(prefix="voice-agent-bench-") as work:
        bench = Bench(plan, Path(work))
        results = bench.run(sections)
        logs_kept = RESULTS_DIR / "logs"
        if bench.failed:
            _keep_logs(Path(work) / "logs", logs_kept)
    if args.merge and args.out.exists():
        results = merge(json.loads(args.out.read_text()), results, sections, bench.target.name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    logger.info("wrote %s", args.out.relative_to(REPO_ROOT) if args.out.is_relative_to(REPO_ROOT) else args.out)
    if not args.no_docs:
        for path in report.write(results):
            logger.info("wrote %s", path.relative_to(REPO_ROOT))
    print(report.summary_text(results))
    if bench.failed:
        logger.error("failed sections: %s (service logs in %s)", ", ".join(bench.failed), logs_kept)
        return 1
    return 0


def merge(previous: dict[str, Any], new: dict[str, Any], sections: Sequence[str], target: str) -> dict[str, Any]:
    """``previous`` with the ``sections`` of ``new`` in place of its own; the rerun is noted in ``reruns``."""
    merged = dict(previous)
    for name in sections:
        if name in new:
            merged[name] = new[name]
    rerun = {key: new.get(key) for key in ("load_average_start", "load_average_end", "seconds", "failed_sections")}
    merged["reruns"] = [*previous.get("reruns", []), {"sections": list(sections), **rerun, **describe()}]
    merged["failed_sections"] = sorted(
        {*previous.get("failed_sections", []), *new.get("failed_sections", [])} - set(sections)
        | set(new.get("failed_sections", []))
    )
    merged.update(headline(merged, target))
    return merged


def _keep_logs(source: Path, target: Path) -> None:
    """Copy the service logs out of the temporary directory when something failed, for the post-mortem."""
    import shutil

    if source.exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
