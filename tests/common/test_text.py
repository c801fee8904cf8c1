"""Sentence splitting for TTS input and for the LLM token stream."""

from __future__ import annotations

import pytest

from service_common.text import SentenceBuffer, split_sentences


def test_splits_at_sentence_ends_and_keeps_punctuation() -> None:
    text = "Hello there! How are you today? I am fine. Thanks…  Bye"
    assert split_sentences(text) == ["Hello there!", "How are you today?", "I am fine.", "Thanks…", "Bye"]


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith measured 3.5 kg of flour.",
        "Call Mr. J. Smith at noon.",
        "Bring fruit, e.g. apples, to the party.",
    ],
)
def test_abbreviations_initials_and_decimals_do_not_end_a_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


def test_line_breaks_end_sentences_and_blank_text_gives_nothing() -> None:
    assert split_sentences("First line\nSecond line") == ["First line", "Second line"]
    assert split_sentences("   \n ") == []


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert split_sentences('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_stream_releases_a_sentence_only_once_the_following_space_arrives() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("It costs 3.") == []  # could still be 3.5
    assert buffer.feed("5 euros") == []
    assert buffer.feed(". Cheap") == ["It costs 3.5 euros."]
    assert buffer.feed("!") == []
    assert buffer.feed(" ") == ["Cheap!"]
    assert buffer.feed("See you") == []
    assert buffer.flush() == "See you"
    assert buffer.flush() is None


def test_stream_token_by_token_matches_whole_text_split() -> None:
    text = "Sure. The capital of France is Paris! It has about 2.1 million people. Anything else?"
    buffer = SentenceBuffer()
    streamed: list[str] = []
    for index in range(0, len(text), 3):
        streamed += buffer.feed(text[index : index + 3])
    tail = buffer.flush()
    assert streamed + ([tail] if tail else []) == split_sentences(text)


def test_first_clause_is_released_early_only_once_and_only_when_long_enough() -> None:
    buffer = SentenceBuffer(first_clause_min_words=4)
    assert buffer.feed("Well, ") == []  # one word: too short to speak on its own
    assert buffer.feed("the capital of France, as you may know, ") == ["Well, the capital of France,"]
    assert buffer.feed("is Paris. It is, of course, lovely. ") == [
        "as you may know, is Paris.",
        "It is, of course, lovely.",
    ]
    assert buffer.flush() is None


def test_without_first_clause_option_commas_never_split() -> None:
    buffer = SentenceBuffer()
    assert buffer.feed("Well, the capital of France, as you may know, ") == []
    assert buffer.flush() == "Well, the capital of France, as you may know,"


def test_first_phrase_is_released_before_a_word_that_opens_a_new_phrase() -> None:
    buffer = SentenceBuffer(first_clause_min_words=4)
    assert buffer.feed("This is a classic idiom that") == []  # "that" may still grow into "thatched"
    assert buffer.feed(" has been passed down ") == ["This is a classic idiom"]
    assert buffer.feed("through generations. Because of that, ") == ["that has been passed down through generations."]
    assert buffer.flush() == "Because of that,"


def test_phrase_words_too_early_or_joining_nouns_do_not_split() -> None:
    buffer = SentenceBuffer(first_clause_min_words=4)
    # "that" after two words is too early; "and" never splits; "so" inside "also"/"Sorry" is not a word of its own
    assert buffer.feed("I think that salt and pepper also make Sorrento dishes better. ") == [
        "I think that salt and pepper also make Sorrento dishes better."
    ]


def test_the_earliest_long_enough_break_wins_whatever_its_kind() -> None:
    buffer = SentenceBuffer(first_clause_min_words=4)
    assert buffer.feed("The city of Paris, which is lovely, ") == ["The city of Paris,"]
    buffer = SentenceBuffer(first_clause_min_words=4)
    assert buffer.feed("The old city of Paris which is lovely, ") == ["The old city of Paris"]
