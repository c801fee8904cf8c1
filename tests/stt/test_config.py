"""Settings from STT_* environment variables: defaults, parsing, bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stt_service.config import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STT_MODEL", "STT_PORT", "STT_BEAM_SIZE", "STT_LANGUAGE", "STT_CPU_THREADS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.model, settings.port, settings.beam_size, settings.cpu_threads) == ("tiny.en", 8001, 1, 1)
    assert (settings.device, settings.compute_type, settings.language, settings.vad_filter) == (
        "cpu",
        "int8",
        None,
        True,
    )
    assert settings.max_upload_bytes == 25 * 1024 * 1024
    assert settings.max_audio_duration_s == 600.0


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STT_MODEL", "base")
    monkeypatch.setenv("STT_BEAM_SIZE", "5")
    monkeypatch.setenv("STT_LANGUAGE", "de")
    monkeypatch.setenv("STT_MAX_UPLOAD_BYTES", "1000")
    settings = Settings()
    assert (settings.model, settings.beam_size, settings.language, settings.max_upload_bytes) == ("base", 5, "de", 1000)


def test_empty_language_means_detect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STT_LANGUAGE", "")
    assert Settings().language is None


@pytest.mark.parametrize(
    ("name", "value"), [("STT_BEAM_SIZE", "0"), ("STT_LANGUAGE", "english"), ("STT_DEVICE", "tpu"), ("STT_PORT", "0")]
)
def test_out_of_bounds_values_fail_fast(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
