"""The conversation engine on recorded speech, without a browser: the real VAD and turn models decide, and
stand-in STT/LLM/TTS clients make the replies' timing controllable (the real services are in the e2e tests).

The microphone is fed in 20 ms pieces; where a reply is playing the feed keeps real time, because the engine
models playback on the wall clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from prometheus_client import CollectorRegistry

from voice_agent.clients import Cancellation, PcmChunk
from voice_agent.engine.conversation import ConversationEngine, EngineSettings, TurnModels
from voice_agent.engine.events import (
    FinalTranscript,
    Interrupted,
    ReplyDone,
    ReplyStarted,
    SpeechStarted,
    TurnEnded,
)
from voice_agent.engine.metrics import EngineMetrics
from voice_agent.engine.transcript import StablePrefix
from voice_agent.engine.turns import TurnSettings
from voice_agent.pipeline import TurnOptions

RATE = 16_000
TTS_RATE = 22_050
PIECE = 320  # 20 ms of microphone audio, as WebRTC delivers it


class StandInStt:
    def __init__(self) -> None:
        self.calls: list[float] = []  # seconds of audio per request

    def transcribe(self, audio: bytes, *, filename: str = "audio.wav", language: str | None = None) -> str:
        self.calls.append((len(audio) - 44) / 2 / RATE)
        return "how far away is the moon"


class StandInLlm:
    """Streams a fixed reply word by word, ``delay_s`` apart; records whether it was cancelled."""

    def __init__(self, reply: str, delay_s: float = 0.01) -> None:
        self.reply, self.delay_s = reply, delay_s
        self.requests: list[list[dict[str, str]]] = []
        self.cancelled: list[bool] = []

    def stream_chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        cancellation: Cancellation | None = None,
        on_usage: Callable[[dict[str, int]], None] | None = None,
    ) -> Iterator[str]:
        self.requests.append(list(messages))
        self.cancelled.append(False)
        index = len(self.cancelled) - 1
        for word in self.reply.split(" "):
            if cancellation is not None and cancellation.cancelled:
                self.cancelled[index] = True
                return
            time.sleep(self.delay_s)
            yield word + " "


class StandInTts:
    """Speaks ``seconds_per_word`` of a quiet tone per word, in one chunk per piece."""

    def __init__(self, seconds_per_word: float = 0.3) -> None:
        self.seconds_per_word = seconds_per_word
        self.pieces: list[str] = []

    def stream_pcm(
        self, text: str, *, voice: str, speed: float = 1.0, cancellation: Cancellation | None = None
    ) -> Iterator[PcmChunk]:
        self.pieces.append(text)
        samples = int(len(text.split()) * self.seconds_per_word * TTS_RATE)
        tone = (0.1 * np.sin(np.arange(samples) * 2 * np.pi * 220 / TTS_RATE) * 32767).astype("<i2")
        yield PcmChunk(tone.tobytes(), TTS_RATE)


class StandInPipeline:
    def __init__(self, llm: StandInLlm, tts: StandInTts | None = None) -> None:
        self.stt, self.llm, self.tts = StandInStt(), llm, tts or StandInTts()


class RecordingOutput:
    def __init__(self) -> None:
        self.pushed_s = 0.0
        self.clears = 0
        self.first_push: float | None = None
        self.lock = threading.Lock()

    def push(self, pcm16: bytes, sample_rate_hz: int) -> None:
        with self.lock:
            self.first_push = self.first_push or time.monotonic()
            self.pushed_s += len(pcm16) / 2 / sample_rate_hz

    def clear(self) -> None:
        with self.lock:
            self.clears += 1


@pytest.fixture(scope="module")
def models() -> TurnModels:
    return TurnModels.load()


def speech(data_dir: Path, name: str) -> np.ndarray:
    samples, rate = sf.read(data_dir / f"{name}.wav", dtype="int16")
    assert rate == RATE
    return samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype="int16")


def feed(engine: ConversationEngine, audio: np.ndarray, *, real_time: bool = False) -> None:
    start = time.monotonic()
    for n, at in enumerate(range(0, len(audio), PIECE)):
        engine.push_pcm(audio[at : at + PIECE].astype("<i2").tobytes())
        if real_time:
            lag = start + (n + 1) * PIECE / RATE - time.monotonic()
            if lag > 0:
                time.sleep(lag)


def wait_for(engine: ConversationEngine, kind: type, timeout_s: float = 20.0) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events, _ = engine.events()
        found = [event for event in events if isinstance(event, kind)]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {kind.__name__} within {timeout_s} s; events: {engine.events()[0]}")


def test_one_utterance_gets_one_reply_and_enters_the_history(models: TurnModels, data_dir: Path) -> None:
    llm = StandInLlm("The moon is about three hundred eighty thousand kilometres away.")
    output = RecordingOutput()
    pipeline = StandInPipeline(llm)
    engine = ConversationEngine(pipeline, TurnOptions(), output=output, models=models).start()
    try:
        # JFK pauses for about a second after "Americans": fed faster than real time, the turn ends there before any
        # reply is heard, and his next words reopen it, so the final transcription hears all of it
        feed(engine, np.concatenate([silence(0.5), speech(data_dir, "jfk"), silence(1.5)]))
        done = wait_for(engine, ReplyDone)
        events, _ = engine.events()
        assert sum(isinstance(event, SpeechStarted) for event in events) >= 1
        assert isinstance([e for e in events if isinstance(e, FinalTranscript | ReplyDone)][-2], FinalTranscript)
        assert max(pipeline.stt.calls) > 9.0  # the whole of his 10 s of speech
        assert len(done) == 1 and done[0].text.startswith("The moon is about")
        assert output.pushed_s > 1.0 and output.clears == 0
        timings = done[0].timings
        assert timings.end_of_turn_ms is not None and timings.end_of_speech_to_audio_ms is not None
        assert engine.history() == [
            {"role": "user", "content": "how far away is the moon"},
            {"role": "assistant", "content": done[0].text},
        ]
        assert engine.snapshot().state == "listening"
    finally:
        engine.close()


def test_barge_in_stops_the_reply_and_keeps_only_what_was_heard(models: TurnModels, data_dir: Path) -> None:
    """... and is counted in the engine's metrics with both turns and the first reply's time to audio."""
    reply = " ".join(f"word{n}." if n % 6 == 5 else f"word{n}" for n in range(60))  # about 18 s of speech
    llm = StandInLlm(reply, delay_s=0.1)  # still writing when the user talks over it
    output = RecordingOutput()
    registry = CollectorRegistry()
    engine = ConversationEngine(
        StandInPipeline(llm), TurnOptions(), output=output, models=models, metrics=EngineMetrics(registry)
    ).start()
    try:
        feed(engine, np.concatenate([silence(0.5), speech(data_dir, "ask_not_what_your_country_can_do_for_you")]))
        feed(engine, silence(4.0), real_time=True)  # the reply starts and plays
        assert output.first_push is not None, "the reply did not start playing"
        feed(engine, speech(data_dir, "ask_what_you_can_do_for_your_country"), real_time=True)
        interrupted = wait_for(engine, Interrupted)[0]
        assert output.clears >= 1
        heard_words = len(interrupted.heard.split())
        assert 0 < heard_words < len(reply.split()), interrupted.heard
        assert reply.startswith(interrupted.heard)
        assert any(llm.cancelled), "the LLM stream was not closed"
        assert engine.history()[1] == {"role": "assistant", "content": interrupted.heard + "…"}
        feed(engine, silence(2.0), real_time=True)
        wait_for(engine, ReplyDone)  # the new words get their own reply
        assert engine.snapshot().turns[0].interrupted
        assert registry.get_sample_value("conversation_barge_ins_total") == 1
        turns = registry.get_sample_value("conversation_turns_total") or 0
        assert turns - (registry.get_sample_value("conversation_turns_reopened_total") or 0) == 2
        assert (registry.get_sample_value("conversation_end_of_speech_to_audio_seconds_count") or 0) == 2
    finally:
        engine.close()


def test_speech_that_goes_on_after_a_pause_discards_the_speculative_reply(models: TurnModels, data_dir: Path) -> None:
    llm = StandInLlm("Sure.")
    output = RecordingOutput()
    # the turn model never calls the turn complete here, so the pause is a pause whatever it thinks of the phrase
    turn = replace(TurnSettings(), turn_threshold=1.01, max_silence_ms=1200)
    settings = EngineSettings(speculative=True, partial_interval_ms=0, turn=turn)
    pipeline = StandInPipeline(llm)
    engine = ConversationEngine(pipeline, TurnOptions(), output=output, models=models, settings=settings).start()
    try:
        first = speech(data_dir, "and_so_my_fellow_americans")  # an unfinished phrase
        rest = speech(data_dir, "ask_not_what_your_country_can_do_for_you")
        pause = silence(settings.turn.pause_ms / 1000 + 0.1)
        feed(engine, np.concatenate([silence(0.5), first, pause, rest, silence(1.5)]))
        done = wait_for(engine, ReplyDone)
        events, _ = engine.events()
        assert len(done) == 1
        assert sum(isinstance(event, FinalTranscript) for event in events) == 1
        assert len(pipeline.stt.calls) == 2, "one speculative transcription at the pause, one at the end of the turn"
        assert pipeline.stt.calls[1] > pipeline.stt.calls[0] + 1.0  # the final one heard the words after the pause
        assert len(engine.snapshot().turns) == 1
    finally:
        engine.close()


def test_a_short_backchannel_pauses_the_reply_and_it_resumes(models: TurnModels, data_dir: Path) -> None:
    reply = " ".join(f"word{n}." if n % 6 == 5 else f"word{n}" for n in range(30))  # about 9 s of speech
    llm = StandInLlm(reply)
    output = RecordingOutput()
    engine = ConversationEngine(StandInPipeline(llm), TurnOptions(), output=output, models=models).start()
    try:
        feed(engine, np.concatenate([silence(0.5), speech(data_dir, "ask_not_what_your_country_can_do_for_you")]))
        feed(engine, silence(3.0), real_time=True)
        assert output.first_push is not None, "the reply did not start playing"
        pushed_before = output.pushed_s
        okay = speech(data_dir, "ask_what_you_can_do_for_your_country")[int(0.25 * RATE) : int(0.55 * RATE)]  # "mm-hm"
        feed(engine, np.concatenate([okay, silence(1.0)]), real_time=True)
        assert output.clears == 1
        assert output.pushed_s > pushed_before  # the rest of the reply was queued again
        done = wait_for(engine, ReplyDone, timeout_s=30)
        events, _ = engine.events()
        assert not any(isinstance(event, Interrupted) for event in events)
        assert done[0].text == reply and not llm.cancelled[-1]
    finally:
        engine.close()


def test_partial_transcripts_show_only_words_two_hypotheses_agree_on() -> None:
    partial = StablePrefix()
    assert partial.update("ask not") == ("", "ask not")
    assert partial.update("Ask not what your") == ("Ask not", "what your")
    assert partial.update("ask not what you can") == ("ask not what", "you can")
    assert partial.update("ask knot what you can do") == ("ask not what", "you can do")  # never shrinks
    partial.reset()
    assert partial.text() == ("", "")


PUSH_TO_TALK = EngineSettings(detect_turns=False, respond=False, speculative=False, partial_interval_ms=0)


def test_push_to_talk_transcribes_on_commit_and_answers_when_asked(models: TurnModels, data_dir: Path) -> None:
    """``detect_turns`` off (a Realtime client's ``turn_detection: null``): no VAD; ``commit`` ends the turn and
    transcribes all audio since the last commit, with no reply until ``respond``; the reply then enters the history
    after the user's words."""
    llm = StandInLlm("It is far.")
    output = RecordingOutput()
    engine = ConversationEngine(
        StandInPipeline(llm), TurnOptions(), output=output, models=models, settings=PUSH_TO_TALK
    ).start()
    try:
        feed(engine, np.concatenate([speech(data_dir, "jfk"), silence(0.5)]))
        engine.commit()
        assert wait_for(engine, FinalTranscript)[0].text == "how far away is the moon"
        time.sleep(0.3)
        events, _ = engine.events()
        assert [type(e) for e in events] == [TurnEnded, FinalTranscript]  # no VAD events, no reply
        assert engine.pipeline.stt.calls[0] == pytest.approx(11.5, abs=0.05)  # type: ignore[attr-defined]
        assert not llm.requests
        engine.respond()
        done = wait_for(engine, ReplyDone)[0]
        assert done.text == "It is far." and done.transcript == ""
        assert llm.requests[0][-1] == {"role": "user", "content": "how far away is the moon"}
        assert engine.history() == [
            {"role": "user", "content": "how far away is the moon"},
            {"role": "assistant", "content": "It is far."},
        ]
        engine.commit()  # nothing since the last commit: nothing happens
        time.sleep(0.2)
        assert sum(isinstance(e, TurnEnded) for e in engine.events()[0]) == 1
    finally:
        engine.close()


def test_messages_added_by_the_transport_are_answered_and_a_reply_can_be_cut(models: TurnModels) -> None:
    """``add_message`` then ``respond`` answers from the history; ``cancel_reply`` stops a reply in progress like a
    barge-in (Interrupted, LLM cancelled); ``truncate`` cuts the latest reply in the history to what was heard."""
    llm = StandInLlm("one two three four five six seven eight nine ten", delay_s=0.2)
    engine = ConversationEngine(
        StandInPipeline(llm, StandInTts(seconds_per_word=0.5)),
        TurnOptions(),
        output=RecordingOutput(),
        models=models,
        settings=PUSH_TO_TALK,
    ).start()
    try:
        engine.add_message("user", "Count to ten.")
        engine.respond()
        wait_for(engine, ReplyStarted)
        time.sleep(0.2)
        engine.cancel_reply()
        interrupted = wait_for(engine, Interrupted)[0]
        time.sleep(0.3)  # the stand-in notices the closed request at its next word
        assert llm.cancelled[0]
        assert engine.history()[0] == {"role": "user", "content": "Count to ten."}
        assert engine.history()[1]["content"] == f"{interrupted.heard}…"
        engine.add_message("user", "Again, please.")
        engine.respond()
        wait_for(engine, ReplyDone, timeout_s=30)
        engine.truncate(1.0)  # the listener heard only the first second: two words of half a second each
        time.sleep(0.2)
        assert engine.history()[-1] == {"role": "assistant", "content": "one two…"}
    finally:
        engine.close()
