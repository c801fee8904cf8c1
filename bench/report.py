"""Results -> the generated part of ``docs/benchmarks.md`` (between its markers) and ``docs/benchmark-latency.png``.

Only the text between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is rewritten, so the hand-written
explanation and findings around it stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import handsfree, metrics_cost, realtime
from .processes import REPO_ROOT
from .stats import ms_text, summarize

DOC = REPO_ROOT / "docs" / "benchmarks.md"
PLOT = REPO_ROOT / "docs" / "benchmark-latency.png"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write(results: dict[str, Any]) -> list[Path]:
    """Write the plot (when there are clip rows) and the doc's generated section; return the paths written."""
    written = []
    if _rows(results):
        plot(results, PLOT)
        written.append(PLOT)
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1) if BEGIN in text else (text.rstrip() + "\n\n", END)
    tail = rest.split(END, 1)[1] if END in rest else "\n"
    DOC.write_text(f"{head}{BEGIN}\n{generated(results)}\n{END}{tail}")
    written.append(DOC)
    return written


def _rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in (results.get("turns") or {}).get("clips", []) if "error" not in row]


def _pair(summary: dict[str, Any] | None) -> str:
    return "-" if not summary else f"{ms_text(summary)} / {ms_text(summary, 'p95')}"


def _spread(summary: dict[str, Any] | None, digits: int = 0) -> str:
    """``p50 (min..max)``: the middle and the whole range over the pairs."""
    if not summary:
        return "-"
    return f"{summary['p50']:+.{digits}f} ({summary['min']:+.{digits}f}..{summary['max']:+.{digits}f})"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def generated(results: dict[str, Any]) -> str:
    parts = [_machine(results), _headline(results), _clips(results), _overhead(results), _stt_accuracy(results)]
    if "handsfree" in results:
        parts.append(handsfree.markdown(results["handsfree"]))
    if "realtime" in results:
        parts.append(realtime.markdown(results["realtime"]))
    if "metrics" in results:
        parts.append(metrics_cost.markdown(results["metrics"]))
    return "\n\n".join(part for part in parts if part)


def _machine(results: dict[str, Any]) -> str:
    machine, plan = results.get("machine", {}), results.get("plan", {})
    dirty = f" + {machine['dirty_files']} uncommitted files" if machine.get("dirty_files") else ""
    rows = [
        ("run", f"{'QUICK' if plan.get('quick') else 'full'}, {results.get('seconds', 0):.0f} s"),
        ("date, commit", f"{machine.get('date')}, {machine.get('commit')}{dirty}"),
        ("machine", f"{machine.get('cpu_model')}, {machine.get('cores')} cores, {machine.get('memory_gib')} GiB, "
                    f"Python {machine.get('python')}, kernel {machine.get('kernel')}"),
        ("load average (1/5/15 min)", f"{results.get('load_average_start')} at start, "
                                      f"{results.get('load_average_end')} at end"),
    ]  # fmt: skip
    for name in ("turns", "overhead", "stt_accuracy"):
        competing = (results.get(name) or {}).get("other_busy_processes_before")
        if competing:
            listed = "; ".join(f"`{p['command'][:50]}` {p['cpu_share']:.0%}" for p in competing[:4])
            rows.append((f"other busy processes when `{name}` started", listed))
    for name, section in results.items():
        measured = section.get("measured") if isinstance(section, dict) else None
        if measured:  # a section run again later on its own (python -m bench --sections ... --merge)
            other = measured.get("machine") or {}
            dirty = f" + {other['dirty_files']} uncommitted files" if other.get("dirty_files") else ""
            rows.append((f"`{name}` measured in a later run", f"{other.get('date')}, {other.get('commit')}{dirty}, "
                         f"load average {section.get('load_average_before')} before"))  # fmt: skip
    if results.get("failed_sections"):
        rows.append(("failed", ", ".join(results["failed_sections"])))
    return "## Last run\n\n" + _table(("", ""), rows)


def _headline(results: dict[str, Any]) -> str:
    v2v = results.get("voice_to_voice_ms")
    if not v2v:
        return ""
    clips = results.get("clips", [])
    speakers = len({clip.get("speaker") for clip in clips})
    targets = results.get("targets", {})
    verdict = ["met" if value else "**not met**" for value in targets.values()]
    rows = [
        ("voice-to-voice p50 <= 400 ms", f"**{ms_text(v2v)} ms**", verdict[0] if verdict else "-"),
        ("voice-to-voice p95 <= 700 ms", f"**{ms_text(v2v, 'p95')} ms**", verdict[1] if len(verdict) > 1 else "-"),
        ("sequential first audio (no streaming)", _pair(results.get("sequential_first_audio_ms")),
         f"{results.get('first_audio_ratio')}x later"),
    ]  # fmt: skip
    return (
        f"## Voice-to-voice over the corpus ({v2v['n']} turns, {len(clips)} clips, {speakers} speakers, "
        f"{min(c['duration_s'] for c in clips)}-{max(c['duration_s'] for c in clips)} s)\n\n"
        + _table(("", "measured", "verdict"), rows)
    )


def _clips(results: dict[str, Any]) -> str:
    section = results.get("turns")
    if section is None:
        return ""
    if "error" in section:
        return f"## Every clip\n\nfailed: {section['error']}"
    rows = []
    for row in section.get("clips", []):
        if "error" in row:
            rows.append((f"`{row['clip']}`", f"{row['duration_s']:.1f}", "", "", "", "", "", row["error"], "", ""))
            continue
        streaming, sequential = row["streaming"], row["sequential"]
        rows.append(
            (f"`{row['clip']}`", f"{row['duration_s']:.1f}", row["speaker"], ms_text(streaming["stt_ms"]),
             ms_text(streaming.get("llm_ttft_ms")), ms_text(streaming.get("llm_first_phrase_ms")),
             ms_text(streaming.get("tts_ttfa_ms")), f"**{_pair(streaming['voice_to_voice_ms'])}**",
             ms_text(sequential["first_audio_ms"]), "yes" if row["same_reply_both_designs"] else "no")
        )  # fmt: skip
    header = (
        "clip", "s", "speaker", "STT", "LLM 1st token", "LLM 1st phrase", "TTS 1st audio",
        "**voice-to-voice** p50 / p95", "sequential 1st audio", "same reply",
    )  # fmt: skip
    return (
        "## Every clip (streaming stages p50, ms)\n\n"
        + _table(header, rows)
        + "\n\n![voice-to-voice per clip](benchmark-latency.png)"
    )


def _overhead(results: dict[str, Any]) -> str:
    section = results.get("overhead")
    if section is None:
        return ""
    if "error" in section:
        return f"## Services vs bare libraries\n\nfailed: {section['error']}"
    measures = {"stt": (("ms", "transcript"),), "llm": (("ttft_ms", "first token"), ("ms", "whole reply")),
                "tts": (("ttfa_ms", "first audio"), ("ms", "whole speech"))}  # fmt: skip
    rows: list[Sequence[Any]] = []
    for name, keys in measures.items():
        part = section.get(name, {"error": "not run"})
        if "error" in part:
            rows.append((name.upper(), "", "", "", "", "", part["error"]))
            continue
        for key, label in keys:
            timing = part[key]
            rows.append(
                (f"{name.upper()} {label}", part["pairs"], _pair(timing["service"]), _pair(timing["bare"]),
                 _spread(timing["added_ms"]), _spread(timing["ratio"], 2).replace("+", ""),
                 f"{part['same_output']} / {part['pairs']}" if name != "tts" else "")
            )  # fmt: skip
    header = (
        "work", "pairs", "service p50 / p95", "library p50 / p95", "added p50 (min..max)", "ratio p50 (min..max)",
        "same text",
    )  # fmt: skip
    return "## Services vs bare libraries (interleaved pairs, ms)\n\n" + _table(header, rows)


def _stt_accuracy(results: dict[str, Any]) -> str:
    section = results.get("stt_accuracy")
    if section is None:
        return ""
    if "error" in section:
        return f"## STT accuracy\n\nfailed: {section['error'][:500]}"
    decodings = [
        (row["name"], f"{row['wer']:.3f}",
         ", ".join(f"{part} {value:.3f}" for part, value in row.get("wer_by_part", {}).items()),
         _pair(summarize(row["ms"])), row.get("fallbacks", "-"))
        for row in section["decodings"]
    ]  # fmt: skip
    checks = [
        (f"`{row['check']}`", row["fired"], row["wrong"], ", ".join(row["clips"][:6])) for row in section["checks"]
    ]
    return (
        f"## STT accuracy ({section['clips']} clips, {section['audio_s']} s, in-process)\n\n"
        + _table(("decoding", "WER", "by part", "ms per clip p50 / p95", "decoded again"), decodings)
        + "\n\nShort-window checks (wrong: fired although the short window alone heard the clip as well as 30 s "
        "windows):\n\n" + _table(("check", "fired", "wrong", "clips"), checks)
    )


def plot(results: dict[str, Any], path: Path) -> None:
    """Per clip, shortest first: the streaming stages stacked (p50) and voice-to-voice p50 and p95."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(results)
    stages = (("stt_ms", "STT", "#4c72b0"), ("llm_first_phrase_ms", "LLM to 1st phrase", "#dd8452"),
              ("tts_ttfa_ms", "TTS to 1st audio", "#55a868"))  # fmt: skip
    figure, axis = plt.subplots(figsize=(12, 5))
    positions = range(len(rows))
    bottom = [0.0] * len(rows)
    for field, label, colour in stages:
        values = [float((row["streaming"].get(field) or {}).get("p50", 0.0)) for row in rows]
        axis.bar(positions, values, bottom=bottom, color=colour, label=f"{label} p50")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for stat, marker in (("p50", "o"), ("p95", "x")):
        axis.plot(positions, [row["streaming"]["voice_to_voice_ms"][stat] for row in rows], marker, color="black",
                  label=f"voice-to-voice {stat}")  # fmt: skip
    for limit, label in ((400, "target p50"), (700, "target p95")):
        axis.axhline(limit, color="red", linestyle="--", linewidth=1)
        axis.text(len(rows) - 0.5, limit, label, color="red", fontsize=8, va="bottom", ha="right")
    axis.set_xticks(list(positions), [f"{row['clip'][:22]}\n{row['duration_s']:.1f} s" for row in rows],
                    rotation=60, ha="right", fontsize=7)  # fmt: skip
    axis.set_ylabel("ms")
    axis.legend(fontsize=8)
    machine = results.get("machine", {})
    axis.set_title(
        f"Push-to-talk voice-to-voice per clip: {machine.get('cpu_model')}, {machine.get('cores')} cores, "
        f"{machine.get('date')}, load {results.get('load_average_start')}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary_text(results: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [f"load average: start {results.get('load_average_start')}, end {results.get('load_average_end')}"]
    v2v = results.get("voice_to_voice_ms")
    if v2v:
        lines.append(
            f"voice-to-voice over {len(results.get('clips', []))} clips ({v2v['n']} turns): p50 {ms_text(v2v)} ms, "
            f"p95 {ms_text(v2v, 'p95')} ms; sequential first audio p50 "
            f"{ms_text(results.get('sequential_first_audio_ms'))} ms"
        )
    for name, part in (results.get("overhead") or {}).items():
        if isinstance(part, dict) and "ms" in part:
            lines.append(f"{name}: the service adds {_spread(part['ms']['added_ms'])} ms to its library's call")
    if results.get("failed_sections"):
        lines.append(f"FAILED: {', '.join(results['failed_sections'])}")
    return "\n".join(lines)
