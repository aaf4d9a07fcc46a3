"""The records the pipeline publishes — embedded, assignments, stories, alerts, dead letters — sent
by a producer of their own that batches.

Faust's producer keeps what only it can do, the tables' changelogs, and on the local broker it
sends one record per batch: tansu answers end offsets per batch, and table recovery reads up to
them. Nothing reads an end offset of these topics, so they need no such workaround. With Faust's
producer each of them cost a round trip to one partition (about 1 ms): the bound on throughput.
Here a micro-batch of 32 embedded articles, or a checkpoint's assignments, is one request.

Every send returns its delivery future, and callers await all of a batch's deliveries before they
acknowledge its inputs: a crash between the two delivers the input again and loses no output (the
cluster step answers a redelivered article from its stored assignment, so nothing counts twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

import mode
from aiokafka import AIOKafkaProducer
from faust.utils import json as faust_json

# One batch per partition and request: big enough for a micro-batch of MiniLM articles (~2.5 KB
# each), well below Kafka's default 1 MB limit per batch.
MAX_BATCH_BYTES = 256 * 1024


def encode(value: Any) -> bytes:
    """JSON exactly as Faust's ``json`` serializer writes it, so Faust agents read it unchanged.
    (With orjson, which Faust uses when it is installed, that is already bytes.)"""
    out = faust_json.dumps(value)
    return out if isinstance(out, bytes) else out.encode()


class Outputs(mode.Service):
    """A batching producer for the pipeline's output topics, started on first use, stopped with the app."""

    def __init__(self, bootstrap: str, linger_ms: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> AIOKafkaProducer:
        if self._producer is not None:  # every record asks: no lock once started
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    linger_ms=self.linger_ms,
                    acks="all",
                    enable_idempotence=False,  # the local broker has no idempotent producers
                    max_batch_size=MAX_BATCH_BYTES,
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Iterable[tuple[str, bytes]] = ()
    ) -> Awaitable[Any]:
        """Queue one record; the returned future resolves once the broker has it."""
        producer = await self._ready()
        return await producer.send(topic, value=value, key=key, headers=list(headers) or None)

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def delivered(futures: Iterable[Awaitable[Any]]) -> None:
    """Wait until every record is stored; raises if one could not be (the agent then restarts)."""
    await asyncio.gather(*futures)
