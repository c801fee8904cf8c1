"""Sentence splitting for speech: whole texts (TTS input) and token streams (LLM output).

Speech engines emit audio per sentence, so the time to first audio grows with the first sentence's
length; splitting early (and only at real sentence ends) is what makes streaming pay off.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "approx", "inc", "ltd"}
)
# A sentence end: terminal punctuation (optionally followed by closing quotes/brackets), then whitespace.
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]]*)(\s+)|(\n\s*\n|\n)")


def _is_real_boundary(text: str, punct_start: int, punct: str) -> bool:
    if not punct.startswith("."):
        return True
    word_match = re.search(r"([\w.]+)$", text[:punct_start])
    word = word_match.group(1).lower() if word_match else ""
    if word in _ABBREVIATIONS:
        return False
    # single initials ("J. Smith") are not sentence ends
    return not (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, stripped, empty ones dropped.

    Ends a sentence at ``.``, ``!``, ``?``, ``…`` followed by whitespace (not after common abbreviations,
    initials or inside numbers such as ``3.5``) and at line breaks.
    """
    buffer = SentenceBuffer()
    sentences = buffer.feed(text)
    tail = buffer.flush()
    return sentences + ([tail] if tail else [])


_CLAUSE_END = re.compile(r"[,;:—–]\s")
_PHRASE_START_WORDS = (
    "that|which|who|whose|because|but|so|when|where|while|although|though|if|since|unless|until|whereas"
)
# A phrase break: whitespace, then a subordinating/coordinating word followed by whitespace. "and"/"or" are left out:
# they join nouns ("salt and pepper") as often as clauses, and a cut inside a noun phrase sounds broken.
_PHRASE_BREAK = re.compile(rf"\s+(?=(?:{_PHRASE_START_WORDS})\s)", re.IGNORECASE)


class SentenceBuffer:
    """Incremental splitter for a token stream: ``feed`` deltas, get the sentences completed so far.

    A sentence is only released once the whitespace after its final punctuation has arrived, so
    ``"3."`` followed later by ``"5"`` is not cut. ``flush`` returns what is left at the end of the stream.

    With ``first_clause_min_words=N``, the very first piece is released early once it has at least N words: at a
    clause break (``,`` ``;`` ``:`` or a dash followed by whitespace) or just before a word that opens a new phrase
    (``that``, ``which``, ``because``, ``but``, ``when``, ...; never ``and``/``or``). Speech then starts after the
    first phrase instead of the whole first sentence, which is what a listener waits for: "This is a classic
    idiom | that has been passed down through generations." is spoken from "idiom" on.
    """

    def __init__(self, first_clause_min_words: int | None = None) -> None:
        self._text = ""
        self._first_clause_min_words = first_clause_min_words
        self._released_any = False

    def feed(self, delta: str) -> list[str]:
        """Append ``delta``; return the sentences it completed, in order."""
        self._text += delta
        sentences: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._text):
            if match.group(1) is not None:
                if not _is_real_boundary(self._text, match.start(1), match.group(1)):
                    continue
                end = match.end(1)
            else:
                end = match.start(3)
            sentence = self._text[start:end].strip()
            if sentence:
                sentences.append(sentence)
            start = match.end()
        self._text = self._text[start:]
        if not sentences and not self._released_any and self._first_clause_min_words:
            clause = self._first_clause()
            if clause:
                sentences.append(clause)
        self._released_any = self._released_any or bool(sentences)
        return sentences

    def _first_clause(self) -> str | None:
        """The earliest clause (ending at a clause mark) or phrase (ending before a phrase word) long enough."""
        cuts = [(match.start() + 1, match.end()) for match in _CLAUSE_END.finditer(self._text)]
        cuts += [(match.start(), match.end()) for match in _PHRASE_BREAK.finditer(self._text)]
        for end, rest_start in sorted(cuts):
            clause = self._text[:end].strip()
            if len(clause.split()) >= (self._first_clause_min_words or 0):
                self._text = self._text[rest_start:]
                return clause
        return None

    def flush(self) -> str | None:
        """Return the unfinished remainder (stripped) and reset, or None if nothing is left."""
        rest, self._text = self._text.strip(), ""
        return rest or None
