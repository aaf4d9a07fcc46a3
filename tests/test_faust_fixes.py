"""Faust's consumer re-reads offsets it skipped instead of acknowledging them as a gap."""

from __future__ import annotations

import asyncio

from faust.transport.consumer import Consumer

from stream.faust_fixes import REREAD_DELAY_SECONDS, reread_skipped_offsets


class FakeConsumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[str, int]] = []
        self.gaps: list[tuple[int, int]] = []

    async def seek(self, tp: str, offset: int) -> None:
        self.seeks.append((tp, offset))


def test_a_jump_is_read_again_not_acknowledged():
    reread_skipped_offsets()
    fake = FakeConsumer()

    async def go() -> None:
        await Consumer._add_gap(fake, "alerts/0", 202, 205)  # type: ignore[arg-type]
        assert fake.seeks == []  # not before the read loop has recorded the message that revealed it
        await asyncio.sleep(REREAD_DELAY_SECONDS * 4)

    asyncio.run(go())
    assert fake.seeks == [("alerts/0", 201)]
