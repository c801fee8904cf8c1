"""``make bench`` section ``realtime``: the Realtime service over a WebSocket with the official ``openai`` client.

For every corpus clip (``bench.corpus``: 14 recordings, 9 speakers), a fresh session per turn:
- **push-to-talk** (``turn_detection: null``): the clip streamed in 40 ms chunks at real time, then ``commit`` and
  ``response.create`` (the talk button released as the recording ends); end of speech = the commit sent.
- **server_vad** (the default session): the clip streamed the same way, then 2 s of silence; end of speech = the
  moment the clip's last speech frame was sent (its last 20 ms frame above -40 dBFS; the engine's VAD may place the
  end a little earlier, on a breath, so a turn's "service" difference can come out negative).
The number: end of speech -> the first ``response.output_audio.delta`` received, on the client's clock. Beside it
the engine's own ``end_of_speech_to_audio_ms`` (from ``response.done``'s metadata): the difference is what the
service adds (framing, resampling, the socket). Once the first audio arrives the client sends ``response.cancel``,
so the LLM stops and the next turn starts on a quiet machine. Then 2 and 4 sessions at once (server_vad), each
taking its share of the clips.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from openai import AsyncOpenAI, OpenAIError
from websockets.exceptions import WebSocketException

from .corpus import Clip, corpus
from .processes import ServiceProcess, start_services, stop_all
from .stats import ms_text, summarize

logger = logging.getLogger("bench.realtime")

RATE_HZ = 24_000
CHUNK_MS = 40
SPEECH_DBFS = -40.0
TARGET_OVERHEAD_MS = 50
"""What the service may add to the engine's own end of speech -> first audio (framing, not latency)."""


@dataclass(frozen=True)
class Plan:
    """How much to run: about 5 minutes on a quiet 2-core machine (QUICK: about 2)."""

    max_output_tokens: int = 32
    sessions: tuple[int, ...] = (1, 2, 4)
    clips_per_session: int = 3
    """Clips each of 2 or 4 simultaneous sessions says (one session alone says the whole corpus)."""
    quick: bool = False

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(sessions=(1, 2), clips_per_session=2, quick=True)


def pcm24k(clip: Clip) -> tuple[bytes, float]:
    """The clip as 24 kHz mono PCM16 (soxr) and where its speech ends (seconds from its start)."""
    audio, rate = sf.read(clip.path, dtype="float32")
    pcm = soxr.resample(audio, rate, RATE_HZ)
    frame = RATE_HZ // 50
    frames = pcm[: len(pcm) // frame * frame].reshape(-1, frame)
    loud = np.nonzero(20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9) > SPEECH_DBFS)[0]
    speech_end_s = (loud[-1] + 1) * frame / RATE_HZ if loud.size else len(pcm) / RATE_HZ
    return (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes(), float(speech_end_s)


async def turn(client: AsyncOpenAI, clip: Clip, mode: str, plan: Plan) -> dict[str, Any]:
    """One turn in a fresh session; returns its timings (ms) or an error."""
    pcm, speech_end_s = pcm24k(clip)
    session: dict[str, Any] = {"type": "realtime", "max_output_tokens": plan.max_output_tokens}
    if mode == "push_to_talk":
        session["audio"] = {"input": {"turn_detection": None}}
    row: dict[str, Any] = {"clip": clip.name, "speaker": clip.speaker, "mode": mode}
    size = RATE_HZ * CHUNK_MS // 1000 * 2
    async with client.realtime.connect(model="voice-agent") as connection:
        await connection.session.update(session=session)  # type: ignore[arg-type]
        first_audio: float | None = None
        speech_end: float | None = None  # set once the clip's speech has been sent
        responses = 0  # responses that ended before the end of speech (a pause taken for the end of the turn)

        async def listen() -> dict[str, Any]:
            """Until the response to the whole clip is done: its first audio after the end of speech is the number
            (an earlier response, to part of the clip, is cancelled by the speech that follows and counted)."""
            nonlocal first_audio, responses
            async for event in connection:
                now = time.perf_counter()
                after_speech = speech_end is not None and now >= speech_end
                if event.type == "response.output_audio.delta" and first_audio is None and after_speech:
                    first_audio = now
                    await connection.response.cancel()
                elif event.type == "response.done":
                    if first_audio is not None or event.response.status == "failed":
                        return event.response.model_dump()
                    responses += 1
                elif event.type == "error":
                    logger.warning("%s %s: %s", clip.name, mode, event.error.message)
            raise RuntimeError("the connection closed before response.done")

        listener = asyncio.create_task(listen())
        started = time.perf_counter()
        if mode == "server_vad":
            speech_end = started + speech_end_s
        audio = pcm if mode == "push_to_talk" else pcm + bytes(RATE_HZ * 2 * 2)  # server_vad: then 2 s of silence
        for index, start in enumerate(range(0, len(audio), size)):  # at real time, as a microphone sends it
            await asyncio.sleep(max(0.0, started + index * CHUNK_MS / 1000 - time.perf_counter()))
            await connection.input_audio_buffer.append(audio=base64.b64encode(audio[start : start + size]).decode())
        if mode == "push_to_talk":
            speech_end = time.perf_counter()
            await connection.input_audio_buffer.commit()
            await connection.response.create()
        try:
            response = await asyncio.wait_for(listener, timeout=60)
        except (TimeoutError, RuntimeError, OSError, OpenAIError, WebSocketException) as err:
            listener.cancel()
            return {**row, "error": f"{type(err).__name__}: {err}"}
    metadata = response.get("metadata") or {}
    engine = float(metadata["end_of_speech_to_audio_ms"]) if "end_of_speech_to_audio_ms" in metadata else None
    client_ms = (first_audio - speech_end) * 1000 if first_audio is not None and speech_end is not None else None
    return {
        **row,
        "end_of_speech_to_first_audio_ms": round(client_ms, 1) if client_ms is not None else None,
        "engine_end_of_speech_to_audio_ms": engine,
        "service_overhead_ms": round(client_ms - engine, 1) if client_ms is not None and engine is not None else None,
        "stages_ms": {key: float(value) for key, value in metadata.items() if key.endswith("_ms")},
        "status": response.get("status"),
        "early_responses": responses,
        **({"error": str(response["status_details"])} if response.get("status") == "failed" else {}),
    }


async def sessions_at_once(client: AsyncOpenAI, clips: list[Clip], count: int, plan: Plan) -> list[dict[str, Any]]:
    """``count`` server_vad sessions at once, each saying ``plan.clips_per_session`` clips one after another."""

    async def one(index: int) -> list[dict[str, Any]]:
        mine = [clips[(index * plan.clips_per_session + k) % len(clips)] for k in range(plan.clips_per_session)]
        return [{**await turn(client, clip, "server_vad", plan), "session": index} for clip in mine]

    results = await asyncio.gather(*(one(index) for index in range(count)))
    return [row for rows in results for row in rows]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [row for row in rows if "error" not in row]
    stages = ("end_of_turn_ms", "stt_ms", "llm_first_phrase_ms", "tts_ttfa_ms")
    return {
        "turns": len(rows),
        "lost_turns": sum(1 for row in rows if "error" in row or row.get("end_of_speech_to_first_audio_ms") is None),
        "end_of_speech_to_first_audio_ms": summarize(row.get("end_of_speech_to_first_audio_ms") for row in ok),
        "engine_end_of_speech_to_audio_ms": summarize(row.get("engine_end_of_speech_to_audio_ms") for row in ok),
        "service_overhead_ms": summarize(row.get("service_overhead_ms") for row in ok),
        "stages_ms": {name: summarize(row["stages_ms"].get(name) for row in ok) for name in stages},
    }


async def _measure(url: str, port: int, plan: Plan) -> dict[str, Any]:
    client = AsyncOpenAI(api_key="unused", base_url=f"{url}/v1", websocket_base_url=f"ws://127.0.0.1:{port}/v1")
    clips = corpus()[:4] if plan.quick else corpus()
    rows: dict[str, list[dict[str, Any]]] = {"push_to_talk": [], "server_vad": []}
    for clip in clips:  # alternating, so both modes see the same load
        for mode in rows:
            rows[mode].append(await turn(client, clip, mode, plan))
            logger.info("%s %s: %s ms", clip.name, mode, rows[mode][-1].get("end_of_speech_to_first_audio_ms"))
    by_count: dict[str, Any] = {"1": _summary(rows["server_vad"])}
    many: list[dict[str, Any]] = []
    for count in plan.sessions:
        if count > 1:
            found = await sessions_at_once(client, clips, count, plan)
            by_count[str(count)] = _summary(found)
            many += [{**row, "sessions_at_once": count} for row in found]
    return {
        "modes": {mode: _summary(found) for mode, found in rows.items()},
        "sessions": by_count,
        "rows": rows,
        "many": many,
    }


def measure(plan: Plan | None = None, log_dir: Path | None = None) -> dict[str, Any]:
    """Start the STT, LLM, TTS and Realtime services, run ``plan``, return the ``realtime`` section of ``latest.json``:
    ``{"end_of_speech_to_first_audio_ms": {p50, p95, ...} (server_vad, one session), "push_to_talk": {...},
    "service_overhead_ms": {...}, "modes": {...}, "sessions": {"1", "2", "4"}, "targets", "turns": [rows]}``."""
    plan = plan or Plan()
    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as work:
        logs = log_dir or Path(work)
        services = start_services(("stt", "llm", "tts"), logs)
        env = {f"REALTIME_{name.upper()}_URL": service.url for name, service in services.items()}
        realtime = ServiceProcess("realtime", logs / "realtime.log", env={**env, "REALTIME_TEMPERATURE": "0"})
        try:
            realtime.start()
            found = asyncio.run(_measure(realtime.url, realtime.port, plan))
        finally:
            stop_all([realtime, *services.values()])
    vad, ptt = found["modes"]["server_vad"], found["modes"]["push_to_talk"]
    overhead = summarize(
        row.get("service_overhead_ms") for rows in found["rows"].values() for row in rows if "error" not in row
    )
    return {
        "end_of_speech_to_first_audio_ms": vad["end_of_speech_to_first_audio_ms"],
        "push_to_talk_end_of_speech_to_first_audio_ms": ptt["end_of_speech_to_first_audio_ms"],
        "service_overhead_ms": overhead,
        "targets": {
            f"service_overhead_p50_le_{TARGET_OVERHEAD_MS}_ms": bool(overhead and overhead["p50"] <= TARGET_OVERHEAD_MS)
        },
        "modes": found["modes"],
        "sessions": found["sessions"],
        "settings": asdict(plan),
        "turns": [*found["rows"]["push_to_talk"], *found["rows"]["server_vad"], *found["many"]],
    }


def markdown(section: dict[str, Any]) -> str:
    """The Realtime part of ``docs/benchmarks.md`` from ``measure``'s result."""
    if "error" in section:
        return f"## Realtime service (WebSocket)\n\nThe run failed: `{section['error']}`\n"
    lines = [
        "## Realtime service (WebSocket)",
        "",
        "The official `openai` client over a WebSocket, a fresh session per corpus clip, its audio sent at real time "
        "in 40 ms chunks. End of speech = the commit sent (push-to-talk) or the clip's last speech frame sent "
        "(server_vad: 500 ms of silence ends the turn); -> the first `response.output_audio.delta` received. "
        "Engine = the engine's own end of speech -> "
        "first audio handed to the output; service = client - engine (what the socket, framing and resampling add). "
        f"Replies at most {section['settings']['max_output_tokens']} tokens, cancelled at their first audio.",
        "",
        "| mode | sessions at once | turns | end of speech -> first audio p50 / p95 (ms) | engine p50 / p95 | service "
        "p50 / p95 | end of turn | STT | LLM first phrase | TTS first audio | lost turns |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [("push_to_talk", "1", section["modes"]["push_to_talk"])]
    rows += [("server_vad", count, summary) for count, summary in section["sessions"].items()]
    for mode, count, summary in rows:
        stages = summary["stages_ms"]
        lines.append(
            f"| {mode} | {count} | {summary['turns']} | "
            + " | ".join(
                f"{ms_text(summary[name])} / {ms_text(summary[name], 'p95')}"
                for name in (
                    "end_of_speech_to_first_audio_ms",
                    "engine_end_of_speech_to_audio_ms",
                    "service_overhead_ms",
                )
            )
            + " | "
            + " | ".join(
                ms_text(stages.get(name)) for name in ("end_of_turn_ms", "stt_ms", "llm_first_phrase_ms", "tts_ttfa_ms")
            )
            + f" | {summary['lost_turns']} |"
        )
    verdict = ", ".join(f"{name}: {'met' if met else '**not met**'}" for name, met in section["targets"].items())
    lines += ["", f"Stages are medians (ms). Target: {verdict}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realtime", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 clips; 1 and 2 sessions only")
    parser.add_argument("--out", type=Path, help="write the section's JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    result = measure(Plan.quick_plan() if args.quick else Plan())
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
