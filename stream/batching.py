"""Micro-batches of Faust events with manual acknowledgement.

Faust's own ``take``/``noack_take`` can drop an event that arrives while a batch is being handled
(it clears its buffer after the handler returns, including what was added meanwhile); we lost one
article in three replays of the sample that way. Here the agent's stream only feeds a queue, and a
separate task takes whatever is queued as one batch (greedy batching: no timer, so a quiet stream
has no added latency and a busy one gets big batches). Events are acknowledged by the handler when
it is done with them, so an article held back (re-order buffer) is not committed before it is
decided.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import faust
from faust.types import EventT

Handler = Callable[[list[EventT]], Awaitable[None]]
IdleHandler = Callable[[], Awaitable[None]]


async def run_batched(
    agent_stream: faust.StreamT,
    max_batch: int,
    handle: Handler,
    idle_after: float | None = None,
    on_idle: IdleHandler | None = None,
) -> None:
    """Feed ``handle`` batches of up to ``max_batch`` events; call ``on_idle`` after ``idle_after`` s of quiet."""
    queue: asyncio.Queue[EventT] = asyncio.Queue(maxsize=max_batch * 2)

    async def drain() -> None:
        while True:
            if idle_after is not None and on_idle is not None:
                try:
                    first = await asyncio.wait_for(queue.get(), idle_after)
                except TimeoutError:
                    await on_idle()
                    continue
            else:
                first = await queue.get()
            batch = [first]
            while len(batch) < max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            await handle(batch)

    worker = asyncio.ensure_future(drain())
    try:
        async for event in agent_stream.events():
            put = asyncio.ensure_future(queue.put(event))
            await asyncio.wait({put, worker}, return_when=asyncio.FIRST_COMPLETED)
            if worker.done():
                put.cancel()
                worker.result()  # re-raise what killed the handler
                raise RuntimeError("batch handler stopped")
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker
