"""The Realtime service as a real process over the real STT, LLM and TTS services (``running_services``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.processes import ServiceProcess, stop_all


@pytest.fixture(scope="session")
def realtime(running_services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:  # type: ignore[no-untyped-def]
    """The Realtime service on a free port, driving the shared STT, LLM and TTS processes."""
    env = {f"REALTIME_{name.upper()}_URL": getattr(running_services, name).url for name in ("stt", "llm", "tts")}
    service = ServiceProcess("realtime", tmp_path_factory.mktemp("realtime-log") / "realtime.log", env=env)
    service.start()
    yield service
    stop_all([service])
