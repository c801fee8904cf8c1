"""The Realtime service with the official ``openai`` client over a WebSocket, on the real services and models.

Every server event is validated against the openai package's GA event types (``realtime_helpers.receive_until``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from openai import OpenAI
from realtime_helpers import RATE, Recorder, client_for, pcm24k, receive_until, run, send_audio, silence, wer
from scrape import Scrape, scrape

from bench.processes import ServiceProcess, llm_generations
from voice_agent.audio import pcm_to_wav

pytestmark = pytest.mark.slow

QUESTION = "ask_not_what_your_country_can_do_for_you"
SHORT = {"instructions": "Answer in one short sentence.", "max_output_tokens": 40}
PUSH_TO_TALK = {"type": "realtime", "audio": {"input": {"turn_detection": None}}, **SHORT}
STORY = {
    "type": "realtime",
    "audio": {"input": {"turn_detection": None}},
    "instructions": "You are a storyteller. Tell a long, detailed story.",
    "max_output_tokens": 400,
}


def done(kind: str) -> Any:
    return lambda event: event.type == kind


async def ask_for_a_story(connection: Any, recorder: Recorder, request: str) -> None:
    """A storytelling session asked, in a typed message, for a story (a long reply to interrupt)."""
    await receive_until(connection, recorder, done("session.created"))
    await connection.session.update(session=STORY)
    await connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": request}]}
    )
    await connection.response.create()


async def push_to_talk_turn(connection: Any, recorder: Recorder, pcm: bytes) -> Any:
    await send_audio(connection, pcm)
    await connection.input_audio_buffer.commit()
    await connection.response.create()
    return await receive_until(connection, recorder, done("response.done"))


def test_push_to_talk_answers_a_recorded_question_with_speech(
    realtime: ServiceProcess, running_services, data_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    """turn_detection null: append, commit, response.create. The transcript has the words; audio deltas come
    before response.done; the reply's audio, transcribed again, says what its transcript says."""
    reference = (data_dir / f"{QUESTION}.txt").read_text()

    async def talk() -> Recorder:
        recorder = Recorder()
        async with client_for(realtime).realtime.connect(model="voice-agent") as connection:
            await receive_until(connection, recorder, done("session.created"))
            await connection.session.update(session=PUSH_TO_TALK)
            await receive_until(connection, recorder, done("session.updated"))
            await push_to_talk_turn(connection, recorder, pcm24k(data_dir / f"{QUESTION}.wav"))
        return recorder

    recorder = run(talk())
    kinds = [event.type for event in recorder.events]
    assert kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
    transcript = recorder.of("conversation.item.input_audio_transcription.completed")[0].transcript
    assert wer(reference, transcript) < 0.2, transcript
    done_event = recorder.of("response.done")[0]
    assert done_event.response.status == "completed"
    assert kinds.index("response.output_audio.delta") < kinds.index("response.done")
    said = recorder.of("response.output_audio_transcript.done")[0].transcript
    assert said and "".join(e.delta for e in recorder.of("response.output_audio_transcript.delta")).strip() == said
    assert done_event.response.output[0].content[0].transcript == said
    assert done_event.response.metadata and float(done_event.response.metadata["stt_ms"]) > 0
    audio = recorder.audio()
    assert len(audio) / 2 / RATE > 0.5
    heard = OpenAI(api_key="unused", base_url=f"{running_services.stt.url}/v1").audio.transcriptions.create(
        model="whisper-1", file=("reply.wav", pcm_to_wav(audio, RATE))
    )
    assert wer(said, heard.text) < 0.35, (said, heard.text)


def test_server_vad_answers_when_the_speaker_stops(realtime: ServiceProcess, data_dir: Path) -> None:
    """The default session (server_vad): the question in 40 ms chunks and then silence gives speech started and
    stopped, a committed buffer, its transcript and a completed response, with no client request."""

    async def talk() -> Recorder:
        recorder = Recorder()
        async with client_for(realtime).realtime.connect(model="voice-agent") as connection:
            await receive_until(connection, recorder, done("session.created"))
            await connection.session.update(session=SHORT | {"type": "realtime"})
            await receive_until(connection, recorder, done("session.updated"))
            await send_audio(
                connection, silence(0.5) + pcm24k(data_dir / f"{QUESTION}.wav") + silence(2.0), real_time=4
            )
            await receive_until(connection, recorder, done("response.done"))
        return recorder

    recorder = run(talk())
    kinds = [event.type for event in recorder.events]
    for kind in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ):
        assert kind in kinds
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    started, stopped = (
        recorder.of("input_audio_buffer.speech_started")[0],
        recorder.of("input_audio_buffer.speech_stopped")[0],
    )
    assert 200 <= started.audio_start_ms <= 800 and stopped.audio_end_ms > started.audio_start_ms + 1000
    assert started.item_id == stopped.item_id == recorder.of("input_audio_buffer.committed")[0].item_id
    assert recorder.of("response.done")[0].response.status == "completed"
    assert recorder.of("response.output_audio.delta")


def test_a_transcription_session_transcribes_and_never_answers(realtime: ServiceProcess, data_dir: Path) -> None:
    """``?intent=transcription``: the question streamed with server_vad is committed and transcribed (partial
    deltas while it is spoken, then the completed transcript) and no response follows."""

    async def talk() -> Recorder:
        recorder = Recorder()
        client = client_for(realtime)
        async with client.realtime.connect(model="voice-agent", extra_query={"intent": "transcription"}) as connection:
            created = await receive_until(connection, recorder, done("session.created"))
            assert created.session.type == "transcription"
            await send_audio(connection, pcm24k(data_dir / f"{QUESTION}.wav") + silence(1.5), real_time=2)
            await receive_until(connection, recorder, done("conversation.item.input_audio_transcription.completed"))
            with pytest.raises(TimeoutError):
                await receive_until(connection, recorder, done("response.created"), timeout_s=3)
        return recorder

    recorder = run(talk())
    transcript = " ".join(e.transcript for e in recorder.of("conversation.item.input_audio_transcription.completed"))
    assert wer((data_dir / f"{QUESTION}.txt").read_text(), transcript) < 0.35, transcript
    assert not recorder.of("response.created")


def test_response_cancel_stops_the_llm(realtime: ServiceProcess, running_services) -> None:  # type: ignore[no-untyped-def]
    """response.cancel during a long reply: response.done cancelled (client_cancelled), and the LLM service's
    generation for it stops early, within 5 s, instead of writing the rest of the story."""

    async def talk() -> tuple[Recorder, float]:
        recorder = Recorder()
        async with client_for(realtime).realtime.connect(model="voice-agent") as connection:
            await ask_for_a_story(connection, recorder, "Tell me a story about a lighthouse keeper.")
            await receive_until(connection, recorder, done("response.output_audio.delta"))
            cancelled_at = time.time()
            await connection.response.cancel()
            await receive_until(connection, recorder, done("response.done"))
        return recorder, cancelled_at

    recorder, cancelled_at = run(talk())
    response = recorder.of("response.done")[0].response
    assert response.status == "cancelled" and response.status_details.reason == "client_cancelled"
    assert_generation_stopped(running_services.llm.log_path, cancelled_at)


def test_speech_during_a_response_cancels_it(realtime: ServiceProcess, data_dir: Path) -> None:
    """server_vad with interrupt_response: the user speaking over the reply cancels it (turn_detected) and the new
    words get their own response. ``/metrics`` counts the session, both turns, the barge-in and the time from the end
    of speech to the first reply audio."""
    metrics = httpx.Client(base_url=realtime.url, timeout=10)
    before = scrape(metrics)
    during: list[Scrape] = []

    async def talk() -> Recorder:
        recorder = Recorder()
        question = pcm24k(data_dir / f"{QUESTION}.wav")
        async with client_for(realtime).realtime.connect(model="voice-agent") as connection:
            during.append(await asyncio.to_thread(scrape, metrics))
            await receive_until(connection, recorder, done("session.created"))
            await connection.session.update(
                session={**STORY, "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
            )
            await send_audio(connection, question + silence(1.5), real_time=4)
            await receive_until(connection, recorder, done("response.output_audio.delta"))
            await send_audio(connection, question + silence(1.5), real_time=1)
            await receive_until(connection, recorder, done("response.done"))
            await receive_until(connection, recorder, done("response.created"))
        return recorder

    recorder = run(talk())
    first = recorder.of("response.done")[0].response
    assert first.status == "cancelled" and first.status_details.reason == "turn_detected"
    kinds = [event.type for event in recorder.events]
    cancelled_at = kinds.index("response.done")
    assert "input_audio_buffer.committed" in kinds[cancelled_at:]  # the words spoken over the reply, committed
    assert kinds[-1] == "response.created"  # and answered
    after = scrape(metrics)
    assert during[0].value("realtime_sessions_active") == before.value("realtime_sessions_active") + 1
    turns = after.value("conversation_turns_total") - before.value("conversation_turns_total")
    barge_ins = after.value("conversation_barge_ins_total") - before.value("conversation_barge_ins_total")
    # the words spoken over the reply may pause long enough to end a turn of their own and be spoken over again:
    # at least the one barge-in, at most one per turn after the first (the closing hang-up is not one)
    assert turns >= 2 and 1 <= barge_ins <= turns - 1, (turns, barge_ins)
    first_audio = "conversation_end_of_speech_to_audio_seconds"
    assert after.value(f"{first_audio}_count") - before.value(f"{first_audio}_count") >= 1


def test_a_closed_socket_ends_the_sessions_work(realtime: ServiceProcess, running_services) -> None:  # type: ignore[no-untyped-def]
    """Closing the WebSocket in the middle of a reply stops the LLM's generation for it."""

    async def talk() -> float:
        recorder = Recorder()
        async with client_for(realtime).realtime.connect(model="voice-agent") as connection:
            await ask_for_a_story(connection, recorder, "Tell me a story about a dragon.")
            await receive_until(connection, recorder, done("response.output_audio_transcript.delta"))
        return time.time()

    closed_at = run(talk())
    assert_generation_stopped(running_services.llm.log_path, closed_at)


def test_bad_events_get_errors_and_the_session_lives_on(realtime: ServiceProcess) -> None:
    """Garbage, binary data, unknown events, bad fields, bad base64, a commit of nothing, an event over the size
    limit, an overfull input buffer: each gets an ``error`` event in OpenAI's shape; then a text turn is answered in
    the same session."""

    async def talk() -> Recorder:
        recorder = Recorder()
        async with client_for(realtime).realtime.connect(model="voice-agent") as connection:
            await receive_until(connection, recorder, done("session.created"))
            await connection.session.update(session={**PUSH_TO_TALK, "output_modalities": ["text"]})
            await receive_until(connection, recorder, done("session.updated"))
            bad = [
                "not json at all",
                b"\x00\xff\xfe binary",
                json.dumps({"type": "no.such.event"}),
                json.dumps({"type": "input_audio_buffer.append"}),
                json.dumps({"type": "input_audio_buffer.append", "audio": "%%% not base64"}),
                json.dumps({"type": "input_audio_buffer.commit"}),
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}},
                    }
                ),
                json.dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": "item_nope",
                        "content_index": 0,
                        "audio_end_ms": 10,
                    }
                ),
                json.dumps({"type": "response.cancel"}),
                json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (16 * 1024 * 1024)}),  # > 16 MiB
            ]
            for raw in bad:
                await connection.send_raw(raw)
                await receive_until(connection, recorder, done("error"), timeout_s=10)
            big = base64.b64encode(silence(50.0)).decode()
            for _ in range(3):  # 150 s of audio: more than the buffer's 120 s
                await connection.send({"type": "input_audio_buffer.append", "audio": big})
            await receive_until(connection, recorder, done("error"), timeout_s=20)
            await connection.input_audio_buffer.clear()
            await receive_until(connection, recorder, done("input_audio_buffer.cleared"))
            await connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}
            )
            await connection.response.create()
            await receive_until(connection, recorder, done("response.done"))
        return recorder

    recorder = run(talk())
    errors = recorder.of("error")
    codes = [error.error.code for error in errors]
    assert codes == [
        "invalid_json", "invalid_json", "invalid_event_type", "invalid_value", "invalid_value",
        "input_audio_buffer_commit_empty", "invalid_value", "item_not_found", "response_cancel_not_active",
        "event_too_large", "input_audio_buffer_full",
    ], codes  # fmt: skip
    assert all(error.error.message for error in errors)
    response = recorder.of("response.done")[0].response
    assert response.status == "completed" and response.output[0].content[0].text
    assert recorder.of("response.output_text.delta") and not recorder.of("response.output_audio.delta")


def test_sessions_are_limited_and_keys_are_checked(start_service, running_services) -> None:  # type: ignore[no-untyped-def]
    """With REALTIME_API_KEY and REALTIME_MAX_SESSIONS=1: no key -> 401 before the upgrade; one session is let in;
    a second gets 503 with Retry-After (counted in /metrics); once the first closes, a new one is let in. With the
    admin key: unloaded, a new session gets 503 model_not_ready; loaded again, it is let in."""
    env = {f"REALTIME_{name.upper()}_URL": getattr(running_services, name).url for name in ("stt", "llm", "tts")}
    service = start_service(
        "realtime",
        REALTIME_API_KEY="secret-key",
        REALTIME_MAX_SESSIONS="1",
        REALTIME_ADMIN_API_KEY="admin-key",
        **env,
    )
    admin = httpx.Client(base_url=service.url, headers={"Authorization": "Bearer admin-key"}, timeout=60)
    url = f"ws://127.0.0.1:{service.port}/v1/realtime?model=voice-agent"
    key = {"Authorization": "Bearer secret-key"}

    async def check() -> None:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_api_key"
        async with websockets.connect(url, additional_headers=key) as first:
            assert json.loads(await first.recv())["type"] == "session.created"
            with pytest.raises(websockets.InvalidStatus) as full:
                async with websockets.connect(url, additional_headers=key):
                    pass
            assert full.value.response.status_code == 503 and full.value.response.headers["Retry-After"]
        await asyncio.sleep(0.5)
        async with websockets.connect(url, additional_headers=key) as again:
            assert json.loads(await again.recv())["type"] == "session.created"

    async def refused_while_unloaded() -> None:
        with pytest.raises(websockets.InvalidStatus) as unloaded:
            async with websockets.connect(url, additional_headers=key):
                pass
        assert unloaded.value.response.status_code == 503
        assert json.loads(unloaded.value.response.body)["error"]["code"] == "model_not_ready"

    async def let_in() -> None:
        async with websockets.connect(url, additional_headers=key) as loaded:
            assert json.loads(await loaded.recv())["type"] == "session.created"

    run(check())
    assert scrape(admin).value("realtime_sessions_refused_total") == 1
    assert admin.post("/admin/model/unload").json()["state"] == "unloaded"
    run(refused_while_unloaded())
    assert admin.post("/admin/model/load").json()["state"] == "ready"
    run(let_in())


def assert_generation_stopped(log: Path, since: float) -> None:
    """The LLM service's log shows the generation running at ``since`` (epoch s) stopped early within 5 s."""
    deadline = time.time() + 10
    while time.time() < deadline:
        _, ends = llm_generations(log)
        after = [(at, how) for at, how in ends if at >= since - 0.5]
        if after:
            at, how = after[0]
            assert how == "stopped early", f"the generation ran to its end: {log}"
            assert at - since < 5.0, f"it stopped {at - since:.1f} s after the cancel"
            return
        time.sleep(0.2)
    raise AssertionError(f"no end of the generation in the LLM log within 10 s: {log}")


def test_a_webrtc_call_answers_on_the_track(tmp_path: Path, data_dir: Path) -> None:
    """``client.realtime.calls.create`` with an aiortc offer, inside a private network namespace (ICE needs an
    interface other than loopback; nothing leaves the namespace): the question played on the microphone track is
    transcribed and answered, events arrive on the ``oai-events`` data channel, and the answer is heard on the
    returned track (no ``response.output_audio.delta`` events: the audio is on the track)."""
    import sys

    import soundfile as sf

    from bench import netns

    audio, rate = sf.read(data_dir / f"{QUESTION}.wav", dtype="int16")
    question = tmp_path / "question.wav"
    sf.write(question, np.concatenate([np.zeros(rate // 2, np.int16), audio, np.zeros(rate * 3, np.int16)]), rate)
    result_path = tmp_path / "result.json"
    done = netns.run_isolated(
        [sys.executable, "tests/realtime/webrtc_call.py", str(question), str(result_path)],
        timeout_s=280,
        log_path=tmp_path / "run.log",
    )
    log = (tmp_path / "run.log").read_text(errors="replace")[-3000:]
    assert done.returncode == 0 and result_path.exists(), log
    result = json.loads(result_path.read_text())
    assert "m=audio" in result["answer_sdp"]
    kinds = [event["type"] for event in result["events"]]
    for kind in ("session.created", "session.updated", "input_audio_buffer.speech_started", "response.done"):
        assert kind in kinds, kinds
    transcripts = [e["transcript"] for e in result["events"] if e["type"].endswith("transcription.completed")]
    assert transcripts and wer((data_dir / f"{QUESTION}.txt").read_text(), " ".join(transcripts)) < 0.25
    assert "response.output_audio.delta" not in kinds
    statuses = [e["response"]["status"] for e in result["events"] if e["type"] == "response.done"]
    assert "completed" in statuses, statuses
    answered_from = result["response_created_s"][-1]
    loud = [t for t, rms in result["levels"] if t >= answered_from and rms > 0.01]
    assert len(loud) * 0.02 > 0.5, f"{len(loud)} loud 20 ms frames on the answer track after response.created"
