"""Loading a service's model from its lifespan without holding the server back during a hub download.

A model that is on disk (embedded, a local path, a complete hub cache) loads before the server starts listening,
as it always did. A model that must be downloaded first lets the server start as soon as the download begins, so
``/health`` answers and ``/ready`` reports ``{"status": "downloading", "progress": 0.42}`` (503) while it runs;
model routes answer 503 ``model_not_ready`` until the model is loaded and warmed up.

A failure, before or after the server started listening (no such repo, no network, the download breaks, the model
does not load), ends the process with status 3, the status uvicorn uses for a failed start-up, right after the
service logged why in one line. It calls ``os._exit`` once the log is flushed: uvicorn has no public way for an
application to stop the server with an error status once it is serving (raising SystemExit in the event loop
exits with 3 too, but makes uvicorn log a traceback of its cancelled lifespan task, as a failing lifespan does
before serving), and there is nothing to release: no model was loaded, and every model route answered 503. When
the app runs on a helper thread instead of a server's main thread (Starlette's TestClient), the process is the
host's: the error is raised from the lifespan as before, or, once serving, ``/ready`` answers ``failed``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from .health import Readiness

logger = logging.getLogger(__name__)

EXIT_STATUS_START_FAILED = 3
"""uvicorn's own exit status for an application whose start-up failed."""
_POLL_S = 0.05


@asynccontextmanager
async def load_in_background(readiness: Readiness, load: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``load`` (load and warm up the model, then ``readiness.mark_ready``; on failure log one line and raise).

    Enters once ``load`` has finished or as soon as ``readiness`` turns ``downloading``. A failure of ``load`` exits
    the process (see the module docstring). On exit, a load still running is cancelled and its download abandoned
    (``readiness.stopping``), so stopping the service does not wait for it.
    """
    task = asyncio.ensure_future(load)
    while not task.done() and readiness.state != "downloading":
        await asyncio.wait({task}, timeout=_POLL_S)
    if task.done():
        _exit_if_failed(task)
        task.result()  # embedded: raise the error from the lifespan
    else:
        logger.info("serving /health and /ready while the model downloads")
        task.add_done_callback(_exit_if_failed)
    try:
        yield
    finally:
        if not task.done():
            readiness.stopping.set()
            task.cancel()


def _exit_if_failed(task: asyncio.Future[None]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    if threading.current_thread() is not threading.main_thread():
        return  # embedded in a host process (TestClient): /ready says "failed", the host decides
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_STATUS_START_FAILED)
