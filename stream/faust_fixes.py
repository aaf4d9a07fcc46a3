"""A correction to faust-streaming 0.15.3's consumer that at-least-once processing depends on.

Faust reads a jump in a partition's offsets (it last read 201, the next message is 206) as a gap a
compacted topic or a transaction marker left, and *acknowledges the missing offsets*, so the next
commit passes them. None of storywire's topics is compacted or transactional, so a jump there means
the client skipped messages: it happens right after a rebalance, when the fetch position is not yet
the committed offset (seen on the ``alerts`` topic in the crash drill: 202..205 skipped after a
restart). Acknowledging them loses those messages. Instead, the consumer is sent back to the first
skipped offset a moment later (after Faust has recorded the message that revealed the jump), so the
skipped messages are read and processed; what is read twice is answered idempotently downstream.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.consumer import Consumer

log = logging.getLogger("storywire.faust")
REREAD_DELAY_SECONDS = 0.05  # after the read loop has recorded the message at the end of the jump

_installed = False


def reread_skipped_offsets() -> None:
    """Install once per process: offset jumps are re-read, never acknowledged."""
    global _installed
    if _installed:
        return
    _installed = True

    async def add_gap(self: Consumer, tp: Any, offset_from: int, offset_to: int) -> None:
        log.warning("offsets %d..%d of %s were skipped by the client: reading them again", offset_from, offset_to, tp)
        loop = asyncio.get_running_loop()
        # ``offset_from - 1``: right after a seek Faust's "last read" offset is the committed one, which
        # is the next to read, not one already read; reading one message twice is harmless.
        start = max(0, offset_from - 1)
        loop.call_later(REREAD_DELAY_SECONDS, lambda: asyncio.ensure_future(self.seek(tp, start)))

    Consumer._add_gap = add_gap  # type: ignore[method-assign]
