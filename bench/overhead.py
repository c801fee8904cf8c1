"""What each service adds on top of its bare library, measured interleaved: service, library, service, library...

For each of STT, LLM and TTS the service runs alone (started by ``bench.processes``) and so does a bare-library
worker (``bench/bare_*.py`` in the service's venv, loaded once, idle between requests); the two take turns on the
same input, one request at a time, so a drift of this host's speed (up to 20% between runs) hits both alike. Per
pair: added ms = service - library, ratio = service / library; the report gives their p50 and their spread
(min..max over the pairs) rather than a bound the spread cannot support.

The library does its own plain work with the service's model settings (threads, compute type, beam size, sampling):
faster-whisper's ``transcribe`` (30 s windows), llama-cpp-python's ``create_chat_completion``, Piper's
``synthesize``. So the STT row also shows what the service's short window saves, not only what HTTP costs.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from openai import OpenAI

from .corpus import Clip
from .processes import REPO_ROOT, VENVS, start_services, stop_all
from .stats import summarize

BENCH_DIR = Path(__file__).resolve().parent
T = TypeVar("T")


def service_settings(name: str) -> dict[str, Any]:
    """A service's settings as it would read them (its defaults and ``<NAME>_*`` variables), from its own venv."""
    code = f"from {name}_service.config import get_settings; print(get_settings().model_dump_json())"
    done = subprocess.run(
        [str(VENVS / name / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    settings: dict[str, Any] = json.loads(done.stdout)
    return settings


class BareWorker:
    """``bench/<script>`` in ``.venvs/<venv>``: one JSON line in, one JSON line out per request.

    Raises RuntimeError with the worker's stderr when it ends or fails to answer.
    """

    def __init__(self, venv: str, script: str, args: Sequence[str], log_path: Path) -> None:
        self.script, self.log_path = script, log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(VENVS / venv / "bin" / "python"), str(BENCH_DIR / script), *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO_ROOT,
            )  # fmt: skip
        self.loaded = self._read()

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.script} ended ({self.process.poll()}):\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _ms(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return (time.perf_counter() - started) * 1000, value


def compare(
    work: Sequence[Any], service: Callable[[Any], dict[str, Any]], bare: Callable[[Any], dict[str, Any]],
    measures: Sequence[str],
) -> dict[str, Any]:  # fmt: skip
    """Warm both up on ``work[0]``, then per item: service, library. ``measures`` are keys both answers carry (ms).

    Returns, per measure, both sides' summaries, the pairs' added ms and ratios, and every pair's raw answers.
    """
    service(work[0])
    bare(work[0])
    pairs = [(service(item), bare(item)) for item in work]
    out: dict[str, Any] = {"pairs": len(pairs)}
    for key in measures:
        both = [(s[key], b[key]) for s, b in pairs if s.get(key) is not None and b.get(key) is not None]
        out[key] = {
            "service": summarize(s for s, _ in both),
            "bare": summarize(b for _, b in both),
            "added_ms": summarize(s - b for s, b in both),
            "ratio": summarize((s / b for s, b in both if b), digits=2),
        }
    out["same_output"] = sum(s.get("text") == b.get("text") for s, b in pairs if "text" in s)
    out["raw"] = [{"service": s, "bare": b} for s, b in pairs]
    return out


def spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` of ``items`` taken evenly from the whole sequence (all of them, in order, when count == len)."""
    return [items[i * len(items) // count % len(items)] for i in range(count)]


def _client(url: str) -> OpenAI:
    return OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0, timeout=300.0)


def stt(clips: Sequence[Clip], pairs: int, log_dir: Path) -> dict[str, Any]:
    """``POST /v1/audio/transcriptions`` vs ``WhisperModel.transcribe(path)``, over the corpus's clips in turn."""
    settings = service_settings("stt")
    args = [
        "--compute-type", str(settings.get("compute_type", "int8")),
        "--cpu-threads", str(settings.get("cpu_threads", 0)), "--beam-size", str(settings.get("beam_size", 5)),
        *(["--vad-filter"] if settings.get("vad_filter") else []),
    ]  # fmt: skip
    work = spread(clips, pairs)
    services = start_services(["stt"], log_dir)
    worker = BareWorker("stt", "bare_stt.py", args, log_dir / "bare_stt.log")
    client = _client(services["stt"].url)
    try:

        def service(clip: Clip) -> dict[str, Any]:
            ms, answer = _ms(
                lambda: client.audio.transcriptions.create(model="whisper-1", file=(clip.path.name, clip.audio))
            )
            return {"ms": ms, "text": answer.text.strip()}

        result = compare(work, service, lambda clip: worker.ask({"path": str(clip.path)}), ["ms"])
    finally:
        client.close()
        worker.close()
        stop_all(services.values())
    return {"work": "transcribe a corpus clip", "bare_args": args, **result}


def llm(questions: Sequence[str], pairs: int, max_tokens: int, log_dir: Path) -> dict[str, Any]:
    """Streamed ``POST /v1/chat/completions`` vs ``Llama.create_chat_completion(stream=True)``, same messages
    (the service's system prompt + a corpus transcript), temperature 0, the service's sampling settings."""
    settings = service_settings("llm")
    args = [
        "--n-ctx", str(settings.get("n_ctx", 2048)), "--n-threads", str(settings.get("n_threads", 1)),
        "--n-threads-batch", str(settings.get("n_threads_batch", 1)), "--n-batch", str(settings.get("n_batch", 512)),
    ]  # fmt: skip
    sampling: dict[str, Any] = {key: settings[key] for key in ("top_p", "repeat_penalty") if key in settings}
    work = [
        {
            "messages": [
                {"role": "system", "content": settings.get("system_prompt", "")},
                {"role": "user", "content": question},
            ],
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": 1234,
        }
        for question in spread(questions, pairs)
    ]
    services = start_services(["llm"], log_dir)
    worker = BareWorker("llm", "bare_llm.py", args, log_dir / "bare_llm.log")
    client = _client(services["llm"].url)
    try:

        def service(request: dict[str, Any]) -> dict[str, Any]:
            started, ttft_ms, parts = time.perf_counter(), None, []
            stream = client.chat.completions.create(model="local", stream=True, **request, extra_body=sampling)
            for chunk in stream:
                content = chunk.choices[0].delta.content if chunk.choices else None
                if content:
                    ttft_ms = ttft_ms or (time.perf_counter() - started) * 1000
                    parts.append(content)
            return {"ttft_ms": ttft_ms, "ms": (time.perf_counter() - started) * 1000, "text": "".join(parts)}

        result = compare(work, service, lambda request: worker.ask({**request, **sampling}), ["ttft_ms", "ms"])
    finally:
        client.close()
        worker.close()
        stop_all(services.values())
    return {
        "work": f"a streamed reply of up to {max_tokens} tokens to a corpus transcript",
        "bare_args": args,
        **result,
    }


def tts(texts: Sequence[str], pairs: int, log_dir: Path) -> dict[str, Any]:
    """Streamed ``POST /v1/audio/speech`` (pcm) vs ``PiperVoice.synthesize``, over corpus transcripts in turn."""
    work = spread(texts, pairs)
    services = start_services(["tts"], log_dir)
    worker = BareWorker("tts", "bare_tts.py", [], log_dir / "bare_tts.log")
    client = _client(services["tts"].url)
    try:

        def service(text: str) -> dict[str, Any]:
            started, ttfa_ms = time.perf_counter(), None
            with client.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input=text, response_format="pcm"
            ) as response:
                for data in response.iter_bytes():
                    if data:
                        ttfa_ms = ttfa_ms or (time.perf_counter() - started) * 1000
            return {"ttfa_ms": ttfa_ms, "ms": (time.perf_counter() - started) * 1000}

        result = compare(work, service, lambda text: worker.ask({"text": text}), ["ttfa_ms", "ms"])
    finally:
        client.close()
        worker.close()
        stop_all(services.values())
    return {"work": "speak a corpus transcript", **result}
