"""run_batched: greedy micro-batches in order, and a handler that dies is never left unnoticed."""

from __future__ import annotations

import asyncio

import pytest

from stream.batching import run_batched


class Seen(Exception):
    pass


class QueueStream:
    """Stands in for a Faust stream: ``events()`` yields what is put, then waits (a quiet topic)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int] = asyncio.Queue()

    async def events(self):  # type: ignore[no-untyped-def]
        while True:
            yield await self.queue.get()


def test_batches_are_greedy_and_keep_the_order():
    async def go() -> list[list[int]]:
        stream = QueueStream()
        for i in range(10):
            stream.queue.put_nowait(i)
        seen: list[list[int]] = []

        async def handle(batch: list[int]) -> None:
            seen.append(batch)
            if sum(map(len, seen)) == 10:
                raise Seen  # stop the run once all are seen

        with pytest.raises(Seen):
            await asyncio.wait_for(run_batched(stream, 4, handle), 5)  # type: ignore[arg-type]
        return seen

    seen = asyncio.run(go())
    assert [x for batch in seen for x in batch] == list(range(10))
    assert all(len(batch) <= 4 for batch in seen)
    assert len(seen) < 10  # queued events were taken together, not one by one


def test_a_dead_handler_stops_the_run_while_the_stream_is_quiet():
    async def go() -> None:
        stream = QueueStream()
        stream.queue.put_nowait(1)  # one event, then nothing more ever arrives

        async def handle(batch: list[int]) -> None:
            raise ValueError("embedder crashed")

        await asyncio.wait_for(run_batched(stream, 8, handle), 5)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="embedder crashed"):
        asyncio.run(go())


def test_idle_handler_runs_when_the_stream_is_quiet():
    async def go() -> list[str]:
        stream = QueueStream()
        stream.queue.put_nowait(1)
        calls: list[str] = []

        async def handle(batch: list[int]) -> None:
            calls.append("batch")

        async def on_idle() -> None:
            calls.append("idle")
            if calls.count("idle") == 2:
                raise RuntimeError("done")

        with pytest.raises(RuntimeError, match="done"):
            await asyncio.wait_for(run_batched(stream, 8, handle, 0.05, on_idle), 5)  # type: ignore[arg-type]
        return calls

    assert asyncio.run(go()) == ["batch", "idle", "idle"]
