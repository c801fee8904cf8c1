"""The model worker: one OS thread for every call, streams consumed on it, early close stops the producer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from service_common.worker import ModelWorker


def test_every_call_runs_on_one_thread_that_is_not_the_event_loop() -> None:
    worker = ModelWorker("test")

    async def main() -> set[int]:
        loop_thread = threading.get_ident()
        idents = await asyncio.gather(*(worker.run(threading.get_ident) for _ in range(8)))
        assert loop_thread not in idents
        return set(idents)

    assert len(asyncio.run(main())) == 1
    worker.shutdown()


def test_calls_never_overlap() -> None:
    worker = ModelWorker("test")
    active = 0
    peak = 0

    def job() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        time.sleep(0.01)
        active -= 1

    async def main() -> None:
        await asyncio.gather(*(worker.run(job) for _ in range(6)))

    asyncio.run(main())
    assert peak == 1
    worker.shutdown()


def test_stream_yields_items_in_order_from_the_worker_thread_and_reraises_errors() -> None:
    worker = ModelWorker("test")
    producer_threads: set[int] = set()

    def numbers() -> Iterator[int]:
        for value in range(5):
            producer_threads.add(threading.get_ident())
            yield value
        raise ValueError("model failed")

    async def main() -> list[int]:
        seen: list[int] = []
        with pytest.raises(ValueError, match="model failed"):
            async for value in worker.stream(numbers):
                seen.append(value)
        return seen

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert len(producer_threads) == 1
    worker.shutdown()


def test_closing_a_stream_early_stops_and_closes_the_producer() -> None:
    worker = ModelWorker("test")
    produced = 0
    closed = threading.Event()

    def endless() -> Iterator[int]:
        nonlocal produced
        try:
            while True:
                produced += 1
                time.sleep(0.005)
                yield produced
        finally:
            closed.set()

    async def main() -> None:
        stream = worker.stream(endless)
        async for value in stream:
            if value >= 3:
                break
        await stream.aclose()
        # the next call is not stuck behind the abandoned stream
        assert await asyncio.wait_for(worker.run(lambda: "free"), timeout=5) == "free"

    asyncio.run(main())
    assert closed.wait(5)
    assert produced < 50
    worker.shutdown()


def test_a_stream_whose_consumer_left_while_queued_never_starts() -> None:
    worker = ModelWorker("test")
    started = threading.Event()
    release = threading.Event()
    created: list[str] = []

    def blocker() -> None:
        started.set()
        release.wait(5)

    def producer() -> Iterator[int]:
        created.append("created")
        yield 1

    async def main() -> None:
        busy = asyncio.ensure_future(worker.run(blocker))
        await asyncio.to_thread(started.wait, 5)
        consumer = asyncio.ensure_future(anext(worker.stream(producer)))
        await asyncio.sleep(0.05)
        consumer.cancel()  # the client went away while its stream waited behind `blocker`
        with pytest.raises(asyncio.CancelledError):
            await consumer
        release.set()
        await busy
        assert await worker.run(lambda: "next") == "next"

    asyncio.run(main())
    assert created == []
    worker.shutdown()
