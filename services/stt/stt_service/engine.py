"""What the routes need from a speech recogniser: the ``Transcriber`` protocol and its result types.

Backends live in their own modules (``whisper_engine.WhisperTranscriber``); nothing here imports a model
library, so tests can pass a fake engine to ``create_app``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

import numpy as np


@dataclass(frozen=True)
class Word:
    """One recognised word with its time span in seconds from the start of the audio."""

    word: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class Segment:
    """One decoded segment (roughly a phrase); times in seconds from the start of the audio."""

    id: int
    start_s: float
    end_s: float
    text: str
    seek: int = 0
    """Offset of the 30 s decoding window that produced the segment, in 10 ms mel frames."""
    tokens: list[int] = field(default_factory=list)
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: list[Word] = field(default_factory=list)
    """Filled only when word timestamps were requested."""


@dataclass(frozen=True)
class Transcription:
    """The whole result of one transcription.

    ``text`` is the segments' text joined and stripped; ``language`` the ISO-639-1 code given or detected;
    ``duration_s`` the audio duration in seconds.
    """

    text: str
    language: str
    duration_s: float
    segments: list[Segment]
    short_window: Literal["accepted", "fell_back"] | None = None
    """The short-window path's outcome (``short_window``): accepted, or fell back to 30 s windows; None: not tried."""


@dataclass(frozen=True)
class SegmentDecoded:
    """A streamed transcription's next segment, as soon as it is decoded; times from the start of the recording."""

    segment: Segment
    delta: str
    """The segment's text as it continues the transcript: the space Whisper puts before it kept (none before the first
    text, none in Chinese or Japanese), so the deltas joined are the whole text. Empty for a segment without text."""


@dataclass(frozen=True)
class AudioDecoded:
    """Progress of a streamed transcription: the recording is decoded and transcribed up to ``duration_s`` seconds.

    Sent after each piece of the recording (at least once per minute of audio, speech or not), last with the whole
    duration. ``language``: the ISO-639-1 code given, or detected on the first speech; None while unknown.
    """

    duration_s: float
    language: str | None


StreamEvent: TypeAlias = SegmentDecoded | AudioDecoded
"""What ``Transcriber.transcribe_stream`` yields."""


class Transcriber(Protocol):
    """A loaded speech recogniser. Not thread-safe: call it from one worker thread only."""

    model_id: str
    """Name shown in ``GET /v1/models`` (the configured model name)."""
    owned_by: str
    """Where the model comes from (package name or hub organisation)."""
    supported_languages: frozenset[str]
    """ISO-639-1 codes the model can be asked for; ``{"en"}`` for English-only models."""

    def transcribe(
        self,
        samples: np.ndarray,
        *,
        language: str | None,
        prompt: str | None,
        temperature: float,
        word_timestamps: bool,
    ) -> Transcription:
        """Transcribe float32 mono 16 kHz ``samples`` in [-1, 1] (shape ``(n,)``).

        ``language=None`` detects the language (an extra pass on multilingual models); ``prompt`` is text
        that conditions the first window (spellings, context); ``temperature`` in [0, 1] is the sampling
        temperature (0 = greedy/beam search, raised automatically only for windows that decode badly, as
        OpenAI's API does). Blocks for the whole decode. Raises InferenceError on failure.
        """
        ...

    def transcribe_stream(
        self,
        audio: Iterable[np.ndarray],
        *,
        language: str | None,
        prompt: str | None,
        temperature: float,
        word_timestamps: bool,
    ) -> Generator[StreamEvent, None, None]:
        """Transcribe a recording of any length as it is decoded, in bounded memory.

        ``audio``: float32 mono 16 kHz pieces in [-1, 1], in order, of any sizes (``service_common.audio``'s
        ``iter_decoded_audio``); it is consumed as the transcription goes, and closed when this iterator is closed.
        Yields each ``SegmentDecoded`` as soon as it is decoded and an ``AudioDecoded`` after each piece of the
        recording, the last one with the whole duration. Closing the iterator stops the work at the next event.
        The other arguments are ``transcribe``'s. Raises InferenceError on failure, and what ``audio`` raises.
        """
        ...

    def warm_up(self) -> None:
        """Run one short inference so the first request does not pay for lazy initialisation."""
        ...
