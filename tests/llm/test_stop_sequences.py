"""Stop sequences on a token stream (pure)."""

from __future__ import annotations

from llm_service.stop_sequences import StopSequenceFilter


def run(pieces: list[str], stops: list[str]) -> tuple[list[str], bool]:
    stop_filter = StopSequenceFilter(stops)
    released = [stop_filter.feed(piece) for piece in pieces]
    released.append(stop_filter.flush())
    return [piece for piece in released if piece], stop_filter.stopped


def test_text_without_stops_passes_through_unchanged() -> None:
    released, stopped = run(["Hello", " world", "."], [])
    assert released == ["Hello", " world", "."]
    assert not stopped


def test_stop_split_across_pieces_is_cut_and_not_returned() -> None:
    released, stopped = run(["The answer", " is 4", "2.\nUs", "er: more"], ["\nUser:"])
    assert "".join(released) == "The answer is 42."
    assert stopped


def test_a_possible_stop_prefix_is_held_back_then_released() -> None:
    stop_filter = StopSequenceFilter(["END"])
    assert stop_filter.feed("to the EN") == "to the "
    assert stop_filter.feed("D") == ""
    assert stop_filter.stopped
    other = StopSequenceFilter(["END"])
    assert other.feed("to the EN") == "to the "
    assert other.feed("ding") == "ENding"
    assert not other.stopped


def test_the_earliest_of_several_stops_wins() -> None:
    released, stopped = run(["one, two; three"], [";", ","])
    assert released == ["one"]
    assert stopped


def test_unfinished_prefix_is_flushed_at_the_end() -> None:
    released, stopped = run(["see you la", "te"], ["later!"])
    assert "".join(released) == "see you late"
    assert not stopped


def test_nothing_is_released_after_a_stop() -> None:
    stop_filter = StopSequenceFilter(["."])
    assert stop_filter.feed("Done. More") == "Done"
    assert stop_filter.feed(" text") == ""
    assert stop_filter.flush() == ""
