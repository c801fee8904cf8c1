"""Word error rate and time of the STT service's decoding over ``tests/data/wer`` (36 clips); prints JSON.

Run in the STT venv, with the STT service *not* running (two cores: they would compete):
    .venvs/stt/bin/python bench/stt_accuracy.py

Two decodings of the embedded tiny.en with the service's defaults, in-process (``WhisperTranscriber``): the
short window (the default, ``STT_SHORT_WINDOW_MAX_S=20``) and faster-whisper's 30 s windows
(``STT_SHORT_WINDOW_MAX_S=0``). WER is over the whole corpus (all word errors / all reference words), on text
normalised as the tests do (``tests/stt/stt_helpers.normalise``: lower case, numbers as words, no punctuation).

Output: ``{"clips", "audio_s", "decodings": [{"name", "wer", "ms": [per clip], "fallbacks", "texts": {clip: text}}]}``.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT / "tests" / "data" / "wer"
sys.path.insert(0, str(REPO_ROOT / "tests" / "stt"))

DECODINGS = {"short window (default)": 20.0, "30 s windows": 0.0}


class Fallbacks(logging.Handler):
    """Counts short-window results that failed their checks and were decoded again with 30 s windows."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "failed its checks" in record.getMessage()


def main() -> None:
    from stt_helpers import corpus_word_error_rate

    from service_common.audio import decode_audio
    from stt_service.config import Settings
    from stt_service.whisper_engine import WhisperTranscriber

    clips = sorted(CORPUS.glob("*.wav"))
    audio = {clip.stem: decode_audio(clip.read_bytes()) for clip in clips}
    references = [clip.with_suffix(".txt").read_text(encoding="utf-8") for clip in clips]
    fallbacks = Fallbacks()
    logging.getLogger("stt_service.whisper_engine").addHandler(fallbacks)
    logging.getLogger("stt_service.whisper_engine").setLevel(logging.INFO)
    decodings: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as cache:
        for name, max_s in DECODINGS.items():
            engine = WhisperTranscriber.from_settings(Settings(cache_dir=Path(cache), short_window_max_s=max_s))
            engine.warm_up()
            fallbacks.count = 0
            texts, timings = {}, []
            for clip, samples in audio.items():
                started = time.perf_counter()
                result = engine.transcribe(samples, language=None, prompt=None, temperature=0.0, word_timestamps=False)
                timings.append((time.perf_counter() - started) * 1000)
                texts[clip] = result.text
            decodings.append(
                {
                    "name": name,
                    "wer": corpus_word_error_rate(references, list(texts.values())),
                    "ms": timings,
                    "fallbacks": fallbacks.count,
                    "texts": texts,
                }
            )
    total_s = sum(samples.size for samples in audio.values()) / 16_000
    json.dump({"clips": len(clips), "audio_s": round(total_s, 1), "decodings": decodings}, sys.stdout)


if __name__ == "__main__":
    main()
