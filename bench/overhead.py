"""Each service against its bare library on the same work, never both running at once (two cores).

For each of STT, LLM and TTS: start that service alone, time the work over HTTP (after one warm-up request),
stop it, then run the bare-library script (``bare_*.py``) in the service's venv on the same input with the
same settings. Overhead = service p50 / bare p50 (1.05 = 5% slower than the library alone).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from voice_agent.clients import SttClient

from .machine import REPO_ROOT
from .processes import VENVS, running_services
from .stats import ratio, summarize

logger = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parent
BARE_TIMEOUT_S = 600


def run_bare(service: str, script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``bench/<script>`` with ``.venvs/<service>/bin/python`` (extra ``env``) and parse the JSON it prints.

    Raises RuntimeError with the script's stderr if it fails.
    """
    command = [str(VENVS / service / "bin" / "python"), str(BENCH_DIR / script), *args]
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=BARE_TIMEOUT_S, env=full_env)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _timed_ms(action: Any) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000.0


def http_round_trip(url: str, runs: int) -> dict[str, object]:
    """``GET /health`` p50/p95: over one kept-alive connection, and with a new TCP connection per request.

    The second is what a turn pays per service when the server has closed the idle connection since the last
    turn (uvicorn closes idle connections after 5 s by default, and a user speaks for longer than that).
    """
    with httpx.Client(base_url=url) as client:
        client.get("/health")
        kept = [_timed_ms(lambda: client.get("/health").raise_for_status()) for _ in range(runs)]
    with httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        client.get("/health")
        fresh = [_timed_ms(lambda: client.get("/health").raise_for_status()) for _ in range(runs)]
    return {"keep_alive_ms": summarize(kept), "new_connection_ms": summarize(fresh)}


def stt_overhead(clip: Path, runs: int, log_dir: Path, variants: list[str]) -> dict[str, object]:
    """The STT service on ``clip`` (the pipeline's request) vs ``model.transcribe`` in bare faster-whisper.

    ``variants`` are extra bare-library settings to try (``bare_stt.py --variant``), e.g. ``vad_filter=false``.
    """
    audio = clip.read_bytes()
    with running_services(["stt"], log_dir / "overhead-stt") as services:
        client = SttClient(services["stt"].url, model="whisper-1")
        text = client.transcribe(audio, filename=clip.name)
        service_ms = [_timed_ms(lambda: client.transcribe(audio, filename=clip.name)) for _ in range(runs)]
        client.close()
        round_trip = http_round_trip(services["stt"].url, max(runs, 10))
    bare = run_bare(
        "stt", "bare_stt.py", "--audio", str(clip), "--runs", str(runs), "--breakdown", *_flags("--variant", variants)
    )
    default = bare["variants"][0]
    service = summarize(service_ms)
    bare_file, bare_array = summarize(default["file_ms"]), summarize(default["array_ms"])
    return {
        "clip": clip.name,
        "service_ms": service,
        "bare_file_ms": bare_file,
        "bare_array_ms": bare_array,
        "overhead_ratio": ratio(_p50(service), _p50(bare_file)),
        "overhead_ratio_vs_array": ratio(_p50(service), _p50(bare_array)),
        "same_text": text == default["text"],
        "service_text": text,
        "bare_text": default["text"],
        "http_round_trip": round_trip,
        "bare_variants": [
            {
                "name": variant["name"],
                "array_ms": summarize(variant["array_ms"]),
                "file_ms": summarize(variant["file_ms"]),
                "text": variant["text"],
            }
            for variant in bare["variants"]
        ],
        "bare_breakdown_ms": {stage: summarize(values) for stage, values in bare["breakdown_ms"].items()},
        "bare_load_s": round(bare["load_s"], 2),
        "accuracy": stt_accuracy(),
    }


def stt_accuracy() -> dict[str, object]:
    """Corpus WER and time per clip of the short window and of 30 s windows (``bench/stt_accuracy.py``)."""
    result = run_bare("stt", "stt_accuracy.py")
    return {
        "clips": result["clips"],
        "audio_s": result["audio_s"],
        "decodings": [
            {
                "name": decoding["name"],
                "wer": round(decoding["wer"], 4),
                "ms": summarize(decoding["ms"]),
                "fallbacks": decoding["fallbacks"],
                "texts": decoding["texts"],
            }
            for decoding in result["decodings"]
        ],
    }


def _stream_first_piece(client: httpx.Client, body: dict[str, Any], first_piece: str) -> tuple[float, float | None]:
    """Stream ``body``: (ms to the first content, ms until the reply contains ``first_piece``)."""
    started = time.perf_counter()
    ttft: float | None = None
    piece: float | None = None
    text = ""
    with connect_sse(client, "POST", "/v1/chat/completions", json={**body, "stream": True}) as source:
        source.response.raise_for_status()
        for event in source.iter_sse():
            if event.data.strip() == "[DONE]":
                break
            for choice in json.loads(event.data).get("choices", []):
                content = (choice.get("delta") or {}).get("content")
                if content:
                    text += content
                    now = (time.perf_counter() - started) * 1000.0
                    ttft = now if ttft is None else ttft
                    if piece is None and first_piece and first_piece in text:
                        piece = now
    return ttft or 0.0, piece


def service_llm_setting(name: str) -> Any:
    """One field of the LLM service's settings as the service would read it (its defaults and ``LLM_*`` variables),
    e.g. ``system_prompt`` (prepended when a request has none) or ``n_threads``."""
    code = f"import json; from llm_service.config import get_settings; print(json.dumps(get_settings().{name}))"
    done = subprocess.run(
        [str(VENVS / "llm" / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    return json.loads(done.stdout)


def service_system_prompt() -> str:
    """The LLM service's default system prompt (what it prepends when a request has none)."""
    return str(service_llm_setting("system_prompt"))


def llm_overhead(
    user_text: str, max_tokens: int, first_piece: str, runs: int, log_dir: Path, *, thread_variants: bool = True
) -> dict[str, object]:
    """The LLM service (non-streaming total, streaming TTFT and first sentence) vs bare llama-cpp-python.

    Both get the service's default system prompt + ``user_text``, temperature 0, and generate the same number of
    tokens (the bare run stops at the service's ``completion_tokens``). With ``thread_variants``, the whole reply
    is also timed both ways with LLM_N_THREADS=1 and with OMP_WAIT_POLICY=PASSIVE.
    """
    messages = [{"role": "system", "content": service_system_prompt()}, {"role": "user", "content": user_text}]
    body = {"model": "local", "messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "seed": 1234}
    with running_services(["llm"], log_dir / "overhead-llm") as services:
        with httpx.Client(base_url=services["llm"].url, timeout=120.0) as client:
            first = client.post("/v1/chat/completions", json=body).json()
            completion_tokens = int(first["usage"]["completion_tokens"])
            prompt_tokens = int(first["usage"]["prompt_tokens"])
            text = str(first["choices"][0]["message"]["content"])
            total_ms = [
                _timed_ms(lambda: client.post("/v1/chat/completions", json=body).raise_for_status())
                for _ in range(runs)
            ]
            streamed = [_stream_first_piece(client, body, first_piece) for _ in range(runs)]
        round_trip = http_round_trip(services["llm"].url, max(runs, 10))
    bare_args = [
        "--messages", json.dumps(messages), "--tokens", str(completion_tokens), "--runs", str(runs),
        "--first-piece", first_piece,
    ]  # fmt: skip
    n_threads = int(service_llm_setting("n_threads"))  # the library gets the service's own thread counts
    n_threads_batch = int(service_llm_setting("n_threads_batch"))
    bare = run_bare(
        "llm", "bare_llm.py", *bare_args, "--n-threads", str(n_threads), "--n-threads-batch", str(n_threads_batch)
    )
    # the same work with the thread settings the experiments try: service alone, then library alone
    variants: dict[str, tuple[list[float], dict[str, Any]]] = {}
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}
    thread_settings: tuple[tuple[str, dict[str, str], list[str], dict[str, str]], ...] = (
        (
            "n_threads=1, n_threads_batch=1",
            {"LLM_N_THREADS": "1", "LLM_N_THREADS_BATCH": "1"},
            ["--n-threads", "1"],
            {},
        ),
        ("n_threads=2", {"LLM_N_THREADS": "2", "LLM_N_THREADS_BATCH": "2"}, ["--n-threads", "2"], {}),
        (
            "n_threads=2, OMP_WAIT_POLICY=PASSIVE",
            {"LLM_N_THREADS": "2", "LLM_N_THREADS_BATCH": "2", **passive},
            ["--n-threads", "2"],
            passive,
        ),
    )
    for name, service_env, bare_extra, bare_env in thread_settings if thread_variants else ():
        with (
            running_services(["llm"], log_dir / f"overhead-llm-{name}", env={"llm": service_env}) as services,
            httpx.Client(base_url=services["llm"].url, timeout=120.0) as client,
        ):
            client.post("/v1/chat/completions", json=body).raise_for_status()
            variant_ms = [
                _timed_ms(lambda: client.post("/v1/chat/completions", json=body).raise_for_status())
                for _ in range(runs)
            ]
        variants[name] = (variant_ms, run_bare("llm", "bare_llm.py", *bare_args, *bare_extra, env=bare_env))
    service_total, bare_total = summarize(total_ms), summarize(bare["total_ms"])
    service_ttft, bare_ttft = summarize(t for t, _ in streamed), summarize(bare["ttft_ms"])
    service_piece, bare_piece = summarize(p for _, p in streamed), summarize(bare["first_piece_ms"])
    return {
        "prompt_tokens": {"service": prompt_tokens, "bare": bare["prompt_tokens"]},
        "completion_tokens": {"service": completion_tokens, "bare": bare["completion_tokens"]},
        "n_threads": n_threads,
        "n_threads_batch": n_threads_batch,
        "same_text": text.strip() == str(bare["text"]).strip(),
        "first_piece": first_piece,
        "service_total_ms": service_total,
        "bare_total_ms": bare_total,
        "overhead_ratio": ratio(_p50(service_total), _p50(bare_total)),
        "service_ttft_ms": service_ttft,
        "bare_ttft_ms": bare_ttft,
        "service_first_piece_ms": service_piece,
        "bare_first_piece_ms": bare_piece,
        "first_piece_ratio": ratio(_p50(service_piece), _p50(bare_piece)),
        "service_tokens_per_s": _tokens_per_s(completion_tokens, service_total),
        "bare_tokens_per_s": _tokens_per_s(completion_tokens, bare_total),
        "http_round_trip": round_trip,
        "thread_variants": [
            {
                "name": name,
                "service_total_ms": summarize(service_ms),
                "bare_total_ms": summarize(result["total_ms"]),
                "overhead_ratio": ratio(_p50(summarize(service_ms)), _p50(summarize(result["total_ms"]))),
                "service_tokens_per_s": _tokens_per_s(completion_tokens, summarize(service_ms)),
                "bare_tokens_per_s": _tokens_per_s(completion_tokens, summarize(result["total_ms"])),
            }
            for name, (service_ms, result) in variants.items()
        ],
    }


def _stream_speech(client: httpx.Client, text: str) -> tuple[float, float]:
    """POST /v1/audio/speech (pcm, streamed): (ms to the first audio bytes, ms to the last)."""
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "pcm"}
    started = time.perf_counter()
    first: float | None = None
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        for data in response.iter_bytes():
            if data and first is None:
                first = (time.perf_counter() - started) * 1000.0
    return first or 0.0, (time.perf_counter() - started) * 1000.0


def tts_overhead(texts: list[str], runs: int, log_dir: Path) -> dict[str, object]:
    """The TTS service (pcm, streamed) vs ``PiperVoice.synthesize`` on each of ``texts``: first audio and total."""
    service: dict[str, list[tuple[float, float]]] = {}
    with running_services(["tts"], log_dir / "overhead-tts") as services:
        with httpx.Client(base_url=services["tts"].url, timeout=120.0) as client:
            for text in texts:
                _stream_speech(client, text)
                service[text] = [_stream_speech(client, text) for _ in range(runs)]
        round_trip = http_round_trip(services["tts"].url, max(runs, 10))
    bare = run_bare("tts", "bare_tts.py", *_flags("--text", texts), "--runs", str(runs))
    rows = []
    for entry in bare["texts"]:
        timed = service[entry["text"]]
        service_ttfa, service_total = summarize(t for t, _ in timed), summarize(t for _, t in timed)
        bare_ttfa, bare_total = summarize(entry["ttfa_ms"]), summarize(entry["total_ms"])
        rows.append(
            {
                "text": entry["text"],
                "words": len(entry["text"].split()),
                "audio_s": round(entry["audio_s"], 2),
                "service_ttfa_ms": service_ttfa,
                "bare_ttfa_ms": bare_ttfa,
                "ttfa_ratio": ratio(_p50(service_ttfa), _p50(bare_ttfa)),
                "service_total_ms": service_total,
                "bare_total_ms": bare_total,
                "overhead_ratio": ratio(_p50(service_total), _p50(bare_total)),
            }
        )
    return {"texts": rows, "http_round_trip": round_trip}


def _flags(flag: str, values: list[str]) -> list[str]:
    return [item for value in values for item in (flag, value)]


def _p50(summary: dict[str, float | int] | None) -> float | None:
    return float(summary["p50"]) if summary else None


def _tokens_per_s(tokens: int, total: dict[str, float | int] | None) -> float | None:
    return round(tokens / (float(total["p50"]) / 1000.0), 1) if total and total["p50"] else None
