"""ParlerSynthesizer on the tiny random model: loading, whole-sentence and streamed generation, stopping, errors."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tts_service.config import Settings
from tts_service.parler_engine import (
    OPENAI_VOICE_SPEAKERS,
    SPEAKERS,
    ParlerSynthesizer,
    pace_phrase,
    resolve_device,
    resolve_pretrained,
)
from tts_service.schemas import OPENAI_VOICES

from .conftest import MAX_NEW_TOKENS, assert_audio
from .tiny_parler import FRAME_RATE_HZ, MIN_NEW_TOKENS, NUM_CODEBOOKS, SAMPLE_RATE_HZ

HOP = SAMPLE_RATE_HZ // FRAME_RATE_HZ  # 512 samples per codec frame
# Parler delays codebook k by k steps, so n generation steps give n - (num_codebooks - 1) whole frames.
MIN_SAMPLES = (MIN_NEW_TOKENS - NUM_CODEBOOKS + 1) * HOP
MAX_SAMPLES = MAX_NEW_TOKENS * HOP


def test_the_model_loads_like_a_real_checkpoint(engine: ParlerSynthesizer, tiny_model_dir: Path) -> None:
    assert engine.sample_rate_hz == SAMPLE_RATE_HZ
    assert engine.frame_rate_hz == FRAME_RATE_HZ
    assert (engine.model_id, engine.owned_by) == (str(tiny_model_dir), "local")
    # 0.12 s x 86 frames/s rounds to 10 frames, which is also the streamer's minimum for 9 codebooks
    assert engine.play_steps == NUM_CODEBOOKS + 1


def test_voices_are_the_named_speakers_default_first(engine: ParlerSynthesizer) -> None:
    voices = engine.voices()
    assert voices[0].id == "jon"
    assert {voice.id for voice in voices} == {speaker.id for speaker in SPEAKERS}
    assert {(voice.engine, voice.sample_rate_hz, voice.language) for voice in voices} == {
        ("parler", SAMPLE_RATE_HZ, "en")
    }


def test_every_openai_name_maps_to_a_speaker(engine: ParlerSynthesizer) -> None:
    aliases = engine.voice_aliases()
    assert set(aliases) == set(OPENAI_VOICES) == set(OPENAI_VOICE_SPEAKERS)
    assert set(aliases.values()) <= {voice.id for voice in engine.voices()}
    assert aliases["alloy"] == engine.default_voice


def test_the_description_is_the_speakers_unless_instructions_are_given(engine: ParlerSynthesizer) -> None:
    assert engine.description("jon").startswith("Jon's voice is monotone")
    assert engine.description("laura").startswith("Laura")
    instructions = "A female speaker whispers slowly in a quiet room."
    assert engine.description("jon", instructions) == instructions
    assert engine.description("jon", "   ") == engine.description("jon")
    assert engine.description("jon", speed=2.0).endswith("The speaker talks very fast.")
    with pytest.raises(ValueError, match="unknown voice"):
        engine.description("bob", instructions)


@pytest.mark.parametrize(
    ("speed", "phrase"), [(0.25, "very slowly"), (0.8, "slowly"), (1.0, ""), (1.1, ""), (1.3, "fast"), (4.0, "very")]
)
def test_speed_becomes_a_pace_hint(speed: float, phrase: str) -> None:
    assert phrase in pace_phrase(speed)
    assert (pace_phrase(speed) == "") == (phrase == "")


def no_generation_running() -> bool:
    """No helper thread of ``synthesize`` is still running the model's ``generate``."""
    return not any(thread.name == "parler-generate" for thread in threading.enumerate())


def test_synthesize_streams_a_sentence_in_several_chunks(engine: ParlerSynthesizer) -> None:
    # Each input must go through its own tokenizer: the description ids would overflow the prompt table of the
    # tiny model and vice versa, so this call also checks that the two are not swapped.
    chunks = list(engine.synthesize("Hello there!", voice="gary"))
    assert len(chunks) >= 2  # at least MIN_NEW_TOKENS steps, a chunk every 10
    for chunk in chunks:
        assert_audio(chunk)
    total = sum(chunk.size for chunk in chunks)
    assert total % HOP == 0  # the streamer hands out every decoded sample exactly once
    assert MIN_SAMPLES <= total <= MAX_SAMPLES
    assert no_generation_running()


def test_each_sentence_is_generated_on_its_own(engine: ParlerSynthesizer) -> None:
    chunks = list(engine.synthesize("One. Two.", voice="jon", instructions="A calm male voice."))
    total = sum(chunk.size for chunk in chunks)
    assert 2 * MIN_SAMPLES <= total <= 2 * MAX_SAMPLES


def test_closing_the_stream_stops_generation_at_once(
    engine: ParlerSynthesizer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "max_new_tokens", 2000)  # 23 s of audio if nothing stopped it
    chunks = engine.synthesize("Hello there!", voice="jon")
    with caplog.at_level(logging.INFO, logger="tts_service.parler_engine"):
        assert_audio(next(chunks))
        chunks.close()
    assert no_generation_running()
    [record] = [record for record in caplog.records if "stopped early" in record.getMessage()]
    steps, limit = record.args  # type: ignore[misc]
    assert limit == 2000
    assert steps <= 200  # stopped a step or a few after the close (10 steps per chunk), far from the limit


def test_a_failing_generate_is_raised_to_the_reader_not_hung(
    engine: ParlerSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_generate(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(engine._model, "generate", broken_generate)
    with pytest.raises(RuntimeError, match="simulated"):
        list(engine.synthesize("Hello.", voice="jon"))
    assert no_generation_running()


def test_unknown_voice_is_refused_before_generation(engine: ParlerSynthesizer) -> None:
    with pytest.raises(ValueError, match="unknown voice 'bob'"):
        next(engine.synthesize("Hello.", voice="bob"))


def test_unpronounceable_text_yields_nothing(engine: ParlerSynthesizer) -> None:
    assert list(engine.synthesize("  ...  ", voice="jon")) == []


def test_auto_device_is_the_cpu_in_float32_without_a_gpu() -> None:
    if torch.cuda.is_available():
        assert resolve_device("auto") == (torch.device("cuda"), torch.float16)
    else:
        assert resolve_device("auto") == (torch.device("cpu"), torch.float32)
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    assert resolve_device("cpu") == (torch.device("cpu"), torch.float32)


def test_a_missing_local_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="TTS_PARLER_MODEL '/nonexistent/parler' is not a directory"):
        ParlerSynthesizer.load("/nonexistent/parler", cache_dir=tmp_path)


def test_an_unknown_default_voice_is_refused_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TTS_PARLER_VOICE='bob'"):
        ParlerSynthesizer.load("/nonexistent/parler", cache_dir=tmp_path, default_voice="bob")


def test_an_uncached_repo_id_offline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"parler-tts/parler-tts-mini-v1\.1"):
        resolve_pretrained("parler-tts/parler-tts-mini-v1.1", tmp_path, what="TTS_PARLER_MODEL")


def _cached_snapshot(cache_dir: Path, repo_id: str, files: list[str]) -> Path:
    """A snapshot in the hub cache's layout (what snapshot_download leaves behind), holding empty ``files``."""
    commit = "0" * 40
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_a_cached_repo_id_is_used_without_the_network(tmp_path: Path) -> None:
    snapshot = _cached_snapshot(tmp_path, "parler-tts/parler-tts-mini-v1.1", ["config.json", "model.safetensors"])
    path, from_hub = resolve_pretrained("parler-tts/parler-tts-mini-v1.1", tmp_path, what="TTS_PARLER_MODEL")
    assert (path, from_hub) == (snapshot, True)


def test_an_interrupted_download_is_not_taken_for_a_model(tmp_path: Path) -> None:
    """Weights missing from the snapshot: it is fetched again (which fails here, offline) instead of loaded."""
    _cached_snapshot(tmp_path, "parler-tts/parler-tts-mini-v1.1", ["config.json", "tokenizer.json"])
    with pytest.raises(RuntimeError, match="TTS_PARLER_MODEL"):
        resolve_pretrained("parler-tts/parler-tts-mini-v1.1", tmp_path, what="TTS_PARLER_MODEL")


def test_settings_select_parler_and_its_default_voice(tmp_path: Path) -> None:
    settings = Settings(engine="parler", cache_dir=tmp_path)
    assert settings.default_voice == settings.parler_voice == "jon"
    assert settings.parler_model == "parler-tts/parler-tts-mini-v1.1"


def test_samples_are_clipped_and_finite() -> None:
    from tts_service.parler_engine import _to_samples

    raw = np.array([0.5, 2.0, -3.0, np.nan, np.inf], dtype=np.float16)
    assert _to_samples(raw).tolist() == [0.5, 1.0, -1.0, 0.0, 0.0]
