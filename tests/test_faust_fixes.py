"""Faust's consumer re-reads offsets it skipped instead of acknowledging them as a gap."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from faust.transport.consumer import Consumer

from stream.app import LOCAL_BROKER_FETCH_WAIT_MS, fetch_wait_ms
from stream.faust_fixes import REREAD_DELAY_SECONDS, reread_skipped_offsets
from stream.settings import Settings


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


def test_fetch_wait_short_on_the_local_broker_fausts_on_kafka_or_as_configured():
    # tansu holds a parked fetch for its whole wait: Faust's fixed 1.5 s was up to 1.5 s per hop.
    assert fetch_wait_ms(Settings(local_broker=True)) == LOCAL_BROKER_FETCH_WAIT_MS
    assert fetch_wait_ms(Settings(local_broker=False)) is None
    assert fetch_wait_ms(Settings(local_broker=True, fetch_max_wait_ms=200)) == 200


def test_the_worker_consumer_is_built_with_that_wait():
    """Through Faust's own consumer factory (a child process: an app registers its metrics once)."""
    code = """
import asyncio
from stream.app import create_app
from stream.settings import Settings

async def main():
    app = create_app(Settings(broker="kafka://127.0.0.1:1", local_broker=True))
    print(app.consumer._thread._create_worker_consumer(app.transport)._fetch_max_wait_ms)

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-1] == str(LOCAL_BROKER_FETCH_WAIT_MS)
