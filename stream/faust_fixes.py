"""Corrections to faust-streaming 0.15.3's consumer.

1. Offset jumps (at-least-once processing depends on it).

Faust reads a jump in a partition's offsets (it last read 201, the next message is 206) as a gap a
compacted topic or a transaction marker left, and *acknowledges the missing offsets*, so the next
commit passes them. None of storywire's topics is compacted or transactional, so a jump there means
the client skipped messages: it happens right after a rebalance, when the fetch position is not yet
the committed offset (seen on the ``alerts`` topic in the crash drill: 202..205 skipped after a
restart). Acknowledging them loses those messages. Instead, the consumer is sent back to the first
skipped offset a moment later (after Faust has recorded the message that revealed the jump), so the
skipped messages are read and processed; what is read twice is answered idempotently downstream.

2. The fetch wait (latency on the local broker). Faust creates its aiokafka consumer with a fixed
``fetch_max_wait_ms=1500``. Kafka answers a parked fetch as soon as a record arrives; tansu keeps it
parked for the whole wait, so every hop of the pipeline waited up to 1.5 s for data that was
already there (measured with a bare aiokafka consumer on tansu, a record every 0.3 s: p50 0.42 s
with the 1.5 s wait, 0.007 s with 50 ms). :func:`fetch_max_wait` makes the wait a setting.

3. Stale acknowledgements. After a rebalance Faust skips the messages it fetched in the previous
consumer generation (they are read again after its seek to the committed offsets) — but it also
acknowledges them, so the next commit can pass records that were never processed: the restart
test lost 6 contiguous records of one partition that way (``articles/1/58..63``), with no offset
jump to see. An acknowledgement of a message from an older generation is ignored here: it stays
uncommitted, and it is read again (Faust's own seek to the committed offsets can come before the
message is skipped, which left it unread: ``articles/1/54``).

4. Stream records read before the streams are resumed (the restart test lost one record this way).
After an assignment Faust's recovery resumes the stream partitions, seeks them to the committed
offsets and only then resumes flow control — and resuming flow control *clears every stream's
queue* (mode's ``FlowControlEvent.resume``). Its fetcher is already running (it reads the
changelogs), and it hands aiokafka Faust's own set of active partitions, which the recovery then
grows by the stream partitions while a fetch is still waiting: that fetch returned stream records
in the middle of the seek. They were queued, counted as read, then wiped; most of the time a later
record revealed the jump (fix 1), but about one restart in seven in a fresh clone (worker 2 of
``test_worker_restart_recovers_tables_without_loss_or_double_counting``) the first record after the
committed offset of one partition (``articles/3/63``, ``articles/0/49``) never reached the agent.
:func:`seek_before_streams` closes the window: until the consumer has been sought to the committed
offsets of the current consumer generation *and* flow control has been resumed after that seek, a
fetch asks for a copy of the active set with the changelog partitions only (so tables recover as
before).

5. Flushing. ``app.producer.flush()`` drains Faust's send buffer only until one message takes more
than 0.1 s, then returns with the rest still queued (``ProducerBuffer.flush_atmost``). Table writes
go through that buffer, so a "flushed" checkpoint could still be in memory: :func:`flush_all` waits
until the buffer is empty and the client has sent everything.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from mode.utils.futures import notify
from mode.utils.queues import FlowControlEvent

log = logging.getLogger("storywire.faust")
REREAD_DELAY_SECONDS = 0.05  # after the read loop has recorded the message at the end of the jump

_installed = False


class HeldReadOffsets(dict[Any, Any]):
    """Faust's per-partition "last read" offsets, held back while a rewind is pending.

    Faust drops every fetched message below the last read offset. After a rewind to ``start``,
    records fetched before the seek (with a short fetch wait there are many, before and even during
    the re-read) still arrive and would move the last read offset past the re-read range, which was
    then dropped, never processed and never acknowledged: the crash drill lost 69 of 3,000 articles
    that way. So while a rewind is pending the offset only moves one step at a time (a record further
    ahead is processed but leaves it where it is), until the re-read has passed the end of the jump.
    """

    def __init__(self, initial: dict[Any, Any] | None = None) -> None:
        super().__init__(initial or {})
        self.rewinds: dict[Any, tuple[int, int]] = {}  # tp -> (re-read from, up to)

    def __missing__(self, tp: Any) -> None:  # a defaultdict(lambda: None), as Faust's
        return None

    def rewind(self, tp: Any, start: int, end: int) -> bool:
        """Hold ``tp`` for a re-read of ``start..end``; ``False``: one already covers ``start``."""
        pending = self.rewinds.get(tp)
        if pending is not None and pending[0] <= start:
            self.rewinds[tp] = (pending[0], max(pending[1], end))
            return False
        self.rewinds[tp] = (start, max(end, pending[1] if pending else end))
        super().__setitem__(tp, start)
        return True

    def __setitem__(self, tp: Any, offset: Any) -> None:
        pending = self.rewinds.get(tp)
        if pending is not None and offset is not None:
            current = dict.get(self, tp)
            if current is not None and offset > current + 1:
                offset = current  # a record from before the seek: keep the re-read range readable
            elif offset >= pending[1]:
                del self.rewinds[tp]  # the re-read has covered the jump
        super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """After a seek to the committed offsets (Faust's only bulk write). Faust stores the committed
        offset itself as "last read", but it is the next one to read: a client that then skipped
        exactly that one message showed no jump and lost it silently. One less makes it visible."""
        other = dict(*args, **kwargs)
        for tp in other:
            self.rewinds.pop(tp, None)
        super().update({tp: offset - 1 if offset else offset for tp, offset in other.items()})

    def pop(self, tp: Any, *default: Any) -> Any:  # partition revoked
        self.rewinds.pop(tp, None)
        return super().pop(tp, *default)


def reread_skipped_offsets() -> None:
    """Install once per process: offset jumps are re-read, never acknowledged; messages of an older
    consumer generation are never acknowledged either."""
    global _installed
    if _installed:
        return
    _installed = True
    original_init = Consumer.__init__

    def init(self: Consumer, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._read_offset = HeldReadOffsets()

    async def add_gap(self: Consumer, tp: Any, offset_from: int, offset_to: int) -> None:
        # ``offset_from - 1``: right after a seek Faust's "last read" offset is the committed one, which
        # is the next to read, not one already read; reading one message twice is harmless.
        start = max(0, offset_from - 1)
        offsets = self._read_offset
        if isinstance(offsets, HeldReadOffsets) and not offsets.rewind(tp, start, offset_to):
            return  # a rewind that re-reads this range is already under way
        log.warning("offsets %d..%d of %s were skipped by the client: reading them again", offset_from, offset_to, tp)

        async def seek() -> None:
            await self._seek(tp, start)
            if isinstance(offsets, HeldReadOffsets) and tp in offsets.rewinds:
                dict.__setitem__(offsets, tp, start)  # back to the start of the re-read

        loop = asyncio.get_running_loop()
        loop.call_later(REREAD_DELAY_SECONDS, lambda: asyncio.ensure_future(seek()))

    original_ack = Consumer.ack

    def ack(self: Consumer, message: Any) -> bool:
        generation = getattr(message, "generation_id", None)
        if generation is not None and generation != self.app.consumer_generation_id:
            # Done with here (a rebalance waits for unacknowledged messages), but not committable:
            # it is read again after the seek.
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
            # Faust's seek to committed may have come before this message was skipped: read it again.
            # (Only if the read position is past it: a seek forward would skip what lies between.)
            tp, offset = message.tp, message.offset
            last = self._read_offset[tp]
            if last is not None and offset <= last and tp in self.assignment():
                asyncio.ensure_future(add_gap(self, tp, offset, offset))
            return False
        return bool(original_ack(self, message))

    Consumer.__init__ = init  # type: ignore[method-assign]
    Consumer._add_gap = add_gap  # type: ignore[method-assign]
    Consumer.ack = ack  # type: ignore[method-assign]


SOUGHT_ATTRIBUTE = "storywire_sought"  # on the consumer: (generation, flow resumes) at its last seek
RESUMES_ATTRIBUTE = "storywire_resumes"  # on the app's flow control: how often it was resumed
HELD_POLL_SECONDS = 0.05  # a fetch with every partition held back waits this long, not Faust's 1 s
_held_installed = False


def streams_released(consumer: Any) -> bool:
    """Whether stream partitions may be fetched: the consumer has been sought to the committed
    offsets in the current consumer generation and flow control was resumed after that seek (the
    resume clears the streams' queues)."""
    app = consumer.app
    sought = getattr(consumer, SOUGHT_ATTRIBUTE, None)
    resumes = getattr(app.flow_control, RESUMES_ATTRIBUTE, 0)
    return sought is not None and sought[0] == app.consumer_generation_id and resumes > sought[1]


def seek_before_streams() -> None:
    """Install once per process: stream partitions are fetched only once the seek to the committed
    offsets of the current generation and the flow resume after it are done (fix 4 above);
    changelog partitions at once."""
    global _held_installed
    if _held_installed:
        return
    _held_installed = True
    original_seek = Consumer.perform_seek
    original_getmany = ThreadDelegateConsumer._getmany
    original_resume = FlowControlEvent.resume

    def resume(self: FlowControlEvent) -> None:
        original_resume(self)
        setattr(self, RESUMES_ATTRIBUTE, getattr(self, RESUMES_ATTRIBUTE, 0) + 1)

    async def perform_seek(self: Consumer) -> None:
        generation = self.app.consumer_generation_id  # a rebalance during the seek must seek again
        await original_seek(self)
        setattr(self, SOUGHT_ATTRIBUTE, (generation, getattr(self.app.flow_control, RESUMES_ATTRIBUTE, 0)))

    async def getmany(self: ThreadDelegateConsumer, active_partitions: Any, timeout: float) -> Any:
        if active_partitions is not None and not streams_released(self):
            # A copy: Faust passes its own set of active partitions, and its recovery adds the stream
            # partitions to it while a fetch is waiting, which then returned their records early.
            changelogs = self.app.tables.changelog_topics
            active_partitions = {tp for tp in active_partitions if tp.topic in changelogs}
            if not active_partitions:  # no partitions means all of them to aiokafka: wait instead
                await asyncio.sleep(min(timeout, HELD_POLL_SECONDS))
                return {}
        return await original_getmany(self, active_partitions, timeout)

    FlowControlEvent.resume = resume  # type: ignore[method-assign]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    ThreadDelegateConsumer._getmany = getmany  # type: ignore[method-assign]


_original_create_consumer = AIOKafkaConsumerThread._create_worker_consumer
FETCH_WAIT_ATTRIBUTE = "storywire_fetch_max_wait_ms"  # set on the Faust app; unset: Faust's 1500 ms


def fetch_max_wait() -> None:
    """Install once per process: the worker consumer waits ``app.storywire_fetch_max_wait_ms`` (if
    the app has it) instead of Faust's fixed 1.5 s for a fetch with no new records."""

    def create(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = _original_create_consumer(self, transport)
        wait = getattr(self.app, FETCH_WAIT_ATTRIBUTE, None)
        if wait is not None:
            consumer._fetch_max_wait_ms = int(wait)  # read by AIOKafkaConsumer.start() for its Fetcher
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


async def flush_all(producer: Any) -> None:
    """Wait until every message handed to Faust's producer (table writes included) is stored."""
    while producer.buffer.size:
        await producer.buffer.flush()
    await producer.flush()
