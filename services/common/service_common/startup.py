"""Loading a service's model from its lifespan without holding the server back during a hub download.

A model on disk (embedded, a local path, a complete hub cache) loads before the server listens. A download lets it
listen as soon as it begins: ``/ready`` answers 503 ``{"status": "downloading", "progress": 0.42}`` and model
routes 503 ``model_not_ready`` until the model is loaded and warmed up.

A failure (no such repo, no network, a broken download, a model that does not load) ends the process with status
3, uvicorn's status for a failed start-up, once the service logged why in one line. Once serving, that is
``os._exit`` after flushing the log, because uvicorn (0.54) lets an application stop it only by a signal: a
SIGTERM to itself shuts down cleanly but is raised again at the end (status 143, not 3), and a SystemExit raised
in the loop or the lifespan exits with 3 but logs a traceback. Nothing is lost: no model was loaded, and the next
start resumes the download. On a helper thread (Starlette's TestClient) the process is the host's: the error is
raised from the lifespan, or, once serving, ``/ready`` answers ``failed``.
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
    (``readiness.stopping``) at its next progress report: the next chunk (the next file with huggingface_hub 0.36).
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
