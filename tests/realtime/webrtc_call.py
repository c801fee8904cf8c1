"""Inside a private network namespace (``bench.netns``): the STT, LLM, TTS and Realtime services, and an aiortc caller
that plays a recorded question on its microphone track and listens to the answer track.

``python tests/realtime/webrtc_call.py QUESTION.wav RESULT.json`` (run through ``bench.netns.run_isolated``): the
SDP offer goes to ``POST /v1/realtime/calls`` through the official client (``client.realtime.calls.create``); the
events arrive on the ``oai-events`` data channel; the answer track's level is measured per 20 ms frame. Writes
``{"answer_sdp", "events": [...], "levels": [[t_s, rms], ...], "response_created_s", "service_logs"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError
from openai import AsyncOpenAI

from bench import netns
from bench.processes import ServiceProcess, start_services, stop_all

SESSION = {
    "type": "realtime",
    "instructions": "Answer in one short sentence.",
    "max_output_tokens": 40,
    "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}},  # the engine's turn model: JFK pauses a lot
}


async def call(realtime: ServiceProcess, question: Path) -> dict[str, Any]:
    pc = RTCPeerConnection()
    channel = pc.createDataChannel("oai-events")
    events: list[dict[str, Any]] = []
    levels: list[tuple[float, float]] = []
    done = asyncio.Event()
    started = time.monotonic()
    response_created: list[float] = []

    @channel.on("message")
    def on_message(message: str) -> None:
        event = json.loads(message)
        events.append(event)
        if event["type"] == "response.created":
            response_created.append(time.monotonic() - started)
        if event["type"] == "response.done" and event["response"]["status"] == "completed":
            done.set()

    async def listen(track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                samples = frame.to_ndarray().astype(np.float32) / 32768
                levels.append((time.monotonic() - started, float(np.sqrt(np.mean(samples**2)))))
        except MediaStreamError:
            pass

    listeners: list[asyncio.Task[None]] = []
    pc.on("track", lambda track: listeners.append(asyncio.create_task(listen(track))))
    player = MediaPlayer(str(question))
    pc.addTrack(player.audio)
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers its candidates here (no trickle)
    client = AsyncOpenAI(api_key="unused", base_url=f"{realtime.url}/v1")
    answer = await client.realtime.calls.create(sdp=pc.localDescription.sdp, session=SESSION)  # type: ignore[arg-type]
    answer_sdp = answer.content.decode()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
    try:
        await asyncio.wait_for(done.wait(), timeout=120)
        await asyncio.sleep(2.0)  # the reply's audio plays on after the response is generated
    finally:
        await pc.close()
        for task in listeners:
            task.cancel()
    return {"answer_sdp": answer_sdp, "events": events, "levels": levels, "response_created_s": response_created}


def main(question: Path, result_path: Path) -> None:
    found = netns.interfaces()
    if netns.TEST_INTERFACE not in found:
        raise RuntimeError(f"not inside the test namespace (interfaces {found})")
    logs = result_path.parent / "logs"
    services = start_services(("stt", "llm", "tts"), logs)
    env = {f"REALTIME_{name.upper()}_URL": service.url for name, service in services.items()}
    realtime = ServiceProcess("realtime", logs / "realtime.log", env=env)
    try:
        realtime.start()
        result = asyncio.run(call(realtime, question))
        result["service_logs"] = {name: str(s.log_path) for name, s in {**services, "realtime": realtime}.items()}
        result_path.write_text(json.dumps(result))
    finally:
        stop_all([realtime, *services.values()])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
