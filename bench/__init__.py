"""Benchmark of the voice agent's latency: voice-to-voice and its stages, streaming vs sequential, services vs
their bare libraries, our LLM service vs llama-cpp-python's own server, and how cost grows.

Run with ``make bench`` (``QUICK=1`` for a reduced run); it writes ``bench/results/latest.json``,
``docs/benchmarks.md`` (between its generated-section markers) and ``docs/benchmark-latency.png``.
The orchestrator runs in the frontend venv (it drives ``voice_agent``); the bare-library scripts
(``bare_stt.py``, ``bare_llm.py``, ``bare_tts.py``) run as subprocesses inside each service's own venv.
"""
