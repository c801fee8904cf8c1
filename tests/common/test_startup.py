"""service_common.startup: the server answers /ready during a download, and a failed start-up exits with status 3.

In process, the app runs on a helper thread (as under TestClient), where failures are raised, never exited on; as
a real uvicorn process (a minimal app whose model is a fake hub repo), a failure ends the process with one log line.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_hub import FakeHub, FakeRepo, HubServiceProcess

from service_common.health import Readiness
from service_common.startup import load_in_background

APP = textwrap.dedent(
    """
    import logging, os
    from contextlib import asynccontextmanager
    from pathlib import Path

    import uvicorn

    from service_common.app import build_app
    from service_common.hub import fetch_snapshot
    from service_common.logs import setup_logging
    from service_common.startup import load_in_background
    from service_common.worker import ModelWorker

    logger = logging.getLogger("test_app")


    @asynccontextmanager
    async def lifespan(app):
        worker, readiness = ModelWorker("model"), app.state.readiness

        async def load():
            try:
                await worker.run(
                    fetch_snapshot, os.environ["TEST_REPO"], cache_dir=Path(os.environ["TEST_CACHE_DIR"]),
                    what="TEST_MODEL", readiness=readiness,
                )
            except Exception as err:
                logger.error("start-up failed: %s", err)
                readiness.mark_failed(str(err))
                raise
            readiness.mark_ready(os.environ["TEST_REPO"], "test")

        try:
            async with load_in_background(readiness, load()):
                yield
        finally:
            worker.shutdown()


    setup_logging("INFO")
    app = build_app(title="test", description="test", version="0", lifespan=lifespan)
    uvicorn.run(app, host=os.environ["TEST_HOST"], port=int(os.environ["TEST_PORT"]), log_config=None)
    """
)


def run_on_a_helper_thread(main: Callable[[], Any]) -> Any:
    """``asyncio.run(main())`` on another thread, as TestClient runs an app: failures must raise, never exit."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_a_model_on_disk_is_ready_before_the_server_starts() -> None:
    readiness = Readiness()

    async def load() -> None:
        await asyncio.sleep(0.05)
        readiness.mark_ready("model", "test")

    async def main() -> str:
        async with load_in_background(readiness, load()):
            return readiness.state

    assert run_on_a_helper_thread(main) == "ready"


def test_a_download_lets_the_server_start_and_is_abandoned_at_shutdown() -> None:
    readiness = Readiness()
    cancelled = asyncio.Event()

    async def load() -> None:
        readiness.mark_downloading(0.0)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> tuple[str, bool, bool]:
        async with load_in_background(readiness, load()):
            state = readiness.state
        await asyncio.wait_for(cancelled.wait(), timeout=5)
        return state, readiness.stopping.is_set(), cancelled.is_set()

    assert run_on_a_helper_thread(main) == ("downloading", True, True)


def test_a_failure_before_serving_is_raised_when_embedded() -> None:
    async def load() -> None:
        raise FileNotFoundError("no such model")

    async def main() -> None:
        async with load_in_background(Readiness(), load()):
            pass

    with pytest.raises(FileNotFoundError, match="no such model"):
        run_on_a_helper_thread(main)


@pytest.mark.slow
def test_a_download_that_breaks_after_serving_began_exits_with_status_3(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add(
        FakeRepo(
            "acme/breaks",
            {"config.json": b"{}", "model.bin": os.urandom(1_000_000)},
            fail_downloads={"model.bin"},
            fail_after_s=1.5,
        )
    )
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {"HF_ENDPOINT": fake_hub.url, "TEST_REPO": "acme/breaks", "TEST_CACHE_DIR": str(tmp_path / "cache")}
    service = HubServiceProcess("stt", str(script), "TEST_", env, tmp_path / "app.log").start()
    try:
        status = service.watch_ready(timeout_s=60)
    finally:
        service.stop()

    log = service.log()
    assert status == 3, log
    assert any(reading.status_code == 503 and reading.body["status"] == "downloading" for reading in service.readings)
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert "TEST_MODEL acme/breaks: neither in" in errors[0]
    assert "nor downloadable" in errors[0] and "model.bin" in errors[0]
    assert "Traceback" not in log


@pytest.mark.slow
def test_an_unknown_repo_exits_with_status_3_and_one_line(fake_hub: FakeHub, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {"HF_ENDPOINT": fake_hub.url, "TEST_REPO": "acme/missing", "TEST_CACHE_DIR": str(tmp_path / "cache")}
    service = HubServiceProcess("stt", str(script), "TEST_", env, tmp_path / "app.log").start()
    try:
        status = service.watch_ready(timeout_s=60)
    finally:
        service.stop()

    log = service.log()
    assert status == 3, log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Repository Not Found" in errors[0], log
    assert "Traceback" not in log
