"""Faust's consumer re-reads offsets it skipped instead of acknowledging them as a gap."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from stream.faust_fixes import REREAD_DELAY_SECONDS, HeldReadOffsets, reread_skipped_offsets, seek_before_streams
from stream.settings import Settings


class FakeConsumer:
    """What of Faust's consumer the fix touches: the seek and the "last read" offsets."""

    def __init__(self) -> None:
        self.seeks: list[tuple[str, int]] = []
        self._read_offset = HeldReadOffsets()

    async def _seek(self, tp: str, offset: int) -> None:
        self.seeks.append((tp, offset))


def delivered(consumer: FakeConsumer, tp: str, offset: int) -> bool:
    """Faust's read loop for one fetched message: dropped below the last read offset, else read."""
    last = consumer._read_offset[tp]
    if last is not None and offset < last:
        return False
    consumer._read_offset[tp] = offset
    return True


def test_a_jump_is_read_again_not_acknowledged_and_stale_records_do_not_drop_the_re_read():
    reread_skipped_offsets()
    fake = FakeConsumer()
    tp = "embedded/0"

    async def go() -> list[int]:
        assert delivered(fake, tp, 201)
        # 206 reveals a jump (202..205 skipped by the client): a rewind to 201 is scheduled ...
        await Consumer._add_gap(fake, tp, 202, 206)  # type: ignore[arg-type]
        assert fake.seeks == []  # not before the read loop has recorded the message that revealed it
        assert delivered(fake, tp, 206)
        # ... records fetched before the seek keep coming and reveal the "same" jump: one rewind only
        for stale in (207, 208):
            await Consumer._add_gap(fake, tp, 202, stale)  # type: ignore[arg-type]
            assert delivered(fake, tp, stale)
        await asyncio.sleep(REREAD_DELAY_SECONDS * 4)
        assert delivered(fake, tp, 209)  # fetched before the seek, arriving after it
        reread = [o for o in range(201, 204) if delivered(fake, tp, o)]
        assert delivered(fake, tp, 212)  # ... and even after the re-read has begun
        return reread + [o for o in range(204, 213) if delivered(fake, tp, o)]

    reread = asyncio.run(go())
    assert fake.seeks == [(tp, 201)]
    assert reread == list(range(201, 213))  # nothing of the skipped range is dropped
    assert fake._read_offset.rewinds == {}  # the hold ended with the re-read


def test_a_single_skipped_message_after_a_seek_to_committed_is_seen_and_read_again():
    reread_skipped_offsets()
    fake = FakeConsumer()
    tp = "articles/3"
    fake._read_offset.update({tp: 63})  # Faust's perform_seek: committed offset 63 (next to read)

    async def go() -> list[int]:
        last = fake._read_offset[tp]
        assert 64 - last > 1  # the first message delivered is 64: Faust's own check sees the jump
        await Consumer._add_gap(fake, tp, last + 1, 64)  # type: ignore[arg-type]
        assert delivered(fake, tp, 64)
        await asyncio.sleep(REREAD_DELAY_SECONDS * 4)
        return [o for o in range(62, 66) if delivered(fake, tp, o)]

    assert asyncio.run(go()) == [62, 63, 64, 65]
    assert fake.seeks == [(tp, 62)]


@dataclass(eq=False)
class Fetched:
    """A fetched message, as far as ``Consumer.ack`` looks at it."""

    generation_id: int
    acked: bool = False
    tp: str = "articles/1"
    topic: str = "articles"
    offset: int = 58


class AckingConsumer:
    """What Faust's ``Consumer.ack`` reads and writes."""

    def __init__(self, generation: int) -> None:
        self.app = SimpleNamespace(
            consumer_generation_id=generation, topics=SimpleNamespace(acks_enabled_for=lambda topic: True)
        )
        self._committed_offset: dict[str, int | None] = defaultdict(lambda: None)
        self._acked_index: dict[str, set[int]] = defaultdict(set)
        self._acked: dict[str, list[int]] = defaultdict(list)
        self._unacked_messages: set[Any] = set()
        self._n_acked = 0
        self._waiting_for_ack = None
        self._read_offset = HeldReadOffsets()
        self.seeks: list[tuple[str, int]] = []

    def assignment(self) -> set[str]:
        return {"articles/1"}

    async def _seek(self, tp: str, offset: int) -> None:
        self.seeks.append((tp, offset))


def test_a_message_of_an_older_consumer_generation_is_not_made_committable():
    reread_skipped_offsets()
    consumer = AckingConsumer(generation=7)
    stale = Fetched(generation_id=6)
    current = Fetched(generation_id=7)
    consumer._unacked_messages.add(stale)
    consumer._read_offset.update({"articles/1": 63})  # the seek to committed came first; read on since

    async def go() -> None:
        assert Consumer.ack(consumer, stale) is False  # type: ignore[arg-type]
        await asyncio.sleep(REREAD_DELAY_SECONDS * 4)

    asyncio.run(go())
    assert stale.acked and consumer._acked["articles/1"] == []  # not committable ...
    assert consumer.seeks == [("articles/1", 57)]  # ... and read again
    assert stale not in consumer._unacked_messages  # a rebalance does not wait for it
    assert Consumer.ack(consumer, current) is True  # type: ignore[arg-type]
    assert consumer._acked["articles/1"] == [58]


class SeekingConsumer:
    """What of Faust's consumer the seek gate touches: the fetch, the seek to committed, the generation."""

    def __init__(self, generation: int) -> None:
        self.app = SimpleNamespace(
            consumer_generation_id=generation,
            tables=SimpleNamespace(changelog_topics={"w-cluster-meta-changelog"}),
            flow_control=FlowControlEvent(),
        )
        self.fetched: list[set[str]] = []  # the partitions each fetch asked the client for
        self._thread = SimpleNamespace(getmany=self._client_getmany)
        self._read_offset = HeldReadOffsets()
        self._committed_offset: dict[str, int | None] = {}
        self.rebalance_during_seek = False

    async def _client_getmany(self, partitions: set[Any], timeout: float) -> dict[Any, list[int]]:
        await asyncio.sleep(0)  # a fetch waits for records: Faust's recovery runs meanwhile
        self.fetched.append(set(partitions))
        return {tp: [1] for tp in partitions}

    async def seek_to_committed(self) -> dict[TP, int]:
        if self.rebalance_during_seek:
            self.app.consumer_generation_id += 1
        return {TP("articles", 3): 63}

    async def fetch(self, partitions: set[str]) -> Any:
        return await ThreadDelegateConsumer._getmany(self, partitions, 1.0)  # type: ignore[arg-type]

    async def seek(self, then_resume: bool = True) -> None:
        """Faust's recovery: the seek to committed, then the flow resume (which clears the queues)."""
        await Consumer.perform_seek(self)  # type: ignore[arg-type]
        if then_resume:
            self.app.flow_control.resume()


def test_stream_partitions_are_fetched_only_after_the_seek_and_the_flow_resume_of_the_current_generation():
    seek_before_streams()
    consumer = SeekingConsumer(generation=1)
    changelog, stream = TP("w-cluster-meta-changelog", 0), TP("articles", 3)

    async def go() -> list[Any]:
        consumer.app.flow_control.resume()  # recovery reads the changelogs with flow resumed ...
        active = {changelog}  # ... and Faust's set of active partitions grows while a fetch waits
        fetch = asyncio.ensure_future(ThreadDelegateConsumer._getmany(consumer, active, 1.0))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the fetch is waiting ...
        active.add(stream)  # ... when the recovery resumes the stream partitions
        out = [await fetch]  # the tables' changelog only
        out.append(await consumer.fetch({stream}))  # nothing to fetch: no request at all
        await consumer.seek(then_resume=False)
        out.append(await consumer.fetch({stream}))  # sought, but the resume would still clear the queue
        consumer.app.flow_control.resume()
        out.append(await consumer.fetch({changelog, stream}))  # sought and resumed: the stream too
        consumer.app.consumer_generation_id = 2  # a rebalance: held until the next seek ...
        out.append(await consumer.fetch({stream}))
        consumer.rebalance_during_seek = True  # ... and a seek the next rebalance overtook does not count
        await consumer.seek()
        out.append(await consumer.fetch({stream}))
        consumer.rebalance_during_seek = False
        await consumer.seek()
        out.append(await consumer.fetch({stream}))
        return out

    out = asyncio.run(go())
    assert out == [{changelog: [1]}, {}, {}, {changelog: [1], stream: [1]}, {}, {}, {stream: [1]}]
    assert consumer.fetched == [{changelog}, {changelog, stream}, {stream}]
    assert consumer._read_offset[stream] == 62  # the seek itself is Faust's, as before


def test_fetch_wait_is_short_on_the_local_broker_and_fausts_on_kafka_unless_configured():
    from stream.app import LOCAL_BROKER_FETCH_WAIT_MS, fetch_wait_ms

    assert fetch_wait_ms(Settings(local_broker=True)) == LOCAL_BROKER_FETCH_WAIT_MS < 1500
    assert fetch_wait_ms(Settings(local_broker=False)) is None  # Kafka answers a parked fetch at once
    assert fetch_wait_ms(Settings(local_broker=True, fetch_max_wait_ms=50)) == 50
    assert fetch_wait_ms(Settings(local_broker=False, fetch_max_wait_ms=50)) == 50


def test_the_worker_consumer_is_built_with_that_wait():
    """Through Faust's own consumer factory (a child process: an app registers its metrics once)."""
    code = """
import asyncio
from stream.app import create_app
from stream.settings import Settings

async def main():
    for wait in (None, 200):
        app = create_app(Settings(broker="kafka://127.0.0.1:1", local_broker=False, fetch_max_wait_ms=wait))
        print(app.consumer._thread._create_worker_consumer(app.transport)._fetch_max_wait_ms)
        break

asyncio.run(main())
"""
    for wait, expected in ((None, "1500"), (200, "200")):
        script = code.replace("(None, 200)", f"({wait},)")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.split()[-1] == expected
