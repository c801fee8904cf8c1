"""Helpers of the Realtime tests: audio at 24 kHz, WER, and the official ``openai`` client's Realtime connection
(``client.realtime.connect`` with ``websocket_base_url`` pointed at the service), every event validated."""

from __future__ import annotations

import asyncio
import base64
import re
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from bench.processes import ServiceProcess

RATE = 24_000
server_events: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def pcm24k(path: Path) -> bytes:
    """A 16 kHz mono PCM16 WAV as 24 kHz mono PCM16 (linear interpolation: plenty for speech into Whisper)."""
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 16_000 and wav.getnchannels() == 1 and wav.getsampwidth() == 2
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32)
    times = np.arange(int(len(samples) * RATE / 16_000)) * 16_000 / RATE
    return np.interp(times, np.arange(len(samples)), samples).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(int(RATE * seconds) * 2)


@dataclass
class Recorder:
    """Every server event received, validated against the openai package's GA server event types."""

    events: list[Any] = field(default_factory=list)

    def of(self, kind: str) -> list[Any]:
        return [event for event in self.events if event.type == kind]

    def audio(self) -> bytes:
        return b"".join(base64.b64decode(event.delta) for event in self.of("response.output_audio.delta"))


async def receive_until(
    connection: Any, recorder: Recorder, done: Callable[[Any], bool], timeout_s: float = 90.0
) -> Any:
    """Receive events into ``recorder`` until one satisfies ``done`` (returned); raises TimeoutError after
    ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"no awaited event in {timeout_s} s; got {[e.type for e in recorder.events]}")
        raw = await asyncio.wait_for(connection.recv_bytes(), remaining)
        event = server_events.validate_json(raw)  # strict: every field of OpenAI's shape
        recorder.events.append(event)
        if done(event):
            return event


async def send_audio(connection: Any, pcm: bytes, *, chunk_ms: int = 40, real_time: float = 0.0) -> None:
    """``input_audio_buffer.append`` in ``chunk_ms`` pieces; ``real_time`` > 0 paces them at that multiple of real
    time (1.0 = as a microphone would)."""
    size = RATE * chunk_ms // 1000 * 2
    for start in range(0, len(pcm), size):
        await connection.input_audio_buffer.append(audio=base64.b64encode(pcm[start : start + size]).decode())
        if real_time:
            await asyncio.sleep(chunk_ms / 1000 / real_time)


def client_for(service: ServiceProcess, api_key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=api_key, base_url=f"{service.url}/v1", websocket_base_url=f"ws://127.0.0.1:{service.port}/v1"
    )


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]
