"""Streaming VAD, the turn model and the turn detector on recorded speech (no services, a few seconds)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voice_agent.engine.transcript import StablePrefix
from voice_agent.engine.turns import (
    SmartTurn,
    TurnDetector,
    TurnEnd,
    TurnSettings,
    VadPause,
    VadResume,
    VadSpeechStart,
)
from voice_agent.engine.vad import FRAME_SAMPLES, SileroVad

RATE = 16_000


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn()


def clip(data_dir: Path, name: str) -> np.ndarray:
    samples, rate = sf.read(data_dir / f"{name}.wav", dtype="int16")
    assert rate == RATE
    return samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def run(detector: TurnDetector, audio: np.ndarray, **push: float) -> list[object]:
    events: list[object] = []
    for at in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        for event in detector.push(audio[at : at + FRAME_SAMPLES], **push):
            events.append(event)
            if isinstance(event, TurnEnd):
                detector.reset()
    return events


def test_vad_hears_speech_and_not_silence(data_dir: Path) -> None:
    vad = SileroVad()
    speech = clip(data_dir, "ask_not_what_your_country_can_do_for_you")
    probabilities = [vad.probability(speech[i : i + FRAME_SAMPLES]) for i in range(0, len(speech) - 511, 512)]
    vad.reset()
    quiet = [vad.probability(frame) for frame in silence(1.0)[: 31 * 512].reshape(-1, 512)]
    assert np.mean(np.array(probabilities) > 0.5) > 0.6
    assert max(quiet) < 0.1
    with pytest.raises(ValueError, match="512 samples"):
        vad.probability(np.zeros(480, dtype=np.int16))


def test_turn_model_tells_a_finished_sentence_from_a_cut_one(data_dir: Path, smart_turn: SmartTurn) -> None:
    finished = clip(data_dir, "ask_what_you_can_do_for_your_country").astype(np.float32) / 32768
    cut = clip(data_dir, "jfk")[: int(1.5 * RATE)].astype(np.float32) / 32768  # "And so my fellow"
    complete, unfinished = smart_turn.probability_complete(finished), smart_turn.probability_complete(cut)
    assert 0.0 <= unfinished < 0.3 < 0.7 < complete <= 1.0


def test_a_turn_ends_soon_after_the_speech(data_dir: Path, smart_turn: SmartTurn) -> None:
    settings = TurnSettings()
    detector = TurnDetector(settings, SileroVad(), smart_turn)
    speech = clip(data_dir, "ask_what_you_can_do_for_your_country")
    events = run(detector, np.concatenate([silence(0.5), speech, silence(2.0)]))
    assert isinstance(events[0], VadSpeechStart) and 0.3 < events[0].audio_s < 1.0
    ends = [event for event in events if isinstance(event, TurnEnd)]
    assert len(ends) == 1
    assert ends[0].audio_s - ends[0].speech_end_s <= settings.max_silence_ms / 1000 + 0.05
    assert ends[0].speech_end_s < 0.5 + len(speech) / RATE + 0.1


def test_a_pause_shorter_than_the_silence_limit_does_not_end_an_unfinished_turn(
    data_dir: Path, smart_turn: SmartTurn
) -> None:
    # a turn model that never calls the turn finished leaves the decision to the silence limit
    settings = replace(TurnSettings(), turn_threshold=1.01, max_silence_ms=2000)
    detector = TurnDetector(settings, SileroVad(), smart_turn)
    first, rest = (
        clip(data_dir, "and_so_my_fellow_americans"),
        clip(data_dir, "ask_not_what_your_country_can_do_for_you"),
    )
    events = run(detector, np.concatenate([silence(0.5), first, silence(0.6), rest, silence(2.5)]))
    kinds = [type(event) for event in events]
    assert VadPause in kinds and VadResume in kinds
    assert kinds.count(TurnEnd) == 1 and kinds[-1] is TurnEnd
    assert events[-1].reason == "silence"  # type: ignore[attr-defined]


def test_a_click_starts_no_turn_and_a_raised_threshold_ignores_speech(data_dir: Path, smart_turn: SmartTurn) -> None:
    detector = TurnDetector(TurnSettings(), SileroVad(), smart_turn)
    rng = np.random.default_rng(3)
    click = (rng.standard_normal(int(0.03 * RATE)) * 12000).astype(np.int16)
    assert run(detector, np.concatenate([silence(0.5), click, silence(1.0)])) == []
    speech = clip(data_dir, "ask_what_you_can_do_for_your_country")
    assert run(TurnDetector(TurnSettings(), SileroVad(), smart_turn), speech, speech_threshold=1.01) == []


def test_partial_transcripts_show_only_words_two_hypotheses_agree_on() -> None:
    partial = StablePrefix()
    assert partial.update("ask not") == ("", "ask not")
    assert partial.update("Ask not what your") == ("Ask not", "what your")
    assert partial.update("ask not what you can") == ("ask not what", "you can")
    assert partial.update("ask knot what you can do") == ("ask not what", "you can do")  # never shrinks
    partial.reset()
    assert partial.text() == ("", "")
