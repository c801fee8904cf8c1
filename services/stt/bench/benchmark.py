"""Time the Whisper backend on a clip: model load, warm-up and transcription, per model/beam/threads/language.

Run from the repository root in the STT venv (it uses no server, only the engine):
    .venvs/stt/bin/python services/stt/bench/benchmark.py tiny.en:1:0:en base:1:0:en base:1:0:auto base:5:0:en:off
Each spec is MODEL:BEAM_SIZE:CPU_THREADS:LANGUAGE[:VAD] (LANGUAGE ``auto`` = detect; VAD ``on``, the default,
or ``off``). Prints one line per spec: load and warm-up times, the median and best of ``--runs``
transcriptions, the real-time factor and the transcript.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from service_common.audio import WHISPER_SAMPLE_RATE_HZ, decode_audio
from stt_service.embedded import resolve_model, whisper_cache_dir
from stt_service.whisper_engine import WhisperTranscriber

REPO_ROOT = Path(__file__).resolve().parents[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+", help="MODEL:BEAM_SIZE:CPU_THREADS:LANGUAGE")
    parser.add_argument("--audio", type=Path, default=REPO_ROOT / "tests" / "data" / "jfk.wav")
    parser.add_argument("--seconds", type=float, default=None, help="use only the first N seconds of the clip")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "stt-bench-cache")
    args = parser.parse_args()

    samples = decode_audio(args.audio.read_bytes())
    if args.seconds:
        samples = samples[: int(args.seconds * WHISPER_SAMPLE_RATE_HZ)]
    duration_s = samples.size / WHISPER_SAMPLE_RATE_HZ
    for spec in args.specs:
        name, beam, threads, language, *rest = spec.split(":")
        vad = rest[0] if rest else "on"
        started = time.perf_counter()
        source = resolve_model(name, args.cache_dir)
        engine = WhisperTranscriber(
            source,
            download_root=whisper_cache_dir(args.cache_dir),
            cpu_threads=int(threads),
            beam_size=int(beam),
            vad_filter=vad == "on",
        )
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        engine.warm_up()
        warm_up_s = time.perf_counter() - started
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = engine.transcribe(
                samples,
                language=None if language == "auto" else language,
                prompt=None,
                temperature=0.0,
                word_timestamps=False,
            )
            times.append(time.perf_counter() - started)
        median_s = statistics.median(times)
        print(
            f"{name:8s} beam={beam} threads={threads} language={language:4s} vad={vad:3s} clip={duration_s:.1f}s "
            f"load={load_s:.2f}s warm-up={warm_up_s:.2f}s median={median_s:.2f}s best={min(times):.2f}s "
            f"RTF={median_s / duration_s:.3f} detected={result.language} text={result.text!r}",
            flush=True,
        )


if __name__ == "__main__":
    main()
