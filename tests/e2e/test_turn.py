"""A whole spoken turn through the real services, started as processes: jfk.wav in, spoken reply out."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import jiwer
import numpy as np
import pytest
import soundfile as sf

from voice_agent.clients import LlmClient, StageError
from voice_agent.config import FrontendSettings
from voice_agent.pipeline import Pipeline, ReplyAudio, ReplyDelta, Transcript, TurnDone, TurnOptions

REPO_ROOT = Path(__file__).resolve().parents[2]
OPTIONS = TurnOptions(temperature=0.0, max_tokens=80)
NOTHING_LISTENS = "http://127.0.0.1:9"  # the discard port: connection refused at once


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def settings_for(running_services, **overrides: str) -> FrontendSettings:  # type: ignore[no-untyped-def]
    urls = {key.removeprefix("FRONTEND_").lower(): value for key, value in running_services.frontend_env().items()}
    return FrontendSettings(**{**urls, **overrides})


@pytest.fixture(scope="module")
def pipeline(running_services) -> Iterator[Pipeline]:  # type: ignore[no-untyped-def]
    built = Pipeline.from_settings(settings_for(running_services))
    yield built
    built.close()


@pytest.fixture(scope="module")
def jfk_turn(pipeline: Pipeline, jfk_wav: Path) -> list:
    return list(pipeline.turn([], OPTIONS, audio=jfk_wav.read_bytes(), filename="jfk.wav"))


def test_turn_events_arrive_in_order_and_the_reply_is_spoken(jfk_turn: list, jfk_transcript: str) -> None:
    assert isinstance(jfk_turn[0], Transcript)
    assert wer(jfk_transcript, jfk_turn[0].text) < 0.15
    assert isinstance(jfk_turn[-1], TurnDone)
    deltas = [e for e in jfk_turn if isinstance(e, ReplyDelta)]
    audio = [e for e in jfk_turn if isinstance(e, ReplyAudio)]
    result = jfk_turn[-1].result
    assert deltas and "".join(d.text for d in deltas).strip() == result.reply
    assert result.reply, "the agent gave no reply"
    assert [a.index for a in audio] == list(range(len(result.sentences))), "sentence audio out of order"
    assert all(a.sample_rate_hz == 22_050 for a in audio)
    # streaming: with 2+ pieces, the first is handed to TTS while the LLM is still writing. (Whether its audio also
    # arrives before the last token is a race between Piper and llama.cpp, which a short reply can lose fairly.)
    if len(audio) > 1:
        timings = result.timings
        assert timings.llm_first_phrase_ms is not None and timings.llm_total_ms is not None, timings
        assert timings.llm_first_phrase_ms < timings.llm_total_ms, timings


def test_reply_audio_is_plausible_and_says_the_reply(jfk_turn: list, pipeline: Pipeline) -> None:
    result = jfk_turn[-1].result
    words = len(result.reply.split())
    assert 0.15 * words < result.audio_duration_s < 1.0 * words + 2
    samples, rate = sf.read(io.BytesIO(result.wav_bytes()), dtype="float32")
    assert rate == 22_050 and abs(len(samples) / rate - result.audio_duration_s) < 0.01
    assert np.sqrt(np.mean(samples**2)) > 0.01, "the reply audio is silence"
    heard_back = pipeline.stt.transcribe(result.wav_bytes(), filename="reply.wav")
    assert wer(result.reply, heard_back) < 0.35, (result.reply, heard_back)


def test_every_stage_is_timed(jfk_turn: list) -> None:
    timings = jfk_turn[-1].result.timings
    names = ("stt_ms", "llm_ttft_ms", "llm_first_phrase_ms", "llm_total_ms", "tts_ttfa_ms", "voice_to_voice_ms")
    for name in (*names, "total_ms"):
        assert getattr(timings, name) is not None and getattr(timings, name) > 0, name
    assert timings.llm_ttft_ms <= timings.llm_first_phrase_ms <= timings.llm_total_ms
    # voice-to-voice is made of STT, the wait for the first phrase and its synthesis (plus small hand-offs)
    parts = timings.stt_ms + timings.llm_first_phrase_ms + timings.tts_ttfa_ms
    assert parts <= timings.voice_to_voice_ms <= parts + 500
    assert timings.stt_ms < timings.voice_to_voice_ms <= timings.total_ms


def test_second_turn_sends_the_history_to_the_llm(running_services) -> None:  # type: ignore[no-untyped-def]
    sent: list[dict] = []

    def capture(request: httpx2.Request) -> None:
        if request.url.path == "/v1/chat/completions":
            sent.append(json.loads(request.read()))

    settings = settings_for(running_services)
    base = Pipeline.from_settings(settings)
    watched = LlmClient(
        settings.llm_url, model=settings.llm_model, http_client=httpx2.Client(event_hooks={"request": [capture]})
    )
    pipeline = Pipeline(base.stt, watched, base.tts)
    try:
        first = pipeline.run_turn([], OPTIONS, text="My name is Alice. Please remember it.")
        history = [{"role": "user", "content": first.transcript}, {"role": "assistant", "content": first.reply}]
        options = TurnOptions(temperature=0.0, max_tokens=40, system_prompt="You are a test assistant.")
        second = pipeline.run_turn(history, options, text="What is my name?")
    finally:
        pipeline.close()
        base.close()
    assert second.reply and second.pcm
    assert sent[1]["stream"] is True
    assert sent[1]["messages"] == [
        {"role": "system", "content": "You are a test assistant."},
        *history,
        {"role": "user", "content": "What is my name?"},
    ]


def test_a_stopped_service_is_named_and_nothing_is_lost(running_services, jfk_wav: Path) -> None:  # type: ignore[no-untyped-def]
    broken = Pipeline.from_settings(settings_for(running_services, tts_url=NOTHING_LISTENS))
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    before = [dict(m) for m in history]
    with pytest.raises(StageError) as caught:
        list(broken.turn(history, OPTIONS, text="Tell me a joke."))
    assert caught.value.stage == "tts" and caught.value.kind == "unreachable"
    assert history == before
    broken.close()


def test_cli_prints_transcript_reply_and_timings_as_json(running_services, jfk_wav: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "reply.wav"
    completed = subprocess.run(
        [sys.executable, "-m", "voice_agent.cli", "--audio", str(jfk_wav), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **running_services.frontend_env(), "FRONTEND_TEMPERATURE": "0"},
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert set(report) >= {"transcript", "reply", "timings_ms"}
    assert "ask not what your country" in report["transcript"].lower()
    assert report["reply"]
    assert report["timings_ms"]["voice_to_voice_ms"] > 0
    info = sf.info(str(out))
    assert info.samplerate == 22_050 and info.duration > 0.3


def test_cli_text_output_and_failure_exit_code(running_services, jfk_wav: Path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, **running_services.frontend_env(), "FRONTEND_TEMPERATURE": "0"}
    completed = subprocess.run(
        [sys.executable, "-m", "voice_agent.cli", "--text", "Say hello."],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("transcript: Say hello.")
    assert "voice-to-voice" in completed.stdout
    env["FRONTEND_STT_URL"] = NOTHING_LISTENS
    failed = subprocess.run(
        [sys.executable, "-m", "voice_agent.cli", "--audio", str(jfk_wav)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1
    assert "speech recognition (STT) failed" in failed.stderr
