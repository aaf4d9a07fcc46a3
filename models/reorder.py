"""Event-time re-ordering in front of the clusterer.

Online clustering depends on order, and Kafka partitions interleave. The cluster step therefore
holds what it receives for a bounded event-time window (a watermark: the newest event time seen
minus the allowed lateness) and decides in ``(published_at, id)`` order, the order the evaluator
uses. An article that arrives after the watermark has passed it is still decided, at once, and
counted as late. When the input goes idle the buffer is released whole: a finished replay needs
no newer article to flush it.

>>> buf = ReorderBuffer[str](allowed_lateness=10.0)
>>> buf.push(100.0, "b", "B"); buf.push(95.0, "a", "A"); buf.push(130.0, "c", "C")
>>> [x for x, _ in buf.release()]  # watermark 120: a and b are due, in event-time order
['A', 'B']
>>> buf.push(90.0, "z", "Z")  # older than what was already released
>>> [(x, late) for x, late in buf.release()]
[('Z', True)]
>>> [x for x, _ in buf.release(everything=True)]
['C']
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(order=True)
class _Entry(Generic[T]):
    ts: float
    key: str
    seq: int
    item: T = field(compare=False)


class ReorderBuffer(Generic[T]):
    """Min-heap by ``(timestamp, key)`` released up to a watermark."""

    def __init__(self, allowed_lateness: float) -> None:
        self.allowed_lateness = allowed_lateness
        self._heap: list[_Entry[T]] = []
        self._seq = 0
        self.max_seen = -math.inf
        self.released_up_to: tuple[float, str] = (-math.inf, "")
        self.late = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, ts: float, key: str, item: T) -> None:
        self._seq += 1
        self.max_seen = max(self.max_seen, ts)
        heapq.heappush(self._heap, _Entry(ts, key, self._seq, item))

    @property
    def watermark(self) -> float:
        return self.max_seen - self.allowed_lateness

    def release(self, everything: bool = False) -> list[tuple[T, bool]]:
        """Items now due, oldest first, each with ``True`` when it arrived after its turn had passed."""
        out: list[tuple[T, bool]] = []
        while self._heap and (everything or self._heap[0].ts <= self.watermark):
            entry = heapq.heappop(self._heap)
            late = (entry.ts, entry.key) < self.released_up_to
            if late:
                self.late += 1
            else:
                self.released_up_to = (entry.ts, entry.key)
            out.append((entry.item, late))
        return out
