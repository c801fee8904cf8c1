"""CPU priority: the LLM yields the cores to STT and TTS by default (``LLM_NICE``), in every one of its threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread priorities from /proc")


def thread_nice_values(service) -> set[int]:  # type: ignore[no-untyped-def]
    """The nice value of every thread of the service's process (on Linux each thread has its own)."""
    pid = service.pid
    assert pid is not None
    return {os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def test_llm_threads_run_at_a_lower_priority_than_stt_and_tts(running_services) -> None:  # type: ignore[no-untyped-def]
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    llm = thread_nice_values(running_services.llm)
    print(f"nice values: test {ours}, llm {llm}, stt {thread_nice_values(running_services.stt)}")
    assert min(llm) >= max(ours, 10)  # llama.cpp's own threads included: they start after the value is set
    assert thread_nice_values(running_services.stt) == {ours}
    assert thread_nice_values(running_services.tts) == {ours}


def test_a_nice_setting_reaches_every_thread(start_service) -> None:  # type: ignore[no-untyped-def]
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    tts = start_service("tts", TTS_NICE=str(min(ours + 5, 19)))
    values = thread_nice_values(tts)
    assert len(os.listdir(f"/proc/{tts.pid}/task")) > 1  # the worker and ONNX Runtime threads are counted
    assert values == {min(ours + 5, 19)}
