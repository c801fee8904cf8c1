"""Partial transcripts that do not flicker: show only the words two successive hypotheses agree on.

Each partial transcription of the turn so far is a new hypothesis of the whole turn; its last words change as
more audio arrives. The stable part is the longest common prefix (by words, ignoring case and punctuation) of the
last two hypotheses, and it only grows within a turn (the "local agreement" policy of streaming Whisper systems).
"""

from __future__ import annotations

import re

_NORMALISE = re.compile(r"[^\w']+")


def _key(word: str) -> str:
    return _NORMALISE.sub("", word.lower())


class StablePrefix:
    """Feed hypotheses of the same turn in order; ``stable`` never shrinks until ``reset()``."""

    def __init__(self) -> None:
        self._previous: list[str] = []
        self._stable: list[str] = []
        self._latest: list[str] = []

    def update(self, hypothesis: str) -> tuple[str, str]:
        """Take the newest hypothesis; return (stable words, the rest of the newest hypothesis)."""
        words = hypothesis.split()
        agreed = 0
        for old, new in zip(self._previous, words, strict=False):
            if _key(old) != _key(new):
                break
            agreed += 1
        if agreed > len(self._stable):
            self._stable = words[:agreed]
        self._previous = self._latest = words
        return self.text()

    def text(self) -> tuple[str, str]:
        """(stable, unstable): the agreed words and what the newest hypothesis adds after them."""
        rest = self._latest[len(self._stable) :]
        return " ".join(self._stable), " ".join(rest)

    def reset(self) -> None:
        self._previous, self._stable, self._latest = [], [], []
