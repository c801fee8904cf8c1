"""One dedicated thread per model, so the event loop never blocks and the model is never called concurrently.

Why one thread and not a pool plus a lock: llama.cpp (OpenMP build) drops from ~88 to ~33 tokens/s for
the rest of the process once a second Python thread has called it (thread oversubscription on 2 cores),
and neither CTranslate2 nor ONNX Runtime gains from concurrent calls on 2 cores. A single-worker
executor serialises calls (it is the lock) and always uses the same OS thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _ERROR, _END = 0, 1, 2


class ModelWorker:
    """Runs model calls on one dedicated OS thread; FIFO, one call at a time.

    ``run`` awaits a blocking call; ``stream`` consumes a blocking iterator in the worker thread and yields
    its items to the event loop as they are produced. Closing the async iterator early (client gone)
    stops the blocking iterator at its next item and closes it, so the next request does not wait for
    work nobody will read.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` executed on the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def stream(self, make_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
        """Yield the items of ``make_iterator()``, which is created and consumed on the worker thread.

        Exceptions raised by the iterator are re-raised here, at the point the consumer reached.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        stop = threading.Event()

        def push(kind: int, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        def produce() -> None:
            if stop.is_set():  # the consumer left while this waited in the queue: start nothing
                return
            iterator = make_iterator()
            try:
                for item in iterator:
                    if stop.is_set():
                        break
                    push(_ITEM, item)
            except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
                push(_ERROR, err)
            else:
                push(_END, None)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()

        try:
            future = loop.run_in_executor(self._executor, produce)
            while True:
                kind, value = await queue.get()
                if kind == _END:
                    break
                if kind == _ERROR:
                    raise value
                yield value
            await future
        finally:
            stop.set()

    def shutdown(self) -> None:
        """Stop accepting work; the running call finishes in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)
