"""The LLM's token stream cut into what TTS speaks: the reply's first phrase early, then whole sentences.

Speech engines emit audio per sentence (Piper needs about 25-30 ms per word before the first sound), so the
time to first audio grows with the length of the first piece sent to TTS. Two rules decide the cuts:

- **Sentence ends** come from sentencex (Wikimedia's rule-based segmenter: terminators of many scripts such as
  ``. ! ? 。 ！ ？ । ؟``, each language's abbreviations, numbers such as ``3.5``; no model, no data to download),
  plus line breaks, which end list items that carry no full stop.
- **The first phrase**: until something has been released, the reply is also cut at the first clause mark
  (``, ; : — –`` and ``， 、 ； ：``) followed by a space, once the text before it has at least
  ``first_phrase_min_words`` words, and, when no such mark has come by then, after ``FIRST_PHRASE_MAX_WORDS``
  words. Punctuation and length only, no word lists: it works the same in any language whose words are separated
  by spaces (in scripts written without spaces a phrase counts as one word, so only sentence ends cut there).
  Both numbers were chosen on 36 replies of the embedded LLM to varied questions (``tests/data/replies``): see
  ``FIRST_PHRASE_MIN_WORDS`` and ``FIRST_PHRASE_MAX_WORDS``.

sentencex segments whole texts; a token stream is handled by segmenting the unreleased text again at every delta
(about 3 microseconds: it is compiled code) and releasing every segment but the last, which may still grow
(``"3."`` followed by ``"5"`` is not cut). Weighed and left: pysbd (the same cuts on our cases, but unreleased
since 2021 and about 4 ms a call), stream2sentence (made for token streams, but its quick first fragment relies on
English word lists and it pulls from the stream itself, where the pipeline pushes deltas), nltk punkt (needs a data
download).
"""

from __future__ import annotations

import re

import sentencex

FIRST_PHRASE_MIN_WORDS = 2
"""Fewest words before the clause mark that ends the first phrase.

Chosen on ``tests/data/replies`` (36 replies of the embedded SmolLM2-135M to varied questions; its README has the
table): with 1 the first piece can be a label ("A:"); from 2 on no cut leaves a one-word fragment, and each word
more only lengthens the first piece (mean 7.5 words at 2, 7.9 at 4, 11.4 for the whole first sentence).
"""

FIRST_PHRASE_MAX_WORDS = 8
"""Most words the first phrase waits for when no clause mark comes: a first sentence without a comma is cut after
this many words. Piper needs about 25-45 ms of synthesis per word before its first sound, so this bounds what the
listener waits for the first piece; on ``tests/data/replies`` it cuts 9 of 36 replies (first piece p90 17 -> 8
words, mean 7.5 -> 5.8; the longest first sentences, 11-18 words, are the ones cut), at the price of a cut
inside a clause ("A black hole is a region in space | that has ..."). Its effect on voice-to-voice latency is in
docs/benchmarks.md."""

_WORD_THEN_SPACE = re.compile(r"\S+\s+")
_CLAUSE_MARK = re.compile(r"[,;:—–](?=\s)|[，、；：]")


def count_words(text: str) -> int:
    """Words as a listener hears them: runs of non-space characters that hold a letter or digit."""
    return sum(1 for token in text.split() if any(ch.isalnum() for ch in token))


class SentenceBuffer:
    """Incremental splitter for a token stream: ``feed`` deltas, get the pieces completed so far, in order.

    ``language`` (ISO-639-1) picks sentencex's abbreviation list; terminators of every script are known whatever
    the language. With ``first_phrase_min_words=N`` (``None`` or 0: off), the very first piece is released at the
    first clause mark once it has at least N words (see the module docstring). ``flush`` returns what is left at
    the end of the stream.
    """

    def __init__(self, language: str | None = None, first_phrase_min_words: int | None = None) -> None:
        self._text = ""
        self._language = language or "en"
        self._first_phrase_min_words = first_phrase_min_words or 0
        self._released_any = False

    def feed(self, delta: str) -> list[str]:
        """Append ``delta``; return the pieces (stripped, non-empty) it completed, in order."""
        self._text += delta
        segments = list(sentencex.segment(self._language, self._text)) or [""]
        complete, last = segments[:-1], segments[-1]  # the last segment may still grow
        line_end = last.rfind("\n")
        if line_end >= 0:  # a line break ends a piece even without a full stop
            complete.append(last[: line_end + 1])
            last = last[line_end + 1 :]
        self._text = last
        pieces = [line.strip() for segment in complete for line in segment.split("\n") if line.strip()]
        if not pieces and not self._released_any and self._first_phrase_min_words:
            phrase = self._first_phrase()
            if phrase:
                pieces.append(phrase)
        self._released_any = self._released_any or bool(pieces)
        return pieces

    def _first_phrase(self) -> str | None:
        """The text up to the first clause mark with enough words before it, or else its first
        ``FIRST_PHRASE_MAX_WORDS`` words once the next word has begun; removed from the buffer."""
        for match in _CLAUSE_MARK.finditer(self._text):
            phrase = self._text[: match.end()].strip()
            if count_words(phrase) >= self._first_phrase_min_words:
                self._text = self._text[match.end() :].lstrip()
                return phrase
        words = list(_WORD_THEN_SPACE.finditer(self._text.lstrip()))
        if len(words) > FIRST_PHRASE_MAX_WORDS:  # the last word matched may still grow; the ones before are whole
            self._text = self._text.lstrip()
            end = words[FIRST_PHRASE_MAX_WORDS - 1].end()
            phrase, self._text = self._text[:end].strip(), self._text[end:]
            return phrase
        return None

    def flush(self) -> str | None:
        """Return the unfinished remainder (stripped) and reset, or None if nothing is left."""
        rest, self._text = self._text.strip(), ""
        return rest or None


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """A whole text as the stream splitter would cut it without the first-phrase rule: sentences and lines."""
    buffer = SentenceBuffer(language)
    pieces = buffer.feed(text)
    tail = buffer.flush()
    return pieces + ([tail] if tail else [])
