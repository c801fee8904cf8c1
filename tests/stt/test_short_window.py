"""Short-window decoding (``stt_service.short_window``) against the standard 30 s windows, with the real tiny.en."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from stt_helpers import WER_BOUND, word_error_rate

from service_common.audio import decode_audio
from stt_service import short_window, whisper_engine
from stt_service.config import Settings
from stt_service.short_window import _repeats_a_phrase, _timed_pieces
from stt_service.whisper_engine import WhisperTranscriber

DATA = Path(__file__).resolve().parents[1] / "data"
CLIPS = sorted(path.stem for path in DATA.glob("*.wav"))


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> WhisperTranscriber:
    """The default settings: short windows on."""
    settings = Settings(cache_dir=tmp_path_factory.mktemp("stt-cache"))
    assert settings.short_window_max_s > 0
    engine = WhisperTranscriber.from_settings(settings)
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def standard(tmp_path_factory: pytest.TempPathFactory) -> WhisperTranscriber:
    """The same model with short windows off: faster-whisper's 30 s windows."""
    return WhisperTranscriber.from_settings(
        Settings(cache_dir=tmp_path_factory.mktemp("stt-cache"), short_window_max_s=0)
    )


def transcribe(engine: WhisperTranscriber, samples: np.ndarray, **options: object):  # type: ignore[no-untyped-def]
    return engine.transcribe(
        samples,
        language=options.get("language"),  # type: ignore[arg-type]
        prompt=options.get("prompt"),  # type: ignore[arg-type]
        temperature=options.get("temperature", 0.0),  # type: ignore[arg-type]
        word_timestamps=options.get("word_timestamps", False),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("clip", CLIPS)
def test_short_window_hears_every_clip_as_well_as_30_s_windows(
    clip: str, transcriber: WhisperTranscriber, standard: WhisperTranscriber, caplog: pytest.LogCaptureFixture
) -> None:
    samples = decode_audio((DATA / f"{clip}.wav").read_bytes())
    reference = (DATA / f"{clip}.txt").read_text(encoding="utf-8")
    with caplog.at_level(logging.DEBUG, logger=whisper_engine.__name__):
        short = transcribe(transcriber, samples)
    assert "decoded in one window" in caplog.text  # the short window was used, not the fallback
    long = transcribe(standard, samples)
    print(f"{clip}: short {short.text!r}, 30 s {long.text!r}")
    assert word_error_rate(reference, short.text) <= word_error_rate(reference, long.text)
    assert word_error_rate(reference, short.text) < WER_BOUND
    duration_s = samples.size / 16_000
    assert short.duration_s == pytest.approx(duration_s)
    assert short.language == "en"
    assert short.segments, "a transcript needs at least one segment"
    for earlier, later in zip(short.segments, short.segments[1:], strict=False):
        assert earlier.end_s <= later.start_s + 0.02
    for segment in short.segments:
        assert 0.0 <= segment.start_s < segment.end_s <= duration_s
        assert segment.text and segment.tokens


def test_silence_is_empty_without_decoding(transcriber: WhisperTranscriber) -> None:
    result = transcribe(transcriber, np.zeros(3 * 16_000, np.float32))
    assert result.text == ""
    assert result.segments == []
    assert result.duration_s == pytest.approx(3.0)


def test_speech_longer_than_the_limit_uses_30_s_windows(
    tmp_path: Path, jfk_samples: np.ndarray, jfk_transcript: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = WhisperTranscriber.from_settings(Settings(cache_dir=tmp_path, short_window_max_s=5.0))
    with caplog.at_level(logging.DEBUG, logger=whisper_engine.__name__):
        result = transcribe(engine, jfk_samples)  # 11 s of speech
    assert "decoded in one window" not in caplog.text
    assert word_error_rate(jfk_transcript, result.text) < WER_BOUND


@pytest.mark.parametrize(
    "options",
    [{"word_timestamps": True}, {"prompt": "Kennedy"}, {"temperature": 0.4}],
    ids=["word_timestamps", "prompt", "temperature"],
)
def test_requests_the_short_window_cannot_serve_use_30_s_windows(
    transcriber: WhisperTranscriber,
    jfk_samples: np.ndarray,
    jfk_transcript: str,
    options: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger=whisper_engine.__name__):
        result = transcribe(transcriber, jfk_samples, **options)
    assert "decoded in one window" not in caplog.text
    assert word_error_rate(jfk_transcript, result.text) < WER_BOUND


def test_a_rejected_short_window_is_decoded_again_the_standard_way(
    transcriber: WhisperTranscriber,
    jfk_samples: np.ndarray,
    jfk_transcript: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(whisper_engine, "decode_short_window", lambda *args, **kwargs: None)
    with caplog.at_level(logging.INFO, logger=whisper_engine.__name__):
        result = transcribe(transcriber, jfk_samples)
    assert "failed its checks; decoding 30 s windows" in caplog.text
    assert word_error_rate(jfk_transcript, result.text) < WER_BOUND
    assert result.segments[0].seek == 0 and len(result.segments[0].words) == 0


# --- how decoded tokens are cut: the real tokenizer, hand-written token sequences ---------------------------------


@pytest.fixture(scope="module")
def tokenizer(transcriber: WhisperTranscriber):  # type: ignore[no-untyped-def]
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(transcriber._model.hf_tokenizer, False, task="transcribe", language="en")


def at(tokenizer, seconds: float) -> int:  # type: ignore[no-untyped-def]
    return int(tokenizer.timestamp_begin + round(seconds / 0.02))


def words(tokenizer, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    return list(tokenizer.encode(text))


def texts(tokenizer, pieces) -> list[tuple[float, float, str]]:  # type: ignore[no-untyped-def]
    return [(start, end, tokenizer.decode(tokens).strip()) for start, end, tokens in pieces]


def test_a_repeated_segment_ends_the_transcript(tokenizer) -> None:  # type: ignore[no-untyped-def]
    phrase = words(tokenizer, " And so my fellow Americans.")
    tokens = [at(tokenizer, 0), *phrase, at(tokenizer, 2), at(tokenizer, 2), *phrase, at(tokenizer, 2.3)]
    assert texts(tokenizer, _timed_pieces(tokens, tokenizer, 2.4)) == [(0.0, 2.0, "And so my fellow Americans.")]


def test_a_segment_after_the_speech_ends_the_transcript(tokenizer) -> None:  # type: ignore[no-untyped-def]
    first, second = words(tokenizer, " Ask not"), words(tokenizer, " what your country")
    tokens = [at(tokenizer, 0), *first, at(tokenizer, 3.4), at(tokenizer, 3.4), *second, at(tokenizer, 5)]
    # the window holds silence after the speech, so a segment may end in it: capped at the speech's end
    assert texts(tokenizer, _timed_pieces(tokens, tokenizer, 3.0)) == [(0.0, 3.0, "Ask not")]


@pytest.mark.parametrize(
    ("text", "loops"),
    [
        ("Go forward 10 meters. Go forward 10 meters. Go forward 10 meters.", True),
        ("10 of clubs 10 of clubs 10 of clubs", True),
        ("Ask what you can do for your country. Ask what you can do for your country.", False),  # said twice
        ("Ask not what your country can do for you, ask what you can do for your country.", False),
        ("Bye bye, see you.", False),  # one word twice is speech; loops of one word show in the compression ratio
    ],
)
def test_back_to_back_phrases_are_a_loop(text: str, loops: bool) -> None:
    assert _repeats_a_phrase(text) is loops


def test_an_open_tail_ends_at_the_speech(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tokens = [at(tokenizer, 0), *words(tokenizer, " Ask not"), at(tokenizer, 1), *words(tokenizer, " what you")]
    assert texts(tokenizer, _timed_pieces(tokens, tokenizer, 2.0)) == [
        (0.0, 1.0, "Ask not"),
        (1.0, 2.0, "what you"),
    ]


def test_a_decode_cut_by_the_token_cap_is_decoded_again_with_30_s_windows(
    transcriber: WhisperTranscriber,
    jfk_samples: np.ndarray,
    jfk_transcript: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a cap of 5 tokens for 11 s of speech: the decoder is cut mid-sentence, and its open tail is not trusted
    monkeypatch.setattr(short_window, "MAX_TOKENS_BASE", 5)
    monkeypatch.setattr(short_window, "MAX_TOKENS_PER_S", 0)
    with (
        caplog.at_level(logging.INFO, logger=short_window.__name__),
        caplog.at_level(logging.INFO, logger=whisper_engine.__name__),
    ):
        result = transcribe(transcriber, jfk_samples)
    assert "stopped at the cap of 5 tokens" in caplog.text
    assert "failed its checks; decoding 30 s windows" in caplog.text
    assert word_error_rate(jfk_transcript, result.text) < WER_BOUND
