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
from stt_service.short_window import (
    Check,
    ShortWindowResult,
    Speech,
    _repeats_a_phrase,
    _timed_pieces,
    ctranslate2_max_length,
    failed_checks,
    short_window_applies,
)
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
    # no bound of its own: one word of a five-word clip is 0.2 (tiny.en hears "and so am I" on some CPUs, both ways);
    # test_wer_corpus bounds the word error rate over all words
    assert word_error_rate(reference, short.text) <= word_error_rate(reference, long.text)
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
    decode = whisper_engine.decode_short_window

    def doubtful(*args: object, **kwargs: object) -> ShortWindowResult:
        result = decode(*args, **kwargs)  # type: ignore[arg-type]
        return ShortWindowResult(result.transcription, (Check.AVG_LOGPROB,), result.details)

    monkeypatch.setattr(whisper_engine, "decode_short_window", doubtful)
    before = transcriber.short_window_outcomes[Check.AVG_LOGPROB]
    with caplog.at_level(logging.INFO, logger=whisper_engine.__name__):
        result = transcribe(transcriber, jfk_samples)
    assert "failed average log probability" in caplog.text and "decoding 30 s windows" in caplog.text
    assert transcriber.short_window_outcomes[Check.AVG_LOGPROB] == before + 1
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


def test_a_repeated_segment_is_kept_and_fails_its_check(tokenizer) -> None:  # type: ignore[no-untyped-def]
    phrase = words(tokenizer, " And so my fellow Americans.")
    tokens = [at(tokenizer, 0), *phrase, at(tokenizer, 2), at(tokenizer, 2), *phrase, at(tokenizer, 2.3)]
    pieces = texts(tokenizer, _timed_pieces(tokens, tokenizer, 2.4))
    assert pieces == [
        (0.0, 2.0, "And so my fellow Americans."),
        (2.0, pytest.approx(2.3), "And so my fellow Americans."),
    ]
    checks = failed_checks([text for _, _, text in pieces], **PASSING | {"covered_s": 2.3, "speech_s": 2.4})
    assert checks == (Check.REPEATED_SEGMENT,)


def test_a_repeated_segment_costs_time_never_words(
    transcriber: WhisperTranscriber,
    jfk_samples: np.ndarray,
    jfk_transcript: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the decoder says its first segment twice: the words after it must still come back, from 30 s windows
    timed_pieces = short_window._timed_pieces

    def first_said_twice(*args: object) -> list[tuple[float, float, list[int]]]:
        pieces = timed_pieces(*args)  # type: ignore[arg-type]
        return [pieces[0], pieces[0], *pieces[1:]]

    monkeypatch.setattr(short_window, "_timed_pieces", first_said_twice)
    with caplog.at_level(logging.INFO, logger=whisper_engine.__name__):
        result = transcribe(transcriber, jfk_samples)
    assert "failed repeated segment" in caplog.text
    assert word_error_rate(jfk_transcript, result.text) < WER_BOUND


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
    with caplog.at_level(logging.INFO, logger=whisper_engine.__name__):
        result = transcribe(transcriber, jfk_samples)
    assert "failed token cap" in caplog.text and "decoding 30 s windows" in caplog.text
    assert word_error_rate(jfk_transcript, result.text) < WER_BOUND


# --- the one predicate, the checks, the VAD's clips and the CTranslate2 quirk -------------------------------------

PASSING = {
    "n_tokens": 20,
    "max_new_tokens": 40,
    "avg_logprob": -0.3,
    "compression_ratio": 1.1,
    "covered_s": 3.0,
    "speech_s": 3.0,
}
"""Values of a decoding that passes every check."""


@pytest.mark.parametrize(
    ("change", "applies"),
    [
        ({}, True),
        ({"speech_s": 20.0}, True),
        ({"speech_s": 20.5}, False),  # longer than the setting
        ({"speech_s": 0.0}, False),  # nothing to decode
        ({"max_s": 0.0}, False),  # switched off
        ({"language": None}, False),  # a multilingual model must detect the language first
        ({"temperature": 0.2}, False),
        ({"prompt": "Kennedy"}, False),
        ({"word_timestamps": True}, False),
    ],
)
def test_one_predicate_decides_when_the_short_window_applies(change: dict[str, object], applies: bool) -> None:
    request = {
        "max_s": 20.0,
        "speech_s": 5.0,
        "language": "en",
        "temperature": 0.0,
        "prompt": None,
        "word_timestamps": False,
    }
    assert short_window_applies(**(request | change)) is applies  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("texts", "change", "failed"),
    [
        ([" Go forward 10 meters."], {}, ()),
        ([" Go forward 10 meters."], {"avg_logprob": -1.01}, ()),  # a clear command said quietly still passes
        ([" Go forward 10 meters."], {"avg_logprob": -2.0}, (Check.AVG_LOGPROB,)),
        ([" Go forward 10 meters."], {"n_tokens": 40}, (Check.TOKEN_CAP,)),
        ([""], {}, (Check.NO_TEXT,)),
        ([" Go forward 10 meters."], {"compression_ratio": 2.5}, (Check.COMPRESSION_RATIO,)),
        ([" Go forward."], {"covered_s": 0.5}, (Check.UNCOVERED_SPEECH,)),  # 2.5 s of the 3 s left unsaid
        ([" Go forward. Go forward. Go forward."], {}, (Check.REPEATED_PHRASE,)),
        ([" Go forward.", " go forward."], {"n_tokens": 40}, (Check.TOKEN_CAP, Check.REPEATED_SEGMENT)),
    ],
)
def test_every_failed_check_is_named(texts: list[str], change: dict[str, float], failed: tuple[Check, ...]) -> None:
    assert failed_checks(texts, **(PASSING | change)) == failed  # type: ignore[arg-type]


def test_a_clear_short_command_of_another_speaker_is_accepted(
    transcriber: WhisperTranscriber, caplog: pytest.LogCaptureFixture
) -> None:
    samples = decode_audio((DATA / "wer" / "ps_goforward.wav").read_bytes())
    with caplog.at_level(logging.DEBUG, logger=whisper_engine.__name__):
        result = transcribe(transcriber, samples)
    assert "decoded in one window" in caplog.text
    assert word_error_rate("go forward ten meters", result.text) == 0.0


def test_vad_chunks_are_packed_into_clips_of_at_most_30_s() -> None:
    second = 16_000
    chunks = [
        {"start": 1 * second, "end": 5 * second},
        {"start": 8 * second, "end": 20 * second},
        {"start": 23 * second, "end": 31 * second},  # 30 s from the first start: same clip
        {"start": 34 * second, "end": 40 * second},  # 39 s from it: a new clip
    ]
    speech = Speech(np.zeros(0, np.float32), 30.0, chunks)
    assert speech.clip_timestamps_s == [1.0, 31.0, 34.0, 40.0]
    assert Speech(np.zeros(16_000, np.float32), 1.0, None).clip_timestamps_s == "0"  # no VAD: all of it


def test_the_fallback_hears_only_what_the_vad_found(
    transcriber: WhisperTranscriber, jfk_samples: np.ndarray, jfk_transcript: str
) -> None:
    # speech, 10 s of faint noise the VAD rejects, speech: two clips for the 30 s fallback, times in the original
    rng = np.random.default_rng(0)
    hum = (0.002 * rng.standard_normal(10 * 16_000)).astype(np.float32)
    samples = np.concatenate([jfk_samples, hum, jfk_samples])
    result = transcribe(transcriber, samples, word_timestamps=True)  # the short window does no word timestamps
    assert word_error_rate(f"{jfk_transcript} {jfk_transcript}", result.text) < WER_BOUND
    jfk_s, total_s = jfk_samples.size / 16_000, samples.size / 16_000
    assert all(segment.end_s <= jfk_s or segment.start_s >= jfk_s + 9.0 for segment in result.segments)
    assert result.segments[-1].end_s <= total_s
    assert any(segment.start_s >= jfk_s + 9.0 for segment in result.segments)


@pytest.mark.parametrize("max_new_tokens", [5, 10, 20])
def test_ctranslate2_whisper_stops_at_half_of_max_length(
    transcriber: WhisperTranscriber, jfk_samples: np.ndarray, max_new_tokens: int
) -> None:
    """The quirk ``ctranslate2_max_length`` works around: if this fails, the installed CTranslate2 changed how
    ``Whisper.generate`` counts ``max_length``; measure it again and update (or drop) the helper."""
    from faster_whisper.tokenizer import Tokenizer

    model = transcriber._model
    encoder_output = model.encode(model.feature_extractor(jfk_samples))  # 11 s of speech: about 27 tokens
    prompt = list(Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en").sot_sequence)

    def generated(max_length: int) -> int:
        result = model.model.generate(encoder_output, [prompt], beam_size=1, max_length=max_length)[0]
        return len(result.sequences_ids[0])

    # faster-whisper assumes max_length = prompt + new tokens; CTranslate2 stops at half of max_length
    assert generated(len(prompt) + max_new_tokens) == (len(prompt) + max_new_tokens) // 2
    assert generated(ctranslate2_max_length(len(prompt), max_new_tokens)) == max_new_tokens
    with pytest.raises(ValueError, match="positions"):
        ctranslate2_max_length(len(prompt), 300)
