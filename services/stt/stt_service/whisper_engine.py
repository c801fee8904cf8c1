"""faster-whisper (CTranslate2) backend of the ``Transcriber`` protocol; with ``short_window`` the only modules
importing faster_whisper."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Generator, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from service_common.audio import WHISPER_SAMPLE_RATE_HZ
from service_common.errors import InferenceError
from service_common.health import Readiness
from service_common.hub import fetch_snapshot, hub_cache_dir

from .config import Settings
from .embedded import ModelSource, resolve_model, whisper_cache_dir
from .engine import AudioDecoded, Segment, SegmentDecoded, StreamEvent, Transcription, Word
from .long_form import Piece, iter_pieces
from .short_window import (
    Check,
    Speech,
    decode_short_window,
    find_speech,
    pack_clips_s,
    short_window_applies,
)

if TYPE_CHECKING:
    from faster_whisper.transcribe import Segment as FasterWhisperSegment
    from faster_whisper.transcribe import TranscriptionInfo

logger = logging.getLogger(__name__)

WARM_UP_SECONDS = 1.0
WARM_UP_MAX_TOKENS = 8
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
VAD_MIN_SPEECH_MS = 250
"""Speech the VAD finds in pieces shorter than this (ms) is dropped: Whisper turns a 0.1 s blip (a click, a cut-off
syllable) into "Thank you." rather than nothing, and no word is shorter than a quarter of a second."""
"""Temperatures tried in turn for a window that decodes badly when the request asks for temperature 0."""
MEL_FRAMES_PER_S = 100
"""Whisper's mel frames are 10 ms apart: the unit of a segment's ``seek``."""
FASTER_WHISPER_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
"""What faster-whisper's own ``download_model`` fetches from a model repo."""


class WhisperTranscriber:
    """Whisper through faster-whisper; int8 on CPU by default. Not thread-safe: call it from one worker thread.

    Decoding choices, and why:
    - ``temperature=0`` follows OpenAI's semantics: decode deterministically, and re-decode a window at
      0.2, 0.4, ... 1.0 only when it comes out as a repetition loop or with a very low log probability (no
      cost on normal speech; it removes loops such as base + beam 5 on silence). ``temperature>0`` is used as is.
    - ``condition_on_previous_text=False``: a misheard window does not derail the next ones.
    - optional Silero VAD (``vad_filter``): silence is cut before Whisper sees it, so a silent recording costs
      milliseconds instead of a full 30 s window and cannot be hallucinated into text; timestamps still refer
      to the original audio.
    - speech up to ``short_window_max_s`` long is decoded in one window cut to its length (``short_window``):
      the encoder's cost falls about tenfold for a 5 s question. Only for temperature 0 without a prompt or word
      timestamps, in a known language (given, or the model is English-only); a result that fails a check there
      is decoded again with 30 s windows (``short_window`` has the one predicate and the checks).
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        download_root: Path,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        beam_size: int = 1,
        vad_filter: bool = True,
        short_window_max_s: float = 0.0,
    ) -> None:
        """Load the model (seconds; a hub id is downloaded into ``download_root`` first).

        Raises whatever faster-whisper raises for a missing or broken model (OSError, RuntimeError, ValueError).
        """
        from faster_whisper import WhisperModel

        started = time.perf_counter()
        self._model = WhisperModel(
            source.location,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            download_root=str(download_root),
        )
        self.model_id = source.name
        self.owned_by = source.owned_by
        self.device = device
        self.supported_languages = frozenset(self._model.supported_languages)
        self._beam_size = beam_size
        self._vad_filter = vad_filter
        self._short_window_max_s = short_window_max_s
        self.short_window_outcomes: Counter[Check | str] = Counter()
        """Short-window decodings: ``"accepted"`` or each ``Check`` a result failed (then decoded again)."""
        logger.info(
            "loaded Whisper %r from %s in %.2f s (%s, %s, cpu_threads=%d, beam_size=%d, vad=%s, multilingual=%s, "
            "short window up to %.1f s)",
            source.name,
            source.location,
            time.perf_counter() - started,
            device,
            compute_type,
            cpu_threads,
            beam_size,
            vad_filter,
            len(self.supported_languages) > 1,
            short_window_max_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings, readiness: Readiness | None = None) -> WhisperTranscriber:
        """Resolve ``settings.model`` (embedded packages first, see ``embedded``) and load it.

        A hub model is downloaded once first (``download_model``), reporting its progress to ``readiness``.
        """
        source = resolve_model(settings.model, settings.cache_dir)
        if source.hub:
            source = replace(source, location=str(download_model(source.location, settings.cache_dir, readiness)))
        return cls(
            source,
            download_root=whisper_cache_dir(settings.cache_dir),
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            beam_size=settings.beam_size,
            vad_filter=settings.vad_filter,
            short_window_max_s=settings.short_window_max_s,
        )

    def transcribe(
        self,
        samples: np.ndarray,
        *,
        language: str | None,
        prompt: str | None,
        temperature: float,
        word_timestamps: bool,
    ) -> Transcription:
        """See ``Transcriber.transcribe``: float32 mono 16 kHz samples in, the whole transcription out.

        The VAD runs once (``find_speech``); its chunks feed the short window when ``short_window_applies`` and the
        30 s windows otherwise, or when a short-window result fails a ``Check`` (counted in
        ``short_window_outcomes``).
        """
        duration_s = samples.size / WHISPER_SAMPLE_RATE_HZ
        known_language = language or (None if self._multilingual else "en")
        short_window: Literal["fell_back"] | None = None
        try:
            speech = find_speech(samples, vad=self._vad_filter, min_speech_ms=VAD_MIN_SPEECH_MS)
            if speech.duration_s == 0.0:  # nothing to hear, nor a language to detect
                return Transcription(text="", language=known_language or "en", duration_s=duration_s, segments=[])
            if short_window_applies(
                max_s=self._short_window_max_s,
                speech_s=speech.duration_s,
                language=known_language,
                temperature=temperature,
                prompt=prompt,
                word_timestamps=word_timestamps,
            ):
                assert known_language is not None  # short_window_applies checked it
                short = decode_short_window(
                    self._model, speech, language=known_language, beam_size=self._beam_size, audio_duration_s=duration_s
                )
                self.short_window_outcomes.update(short.failed or ["accepted"])
                if short.accepted:
                    logger.debug("short window: %.2f s of speech decoded in one window", speech.duration_s)
                    return replace(short.transcription, short_window="accepted")
                short_window = "fell_back"
                logger.info(
                    "short-window result of %.1f s of speech failed %s (%s); decoding 30 s windows",
                    speech.duration_s,
                    ", ".join(short.failed),
                    short.details,
                )
            segments, info = self._decode(
                samples,
                language=language,
                prompt=prompt,
                temperature=temperature,
                word_timestamps=word_timestamps,
                clip_timestamps=speech.clip_timestamps_s,
            )
            # faster-whisper decodes lazily: the work happens while iterating, so iterate here, on the
            # caller's (worker) thread, and never hand the generator to the event loop.
            raw_segments = list(segments)
        except (RuntimeError, ValueError) as err:
            raise InferenceError(f"Whisper failed: {err}") from err
        return Transcription(
            # joined as decoded: Whisper puts the spaces between words itself (none for Chinese or Japanese)
            text="".join(segment.text for segment in raw_segments).strip(),
            language=info.language,
            duration_s=duration_s,
            segments=[_segment(index, segment) for index, segment in enumerate(raw_segments)],
            short_window=short_window,
        )

    def transcribe_stream(
        self,
        audio: Iterable[np.ndarray],
        *,
        language: str | None,
        prompt: str | None,
        temperature: float,
        word_timestamps: bool,
    ) -> Generator[StreamEvent, None, None]:
        """See ``Transcriber.transcribe_stream``: the recording is cut into pieces of about a minute ending in
        silence (``long_form``), and each piece's speech decoded as ``transcribe`` decodes with 30 s windows: VAD
        chunks packed into clips of up to 30 s, gaps kept (``pack_clips_s``), each clip decoded on its own, so
        Whisper's features cover one clip at a time, not the whole piece (measured: the service's peak memory on
        an hour fell from 397 to 363 MB). No short window: pieces are not questions. ``prompt`` conditions the
        first window of every clip.

        A piece without speech costs only its VAD (about 3 ms per second of audio). ``language=None`` on a
        multilingual model is detected on the first piece with speech and kept for the rest, so the transcript does
        not switch language on a stretch of noise. With the VAD off (``vad_filter``) the VAD still chooses where
        pieces end, and Whisper hears all of each piece.
        """
        known_language = language or (None if self._multilingual else "en")
        segment_id = 0
        has_text = False
        audio_iterator = iter(audio)
        try:
            for piece in iter_pieces(audio_iterator, min_speech_ms=VAD_MIN_SPEECH_MS):
                for clip_start_s, clip_end_s in _clips_s(piece, vad=self._vad_filter):
                    offset_s = piece.start_s + clip_start_s
                    clip = piece.samples[
                        round(clip_start_s * WHISPER_SAMPLE_RATE_HZ) : round(clip_end_s * WHISPER_SAMPLE_RATE_HZ)
                    ]
                    try:
                        segments, info = self._decode(
                            clip,
                            language=known_language,
                            prompt=prompt,
                            temperature=temperature,
                            word_timestamps=word_timestamps,
                        )
                        known_language = info.language
                        for raw in segments:  # decoded lazily: each is handed on as soon as it is decoded
                            segment = _segment(segment_id, raw, offset_s=offset_s)
                            segment_id += 1
                            space = " " if has_text and raw.text[:1].isspace() else ""
                            has_text = has_text or bool(segment.text)
                            yield SegmentDecoded(segment, space + segment.text if segment.text else "")
                    except (RuntimeError, ValueError) as err:
                        raise InferenceError(f"Whisper failed at {offset_s:.1f} s: {err}") from err
                yield AudioDecoded(piece.end_s, known_language)
        finally:
            close = getattr(audio_iterator, "close", None)
            if close is not None:  # the decoder, and the file it reads, stop now rather than when collected
                close()

    def _decode(
        self,
        samples: np.ndarray,
        *,
        language: str | None,
        prompt: str | None,
        temperature: float,
        word_timestamps: bool,
        **options: Any,
    ) -> tuple[Iterable[FasterWhisperSegment], TranscriptionInfo]:
        """faster-whisper's ``transcribe`` with this service's decoding choices (see the class docstring): OpenAI's
        temperature fallback at 0, no conditioning on previous text; ``options`` pass through (``clip_timestamps``).
        The segments are decoded lazily, while the caller iterates."""
        return self._model.transcribe(
            samples,
            language=language,
            initial_prompt=prompt or None,
            temperature=FALLBACK_TEMPERATURES if temperature == 0.0 else temperature,
            beam_size=self._beam_size,
            condition_on_previous_text=False,
            word_timestamps=word_timestamps,
            **options,
        )

    @property
    def _multilingual(self) -> bool:
        return len(self.supported_languages) > 1

    def warm_up(self) -> None:
        """Decode 1 s of silence (a few tokens at most: silence can loop) with the VAD off, then load the VAD."""
        started = time.perf_counter()
        silence = np.zeros(int(WARM_UP_SECONDS * WHISPER_SAMPLE_RATE_HZ), dtype=np.float32)
        segments, _ = self._model.transcribe(
            silence, language="en", beam_size=self._beam_size, temperature=0.0, max_new_tokens=WARM_UP_MAX_TOKENS
        )
        list(segments)
        if self._vad_filter:
            list(self._model.transcribe(silence, language="en", vad_filter=True)[0])
        if self._short_window_max_s > 0:
            # the VAD would drop silence before the short window sees it: hand it over directly
            language = "en" if "en" in self.supported_languages else sorted(self.supported_languages)[0]
            speech = Speech(silence, WARM_UP_SECONDS, None)
            decode_short_window(
                self._model, speech, language=language, beam_size=self._beam_size, audio_duration_s=WARM_UP_SECONDS
            )
        logger.info(
            "warm-up transcription of %.0f s of silence took %.2f s", WARM_UP_SECONDS, time.perf_counter() - started
        )


def download_model(name: str, cache_dir: Path, readiness: Readiness | None = None) -> Path:
    """The CTranslate2 directory of hub model ``name``, downloaded once into the hub cache under ``cache_dir``.

    ``name`` is a repo id (``Systran/faster-whisper-small``) or a faster-whisper size (``small``, mapped to its repo
    as faster-whisper does). Later starts load the cached copy without the network (see ``service_common.hub``).
    Not faster-whisper's own ``download_model``: it passes huggingface_hub a silent ``tqdm_class``, which would
    leave ``/ready`` without progress; this calls ``snapshot_download`` with the same file patterns instead.
    Raises ValueError for an unknown size and HubDownloadError when the model is neither cached nor downloadable.
    """
    from faster_whisper.utils import _MODELS, available_models  # its size -> repo table; not public API

    repo_id = name if "/" in name else _MODELS.get(name)
    if repo_id is None:
        raise ValueError(
            f"STT_MODEL={name!r} is not a faster-whisper size ({', '.join(available_models())}), "
            "a hub id (owner/name) or a local directory"
        )
    return fetch_snapshot(
        repo_id,
        cache_dir=hub_cache_dir(cache_dir),
        what="STT_MODEL",
        allow_patterns=FASTER_WHISPER_FILES,
        complete=_is_ctranslate2_model,
        readiness=readiness,
    )


def _is_ctranslate2_model(directory: Path) -> bool:
    return (directory / "model.bin").is_file() and (directory / "config.json").is_file()


def _clips_s(piece: Piece, *, vad: bool) -> list[tuple[float, float]]:
    """``(start, end)`` in seconds of ``piece`` of the clips Whisper should hear: its speech packed into clips of up to
    30 s (none for a piece without speech), or with the VAD off all of it."""
    if not vad:
        return [(0.0, piece.end_s - piece.start_s)]
    bounds = pack_clips_s(piece.speech) if piece.speech else []
    return list(zip(bounds[::2], bounds[1::2], strict=True))


def _segment(index: int, segment: FasterWhisperSegment, *, offset_s: float = 0.0) -> Segment:
    """faster-whisper's segment (numpy floats, optional words) -> ours (plain floats, stripped text), its times
    moved by ``offset_s`` (where the audio it was decoded from starts in the recording)."""
    return Segment(
        id=index,
        start_s=offset_s + float(segment.start),
        end_s=offset_s + float(segment.end),
        text=segment.text.strip(),
        seek=int(segment.seek) + round(offset_s * MEL_FRAMES_PER_S),
        tokens=[int(token) for token in segment.tokens],
        temperature=float(segment.temperature or 0.0),
        avg_logprob=float(segment.avg_logprob),
        compression_ratio=float(segment.compression_ratio),
        no_speech_prob=float(segment.no_speech_prob),
        words=[
            Word(word.word.strip(), offset_s + float(word.start), offset_s + float(word.end), float(word.probability))
            for word in segment.words or []
        ],
    )
