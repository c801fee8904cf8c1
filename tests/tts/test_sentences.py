"""Splitting text into the pieces Piper speaks one model call at a time (no model needed)."""

from __future__ import annotations

import pytest

from tts_service.sentences import clean_for_speech, split_for_speech


def test_sentences_split_at_real_ends_not_at_abbreviations() -> None:
    assert split_for_speech("Dr. Smith went to St. Louis. Then he said: hi! What now? Okay", 300) == [
        "Dr. Smith went to St. Louis.",
        "Then he said: hi!",
        "What now?",
        "Okay",
    ]


@pytest.mark.parametrize(
    "text",
    ["Dr. Smith measured 3.5 kg of flour.", "Call Mr. J. Smith at noon.", "Bring fruit, e.g. apples, to the party."],
)
def test_abbreviations_initials_and_decimals_do_not_end_a_sentence(text: str) -> None:
    assert split_for_speech(text, 300) == [text]


def test_closing_quotes_stay_with_their_sentence_and_other_scripts_split_too() -> None:
    assert split_for_speech('He said "stop." Then he left.', 300) == ['He said "stop."', "Then he left."]
    assert split_for_speech("你好。今天天气很好！", 300) == ["你好。", "今天天气很好！"]


def test_line_breaks_end_sentences() -> None:
    assert split_for_speech("First line\nSecond line", 300) == ["First line", "Second line"]


@pytest.mark.parametrize("max_chars", [40, 100, 300])
def test_long_sentences_are_cut_at_clauses_within_the_bound(max_chars: int) -> None:
    text = "word after word goes on, and on " * 40
    pieces = split_for_speech(text, max_chars)
    assert all(len(piece) <= max_chars for piece in pieces)
    assert " ".join(pieces).split() == text.split()
    if max_chars >= 100:
        assert all(piece.endswith((",", "on")) for piece in pieces)


def test_text_without_any_space_is_cut_hard() -> None:
    assert [len(piece) for piece in split_for_speech("x" * 250, 100)] == [100, 100, 50]


def test_markdown_markers_are_dropped_but_their_words_kept() -> None:
    cleaned = clean_for_speech("# Title\nThis is **bold**, _it_, `code` and ***both***.\n- item one\n* item two")
    assert cleaned == "Title\nThis is bold, it, code and both.\nitem one\nitem two"


def test_arithmetic_and_identifiers_are_left_alone() -> None:
    assert clean_for_speech("2*3*4 equals my_var_name") == "2*3*4 equals my_var_name"


def test_blank_text_gives_no_pieces() -> None:
    assert split_for_speech("  \n ", 300) == []
