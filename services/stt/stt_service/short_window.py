"""Short-window Whisper decoding: one encoder pass over a 10 s window instead of 30 s, for speech up to 20 s.

Whisper was trained on 30 s windows, and faster-whisper pads every window to 30 s (3000 mel frames), so tiny.en
spends about 230 ms of a 5 s question in its encoder whatever the question's length. CTranslate2's encoder accepts
shorter inputs (positions are simply fewer) and costs less with fewer frames. The decoder, though, was trained on
30 s windows and misbehaves on windows cut to the speech: it repeats the phrase ("ten of clubs ten of clubs") or
stops early. Speech plus silence up to ``MIN_WINDOW_S`` (10 s) keeps it in line (0.168 vs 0.104 word error rate
with windows cut to the speech + 1 s, on the clips first collected; see ``docs/benchmarks.md`` for the corpus).

One mechanism, in this order:

1. ``find_speech`` runs the VAD once; its speech chunks feed both decodings (``Speech.clip_timestamps_s`` is
   faster-whisper's ``clip_timestamps`` for the 30 s fallback).
2. ``short_window_applies`` alone decides whether the short window serves a request.
3. ``decode_short_window`` decodes and runs every ``Check``; a result that fails any of them is decoded again with
   30 s windows by the caller: a doubtful result costs time, never words. Each check targets a way the short
   window fails that 30 s windows do not (the decoder looping or stopping early); a merely hard clip (a low log
   probability) is left alone, because 30 s windows hear it no better.

Over the 36 clips of ``tests/data/wer`` and the 4 JFK clips the word error rate is 0.064 against 0.083 with 30 s
windows, no check firing; over those clips as 12 kbit/s Opus, with noise, faster and in pairs (220 clips), 0.124
against 0.134, none firing either, where faster-whisper's -1.0 log-probability bound and a 1.5 s uncovered bound
sent 7 results to 30 s windows, 5 of them heard no better there (``bench/stt_accuracy.py [--variants]``).
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens
from faster_whisper.vad import SpeechTimestampsMap, VadOptions, collect_chunks, get_speech_timestamps

from service_common.audio import WHISPER_SAMPLE_RATE_HZ

from .engine import Segment, Transcription

logger = logging.getLogger(__name__)

PAD_S = 1.0
"""Silence appended after the speech: without it the decoder often misses the last word or repeats the phrase."""
MIN_WINDOW_S = 10.0
"""Shortest window: speech plus silence up to this length."""
FALLBACK_WINDOW_S = 30.0
"""Whisper's window: VAD chunks are packed into clips up to this long for the fallback decoding."""
MAX_TOKENS_BASE = 12
MAX_TOKENS_PER_S = 8
"""Token cap: fast English speech is about 3 words (4 tokens) per second; timestamps add 2 tokens per segment."""
WHISPER_MAX_LENGTH = 448
"""Whisper's decoder has 448 positions: the prompt and the generated tokens together."""
MAX_UNCOVERED_S = 2.0
"""The last segment must end at most this long before the speech does; earlier, the decoder stopped too soon.
Correct results of the tuning clips left up to 1.65 s (the VAD pads speech by 0.4 s a side; the last timestamp
comes early); 1.5 s sent a correct noisy 12.5 s clip to 30 s windows."""
MAX_COMPRESSION_RATIO = 2.4
"""faster-whisper's threshold for a window that decoded into a loop."""
MIN_AVG_LOGPROB = -1.5
"""Below this average log probability (per token) the result is decoded again. faster-whisper's -1.0 sent clear
short commands to 30 s windows (a 2.8 s "go forward ten meters" came back right at -1.01 on one machine, -0.92 on
another) and, on noisy 1-2 s clips, 30 s windows heard as many words wrong as they put right: a few tokens make a
noisy average. The tuning clips' lowest was -1.0 (5 dB of noise; 30 s windows heard it no better); -1.5 leaves room
for the drift between machines and still catches a decoder gone astray."""
TIME_PRECISION_S = 0.02
"""Whisper's timestamp tokens are 20 ms apart."""
SUPPRESS_DEFAULT = (-1,)
"""faster-whisper's default ``suppress_tokens``: -1 = its list of non-speech symbols."""


class Check(StrEnum):
    """The acceptance checks of a short-window result; the value names the check in logs and benchmarks."""

    TOKEN_CAP = "token cap"
    """The decoder reached the token cap (``MAX_TOKENS_BASE`` + ``MAX_TOKENS_PER_S`` per second): it was looping."""
    REPEATED_SEGMENT = "repeated segment"
    """A segment says what the one before it said: the decoder ran on into the silence."""
    NO_TEXT = "no text"
    """Speech (the VAD found some) decoded into nothing."""
    COMPRESSION_RATIO = "compression ratio"
    """The text compresses better than ``MAX_COMPRESSION_RATIO``: a loop."""
    AVG_LOGPROB = "average log probability"
    """The decoder was very unsure (below ``MIN_AVG_LOGPROB``)."""
    UNCOVERED_SPEECH = "uncovered speech"
    """The segments end more than ``MAX_UNCOVERED_S`` before the speech does: the decoder stopped too soon."""
    REPEATED_PHRASE = "repeated phrase"
    """A phrase of two or more words comes three times back to back ("go forward go forward go forward")."""


@dataclass(frozen=True)
class Speech:
    """The audio Whisper should hear: VAD speech chunks joined (or all of it), and where they lie in the original.

    ``samples``: float32 mono 16 kHz, the chunks back to back; ``duration_s`` their length; ``chunks``: the VAD's
    ``{"start", "end"}`` sample offsets into the original audio, or None when the VAD is off (all of it is kept).
    """

    samples: np.ndarray
    duration_s: float
    chunks: list[dict[str, int]] | None

    @property
    def clip_timestamps_s(self) -> list[float] | str:
        """faster-whisper's ``clip_timestamps`` for these chunks: ``[start, end, start, end, ...]`` in seconds of
        the original audio, neighbouring chunks packed into clips of at most ``FALLBACK_WINDOW_S`` (their gaps
        kept), so long audio costs one window per 30 s as with ``vad_filter``; ``"0"`` (all of it) without VAD.

        Ours because faster-whisper 1.2's ``transcribe`` takes clips but packs none (its batched pipeline does).
        Measured on the 36 corpus clips back to back with 2.5 s gaps (275 s): word error rate 0.071 in 15 s,
        against 0.175 in 10 s with ``vad_filter`` (chunks joined without their gaps, so sentences run together)
        and 0.091 in 30 s with one clip per chunk.
        """
        if self.chunks is None:
            return "0"
        return pack_clips_s(self.chunks)


def pack_clips_s(chunks: list[dict[str, int]]) -> list[float]:
    """VAD speech chunks (``{"start", "end"}`` in samples at 16 kHz, in order) -> faster-whisper's ``clip_timestamps``
    ``[start, end, start, end, ...]`` in seconds: neighbouring chunks packed into clips of at most
    ``FALLBACK_WINDOW_S``, the gaps between them kept (see ``Speech.clip_timestamps_s``)."""
    limit = int(FALLBACK_WINDOW_S * WHISPER_SAMPLE_RATE_HZ)
    clips: list[list[int]] = []
    for chunk in chunks:
        if clips and chunk["end"] - clips[-1][0] <= limit:
            clips[-1][1] = chunk["end"]
        else:
            clips.append([chunk["start"], chunk["end"]])
    return [offset / WHISPER_SAMPLE_RATE_HZ for clip in clips for offset in clip]


@dataclass(frozen=True)
class ShortWindowResult:
    """A short-window decoding and the checks it failed (none: accepted).

    ``transcription`` holds the decoded text even when a check failed (for logs and benchmarks; the caller then
    decodes again). ``details`` gives the measured values, e.g. ``"avg_logprob=-0.92 compression_ratio=0.72"``.
    """

    transcription: Transcription
    failed: tuple[Check, ...]
    details: str

    @property
    def accepted(self) -> bool:
        return not self.failed


def find_speech(samples: np.ndarray, *, vad: bool, min_speech_ms: int) -> Speech:
    """Keep the speech of float32 mono 16 kHz ``samples`` (Silero VAD, as faster-whisper's ``vad_filter``).

    Without ``vad`` everything is kept. ``min_speech_ms``: shorter speech pieces are dropped.
    """
    if not vad:
        return Speech(samples, samples.size / WHISPER_SAMPLE_RATE_HZ, None)
    chunks = get_speech_timestamps(samples, VadOptions(min_speech_duration_ms=min_speech_ms))
    joined = np.concatenate(collect_chunks(samples, chunks)[0]) if chunks else np.zeros(0, np.float32)
    return Speech(joined, joined.size / WHISPER_SAMPLE_RATE_HZ, chunks)


def short_window_applies(
    *,
    max_s: float,
    speech_s: float,
    language: str | None,
    temperature: float,
    prompt: str | None,
    word_timestamps: bool,
) -> bool:
    """Whether the short window decodes a request: it is on (``max_s`` > 0), there is speech and at most ``max_s``
    seconds of it, the language is known (given, or the model is English-only), and the request asks for plain
    greedy decoding (temperature 0, no prompt, no word timestamps: the short window does none of those)."""
    return (
        0.0 < speech_s <= max_s and language is not None and temperature == 0.0 and not prompt and not word_timestamps
    )


def ctranslate2_max_length(prompt_length: int, max_new_tokens: int) -> int:
    """The ``max_length`` for CTranslate2's ``Whisper.generate`` that lets it generate ``max_new_tokens`` tokens.

    CTranslate2 (measured on 4.8.5) stops Whisper after min(max_length // 2, max_length - prompt_length + 1) new
    tokens, not after max_length - prompt_length as faster-whisper assumes (a cap of 10 gave 5). ``test_short_window``
    checks the installed version still behaves so. Raises ValueError past Whisper's 448 positions.
    """
    max_length = max(2 * max_new_tokens, max_new_tokens + prompt_length - 1)
    if max_length > WHISPER_MAX_LENGTH:
        raise ValueError(f"{max_new_tokens} new tokens after a prompt of {prompt_length} exceed Whisper's positions")
    return max_length


def decode_short_window(
    model: WhisperModel, speech: Speech, *, language: str, beam_size: int, audio_duration_s: float
) -> ShortWindowResult:
    """Transcribe ``speech`` in one window (see the module docstring) and run every ``Check`` on the result.

    ``language``: ISO-639-1 code (``"en"`` for English-only models). The transcription has segments with times in
    the original audio (``audio_duration_s`` long). Blocks for the whole decode; call it from the model's worker
    thread. Raises what CTranslate2 raises (RuntimeError) on failure.
    """
    window_samples = int(max(speech.duration_s + PAD_S, MIN_WINDOW_S) * WHISPER_SAMPLE_RATE_HZ)
    padded = np.concatenate([speech.samples, np.zeros(window_samples - speech.samples.size, np.float32)])
    features = model.feature_extractor(padded)
    features = features[:, : features.shape[-1] - features.shape[-1] % 2]  # the encoder's convolution has stride 2
    encoder_output = model.encode(np.ascontiguousarray(features))

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    prompt = list(tokenizer.sot_sequence)
    max_new_tokens = min(
        int(MAX_TOKENS_BASE + MAX_TOKENS_PER_S * speech.duration_s), WHISPER_MAX_LENGTH // 2 - len(prompt)
    )
    result = model.model.generate(
        encoder_output,
        [prompt],
        beam_size=beam_size,
        max_length=ctranslate2_max_length(len(prompt), max_new_tokens),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, SUPPRESS_DEFAULT),
        max_initial_timestamp_index=50,  # faster-whisper's default: the first segment starts within 1 s
    )[0]
    tokens = result.sequences_ids[0]
    pieces = _timed_pieces(tokens, tokenizer, speech.duration_s)
    texts = [tokenizer.decode(piece_tokens) for _, _, piece_tokens in pieces]
    text = "".join(texts).strip()
    # CTranslate2's score is the log probability per token (length penalty 1); faster-whisper's avg_logprob
    # divides the sum by one more than the length (the end token)
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    compression_ratio = get_compression_ratio(text)
    covered_s = pieces[-1][1] if pieces else 0.0
    failed = failed_checks(
        texts,
        n_tokens=len(tokens),
        max_new_tokens=max_new_tokens,
        avg_logprob=avg_logprob,
        compression_ratio=compression_ratio,
        covered_s=covered_s,
        speech_s=speech.duration_s,
    )
    details = (
        f"tokens={len(tokens)}/{max_new_tokens} avg_logprob={avg_logprob:.2f} "
        f"compression_ratio={compression_ratio:.2f} covered={covered_s:.2f}/{speech.duration_s:.2f} s"
    )
    logger.debug("short window %s (%s): %r", "failed " + ", ".join(failed) if failed else "passed", details, text)
    timestamps = SpeechTimestampsMap(speech.chunks, WHISPER_SAMPLE_RATE_HZ) if speech.chunks is not None else None
    segments = []
    for index, ((start_s, end_s, piece_tokens), piece_text) in enumerate(zip(pieces, texts, strict=True)):
        if timestamps is not None:
            start_s = timestamps.get_original_time(start_s)
            end_s = timestamps.get_original_time(end_s, is_end=True)
        segments.append(
            Segment(
                id=index,
                start_s=round(start_s, 2),
                end_s=round(min(end_s, audio_duration_s), 2),
                text=piece_text.strip(),
                tokens=piece_tokens,
                avg_logprob=float(avg_logprob),
                compression_ratio=compression_ratio,
                no_speech_prob=float(result.no_speech_prob),
            )
        )
    transcription = Transcription(text=text, language=language, duration_s=audio_duration_s, segments=segments)
    return ShortWindowResult(transcription, failed, details)


def failed_checks(
    texts: list[str],
    *,
    n_tokens: int,
    max_new_tokens: int,
    avg_logprob: float,
    compression_ratio: float,
    covered_s: float,
    speech_s: float,
) -> tuple[Check, ...]:
    """Every ``Check`` a decoding fails, in ``Check``'s order; empty when it passes them all.

    ``texts``: the segments' texts as decoded (Whisper's leading spaces kept); ``n_tokens`` generated (timestamps
    included) of at most ``max_new_tokens``; ``avg_logprob`` per token; ``compression_ratio`` of the whole text
    (faster-whisper's ``get_compression_ratio``); ``covered_s``: where the last segment ends, ``speech_s``: the
    speech's length, both in seconds of the speech.
    """
    text = "".join(texts).strip()
    segments = [segment.strip().lower() for segment in texts]
    fails = {
        Check.TOKEN_CAP: n_tokens >= max_new_tokens,
        Check.REPEATED_SEGMENT: any(a == b for a, b in itertools.pairwise(segments)),
        Check.NO_TEXT: not text,
        Check.COMPRESSION_RATIO: compression_ratio > MAX_COMPRESSION_RATIO,
        Check.AVG_LOGPROB: avg_logprob < MIN_AVG_LOGPROB,
        Check.UNCOVERED_SPEECH: covered_s < speech_s - MAX_UNCOVERED_S,
        Check.REPEATED_PHRASE: _repeats_a_phrase(text),
    }
    return tuple(check for check in Check if fails[check])


def _timed_pieces(tokens: list[int], tokenizer: Tokenizer, speech_s: float) -> list[tuple[float, float, list[int]]]:
    """Split decoded tokens at timestamp pairs into ``(start_s, end_s, text tokens)``; times in the speech.

    A segment that starts after the speech is the decoder running on in the padding silence (all zeros): it and
    what follows are dropped. A segment ending in the silence is capped at the speech's end; a text run with no
    closing timestamp (the decoder stopped mid-segment) ends at the speech's end. Segments without text are dropped.
    """
    pieces: list[tuple[float, float, list[int]]] = []
    start_s: float | None = None
    text_tokens: list[int] = []
    for token in tokens:
        if token < tokenizer.timestamp_begin:
            text_tokens.append(token)
            continue
        time_s = (token - tokenizer.timestamp_begin) * TIME_PRECISION_S
        if start_s is None:
            start_s = time_s
            continue
        if start_s >= speech_s:
            return pieces
        if text_tokens:
            pieces.append((start_s, min(time_s, speech_s), text_tokens))
        start_s, text_tokens = None, []
    if text_tokens:
        if start_s is None:  # text straight after a closed segment starts where that one ended
            start_s = pieces[-1][1] if pieces else 0.0
        if start_s < speech_s:
            pieces.append((start_s, speech_s, text_tokens))
    return pieces


def _repeats_a_phrase(text: str, min_words: int = 2, times: int = 3) -> bool:
    """Whether some phrase of ``min_words`` or more words comes ``times`` times in a row ("go forward go forward go
    forward"): a loop that short texts show before their compression ratio does. Twice is left alone: people do
    repeat a phrase ("ask what you can do for your country" closes both of two sentences of our 15 s clip)."""
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    return any(
        all(words[start : start + size] == words[start + k * size : start + (k + 1) * size] for k in range(1, times))
        for size in range(min_words, len(words) // times + 1)
        for start in range(len(words) - times * size + 1)
    )
