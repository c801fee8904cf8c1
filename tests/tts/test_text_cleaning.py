"""What reaches the voice: markup, emoji and invisible characters removed, words and numbers kept."""

from __future__ import annotations

import pytest

from tts_service.sentences import clean_for_speech, split_for_speech


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("<speak>Hello there.</speak>", " Hello there. "),
        ('<prosody rate="slow">Slow</prosody> words<break time="1s"/>.', " Slow  words ."),
        ("<?xml version='1.0'?><!-- a comment --><p>Hi</p>", "   Hi "),
        ("Fish &amp; chips &lt;3", "Fish & chips <3"),
        ("Is 3 < 5 and 7 > 2?", "Is 3 < 5 and 7 > 2?"),
        ("Pizza 🍕 time 😀!", "Pizza  time !"),
        ("Thumbs 👍🏽 family 👨‍👩‍👧 up", "Thumbs  family  up"),
        ("Hello\x00 there\x07\tfriend\r\n", "Hello  there  friend \n"),
        ("Zero\u200bwidth\ufeff and \u202ereversed\u202c", "Zero width and reversed"),
        ("A lone \ud800 surrogate", "A lone  surrogate"),
        ("It is 25°C, $4.99, €50, 45%, Dr. Smith, e.g. now", "It is 25°C, $4.99, €50, 45%, Dr. Smith, e.g. now"),
    ],
)
def test_clean_for_speech(text: str, spoken: str) -> None:
    assert clean_for_speech(text) == spoken


@pytest.mark.parametrize("text", ["👍🎉", "<speak></speak>", "... !!! ???", "-- * --", "\x00\x01"])
def test_text_with_nothing_to_say_gives_no_pieces(text: str) -> None:
    assert split_for_speech(text, 300) == []


def test_a_sentence_of_punctuation_between_words_is_dropped_alone() -> None:
    assert split_for_speech("Hello there. !!! Goodbye now.", 300) == ["Hello there.", "Goodbye now."]
