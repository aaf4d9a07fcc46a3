"""OrderedAcks: acknowledgements reach Faust in offset order, so a commit never passes an unfinished event."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from stream.batching import OrderedAcks


class RecordingStream:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: SimpleNamespace) -> bool:
        self.acked.append(event.message.offset)
        return True


def event(offset: int, tp: str = "embedded/0") -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


def test_finished_out_of_order_acknowledged_in_order():
    stream = RecordingStream()
    acks = OrderedAcks(stream)  # type: ignore[arg-type]
    events = [event(o) for o in range(100, 105)]
    other = event(7, "embedded/1")
    for e in [*events, other]:
        acks.track(e)

    async def go() -> None:
        await acks.done(events[2])  # held back: 100 and 101 are not finished
        await acks.done(events[1])
        assert stream.acked == []
        await acks.done(other)  # another partition does not wait for this one
        assert stream.acked == [7]
        await acks.done(events[0])  # the head: 100, then 101 and 102 behind it
        assert stream.acked == [7, 100, 101, 102]
        acks.clear()  # revoked: 103 and 104 will be delivered again
        await acks.done(events[3])  # from before the revocation: does not count
        acks.track(events[4])  # an older copy still queued arrives first...
        acks.track(events[3])  # ...then the partition is read again from the last commit
        acks.track(events[4])
        await acks.done(events[4])
        assert stream.acked == [7, 100, 101, 102]  # 103 is not done yet
        await acks.done(events[3])
        assert stream.acked == [7, 100, 101, 102, 103]  # 104 has one copy still running
        await acks.done(events[4])
        assert stream.acked == [7, 100, 101, 102, 103, 104]

    asyncio.run(go())


def test_a_message_of_several_articles_is_acknowledged_when_all_of_them_are_done():
    stream = RecordingStream()
    acks = OrderedAcks(stream)  # type: ignore[arg-type]
    packed, single = event(200), event(201)

    async def run() -> None:
        acks.track(packed, parts=3)
        acks.track(single)
        await acks.done(single)
        await acks.done(packed)
        await acks.done(packed)
        assert stream.acked == []  # one article of 200 is still held (the re-order buffer)
        await acks.done(packed)
        assert stream.acked == [200, 201]
        acks.track(event(202), parts=2)
        acks.clear()  # revoked: the half-done message will be read again, counted afresh
        acks.track(event(202), parts=2)
        await acks.done(event(202))
        assert stream.acked == [200, 201]

    asyncio.run(run())


def test_work_begun_before_a_revocation_does_not_count_for_the_copy_delivered_after_it():
    """The cluster stage publishes a step while it decides the next: a publication that outlives a
    revocation must not acknowledge the redelivered copy of its offset, which nobody has decided."""
    stream = RecordingStream()
    acks = OrderedAcks(stream)  # type: ignore[arg-type]
    first = event(100)
    acks.track(first)
    begun = acks.epoch
    acks.clear()  # revoked, then assigned again: offset 100 comes back
    again = event(100)
    acks.track(again)

    async def go() -> None:
        await acks.done(first, begun)  # the old step's publication finishes late
        assert stream.acked == []
        await acks.done(again, acks.epoch)
        assert stream.acked == [100]

    asyncio.run(go())
