"""Helpers for the LLM tests: request bodies and a Server-Sent Events parser (imported by the test modules)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from llm_service.config import Settings

SHORT_REPLY_TOKENS = 48
"""Enough for a one-sentence answer; keeps the suite fast on 2 cores."""


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: the embedded model and n_ctx=2048 unless overridden (other LLM_* variables apply)."""
    # no API key, rate limit or tiny queue from a developer's environment (make exports .env)
    values: dict[str, Any] = {
        "model": "smollm2-135m",
        "n_ctx": 2048,
        "log_level": "INFO",
        "api_key": None,
        "rate_limit": None,
        "max_queued_requests": 8,
    }
    values.update(overrides)
    return Settings(**values)


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


@dataclass
class SseStream:
    """A parsed ``text/event-stream`` response: the JSON events in order, and whether ``[DONE]`` ended it."""

    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    after_done: list[str] = field(default_factory=list)

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [event for event in self.events if "error" not in event]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [event for event in self.events if "error" in event]

    @property
    def text(self) -> str:
        return "".join(
            choice["delta"].get("content") or "" for chunk in self.chunks for choice in chunk.get("choices", [])
        )

    @property
    def finish_reasons(self) -> list[str]:
        return [
            choice["finish_reason"]
            for chunk in self.chunks
            for choice in chunk.get("choices", [])
            if choice.get("finish_reason") is not None
        ]


def parse_sse(lines: Iterator[str]) -> SseStream:
    """Read ``data:`` lines (comments and blank lines skipped) until the body ends."""
    stream = SseStream()
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if stream.done:
            stream.after_done.append(data)
        elif data == "[DONE]":
            stream.done = True
        else:
            stream.events.append(json.loads(data))
    return stream


def stream_chat(client: TestClient | httpx.Client, body: dict[str, Any]) -> SseStream:
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines())
