"""The benchmark's own parts: the corpus, percentiles, interleaved pairs, the headline, the report, the process helper.

Runs in the frontend venv (``make bench`` does); no service is started except where a test says so.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import report
from bench.corpus import corpus
from bench.overhead import BareWorker, compare, spread
from bench.processes import ReadyProcess, free_port
from bench.run import headline
from bench.stats import summarize


def test_the_corpus_is_varied_real_speech_with_transcripts_and_sources() -> None:
    clips = corpus()
    assert len(clips) >= 10
    assert len({clip.speaker for clip in clips}) >= 5
    assert all(1.5 <= clip.duration_s <= 15.0 for clip in clips)
    assert all(clip.transcript and clip.source and clip.path.exists() for clip in clips)
    assert [clip.duration_s for clip in clips] == sorted(clip.duration_s for clip in clips)


def test_summarize_gives_numpy_percentiles_and_skips_missing_values() -> None:
    values = [120.0, 80.0, None, 300.0, 95.0, 101.0]
    present = [value for value in values if value is not None]
    summary = summarize(values)
    assert summary == {
        "p50": round(float(np.percentile(present, 50)), 1),
        "p95": round(float(np.percentile(present, 95)), 1),
        "min": 80.0,
        "max": 300.0,
        "n": 5,
    }
    assert summarize([None, None]) is None


def test_compare_pairs_service_and_library_on_the_same_item_in_turn() -> None:
    calls: list[str] = []

    def service(item: int) -> dict[str, Any]:
        calls.append(f"service {item}")
        return {"ms": 100.0 + item, "text": "same"}

    def bare(item: int) -> dict[str, Any]:
        calls.append(f"bare {item}")
        return {"ms": 80.0 + item, "text": "same" if item else "other"}

    result = compare([0, 1, 2], service, bare, ["ms"])
    assert calls[2:] == ["service 0", "bare 0", "service 1", "bare 1", "service 2", "bare 2"]  # after a warm-up
    assert result["pairs"] == 3
    assert result["ms"]["added_ms"]["min"] == result["ms"]["added_ms"]["max"] == 20.0
    assert result["ms"]["ratio"]["p50"] == round(101 / 81, 2)
    assert result["same_output"] == 2


def test_a_few_pairs_still_span_the_corpus() -> None:
    assert spread(list(range(14)), 4) == [0, 3, 7, 10]
    assert spread(list(range(14)), 14) == list(range(14))


def _results() -> dict[str, Any]:
    """Two clips, two turns each, as ``Bench.run`` records them."""

    def row(clip: str, v2v: list[float], first_audio: list[float], first_key: str) -> dict[str, Any]:
        raw = [{"stt_ms": 100.0, "llm_ttft_ms": 50.0, first_key: 120.0, "tts_ttfa_ms": 90.0, "voice_to_voice_ms": v}
               for v in v2v]  # fmt: skip
        fields = list(raw[0])
        return {
            "clip": clip, "duration_s": 2.0, "speaker": clip, "same_reply_both_designs": True,
            "streaming": {name: summarize(turn[name] for turn in raw) for name in fields},
            "sequential": {"first_audio_ms": summarize(first_audio)},
            "raw_streaming": raw, "raw_sequential": [{"first_audio_ms": value} for value in first_audio],
        }  # fmt: skip

    results: dict[str, Any] = {
        "clips": [{"name": "a", "duration_s": 2.0, "speaker": "a", "source": "x"},
                  {"name": "b", "duration_s": 2.0, "speaker": "b", "source": "y"}],
        "turns": {"clips": [row("a", [300.0, 310.0], [900.0, 950.0], "llm_first_phrase_ms"),
                            row("b", [500.0, 900.0], [1200.0, 1300.0], "llm_first_phrase_ms")]},
        "overhead": {"stt": {"pairs": 3, "same_output": 3, "ms": {
            "service": summarize([150, 160, 170]), "bare": summarize([500, 510, 520]),
            "added_ms": summarize([-350, -350, -350]), "ratio": summarize([0.3, 0.31, 0.33], digits=2)}}},
    }  # fmt: skip
    results.update(headline(results))
    return results


def test_the_headline_pools_every_turn_of_every_clip() -> None:
    results = _results()
    assert results["voice_to_voice_ms"]["n"] == 4
    assert results["voice_to_voice_ms"]["p50"] == 405.0  # between 310 and 500, not a per-clip median
    assert results["voice_to_voice_ms"] == results["streaming_first_audio_ms"]
    assert results["sequential_first_audio_ms"]["p50"] == 1075.0
    assert results["targets"] == {"voice_to_voice_p50_le_400_ms": False, "voice_to_voice_p95_le_700_ms": False}


def test_the_report_shows_the_headline_every_clip_and_what_a_service_adds(tmp_path: Path) -> None:
    results = _results()
    text = report.generated(results)
    assert "over the corpus (4 turns, 2 clips, 2 speakers" in text
    assert "**405 ms**" in text and "**not met**" in text
    assert "| `a` | 2.0 | a | 100 | 50 | 120 | 90 | **305 / 310** |" in text  # the first-phrase key is found
    assert "| STT transcript | 3 | 160 / 169 | 510 / 519 | -350 (-350..-350) | 0.31 (0.30..0.33) | 3 / 3 |" in text


def test_the_report_rewrites_only_its_own_part_of_the_doc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Intro by hand\n\n{report.BEGIN}\nold tables\n{report.END}\n\n## Findings by hand\n")
    monkeypatch.setattr(report, "DOC", doc)
    monkeypatch.setattr(report, "PLOT", tmp_path / "plot.png")
    written = report.write(_results())
    text = doc.read_text()
    assert text.startswith("# Intro by hand") and text.endswith("## Findings by hand\n")
    assert "old tables" not in text and "Voice-to-voice over the corpus" in text
    assert (tmp_path / "plot.png").stat().st_size > 10_000 and len(written) == 2


def test_a_ready_process_starts_answers_and_stops(tmp_path: Path) -> None:
    port = free_port()
    server = ReadyProcess(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        f"http://127.0.0.1:{port}/", tmp_path / "server.log", ready_timeout_s=30,
    )  # fmt: skip
    with server:
        assert server.pid is not None
    assert server.pid is None


def test_a_process_that_exits_before_ready_raises_with_its_log(tmp_path: Path) -> None:
    failing = ReadyProcess(
        [sys.executable, "-c", "import sys; print('no model here', flush=True); sys.exit(3)"],
        f"http://127.0.0.1:{free_port()}/ready", tmp_path / "failing.log", ready_timeout_s=30,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="no model here"):
        failing.start()


@pytest.mark.slow
def test_the_bare_piper_worker_speaks_each_text_it_is_sent(tmp_path: Path) -> None:
    worker = BareWorker("tts", "bare_tts.py", [], tmp_path / "bare_tts.log")
    try:
        short = worker.ask({"text": "Hello."})
        longer = worker.ask({"text": "Hello there. This sentence is a good deal longer than the first one."})
    finally:
        worker.close()
    assert worker.loaded["load_s"] > 0
    assert 0 < short["ttfa_ms"] <= short["ms"]
    assert 0.3 < short["audio_s"] < longer["audio_s"]


def test_the_metrics_cost_section_reports_both_phases_and_one_scrape() -> None:

    summary = {"p50": 150.0, "p95": 250.0, "min": 100.0, "max": 300.0, "n": 4}
    row = {
        "measures": "time to first token",
        "quiet_ms": summary,
        "scraped_ms": {**summary, "p50": 152.0},
        "p50_difference_ms": 2.0,
        "scrape": {"wall_ms": {**summary, "p50": 4.2}, "bytes": 9000, "cpu_ms_per_scrape": 3.5},
    }
    section = {"scrape_interval_s": 0.5, "pairs": 4, "stt": row, "llm": row, "tts": row}
    text = report.generated({"metrics": section})
    assert "## Cost of /metrics scraping" in text
    assert "| llm | time to first token | 150 / 250 | 152 / 250 | +2 | 4.2 | 9000 | 3.5 |" in text


def test_cpu_seconds_of_a_process_grow_with_its_work() -> None:
    import os
    import time

    from bench.metrics_cost import cpu_seconds

    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert 0.2 < cpu_seconds(os.getpid()) - before < 5
