"""Short-window Whisper decoding: one encoder pass over a 10 s window instead of 30 s, for speech up to 20 s.

Whisper was trained on 30 s windows, and faster-whisper pads every window to 30 s (3000 mel frames), so tiny.en
spends about 230 ms of a 5 s question in its encoder whatever the question's length. CTranslate2's encoder accepts
shorter inputs (positions are simply fewer) and costs less with fewer frames. The decoder, though, was trained on
30 s windows and misbehaves on windows cut to the speech: it repeats the phrase ("ten of clubs ten of clubs") or
stops early. Speech plus silence up to ``MIN_WINDOW_S`` (10 s) keeps it in line: over the 36 recordings of
``tests/data/wer`` the word error rate is 0.068 against 0.089 with 30 s windows (0.168 vs 0.104 with windows cut
to the speech + 1 s, on the clips first collected), and a clip takes 167 instead of 619 ms p50 (see
``docs/benchmarks.md``). Each result is still checked, with timestamps on:

- a segment that starts after the speech or repeats the segment before it ends the transcription there (the
  decoder running on in the silence); a segment ending in the silence is capped at the speech's end;
- the tokens are capped in proportion to the duration (``MAX_TOKENS_BASE`` + ``MAX_TOKENS_PER_S`` per second), so
  a decoder that loops stops early, and a result that reaches the cap is not trusted;
- what is left must cover the speech to within ``MAX_UNCOVERED_S``, repeat no phrase back to back and pass
  faster-whisper's own checks (compression ratio at most 2.4, average log probability at least -1); otherwise
  ``decode_short_window`` returns None and the caller runs the standard 30 s decoding, so a doubtful result costs
  time, never words.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

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
MAX_TOKENS_BASE = 12
MAX_TOKENS_PER_S = 8
"""Token cap: fast English speech is about 3 words (4 tokens) per second; timestamps add 2 tokens per segment."""
MAX_UNCOVERED_S = 1.5
"""The last segment must end at most this long before the speech does; earlier, the decoder stopped too soon."""
MAX_COMPRESSION_RATIO = 2.4
MIN_AVG_LOGPROB = -1.0
"""faster-whisper's defaults for a window that decoded badly (then it retries at a higher temperature)."""
TIME_PRECISION_S = 0.02
"""Whisper's timestamp tokens are 20 ms apart."""
SUPPRESS_DEFAULT = (-1,)
"""faster-whisper's default ``suppress_tokens``: -1 = its list of non-speech symbols."""


@dataclass(frozen=True)
class Speech:
    """The audio Whisper should hear: VAD speech chunks joined (or all of it), and how to map times back."""

    samples: np.ndarray
    duration_s: float
    timestamps: SpeechTimestampsMap | None


def find_speech(samples: np.ndarray, *, vad: bool, min_speech_ms: int) -> Speech:
    """Keep the speech of float32 mono 16 kHz ``samples`` (Silero VAD, as faster-whisper's ``vad_filter``).

    Without ``vad`` everything is kept. ``min_speech_ms``: shorter speech pieces are dropped.
    """
    if not vad:
        return Speech(samples, samples.size / WHISPER_SAMPLE_RATE_HZ, None)
    chunks = get_speech_timestamps(samples, VadOptions(min_speech_duration_ms=min_speech_ms))
    joined = np.concatenate(collect_chunks(samples, chunks)[0]) if chunks else np.zeros(0, np.float32)
    return Speech(joined, joined.size / WHISPER_SAMPLE_RATE_HZ, SpeechTimestampsMap(chunks, WHISPER_SAMPLE_RATE_HZ))


def decode_short_window(
    model: WhisperModel, speech: Speech, *, language: str, beam_size: int, audio_duration_s: float
) -> Transcription | None:
    """Transcribe ``speech`` (at most one window, see the module docstring) or None when the result looks wrong.

    ``language``: ISO-639-1 code (``"en"`` for English-only models). Returns segments with times in the original
    audio (``audio_duration_s`` long). Blocks for the whole decode; call it from the model's worker thread.
    """
    window_samples = int(max(speech.duration_s + PAD_S, MIN_WINDOW_S) * WHISPER_SAMPLE_RATE_HZ)
    padded = np.concatenate([speech.samples, np.zeros(window_samples - speech.samples.size, np.float32)])
    features = model.feature_extractor(padded)
    features = features[:, : features.shape[-1] - features.shape[-1] % 2]  # the encoder's convolution has stride 2
    encoder_output = model.encode(np.ascontiguousarray(features))

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    prompt = list(tokenizer.sot_sequence)
    max_new_tokens = int(MAX_TOKENS_BASE + MAX_TOKENS_PER_S * speech.duration_s)
    result = model.model.generate(
        encoder_output,
        [prompt],
        beam_size=beam_size,
        # CTranslate2 4.8's Whisper stops after about half of (max_length - prompt) tokens (measured: 10 -> 5,
        # 40 -> 20), so ask for twice the cap and judge by the cap itself below
        max_length=len(prompt) + 2 * max_new_tokens,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, SUPPRESS_DEFAULT),
        max_initial_timestamp_index=50,  # faster-whisper's default: the first segment starts within 1 s
    )[0]
    tokens = result.sequences_ids[0]
    if len(tokens) >= max_new_tokens:
        logger.info("short window rejected (stopped at the cap of %d tokens)", max_new_tokens)
        return None
    pieces = _timed_pieces(tokens, tokenizer, speech.duration_s)
    text = "".join(tokenizer.decode(piece_tokens) for _, _, piece_tokens in pieces).strip()
    # CTranslate2's score is the log probability per token (length penalty 1); faster-whisper's avg_logprob
    # divides the sum by one more than the length (the end token)
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    compression_ratio = get_compression_ratio(text)
    rejection = _rejection(text, pieces[-1][1] if pieces else 0.0, speech.duration_s, avg_logprob, compression_ratio)
    if rejection is not None:
        logger.info("short window rejected (%s): %r", rejection, text)
        return None
    segments = []
    for index, (start_s, end_s, piece_tokens) in enumerate(pieces):
        if speech.timestamps is not None:
            start_s = speech.timestamps.get_original_time(start_s)
            end_s = speech.timestamps.get_original_time(end_s, is_end=True)
        segments.append(
            Segment(
                id=index,
                start_s=round(start_s, 2),
                end_s=round(min(end_s, audio_duration_s), 2),
                text=tokenizer.decode(piece_tokens).strip(),
                tokens=piece_tokens,
                avg_logprob=float(avg_logprob),
                compression_ratio=compression_ratio,
                no_speech_prob=float(result.no_speech_prob),
            )
        )
    return Transcription(text=text, language=language, duration_s=audio_duration_s, segments=segments)


def _timed_pieces(tokens: list[int], tokenizer: Tokenizer, speech_s: float) -> list[tuple[float, float, list[int]]]:
    """Split decoded tokens at timestamp pairs into ``(start_s, end_s, text tokens)``, cut where decoding ran on.

    A text run with no closing timestamp at the end (the decoder stopped mid-segment) ends at the speech's end. (A
    decode cut by the token cap never gets here: it is rejected first.)
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
        if not _append(pieces, (start_s, time_s, text_tokens), tokenizer, speech_s):
            return pieces
        start_s, text_tokens = None, []
    if text_tokens:
        if start_s is None:  # text straight after a closed segment starts where that one ended
            start_s = pieces[-1][1] if pieces else 0.0
        _append(pieces, (start_s, max(speech_s, start_s), text_tokens), tokenizer, speech_s)
    return pieces


def _append(
    pieces: list[tuple[float, float, list[int]]],
    piece: tuple[float, float, list[int]],
    tokenizer: Tokenizer,
    speech_s: float,
) -> bool:
    """Append ``piece`` (its end capped at the speech's) unless it starts after the speech or repeats the piece
    before it; False when it did not: the decoder ran on, and nothing after it counts."""
    start_s, end_s, text_tokens = piece
    text = tokenizer.decode(text_tokens).strip()
    if start_s >= speech_s:
        return False
    if pieces and tokenizer.decode(pieces[-1][2]).strip().lower() == text.lower():
        return False
    if text:
        pieces.append((start_s, min(end_s, speech_s), text_tokens))
    return True


def _rejection(
    text: str, covered_s: float, speech_s: float, avg_logprob: float, compression_ratio: float
) -> str | None:
    """Why a short-window result must be decoded again with 30 s windows, or None when it passes every check."""
    if not text:
        return "no text"
    if compression_ratio > MAX_COMPRESSION_RATIO:
        return f"compression ratio {compression_ratio:.2f}"
    if avg_logprob < MIN_AVG_LOGPROB:
        return f"average log probability {avg_logprob:.2f}"
    if covered_s < speech_s - MAX_UNCOVERED_S:
        return f"segments end at {covered_s:.2f} s of {speech_s:.2f} s"
    if _repeats_a_phrase(text):
        return "a phrase repeated back to back"
    return None


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
