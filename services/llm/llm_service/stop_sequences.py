"""Stop sequences on a token stream: text is released only once it cannot be the start of a stop sequence."""

from __future__ import annotations

from collections.abc import Iterable


class StopSequenceFilter:
    """Feed decoded text pieces; get back what is safe to send.

    A piece that might begin a stop sequence (``"\\n\\nUs"`` while waiting for ``"\\n\\nUser:"``) is held
    back until the next pieces decide. Once a stop sequence appears, ``stopped`` turns true and only the
    text before it is returned; the stop sequence itself is never returned.
    """

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add ``text``; return the part that can be sent now (possibly empty)."""
        if self.stopped:
            return ""
        self._pending += text
        found = [index for index in (self._pending.find(stop) for stop in self._stops) if index >= 0]
        if found:
            released, self._pending, self.stopped = self._pending[: min(found)], "", True
            return released
        hold = self._longest_stop_prefix_at_end()
        cut = len(self._pending) - hold
        released, self._pending = self._pending[:cut], self._pending[cut:]
        return released

    def flush(self) -> str:
        """At the end of generation: the held-back text (it never became a stop sequence)."""
        released, self._pending = self._pending, ""
        return "" if self.stopped else released

    def _longest_stop_prefix_at_end(self) -> int:
        longest = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(self._pending)), longest, -1):
                if self._pending.endswith(stop[:length]):
                    longest = length
                    break
        return longest
