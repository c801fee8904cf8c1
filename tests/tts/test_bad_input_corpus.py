"""Bad and awkward input, case by case, with the real voice: a clear 4xx in OpenAI's shape for what cannot be
spoken, and for awkward text (markup, emoji, numbers, currency, abbreviations, control characters) speech as
long as the same words written out plainly, never a crash and never silence where words were expected. The
service stays ready after each case.

Spoken length is the check (this venv has no speech recogniser): each awkward text is compared with a plain
spelling of what should be heard; Piper's durations vary by a few percent between renderings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import assert_openai_error, decode, rms

SPEECH = "/v1/audio/speech"
GOOD = {"model": "tts-1", "input": "Hello there.", "voice": "alloy"}


@dataclass(frozen=True)
class Refusal:
    """A request that must be refused: the status, OpenAI error code and the field at fault."""

    status: int
    code: str
    param: str | None
    body: Any = None
    raw: bytes | None = None
    """Sent as is (with a JSON content type) instead of ``body``."""


REFUSALS: dict[str, Refusal] = {
    "empty-input": Refusal(400, "empty_input", "input", {**GOOD, "input": ""}),
    "whitespace-only-input": Refusal(400, "empty_input", "input", {**GOOD, "input": " \n\t "}),
    "input-over-the-limit": Refusal(413, "input_too_large", "input", {**GOOD, "input": "word " * 820}),
    "unknown-voice": Refusal(400, "unknown_voice", "voice", {**GOOD, "voice": "bob"}),
    "voice-null": Refusal(400, "invalid_request", "voice", {**GOOD, "voice": None}),
    "unknown-format": Refusal(400, "invalid_request", "response_format", {**GOOD, "response_format": "aac"}),
    "speed-below-0.25": Refusal(400, "invalid_request", "speed", {**GOOD, "speed": 0.1}),
    "speed-above-4": Refusal(400, "invalid_request", "speed", {**GOOD, "speed": 10}),
    "speed-zero": Refusal(400, "invalid_request", "speed", {**GOOD, "speed": 0}),
    "speed-negative": Refusal(400, "invalid_request", "speed", {**GOOD, "speed": -1}),
    "speed-as-a-word": Refusal(400, "invalid_request", "speed", {**GOOD, "speed": "fast"}),
    "speed-as-a-numeric-string": Refusal(400, "invalid_request", "speed", {**GOOD, "speed": "2"}),
    "input-missing": Refusal(400, "invalid_request", "input", {"model": "tts-1", "voice": "alloy"}),
    "input-null": Refusal(400, "invalid_request", "input", {**GOOD, "input": None}),
    "input-a-number": Refusal(400, "invalid_request", "input", {**GOOD, "input": 42}),
    "input-a-list": Refusal(400, "invalid_request", "input", {**GOOD, "input": ["Hello", "there"]}),
    "stream-format-sse": Refusal(400, "invalid_request", "stream_format", {**GOOD, "stream_format": "sse"}),
    "instructions-too-long": Refusal(400, "invalid_request", "instructions", {**GOOD, "instructions": "x" * 4097}),
    "body-a-json-array": Refusal(400, "invalid_request", None, ["Hello there."]),
    "body-not-json": Refusal(400, "invalid_request", None, raw=b'{"input": "Hello there.'),
    "body-empty": Refusal(400, "invalid_request", None, raw=b""),
}


@dataclass(frozen=True)
class Awkward:
    """Text a voice agent may be handed, and the plain words a listener should hear (empty: nothing to say)."""

    text: str
    heard: str


AWKWARD: dict[str, Awkward] = {
    # markup: tags are not read out ("less than speak greater than"), entities are decoded
    "ssml-speak-tags": Awkward("<speak>Hello there, my friend.</speak>", "Hello there, my friend."),
    "ssml-with-attributes": Awkward(
        '<speak><prosody rate="slow">Hello there</prosody><break time="500ms"/> friend.</speak>', "Hello there friend."
    ),
    "html-tags": Awkward("<p>Hello <b>there</b>, my <i>friend</i>.</p>", "Hello there, my friend."),
    "xml-declaration-and-comment": Awkward(
        '<?xml version="1.0"?><!-- greeting --><speak>Good morning.</speak>', "Good morning."
    ),
    "html-entities": Awkward("Fish &amp; chips, &quot;please&quot;.", "Fish and chips, please."),
    "comparison-signs-are-not-tags": Awkward("Is 3 < 5 and 7 > 2?", "Is 3 < 5 and 7 > 2?"),
    # emoji are skipped, not read by name ("grinning face")
    "emoji-inside-text": Awkward("I love pizza 🍕 so much 😀!", "I love pizza so much!"),
    "emoji-with-skin-tone-and-joiner": Awkward("Great work 👍🏽 team 👨‍👩‍👧!", "Great work team!"),
    "flags-and-keycaps": Awkward("We ship to 🇫🇷 in 1️⃣ day.", "We ship to in one day."),
    # numbers, currency and abbreviations are read as words (by espeak-ng)
    "number-with-thousands-comma": Awkward(
        "It costs 1,234 points.", "It costs one thousand two hundred thirty four points."
    ),
    "decimal-number": Awkward("The value is 3.5 today.", "The value is three point five today."),
    "year": Awkward("In 2026 we travel.", "In twenty twenty six we travel."),
    "dollars": Awkward("It costs $20.", "It costs twenty dollars."),
    "dollars-and-cents": Awkward("It costs $4.99.", "It costs four dollars ninety nine."),
    "euros": Awkward("It costs €50.", "It costs fifty euros."),
    "pounds": Awkward("It costs £50.", "It costs fifty pounds."),
    "percent": Awkward("About 45% agree.", "About forty five percent agree."),
    "time-of-day": Awkward("Meet at 10:30 am.", "Meet at ten thirty a m."),
    "doctor": Awkward("Dr. Smith is here.", "Doctor Smith is here."),
    "for-example": Awkward("Fruit, e.g. apples, is good.", "Fruit, for example apples, is good."),
    "et-cetera": Awkward("Apples, pears, etc. are fruit.", "Apples, pears, etcetera are fruit."),
    # characters that are not text
    "nul-and-bell-characters": Awkward("Hello\x00 there\x07 friend.", "Hello there friend."),
    "zero-width-and-byte-order-marks": Awkward("Hello\u200bthere\ufeff friend.", "Hello there friend."),
    "bidirectional-controls": Awkward("Hello \u202athere\u202c friend.", "Hello there friend."),
    "lone-surrogate": Awkward("Hello \ud800there friend.", "Hello there friend."),
    "markdown": Awkward("# Title\n**Bold** and _italic_ words.", "Title. Bold and italic words."),
    # nothing to say: an empty recording, not an error and not a made-up sound
    "emoji-only": Awkward("👍🎉", ""),
    "tags-only": Awkward("<speak><break time='1s'/></speak>", ""),
    "punctuation-only": Awkward("... !!! ???", ""),
}


def speak(client: TestClient, text: str) -> tuple[float, float]:
    """(seconds of audio, RMS) of ``text`` spoken as wav; asserts a 200."""
    # json.dumps escapes what httpx's encoder refuses (a lone surrogate is valid JSON text: "\ud800")
    body = json.dumps({**GOOD, "input": text})
    response = client.post(SPEECH, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    samples, rate_hz = decode(response.content)
    return samples.size / rate_hz, rms(samples)


def assert_still_ready(client: TestClient) -> None:
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_what_cannot_be_spoken_is_refused_in_openai_shape(client: TestClient, case: Refusal) -> None:
    if case.raw is not None:
        response = client.post(SPEECH, content=case.raw, headers={"content-type": "application/json"})
    else:
        response = client.post(SPEECH, json=case.body)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")  # a status, not a cut audio stream
    assert_openai_error(response.json(), code=case.code, param=case.param)
    assert_still_ready(client)


@pytest.mark.parametrize("case", AWKWARD.values(), ids=AWKWARD.keys())
def test_awkward_text_is_spoken_like_its_plain_words(client: TestClient, case: Awkward) -> None:
    duration_s, loudness = speak(client, case.text)
    if not case.heard:
        assert duration_s == 0.0
    else:
        plain_s, _ = speak(client, case.heard)
        assert loudness > 0.02  # speech, not silence or hiss
        assert 0.7 * plain_s <= duration_s <= 1.45 * plain_s, (duration_s, plain_s)
    assert_still_ready(client)


def test_the_corpus_counts() -> None:
    assert (len(REFUSALS), len(AWKWARD)) == (21, 29)
