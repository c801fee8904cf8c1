"""llama.cpp backend (llama-cpp-python) for GGUF chat models: ``LlamaCppChat``.

Not thread-safe, and slow when called from more than one OS thread (OpenMP thread pools pile up), so
every call here, loading included, must run on the service's single model worker thread.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import jinja2
import llama_cpp
from llama_cpp import Llama, llama_chat_format

from service_common.errors import InvalidRequest
from service_common.health import Readiness

from .config import ChatFormatName, Settings
from .engine import ChatMessage, FinishReason, GenerationEnd, GenerationEvent, PreparedPrompt, SamplingParams, TextDelta
from .history import ContextLengthExceeded, trim_history
from .model_source import ModelSource, fetch_hub_gguf, resolve_model_source
from .stop_sequences import StopSequenceFilter

logger = logging.getLogger(__name__)

CHAT_FORMATTERS: dict[ChatFormatName, llama_chat_format.ChatFormatter] = {
    "chatml": llama_chat_format.format_chatml,
    "llama-2": llama_chat_format.format_llama2,
    "llama-3": llama_chat_format.format_llama3,
    "mistral-instruct": llama_chat_format.format_mistral_instruct,
    "gemma": llama_chat_format.format_gemma,
    "zephyr": llama_chat_format.format_zephyr,
    "qwen": llama_chat_format.format_qwen,
    "alpaca": llama_chat_format.format_alpaca,
}
# llama.cpp's own sampling defaults for the knobs OpenAI's API does not expose.
TOP_K = 40
MIN_P = 0.05
# llama.cpp reads this seed value as "draw a random seed".
RANDOM_SEED = llama_cpp.LLAMA_DEFAULT_SEED


class LlamaCppChat:
    """A GGUF chat model on llama.cpp. Blocking; call on the model worker thread only (see ``engine.ChatModel``)."""

    def __init__(
        self,
        llama: Llama,
        *,
        model_id: str,
        owned_by: str,
        formatter: llama_chat_format.ChatFormatter,
        device: str = "cpu",
    ):
        self._llama = llama
        self.device = device
        self._formatter = formatter
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self.model_id = model_id
        self.owned_by = owned_by
        self.n_ctx = llama.n_ctx()
        # Text-level end markers of the prompt format (e.g. "###" for alpaca), for models whose end-of-generation
        # token does not match the format; the same for every conversation, so rendered once.
        template_stop = formatter(messages=[{"role": "user", "content": "Hi"}]).stop
        self._template_stops = tuple([template_stop] if isinstance(template_stop, str) else template_stop or [])

    @classmethod
    def load(cls, settings: Settings, readiness: Readiness | None = None) -> LlamaCppChat:
        """Load the model ``settings`` name (embedded SmolLM2 by default; see ``model_source``) and its prompt format.

        Hub models are downloaded once into the hub cache (``model_source.fetch_hub_gguf``), reporting progress to
        ``readiness``. Raises FileNotFoundError/ValueError for a bad ``LLM_MODEL``, HubDownloadError when a hub model
        is neither cached nor downloadable, and llama.cpp's own errors for an unreadable GGUF.
        """
        source = resolve_model_source(settings)
        started = time.perf_counter()
        llama = _open_llama(source, settings, readiness)
        formatter = _chat_formatter(llama, settings.chat_format)
        trained_ctx = int(llama.metadata.get(f"{llama.metadata.get('general.architecture')}.context_length", 0) or 0)
        if trained_ctx and settings.n_ctx > trained_ctx:
            logger.warning("n_ctx=%d exceeds the %d tokens the model was trained on", settings.n_ctx, trained_ctx)
        logger.info(
            "loaded %s (%s) in %.2f s: n_ctx=%d n_threads=%d prompt format=%s",
            source.model_id,
            source.path or source.repo_id,
            time.perf_counter() - started,
            llama.n_ctx(),
            settings.n_threads,
            settings.chat_format or "GGUF chat template",
        )
        device = "cpu"
        if settings.n_gpu_layers and llama_cpp.llama_supports_gpu_offload():
            device = f"gpu ({'all' if settings.n_gpu_layers < 0 else settings.n_gpu_layers} layers offloaded)"
        return cls(llama, model_id=source.model_id, owned_by=source.owned_by, formatter=formatter, device=device)

    def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of ``messages`` rendered with the prompt format, ending with the assistant's turn header."""
        # llama-cpp-python types messages as a union of TypedDicts; plain dicts are what it reads.
        chat: list[Any] = [{"role": message.role, "content": message.content} for message in messages]
        try:
            rendered = self._formatter(messages=chat)
        except (ValueError, TypeError, jinja2.TemplateError) as err:
            raise InvalidRequest(
                f"the model's chat template rejected the conversation: {err}", param="messages"
            ) from err
        return self._llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)

    def prepare(self, messages: Sequence[ChatMessage], max_tokens: int) -> PreparedPrompt:
        """See ``engine.ChatModel.prepare``; tokens are counted on the real chat-formatted prompt."""
        if max_tokens >= self.n_ctx:
            raise ContextLengthExceeded(
                f"max_tokens={max_tokens} leaves no room for the prompt in the {self.n_ctx}-token context window",
                param="max_tokens",
            )
        tokenized: dict[tuple[ChatMessage, ...], list[int]] = {}

        def count_tokens(candidate: Sequence[ChatMessage]) -> int:
            key = tuple(candidate)
            if key not in tokenized:
                tokenized[key] = self.tokenize_chat(key)
            return len(tokenized[key])

        trimmed = trim_history(messages, count_tokens, self.n_ctx - max_tokens)
        return PreparedPrompt(trimmed.messages, tuple(tokenized[trimmed.messages]), trimmed.dropped_messages)

    def generate(self, prompt: PreparedPrompt, params: SamplingParams) -> Iterator[GenerationEvent]:
        """See ``engine.ChatModel.generate``: one ``TextDelta`` per sampled token that completes some text."""
        llama = self._llama
        llama.set_seed(RANDOM_SEED if params.seed is None else params.seed % RANDOM_SEED)
        max_new_tokens = min(params.max_tokens, self.n_ctx - prompt.prompt_tokens)
        stops = StopSequenceFilter(params.stop + self._template_stops)
        # Tokens can end inside a multi-byte character; the incremental decoder waits for the rest.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        completion_tokens = 0
        finish_reason: FinishReason = "length"
        deadline = None if params.time_limit_s is None else time.monotonic() + params.time_limit_s
        tokens = llama.generate(
            prompt.token_ids,
            top_k=TOP_K,
            top_p=params.top_p,
            min_p=MIN_P,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
        )
        try:
            for token in tokens:
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    finish_reason = "stop"
                    break
                completion_tokens += 1
                text = stops.feed(decoder.decode(llama.detokenize([token])))
                if text:
                    yield TextDelta(text)
                if stops.stopped:
                    finish_reason = "stop"
                    break
                if completion_tokens >= max_new_tokens:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    logger.info("generation stopped after %d tokens: time limit reached", completion_tokens)
                    break
        finally:
            tokens.close()
        tail = stops.feed(decoder.decode(b"", final=True)) + stops.flush()
        if tail:
            yield TextDelta(tail)
        yield GenerationEnd(finish_reason, prompt.prompt_tokens, completion_tokens)

    def close(self) -> None:
        self._llama.close()


def _open_llama(source: ModelSource, settings: Settings, readiness: Readiness | None) -> Llama:
    options: dict[str, Any] = {
        "n_ctx": settings.n_ctx,
        "n_threads": settings.n_threads,
        "n_threads_batch": settings.n_threads_batch,
        "n_batch": min(settings.n_batch, settings.n_ctx),
        "n_gpu_layers": settings.n_gpu_layers,
        "verbose": False,
    }
    path = fetch_hub_gguf(source, settings.cache_dir, readiness) if source.kind == "hub" else source.path
    return Llama(model_path=str(path), **options)


def _chat_formatter(llama: Llama, chat_format: ChatFormatName | None) -> llama_chat_format.ChatFormatter:
    """The named format, else the GGUF's own Jinja chat template (as llama-cpp-python builds it), else ChatML."""
    if chat_format is not None:
        return CHAT_FORMATTERS[chat_format]
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        logger.warning("the GGUF has no chat template and LLM_CHAT_FORMAT is unset: using chatml")
        return CHAT_FORMATTERS["chatml"]

    def token_text(token_id: int) -> str:
        return llama.detokenize([token_id], special=True).decode("utf-8", errors="replace") if token_id >= 0 else ""

    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(llama.token_eos()),
        bos_token=token_text(llama.token_bos()),
        stop_token_ids=[llama.token_eos()],
    )
