"""Noticing that a client has gone, so work queued for the model on its behalf can be skipped or stopped.

Starlette does not cancel a plain (non-streaming) handler when its client disconnects: a request waiting in
the model's queue would still be served, to nobody. ``client_gone`` watches the connection while the handler
awaits the model; work on the worker thread checks the event before (or while) it runs and raises
``errors.ClientGone`` (499, never read by anyone) when it is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from starlette.requests import Request


@contextlib.asynccontextmanager
async def client_gone(request: Request) -> AsyncIterator[threading.Event]:
    """A ``threading.Event`` set as soon as the client of ``request`` disconnects, watched for the ``with`` block.

    Use it only once the request body has been read: it listens for the ASGI ``http.disconnect`` message, which
    is all that is left to receive then.
    """
    gone = threading.Event()

    async def listen() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(listen())
    try:
        yield gone
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
