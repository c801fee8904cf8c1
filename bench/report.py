"""Results -> the generated part of ``docs/benchmarks.md`` (between its markers) and ``docs/benchmark-latency.png``.

Only the text between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is rewritten, so the hand-written
explanation and findings around it stay; a missing file gets a bare skeleton.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .machine import REPO_ROOT

DOC = REPO_ROOT / "docs" / "benchmarks.md"
PLOT = REPO_ROOT / "docs" / "benchmark-latency.png"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SKELETON = f"# Benchmarks\n\n{BEGIN}\n{END}\n"


def write(results: dict[str, Any]) -> list[Path]:
    """Write the plot (when there is something to plot) and the doc's generated section; return the paths."""
    written = []
    if _clips(results):
        plot(results, PLOT)
        written.append(PLOT)
    text = DOC.read_text() if DOC.exists() else SKELETON
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(f"{head}{BEGIN}\n{generated(results)}\n{END}{tail}")
    written.append(DOC)
    return written


# --- formatting helpers -------------------------------------------------------------------------------------------


def _ok(rows: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The rows that have results (a part that failed has only its label and ``error``)."""
    return [row for row in rows or [] if "error" not in row]


def _failed_parts(section: dict[str, Any]) -> str:
    failed = [
        f"- {', '.join(f'{k} {v}' for k, v in row.items() if k != 'error')}: {row['error']}"
        for key in ("clips", "reply_length", "concurrency")
        for row in section.get(key, [])
        if "error" in row
    ]
    return "\n\nParts that failed in this run:\n\n" + "\n".join(failed) if failed else ""


def _clips(results: dict[str, Any]) -> list[dict[str, Any]]:
    return _ok(results.get("designs", {}).get("clips"))


def _ms(summary: dict[str, Any] | None, key: str = "p50") -> str:
    return "-" if not summary or summary.get(key) is None else f"{summary[key]:.0f}"


def _pair(summary: dict[str, Any] | None) -> str:
    return "-" if not summary else f"{_ms(summary)} / {_ms(summary, 'p95')}"


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _error(section: dict[str, Any] | None) -> str | None:
    if section is None:
        return "not run"
    return f"failed: {section['error']}" if "error" in section else None


# --- the generated markdown ---------------------------------------------------------------------------------------


def generated(results: dict[str, Any]) -> str:
    """Every table of the last run, in the order of the brief: machine, targets, designs, overhead, servers, scaling."""
    parts = [_machine(results), _targets(results), _designs(results), _overhead(results), _llm_servers(results)]
    parts += [_scaling(results), _experiments(results), _profile(results)]
    return "\n\n".join(part for part in parts if part)


def _machine(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    plan = results.get("plan", {})
    dirty = f" + {machine.get('dirty_files')} uncommitted files" if machine.get("dirty_files") else ""
    rows = [
        ("run", f"{'QUICK (reduced)' if plan.get('quick') else 'full'}, {results.get('seconds', 0):.0f} s"),
        ("date", machine.get("date")),
        ("commit", f"{machine.get('commit')}{dirty}"),
        ("CPU", f"{machine.get('cpu_model')}, {machine.get('cores')} cores"),
        ("memory", f"{machine.get('memory_gib')} GiB"),
        ("Python / kernel", f"{machine.get('python')} / {machine.get('kernel')}"),
        ("load average (1/5/15 min) at start", results.get("load_average_start")),
        ("load average at end", results.get("load_average_end")),
    ]
    for name in ("designs", "overhead", "llm_servers", "experiments"):
        competing = (results.get(name) or {}).get("other_busy_processes_before")
        if competing:
            listed = "; ".join(f"`{p['command'][:50]}` {p['cpu_share']:.0%}" for p in competing[:4])
            rows.append((f"other busy processes when `{name}` started", listed))
    for rerun in results.get("reruns", []):
        rows.append(
            (f"sections rerun: {', '.join(rerun['sections'])}",
             f"{rerun.get('date')}, commit {rerun.get('commit')}, load average {rerun.get('load_average_start')} -> "
             f"{rerun.get('load_average_end')}")
        )  # fmt: skip
    failed = results.get("failed_sections")
    if failed:
        rows.append(("failed sections", ", ".join(failed)))
    return "## Last run\n\n" + _table(("", ""), rows)


def _targets(results: dict[str, Any]) -> str:
    targets = results.get("targets")
    if not targets:
        return ""
    v2v = results["voice_to_voice_ms"] or {}
    ratios = targets["service_overhead_ratios"]

    def verdict(met: bool) -> str:
        return "met" if met else "**not met**"

    rows = [
        (
            "voice-to-voice p50 <= 600 ms (5 s question)",
            f"{_ms(v2v)} ms",
            verdict(targets["voice_to_voice_p50_le_600_ms"]),
        ),
        ("voice-to-voice p95 <= 900 ms", f"{_ms(v2v, 'p95')} ms", verdict(targets["voice_to_voice_p95_le_900_ms"])),
        (
            "first audio >= 3x sooner than sequential",
            f"{_num(results.get('first_audio_ratio'))}x "
            f"({_ms(results['sequential_first_audio_ms'])} vs {_ms(v2v)} ms); "
            f"{_num(results.get('first_audio_ratio_after_stt'))}x counting from the transcript",
            verdict(targets["first_audio_ratio_ge_3"]),
        ),
        (
            "each service within 5% of its bare library",
            ", ".join(f"{name} {_num(value)}x" for name, value in ratios.items()),
            verdict(targets["services_within_5_percent"]),
        ),
    ]
    return f"## Targets (clip `{results['target_clip']}`, p50 / p95 in ms)\n\n" + _table(
        ("target", "measured", "verdict"), rows
    )


def _designs(results: dict[str, Any]) -> str:
    section = results.get("designs")
    problem = _error(section)
    if problem:
        return f"## Streaming vs sequential\n\n{problem}"
    assert section is not None
    rows = []
    for row in _ok(section.get("clips")):
        streaming, sequential = row["streaming"], row["sequential"]
        rows.append(
            (
                f"{row['duration_s']:.2f} s `{row['clip']}`",
                streaming["voice_to_voice_ms"]["n"],
                _ms(streaming["stt_ms"]),
                _ms(streaming["llm_ttft_ms"]),
                _ms(streaming["llm_first_sentence_ms"]),
                _ms(streaming["tts_ttfa_ms"]),
                f"**{_pair(streaming['voice_to_voice_ms'])}**",
                _pair(sequential["first_audio_ms"]),
                _ms(sequential["llm_total_ms"]),
                _ms(sequential["tts_total_ms"]),
                f"{_num(row['first_audio_ratio_p50'])}x ({_num(row.get('first_audio_ratio_after_stt_p50'))}x)",
                "yes" if row["same_reply_both_designs"] else "no",
            )
        )
    table = _table(
        (
            "clip", "turns", "STT", "LLM TTFT", "LLM 1st sentence", "TTS 1st audio", "**voice-to-voice** p50 / p95",
            "sequential 1st audio p50 / p95", "seq. LLM whole", "seq. TTS whole", "ratio (after STT)", "same reply",
        ),
        rows,
    )  # fmt: skip
    target = next((row for row in _ok(section.get("clips")) if row["clip"] == results.get("target_clip")), None)
    detail = ""
    if target:
        stream_rows = [(name, _pair(value)) for name, value in target["streaming"].items()]
        sequential_rows = [(name, _pair(value)) for name, value in target["sequential"].items()]
        detail = (
            "\n\nEvery stage on the target clip (p50 / p95 ms). Streaming:\n\n"
            f"{_table(('stage', 'p50 / p95'), stream_rows)}"
            f"\n\nSequential:\n\n{_table(('stage', 'p50 / p95'), sequential_rows)}\n\n"
            f'Heard: "{target["transcript"]}"; replied ({target["completion_tokens"]} tokens, '
            f'{target["reply_audio_s"]} s of speech): "{target["reply"]}"; first piece spoken: '
            f'"{target["first_sentence"]}".'
        )
    return (
        "## Streaming vs sequential, every clip (p50 in ms unless marked)\n\n"
        + table
        + "\n\n![latency breakdown](benchmark-latency.png)"
        + detail
        + _failed_parts(section)
    )


def _overhead(results: dict[str, Any]) -> str:
    section = results.get("overhead")
    problem = _error(section)
    if problem:
        return f"## Services vs bare libraries\n\n{problem}"
    assert section is not None
    ok = {name: section[name] for name in ("stt", "llm", "tts") if "error" not in section.get(name, {"error": 1})}
    failed = [f"- {name.upper()}: {section[name]['error']}" for name in ("stt", "llm", "tts") if name not in ok]
    parts = ["## Services vs bare libraries (each alone on the machine)"]
    rows: list[tuple[str, ...]] = []
    if "stt" in ok:
        stt = ok["stt"]
        rows.append(
            (f"STT: transcribe `{stt['clip']}`", _pair(stt["service_ms"]),
             f"{_pair(stt['bare_file_ms'])} (from array: {_ms(stt['bare_array_ms'])})",
             f"**{_num(stt['overhead_ratio'])}x**", "yes" if stt["same_text"] else "no")
        )  # fmt: skip
    if "llm" in ok:
        llm = ok["llm"]
        rows += [
            (f"LLM: {llm['completion_tokens']['service']} tokens, whole reply", _pair(llm["service_total_ms"]),
             _pair(llm["bare_total_ms"]), f"**{_num(llm['overhead_ratio'])}x**", "yes" if llm["same_text"] else "no"),
            ("LLM: time to first token (streamed)", _pair(llm["service_ttft_ms"]), _pair(llm["bare_ttft_ms"]), "-", ""),
            ("LLM: time to the first sentence (streamed)", _pair(llm["service_first_piece_ms"]),
             _pair(llm["bare_first_piece_ms"]), f"{_num(llm['first_piece_ratio'])}x", ""),
        ]  # fmt: skip
    for text in ok.get("tts", {}).get("texts", []):
        label = f"TTS: {text['words']} words ({text['audio_s']} s of speech)"
        rows.append(
            (f"{label}, first audio", _pair(text["service_ttfa_ms"]), _pair(text["bare_ttfa_ms"]),
             f"{_num(text['ttfa_ratio'])}x", "")
        )  # fmt: skip
        rows.append(
            (f"{label}, whole speech", _pair(text["service_total_ms"]), _pair(text["bare_total_ms"]),
             f"**{_num(text['overhead_ratio'])}x**", "")
        )  # fmt: skip
    if rows:
        parts.append(
            _table(("work", "service over HTTP p50 / p95", "bare library p50 / p95", "ratio", "same output"), rows)
        )
    if failed:
        parts.append("Parts that failed in this run:\n\n" + "\n".join(failed))
    trips = [
        (name.upper(), _pair(part["http_round_trip"]["keep_alive_ms"]),
         _pair(part["http_round_trip"]["new_connection_ms"]))
        for name, part in ok.items()
    ]  # fmt: skip
    if trips:
        parts.append(
            "HTTP round trip of `GET /health` (ms, p50 / p95):\n\n"
            + _table(("service", "kept-alive connection", "new connection per request"), trips)
        )
    if "stt" in ok:
        stt = ok["stt"]
        variants = [
            (f"`{variant['name']}`", _pair(variant["array_ms"]), _pair(variant["file_ms"]), variant["text"])
            for variant in stt["bare_variants"]
        ]
        parts.append(
            f"Bare faster-whisper on `{stt['clip']}` with other settings (ms, p50 / p95):\n\n"
            + _table(("variant", "from decoded samples", "from the file", "text"), variants)
        )
        accuracy = stt.get("accuracy")
        if accuracy:
            parts.append(
                f"What the STT decoding costs and hears over the {accuracy['clips']} recorded clips "
                f"of `tests/data/wer` "
                f"({accuracy['audio_s']} s, other speakers; in-process, tiny.en, the service's defaults):\n\n"
                + _table(
                    ("decoding", "corpus WER", "ms per clip p50 / p95", "results decoded again with 30 s windows"),
                    [(row["name"], f"{row['wer']:.3f}", _pair(row["ms"]), row["fallbacks"])
                     for row in accuracy["decodings"]],
                )
            )  # fmt: skip
        stages = [(f"`{stage}`", _pair(summary)) for stage, summary in (stt.get("bare_breakdown_ms") or {}).items()]
        if stages:
            parts.append(
                f"What one bare transcription of `{stt['clip']}` is made of (ms, p50 / p95; the decoder is roughly "
                "`transcribe` minus the rest):\n\n" + _table(("stage", "p50 / p95"), stages)
            )
    if "llm" in ok:
        llm = ok["llm"]
        llm_variants = [
            (f"the service's default (n_threads={llm.get('n_threads', '?')}, "
             f"n_threads_batch={llm.get('n_threads_batch', '?')})", _pair(llm["service_total_ms"]),
             _pair(llm["bare_total_ms"]),
             f"{_num(llm['overhead_ratio'])}x", _num(llm["service_tokens_per_s"], 1),
             _num(llm["bare_tokens_per_s"], 1)),
            *((f"`{v['name']}`", _pair(v["service_total_ms"]), _pair(v["bare_total_ms"]),
               f"{_num(v['overhead_ratio'])}x", _num(v["service_tokens_per_s"], 1), _num(v["bare_tokens_per_s"], 1))
              for v in llm.get("thread_variants", [])),
        ]  # fmt: skip
        parts.append(
            f"The LLM's whole reply ({llm['completion_tokens']['service']} tokens, prompt included), service and "
            "library each alone on the machine, with the default and other thread settings (ms, p50 / p95):\n\n"
            + _table(("setting", "service", "bare library", "ratio", "service tokens/s", "bare tokens/s"), llm_variants)
        )
    return "\n\n".join(parts)


def _llm_servers(results: dict[str, Any]) -> str:
    section = results.get("llm_servers")
    problem = _error(section)
    if problem:
        return f"## Our LLM service vs llama-cpp-python's server\n\n{problem}"
    assert section is not None
    rows = []
    for key, label in (("ours", "our LLM service"), ("llama_cpp_server", "`python -m llama_cpp.server`")):
        for load in ("one_client", "many_clients"):
            row = section[key][load]
            rows.append(
                (
                    label,
                    row["clients"],
                    _pair(row["ttft_ms"]),
                    _ms(row["decode_tokens_per_s"]),
                    _ms(row["aggregate_tokens_per_s"]),
                    _ms(row["chunks_per_stream"]),
                    f"{row['completed']} / {row['streams']}",
                )
            )
    return (
        f"## Our LLM service vs llama-cpp-python's own server (streaming, max_tokens {section['max_tokens']})\n\n"
        + _table(
            (
                "server",
                "concurrent clients",
                "TTFT p50 / p95 ms",
                "tokens/s per stream p50",
                "tokens/s all streams p50",
                "tokens per stream p50",
                "streams completed",
            ),
            rows,
        )
    )


def _scaling(results: dict[str, Any]) -> str:
    section = results.get("designs")
    if _error(section):
        return ""
    assert section is not None
    by_length = [
        (f"{row['duration_s']:.2f} s", _pair(row["streaming"]["stt_ms"]), _pair(row["streaming"]["voice_to_voice_ms"]),
         _pair(row["sequential"]["first_audio_ms"]))
        for row in _ok(section.get("clips"))
    ]  # fmt: skip
    by_reply = [
        (row["max_tokens"], row.get("completion_tokens", "-"), row["reply_words"], row["sentences"],
         row["reply_audio_s"], _pair(row["llm_first_sentence_ms"]), _pair(row["voice_to_voice_ms"]),
         _pair(row["llm_total_ms"]), _pair(row["total_ms"]),
         _pair(row.get("sequential", {}).get("first_audio_ms")),
         f"{_num(row.get('first_audio_ratio_p50'))}x ({_num(row.get('first_audio_ratio_after_stt_p50'))}x)")
        for row in _ok(section.get("reply_length"))
    ]  # fmt: skip
    by_sessions = [
        (row["sessions"], row["turns"], _pair(row["stt_ms"]), _pair(row["voice_to_voice_ms"]), _pair(row["total_ms"]),
         row["turns_per_minute"])
        for row in _ok(section.get("concurrency"))
    ]  # fmt: skip
    return (
        "## How cost grows (ms, p50 / p95)\n\n"
        "With the utterance length (streaming vs sequential, same turns as above):\n\n"
        + _table(("utterance", "STT", "voice-to-voice", "sequential first audio"), by_length)
        + "\n\nWith the reply length (5 s question):\n\n"
        + _table(
            (
                "max_tokens",
                "tokens",
                "reply words",
                "sentences",
                "speech s",
                "LLM 1st sentence",
                "voice-to-voice",
                "LLM whole reply",
                "turn total",
                "sequential first audio",
                "ratio (after STT)",
            ),
            by_reply,
        )
        + "\n\nWith concurrent sessions (each a user taking turns back to back on the 5 s question):\n\n"
        + _table(
            ("sessions", "turns", "STT", "voice-to-voice", "turn total", "turns/minute, all sessions"), by_sessions
        )
    )


def _experiments(results: dict[str, Any]) -> str:
    section = results.get("experiments")
    if section is None:
        return "## Settings tried\n\nNot run in a QUICK run."
    problem = _error(section)
    if problem:
        return f"## Settings tried\n\n{problem}"
    baselines = {
        row.get("sessions", 1): row["voice_to_voice_ms"]["p50"] for row in section["rows"] if "baseline" in row["name"]
    }
    rows = []
    for row in section["rows"]:
        v2v = row["voice_to_voice_ms"]
        base_p50 = baselines.get(row.get("sessions", 1))
        delta = f"{v2v['p50'] - base_p50:+.0f}" if base_p50 is not None and v2v else "-"
        rows.append(
            (f"`{row['name']}`", row["description"], row.get("sessions", 1), _pair(row["stt_ms"]),
             _pair(row["llm_first_sentence_ms"]),
             _pair(row["tts_ttfa_ms"]), f"**{_pair(v2v)}**", delta, _pair(row["total_ms"]), row["load_average"][0])
        )  # fmt: skip
    return (
        f"## Settings tried (5 s question, {section['rows'][0]['voice_to_voice_ms']['n']} turns each, "
        "services restarted per row; ms, p50 / p95)\n\n"
        + _table(
            (
                "name",
                "change",
                "users",
                "STT",
                "LLM 1st sentence",
                "TTS 1st audio",
                "voice-to-voice",
                "v2v p50 vs baseline (same users)",
                "turn total",
                "load (1 min)",
            ),
            rows,
        )
    )


def _profile(results: dict[str, Any]) -> str:
    profile = results.get("designs", {}).get("profile")
    if not profile:
        return ""
    if "error" in profile:
        return f"## Where the time goes\n\nThe profile failed: {profile['error']}"
    parts = [
        f"## Where the time goes (py-spy, {profile['turns']} turns on the 5 s question, samples at 100 Hz; "
        f"voice-to-voice while profiled {_pair(profile['voice_to_voice_ms_while_profiled'])} ms)"
    ]
    for name in ("stt", "llm", "tts"):
        entry = profile.get(name, {})
        if "error" in entry:
            parts.append(f"**{name.upper()}**: no profile ({entry['error'].strip()[:200]})")
            continue
        libraries = ", ".join(f"`{item['function']}` {item['share']:.0%}" for item in entry["by_library"][:5])
        leaves = ", ".join(f"`{item['function']}` {item['share']:.0%}" for item in entry["top_leaf"][:5])
        inclusive = ", ".join(f"`{item['function']}` {item['share']:.0%}" for item in entry["top_python_inclusive"][:6])
        parts.append(
            f"**{name.upper()}** ({entry['active_s']} s of samples). Samples end in: {libraries}. "
            f"Leaf functions: {leaves}. Python functions on the stack: {inclusive}."
        )
    return "\n\n".join(parts)


# --- plot ---------------------------------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> None:
    """Stacked p50 stages, streaming vs sequential, on the target clip; first audio vs utterance and sessions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clips = _clips(results)
    target = next((row for row in clips if row["clip"] == results.get("target_clip")), clips[0])
    figure, axes = plt.subplots(1, 3, figsize=(16, 5.2))

    stream, whole = target["streaming"], target["sequential"]
    bars = [
        ("streaming", [("STT", stream["stt_ms"]), ("LLM to 1st sentence", stream["llm_first_sentence_ms"]),
                       ("TTS to 1st audio", stream["tts_ttfa_ms"])], stream["voice_to_voice_ms"]),
        ("sequential", [("STT", whole["stt_ms"]), ("LLM whole reply", whole["llm_total_ms"]),
                        ("TTS whole speech", whole["tts_total_ms"])], whole["first_audio_ms"]),
    ]  # fmt: skip
    colours = {"STT": "#4c72b0", "LLM": "#dd8452", "TTS": "#55a868"}
    axis = axes[0]
    for position, (_, stages, first_audio) in enumerate(bars):
        bottom = 0.0
        for stage, summary in stages:
            value = float(summary["p50"]) if summary else 0.0
            axis.bar(position, value, bottom=bottom, color=colours[stage.split()[0]], edgecolor="white")
            if value > 40:
                axis.text(
                    position, bottom + value / 2, f"{stage}\n{value:.0f} ms", ha="center", va="center", fontsize=8
                )
            bottom += value
        measured = float(first_audio["p50"]) if first_audio else 0.0
        axis.plot([position - 0.4, position + 0.4], [measured, measured], color="black", linewidth=2)
        axis.text(position, measured, f" first audio {measured:.0f} ms", ha="center", va="bottom", fontsize=9)
    axis.axhline(600, color="red", linestyle="--", linewidth=1)
    axis.text(-0.45, 600, "target 600 ms", color="red", fontsize=8, va="bottom", ha="left")
    axis.set_xticks([0, 1], [bar[0] for bar in bars])
    axis.set_ylabel("ms (p50)")
    axis.set_title(f"First audio on the {target['duration_s']:.0f} s question: stages (p50)")

    axis = axes[1]
    durations = [row["duration_s"] for row in clips]
    for key, label, colour in (
        ("streaming", "streaming voice-to-voice", "#4c72b0"),
        ("sequential", "sequential first audio", "#c44e52"),
    ):
        field = "voice_to_voice_ms" if key == "streaming" else "first_audio_ms"
        p50 = [row[key][field]["p50"] for row in clips]
        p95 = [row[key][field]["p95"] for row in clips]
        axis.plot(durations, p50, marker="o", color=colour, label=f"{label} p50")
        axis.plot(durations, p95, marker="x", linestyle=":", color=colour, label=f"{label} p95")
    axis.plot(durations, [row["streaming"]["stt_ms"]["p50"] for row in clips], marker="s", color="#8172b3",
              label="STT p50")  # fmt: skip
    axis.set_xlabel("utterance length (s)")
    axis.set_ylabel("ms")
    axis.set_title("First audio vs utterance length")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)

    axis = axes[2]
    sessions = _ok(results.get("designs", {}).get("concurrency"))
    if sessions:
        counts = [row["sessions"] for row in sessions]
        axis.plot(counts, [row["voice_to_voice_ms"]["p50"] for row in sessions], marker="o", label="voice-to-voice p50")
        axis.plot(counts, [row["voice_to_voice_ms"]["p95"] for row in sessions], marker="x", linestyle=":",
                  label="voice-to-voice p95")  # fmt: skip
        axis.set_xticks(counts)
        values = [row["voice_to_voice_ms"]["p95"] for row in sessions] + [
            row["voice_to_voice_ms"]["p50"] for row in sessions
        ]
        if max(values) > 10 * min(values):
            axis.set_yscale("log")
    axis.set_xlabel("concurrent sessions")
    axis.set_ylabel("ms")
    axis.set_title("Voice-to-voice vs concurrent sessions (5 s question)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)

    machine = results.get("machine", {})
    figure.suptitle(
        f"{machine.get('cpu_model')}, {machine.get('cores')} cores, {machine.get('date')}, "
        f"commit {machine.get('commit')}, "
        f"load average {results.get('load_average_start')} -> {results.get('load_average_end')}",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summary_text(results: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [f"load average: start {results.get('load_average_start')}, end {results.get('load_average_end')}"]
    if results.get("targets"):
        v2v = results["voice_to_voice_ms"]
        lines.append(
            f"voice-to-voice on {results['target_clip']}: p50 {_ms(v2v)} ms, p95 {_ms(v2v, 'p95')} ms; "
            f"sequential first audio p50 {_ms(results['sequential_first_audio_ms'])} ms "
            f"(ratio {_num(results['first_audio_ratio'])}x)"
        )
        ratios = results["targets"]["service_overhead_ratios"]
        lines.append("service / bare library: " + ", ".join(f"{k} {_num(v)}x" for k, v in ratios.items()))
    if results.get("failed_sections"):
        lines.append(f"FAILED sections: {', '.join(results['failed_sections'])}")
    return "\n".join(lines)
