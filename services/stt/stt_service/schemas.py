"""Wire shapes of ``POST /v1/audio/transcriptions`` (OpenAI's), with the limits shown in Swagger."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service_common.schemas import ErrorDetail

from .engine import Segment, Transcription, Word

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
TimestampGranularity = Literal["segment", "word"]

LANGUAGE_PATTERN = r"^[a-zA-Z]{2}$"
"""Shape of an ISO-639-1 code; whether the model knows the language is checked against the model."""


class TranscriptionJson(BaseModel):
    """``response_format=json``: the text only."""

    text: str = Field(description="The whole transcript, segments joined, leading/trailing space stripped.")


class TranscriptionWord(BaseModel):
    """One word with its time span (``timestamp_granularities[]=word``)."""

    word: str = Field(description="The word as recognised, with its punctuation.")
    start: float = Field(ge=0.0, description="Start time in seconds from the start of the audio.")
    end: float = Field(ge=0.0, description="End time in seconds from the start of the audio.")

    @classmethod
    def from_word(cls, word: Word) -> TranscriptionWord:
        return cls(word=word.word, start=word.start_s, end=word.end_s)


class TranscriptionSegment(BaseModel):
    """One decoded segment (roughly a phrase), OpenAI's verbose_json segment."""

    id: int = Field(ge=0, description="Index of the segment, from 0.")
    seek: int = Field(default=0, ge=0, description="Offset of the decoding window in 10 ms frames.")
    start: float = Field(ge=0.0, description="Start time in seconds from the start of the audio.")
    end: float = Field(ge=0.0, description="End time in seconds from the start of the audio.")
    text: str = Field(description="Text of the segment, stripped.")
    tokens: list[int] = Field(description="Whisper token ids of the segment.")
    temperature: float = Field(ge=0.0, le=1.0, description="Sampling temperature used for the segment.")
    avg_logprob: float = Field(description="Mean log probability of the tokens (below -1 suggests a bad segment).")
    compression_ratio: float = Field(
        ge=0.0, description="gzip compression ratio of the text (above 2.4 suggests repetition)."
    )
    no_speech_prob: float = Field(ge=0.0, le=1.0, description="Probability that the segment holds no speech.")

    @classmethod
    def from_segment(cls, segment: Segment) -> TranscriptionSegment:
        return cls(
            id=segment.id,
            seek=segment.seek,
            start=segment.start_s,
            end=segment.end_s,
            text=segment.text,
            tokens=segment.tokens,
            temperature=segment.temperature,
            avg_logprob=segment.avg_logprob,
            compression_ratio=segment.compression_ratio,
            no_speech_prob=segment.no_speech_prob,
        )


class TranscriptionVerbose(BaseModel):
    """``response_format=verbose_json``: text plus language, duration, segments and (on request) words."""

    task: Literal["transcribe"] = "transcribe"
    language: str = Field(description="ISO-639-1 code of the language given or detected, e.g. 'en'.")
    duration: float = Field(ge=0.0, description="Duration of the decoded audio in seconds.")
    text: str = Field(description="The whole transcript.")
    segments: list[TranscriptionSegment] = Field(description="Segments in time order.")
    words: list[TranscriptionWord] | None = Field(
        default=None, description="Every word with its times; only with timestamp_granularities[]=word."
    )

    @classmethod
    def from_transcription(cls, result: Transcription, *, with_words: bool) -> TranscriptionVerbose:
        return cls(
            language=result.language,
            duration=result.duration_s,
            text=result.text,
            segments=[TranscriptionSegment.from_segment(segment) for segment in result.segments],
            words=[TranscriptionWord.from_word(word) for segment in result.segments for word in segment.words]
            if with_words
            else None,
        )


class TranscriptTextDelta(BaseModel):
    """``stream=true``: one decoded segment's text, sent as soon as it is decoded (OpenAI's event of this type)."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str = Field(
        description=(
            "The segment's text, with the space before it when it continues the transcript: the deltas joined are "
            "the done event's text."
        )
    )
    start: float = Field(ge=0.0, description="Not OpenAI's: where the segment starts in the recording, in seconds.")
    end: float = Field(
        ge=0.0,
        description="Not OpenAI's: where the segment ends in the recording, in seconds (how far the transcription is).",
    )


class DurationUsage(BaseModel):
    """What the transcription used: seconds of audio (OpenAI's usage of duration-billed models)."""

    type: Literal["duration"] = "duration"
    seconds: float = Field(ge=0.0, description="Duration of the decoded audio in seconds.")


class TranscriptLanguage(BaseModel):
    """A language of the transcript."""

    code: str = Field(description="ISO-639-1 code, e.g. 'en'.")


class TranscriptTextDone(BaseModel):
    """``stream=true``: the last event of a transcription, after every delta (OpenAI's event of this type, plus
    ``segments`` and ``words`` as in verbose_json)."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str = Field(description="The whole transcript: every delta joined.")
    usage: DurationUsage
    languages: list[TranscriptLanguage] = Field(description="The language given or detected (empty: no speech).")
    segments: list[TranscriptionSegment] = Field(
        description="Segments in time order, times in seconds from the start of the recording (verbose_json's)."
    )
    words: list[TranscriptionWord] | None = Field(
        default=None, description="Every word with its times; only with timestamp_granularities[]=word."
    )


class TranscriptError(BaseModel):
    """``stream=true``: the transcription failed after the response started (e.g. the audio ran past
    STT_MAX_STREAM_AUDIO_DURATION_S, code ``input_too_large``, or undecodable bytes mid-file, code
    ``audio_decode_error``); no done event follows. The official openai client raises it as an ``APIError``."""

    type: Literal["error"] = "error"
    error: ErrorDetail
