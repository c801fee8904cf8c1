"""Run one spoken turn from the command line: ``python -m voice_agent.cli --audio question.wav --out reply.wav``.

Prints the transcript, the reply and the stage timings (ms); ``--json`` prints them as one JSON object with keys
``transcript``, ``reply``, ``timings_ms`` (and ``reply_audio_s``). Exits 1 with the failed stage on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from .clients import StageError
from .config import FrontendSettings
from .pipeline import Pipeline, TurnOptions

TIMING_LABELS = {
    "stt_ms": "STT",
    "llm_ttft_ms": "LLM first token",
    "llm_first_phrase_ms": "LLM first phrase",
    "llm_total_ms": "LLM total",
    "tts_ttfa_ms": "TTS first audio",
    "voice_to_voice_ms": "voice-to-voice",
    "total_ms": "turn total",
}


def format_timings(timings: dict[str, float | None]) -> str:
    return " | ".join(
        f"{label} {timings[key]:.0f}" for key, label in TIMING_LABELS.items() if timings.get(key) is not None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one voice-agent turn against the running services.")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--audio", type=Path, help="recorded question (wav, flac, mp3, ogg, webm, m4a)")
    inputs.add_argument("--text", help="typed question instead of audio")
    parser.add_argument("--out", type=Path, help="where to write the spoken reply (WAV)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--voice", help="TTS voice (default: FRONTEND_VOICE)")
    parser.add_argument("--language", help="ISO-639-1 language of the question (default: auto)")
    args = parser.parse_args(argv)

    settings = FrontendSettings()
    options = TurnOptions.from_settings(settings)
    if args.voice:
        options = replace(options, voice=args.voice)
    if args.language:
        options = replace(options, language=args.language)

    pipeline = Pipeline.from_settings(settings)
    try:
        if args.audio is not None:
            result = pipeline.run_turn([], options, audio=args.audio.read_bytes(), filename=args.audio.name)
        else:
            result = pipeline.run_turn([], options, text=args.text)
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        pipeline.close()

    if args.out is not None and result.pcm:
        args.out.write_bytes(result.wav_bytes())
    timings = result.timings.as_dict()
    if args.json:
        report = {
            "transcript": result.transcript,
            "reply": result.reply,
            "timings_ms": timings,
            "reply_audio_s": round(result.audio_duration_s, 2),
        }
        print(json.dumps(report))
    else:
        print(f"transcript: {result.transcript}")
        print(f"reply:      {result.reply}")
        print(f"timings ms: {format_timings(timings)}")
        if args.out is not None:
            print(f"audio:      {args.out} ({result.audio_duration_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
