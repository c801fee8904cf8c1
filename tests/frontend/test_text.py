"""The splitter of the LLM's token stream: sentence ends, line breaks and the reply's first phrase."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from voice_agent.text import (
    FIRST_PHRASE_MAX_WORDS,
    FIRST_PHRASE_MIN_WORDS,
    SentenceBuffer,
    count_words,
    split_sentences,
)

REPLIES = Path(__file__).resolve().parents[1] / "data" / "replies" / "replies.json"


def stream(deltas: list[str], buffer: SentenceBuffer) -> list[str]:
    pieces = [piece for delta in deltas for piece in buffer.feed(delta)]
    tail = buffer.flush()
    return pieces + ([tail] if tail else [])


def test_sentences_end_at_terminal_punctuation_not_at_abbreviations_or_numbers() -> None:
    text = "Dr. Smith paid 3.50 dollars, e.g. for tea. He said hi! Is it U.S. made? Yes."
    assert split_sentences(text) == [
        "Dr. Smith paid 3.50 dollars, e.g. for tea.",
        "He said hi!",
        "Is it U.S. made?",
        "Yes.",
    ]


def test_other_scripts_and_languages() -> None:
    assert split_sentences("你好。今天天气很好！我们走吧") == ["你好。", "今天天气很好！", "我们走吧"]
    assert split_sentences("Das ist z.B. gut. Ja.", "de") == ["Das ist z.B. gut.", "Ja."]
    assert split_sentences("¿Qué tal? Bien.", "es") == ["¿Qué tal?", "Bien."]


def test_line_breaks_end_list_items_without_full_stops() -> None:
    assert split_sentences("You need:\n- milk\n- eggs\n\nEnjoy!") == ["You need:", "- milk", "- eggs", "Enjoy!"]


def test_a_token_stream_splits_as_the_whole_text_and_waits_for_what_follows_a_full_stop() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("It costs 3.") == []  # "3." may be the start of "3.5"
    assert buffer.feed("5 euros. Then") == ["It costs 3.5 euros."]
    assert buffer.feed(" we go") == []
    assert buffer.flush() == "Then we go"
    text = "Hello there! How are you today? I am fine.\nThanks… Bye"
    deltas = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert stream(deltas, SentenceBuffer()) == split_sentences(text)


def test_the_first_phrase_is_released_once_at_a_clause_mark_with_enough_words() -> None:
    buffer = SentenceBuffer(first_phrase_min_words=3)
    assert buffer.feed("Yes, of") == []  # one word before the comma: too short
    assert buffer.feed(" course, the sea") == ["Yes, of course,"]
    assert buffer.feed(" is deep, very deep, and") == []  # only the first phrase is cut early
    assert buffer.feed(" cold. Fish") == ["the sea is deep, very deep, and cold."]
    assert buffer.flush() == "Fish"


def test_the_first_phrase_rule_needs_no_word_list_of_any_language() -> None:
    deltas = ["Das Meer ist tief", ", kalt und", " dunkel. Ja."]
    assert stream(deltas, SentenceBuffer("de", first_phrase_min_words=2)) == [
        "Das Meer ist tief,",
        "kalt und dunkel.",
        "Ja.",
    ]
    # a phrase word such as "that" is not a reason to cut: a short sentence without a clause mark stays whole
    deltas = ["This idiom", " that lasts. Yes."]
    assert stream(deltas, SentenceBuffer(first_phrase_min_words=2)) == ["This idiom that lasts.", "Yes."]


def test_a_long_first_sentence_without_a_clause_mark_is_cut_after_the_most_words() -> None:
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"]
    buffer = SentenceBuffer(first_phrase_min_words=2)
    released = [piece for word in words for piece in buffer.feed(word + " ")]
    assert released == [" ".join(words[:FIRST_PHRASE_MAX_WORDS])]  # once the next word has begun, not before
    assert buffer.feed("end.") == []  # only the first phrase is cut by length
    assert buffer.flush() == " ".join([*words[FIRST_PHRASE_MAX_WORDS:], "end."])
    assert stream(["one two three four five six seven eight nine."], SentenceBuffer()) == [
        "one two three four five six seven eight nine."
    ]  # the rule is off without first_phrase_min_words
    assert count_words("Well — it's 3 o'clock, isn't it?") == 6


def first_piece(deltas: list[str], min_words: int) -> str:
    buffer = SentenceBuffer(first_phrase_min_words=min_words)
    for delta in deltas:
        if pieces := buffer.feed(delta):
            return pieces[0]
    return buffer.flush() or ""


@pytest.mark.parametrize("min_words", [FIRST_PHRASE_MIN_WORDS])
def test_first_phrase_rule_on_the_reply_set(min_words: int) -> None:
    """36 streamed replies of the embedded LLM: the first piece is shorter, never a fragment, and loses nothing."""
    replies = json.loads(REPLIES.read_text())["replies"]
    assert len(replies) >= 30
    table = {}
    for n in (0, 1, 2, 3, 4, 6, 8):
        words = [count_words(first_piece(reply["deltas"], n)) for reply in replies]
        table[n] = (statistics.median(words), statistics.mean(words))
        print(f"min words {n}: first piece median {table[n][0]} mean {table[n][1]:.1f} words")
    assert table[min_words][1] < 0.75 * table[0][1], "the first phrase should cut the first piece by a quarter"
    for reply in replies:
        buffer = SentenceBuffer(first_phrase_min_words=min_words)
        pieces = stream(reply["deltas"], buffer)
        assert " ".join(pieces).split() == reply["reply"].split(), "the split lost or changed text"
        first, whole_sentence = pieces[0], first_piece(reply["deltas"], 0)
        assert count_words(first) <= FIRST_PHRASE_MAX_WORDS + 1, first  # +1: a sentence may end on that delta
        if first != whole_sentence:  # cut early: at a clause mark after enough words, or after the most words
            at_mark = first[-1] in ",;:—–，、；：" and count_words(first) >= min_words
            assert at_mark or count_words(first) == FIRST_PHRASE_MAX_WORDS, first
