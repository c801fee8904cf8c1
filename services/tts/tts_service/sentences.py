"""Text -> the pieces an engine speaks one model call at a time.

Why we split before Piper does: Piper phonemises the whole input before its first model call and ends
"sentences" wherever espeak-ng does, which includes abbreviations ("Dr." -> a pause). Sentence ends come from
sentencex (Wikimedia's rule-based segmenter: terminators of many scripts, each language's abbreviations, numbers
such as ``3.5``; no model, no data to download), and line breaks end a piece too, so the first sentence is spoken
before the rest is even phonemised.
Sentences longer than a bound are cut further: one unpunctuated 4096-character "sentence" costs Piper 70 s
and 5.5 GB before its first sample.
"""

from __future__ import annotations

import html
import re
import unicodedata

import sentencex

# Markdown an LLM likes to emit and espeak-ng would read aloud ("asterisk asterisk bold").
_MARKDOWN_EMPHASIS = re.compile(r"(?<!\w)(\*{1,3}|_{1,3}|~~|`+)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_MARKDOWN_BULLET = re.compile(r"^\s*[-*+]\s+", re.MULTILINE)
_CLAUSE_END = re.compile(r"[,;:\u2013\u2014]\s")
# SSML/HTML/XML markup, which espeak-ng would read out ("less than speak greater than"): comments, processing
# instructions, CDATA brackets and tags. A tag name starts right after "<" or "</", so "3 < 5" is left alone.
_MARKUP = re.compile(r"<!--.*?-->|<\?.*?\?>|<!\[CDATA\[|\]\]>|</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>", re.DOTALL)
# Emoji glue (zero-width joiner, variation selectors, combining keycap) and skin-tone modifiers.
_EMOJI_PARTS = frozenset("\u200d\ufe0e\ufe0f\u20e3\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff")
_KEPT_SYMBOLS = frozenset("°")  # a symbol ("other symbol" category) espeak-ng reads usefully: "25°C"


def _speakable(char: str) -> str:
    """``char``, a space, or nothing: control characters (espeak-ng's C API cannot even take NUL) become spaces,
    invisible format characters and emoji (category "other symbol", which espeak-ng reads by name: "grinning face")
    go; letters, digits, punctuation and currency signs stay."""
    if char == "\n" or char in _KEPT_SYMBOLS:
        return char
    category = unicodedata.category(char)
    if category == "Cc" or char == "\u200b":  # tab, CR, NUL, ...; a zero-width space still separates words
        return " "
    if category in ("Cf", "Cs", "Co", "Cn", "So") or char in _EMOJI_PARTS:
        return ""
    return char


def clean_for_speech(text: str) -> str:
    """What is meant to be heard: markup tags dropped and entities decoded (``<speak>Fish &amp; chips</speak>`` ->
    ``Fish & chips``), emoji and invisible characters dropped, then Markdown emphasis, code ticks, heading and bullet
    markers dropped, keeping the words they wrap. Numbers, currency and abbreviations are left to espeak-ng,
    which reads them well ("$4.99", "1,234", "Dr.")."""
    text = html.unescape(_MARKUP.sub(" ", text))
    text = "".join(_speakable(char) for char in text)
    text = _MARKDOWN_HEADING.sub("", text)
    text = _MARKDOWN_BULLET.sub("", text)
    previous = None
    while previous != text:  # nested emphasis (**_word_**) unwraps one layer per pass
        previous, text = text, _MARKDOWN_EMPHASIS.sub(r"\2", text)
    return text


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Sentences and lines of ``text``, stripped, empty ones dropped; ``language`` (ISO-639-1) picks sentencex's
    abbreviation list (terminators of every script are known whatever the language)."""
    return [
        sentence.strip()
        for line in text.splitlines()
        for sentence in sentencex.segment(language, line)
        if sentence.strip()
    ]


def split_for_speech(text: str, max_chars: int) -> list[str]:
    """Split ``text`` into sentences of at most ``max_chars`` characters, in order; pieces without a letter or
    digit (empty, or only punctuation) are dropped.

    Over-long sentences are cut at the last clause mark (, ; : dash) in the window, else at the last
    space, else hard at ``max_chars``.
    """
    pieces: list[str] = []
    for sentence in split_sentences(clean_for_speech(text)):
        while len(sentence) > max_chars:
            cut = _cut_position(sentence, max_chars)
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    # a piece without a letter or digit ("!!!", "--") has no words: espeak-ng would name the marks instead
    return [piece for piece in pieces if any(char.isalnum() for char in piece)]


def _cut_position(sentence: str, max_chars: int) -> int:
    window = sentence[: max_chars + 1]
    # a cut in the first third would leave a very short piece: prefer a space further on
    floor = max_chars // 3
    clause_ends = [match.end() for match in _CLAUSE_END.finditer(window) if match.end() > floor]
    if clause_ends:
        return clause_ends[-1]
    space = window.rfind(" ", floor)
    return space if space > 0 else max_chars
