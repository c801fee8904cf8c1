"""Recordings of any length cut, as they are decoded, into pieces of about a minute that end in silence.

Whisper needs no more than 30 s of audio at a time, and the VAD none of the past, so a streamed transcription holds
only the piece at hand. The decoded audio is gathered until ``PIECE_S`` seconds are at hand; Silero VAD (as
faster-whisper's ``vad_filter``) marks the speech in them; the piece ends where the last speech that may continue
past the audio at hand begins (or ``CUT_GUARD_S`` before the end when none may), so no word is cut in two; the rest
is carried into the next piece. The VAD splits speech longer than ``MAX_SPEECH_S`` at its last short pause
(Silero's ``max_speech_duration_s``), so what is carried stays under ``MAX_SPEECH_S + CUT_GUARD_S`` and every piece
moves on by at least ``PIECE_S - MAX_SPEECH_S - CUT_GUARD_S`` seconds.

Memory: one piece (``PIECE_S`` plus one decoded frame: about 4 MB of float32) and the VAD's and Whisper's work on it,
whatever the recording's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from service_common.audio import WHISPER_SAMPLE_RATE_HZ

PIECE_S = 60.0
"""Audio gathered before a cut is looked for: twice ``MAX_SPEECH_S``, so a piece always moves on by about half."""
MAX_SPEECH_S = 30.0
"""Speech the VAD keeps in one chunk at most (Whisper's window); longer speech is split at its last pause of 0.1 s."""
CUT_GUARD_S = 2.0
"""A chunk ending this close to the end of the audio at hand may go on in the next audio: it is carried over. The
VAD closes a chunk only after 2 s of silence (``min_silence_duration_ms``) and drops speech shorter than
``min_speech_ms`` at the very end, so a word starting there is in the carried part."""


@dataclass(frozen=True)
class Piece:
    """A stretch of the recording to transcribe, ending in silence (or where the recording ends).

    ``samples``: float32 mono 16 kHz; ``start_s``: where they start in the recording (s); ``speech``: the VAD's
    speech chunks in them, ``{"start", "end"}`` in samples of ``samples`` (empty: nothing to hear).
    """

    samples: np.ndarray
    start_s: float
    speech: list[dict[str, int]]

    @property
    def end_s(self) -> float:
        return self.start_s + self.samples.size / WHISPER_SAMPLE_RATE_HZ


def iter_pieces(audio: Iterable[np.ndarray], *, min_speech_ms: int) -> Iterator[Piece]:
    """Cut float32 mono 16 kHz ``audio`` (pieces of any sizes, in order) into ``Piece``s back to back, the last one
    ending where the audio does; yields nothing for no audio. ``min_speech_ms``: shorter speech is not speech.

    Reads ``audio`` only as far as the next piece needs; raises what ``audio`` raises.
    """
    piece_samples = int(PIECE_S * WHISPER_SAMPLE_RATE_HZ)
    carried = np.zeros(0, np.float32)
    offset = 0  # samples of the recording before ``carried``
    gathered: list[np.ndarray] = [carried]
    size = 0
    for samples in audio:
        gathered.append(samples)
        size += samples.size
        if size >= piece_samples:
            buffer = np.concatenate(gathered)
            cut, speech = _cut(buffer, min_speech_ms=min_speech_ms)
            yield Piece(buffer[:cut], offset / WHISPER_SAMPLE_RATE_HZ, speech)
            carried = buffer[cut:].copy()  # a copy, so the gathered minute is freed
            offset += cut
            gathered, size = [carried], carried.size
    if size:
        buffer = np.concatenate(gathered)
        yield Piece(buffer, offset / WHISPER_SAMPLE_RATE_HZ, _speech(buffer, min_speech_ms=min_speech_ms))


def _speech(samples: np.ndarray, *, min_speech_ms: int) -> list[dict[str, int]]:
    options = VadOptions(min_speech_duration_ms=min_speech_ms, max_speech_duration_s=MAX_SPEECH_S)
    chunks: list[dict[str, int]] = get_speech_timestamps(samples, options)
    return chunks


def _cut(buffer: np.ndarray, *, min_speech_ms: int) -> tuple[int, list[dict[str, int]]]:
    """Where to end a piece of ``buffer`` (in samples), and the speech chunks before that point.

    The piece ends where the first chunk that ends within ``CUT_GUARD_S`` of the buffer's end begins (the VAD pads
    a chunk's start with silence), or ``CUT_GUARD_S`` before the end when no chunk does.
    """
    chunks = _speech(buffer, min_speech_ms=min_speech_ms)
    guard = int(CUT_GUARD_S * WHISPER_SAMPLE_RATE_HZ)
    open_chunks = [chunk for chunk in chunks if chunk["end"] > buffer.size - guard]
    cut = open_chunks[0]["start"] if open_chunks else buffer.size - guard
    if cut < guard:  # cannot happen with chunks of at most MAX_SPEECH_S in PIECE_S; never stall if it does
        return buffer.size, chunks
    return cut, [chunk for chunk in chunks if chunk["end"] <= cut]
