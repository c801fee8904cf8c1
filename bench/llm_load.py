"""Streaming chat clients against any OpenAI-compatible ``/v1/chat/completions``: TTFT, tokens/s, cut streams.

Used to compare our LLM service with llama-cpp-python's own server under 1 and N concurrent clients. A stream
that ends (``[DONE]`` or a closed connection) without a ``finish_reason`` counts as cut, as the pipeline does.
Tokens are counted as content chunks: both servers send one chunk per generated token that completes text.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse

from .stats import summarize


@dataclass
class StreamResult:
    """One streamed reply: ms to the first content chunk, ms in all, chunks, finish_reason (None = cut)."""

    ttft_ms: float | None
    total_ms: float
    chunks: int
    finish_reason: str | None
    error: str | None = None

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens per second after the first one (the decoding speed this client saw)."""
        if self.ttft_ms is None or self.chunks < 2 or self.total_ms <= self.ttft_ms:
            return None
        return (self.chunks - 1) / ((self.total_ms - self.ttft_ms) / 1000.0)


def stream_chat(client: httpx.Client, body: dict[str, Any]) -> StreamResult:
    """POST ``body`` with ``stream: true`` and read the whole stream; never raises (errors are recorded)."""
    started = time.perf_counter()
    ttft_ms: float | None = None
    chunks = 0
    finish_reason: str | None = None
    error: str | None = None
    try:
        with connect_sse(client, "POST", "/v1/chat/completions", json={**body, "stream": True}) as source:
            source.response.raise_for_status()
            for event in source.iter_sse():
                if event.data.strip() == "[DONE]":
                    break
                data = json.loads(event.data)
                for choice in data.get("choices", []):
                    if (choice.get("delta") or {}).get("content"):
                        chunks += 1
                        if ttft_ms is None:
                            ttft_ms = (time.perf_counter() - started) * 1000.0
                    finish_reason = choice.get("finish_reason") or finish_reason
    except (httpx.HTTPError, ValueError) as err:
        error = f"{type(err).__name__}: {err}"
    return StreamResult(ttft_ms, (time.perf_counter() - started) * 1000.0, chunks, finish_reason, error)


def _one_round(base_url: str, body: dict[str, Any], clients: int) -> tuple[list[StreamResult], float]:
    """``clients`` streams released together by a barrier: their results and the round's wall time (s)."""
    barrier = threading.Barrier(clients)

    def one_client(_: int) -> StreamResult:
        with httpx.Client(base_url=base_url, timeout=httpx.Timeout(300.0, connect=5.0)) as client:
            barrier.wait(timeout=60)
            return stream_chat(client, body)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one_client, range(clients)))
    return results, time.perf_counter() - started


def concurrent_streams(base_url: str, body: dict[str, Any], clients: int, rounds: int) -> dict[str, object]:
    """``rounds`` times: ``clients`` streams started together (a barrier), each on its own connection.

    Returns TTFT and per-stream decoding speed (p50/p95), aggregate tokens/s (all chunks / wall time of the
    round), how many streams completed with a finish_reason, and every stream's raw result.
    """
    streams: list[StreamResult] = []
    aggregate: list[float] = []
    for _ in range(rounds):
        round_results, wall_s = _one_round(base_url, body, clients)
        aggregate.append(sum(result.chunks for result in round_results) / wall_s)
        streams.extend(round_results)
    completed = sum(1 for result in streams if result.finish_reason is not None and result.error is None)
    return {
        "clients": clients,
        "streams": len(streams),
        "completed": completed,
        "cut": len(streams) - completed,
        "ttft_ms": summarize(result.ttft_ms for result in streams),
        "decode_tokens_per_s": summarize(result.decode_tokens_per_s for result in streams),
        "aggregate_tokens_per_s": summarize(aggregate),
        "chunks_per_stream": summarize(result.chunks for result in streams),
        "raw": [asdict(result) for result in streams],
    }
