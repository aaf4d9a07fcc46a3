"""What every article reads of each candidate story, as arrays indexed by the story's row.

Why: an article is scored against ~20 candidate stories, and reading each one's size, last
activity and scored centroid rows from its Python object touched ~20 scattered objects and their
lists before any arithmetic could start (a tenth of the cluster step, all of it waiting on
memory). Here those numbers sit in two arrays and one compiled call gathers them with the
cosines. The stories' objects stay the state that is stored; the clusterer writes a story's
entry (:meth:`StoryTable.put`) whenever it changes one of them.

>>> import numpy as np
>>> table = StoryTable(events_scored=2)
>>> table.put(4, seq=2, size=3, last_ts=60.0, scored=[4, 7, 9])  # its centroid row, then its events'
>>> centroids = np.eye(10, 3, dtype=np.float32)
>>> sims, meta = table.gather(centroids, np.array([4], np.int64), np.ones(3, np.float32))
>>> sims.tolist(), meta.tolist()
([0.0, 0.0, 0.0], [[3.0, 60.0, 3.0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from models.kernels import dot_rows


@njit(cache=True, nogil=True)
def _gather(
    centroids: np.ndarray, cand: np.ndarray, meta: np.ndarray, scored: np.ndarray, vector: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled; exercised through StoryTable
    n = cand.shape[0]
    out_meta = np.empty((n, 3))
    total = 0
    for i in range(n):
        for j in range(3):
            out_meta[i, j] = meta[cand[i], j]
        total += int(meta[cand[i], 2])
    rows = np.empty(total, np.int64)
    k = 0
    for i in range(n):
        for j in range(int(meta[cand[i], 2])):
            rows[k] = scored[cand[i], j]
            k += 1
    return dot_rows(centroids, rows, vector), out_meta


class StoryTable:
    """Per story row: (articles, last active time, scored rows), the scored rows themselves (its
    centroid's, then its most recent events') and its ``seq`` (the order stories opened in, which
    breaks ties between equally good candidates)."""

    def __init__(self, events_scored: int) -> None:
        self.width = 1 + events_scored
        self.meta = np.zeros((0, 3))
        self.scored = np.zeros((0, self.width), np.int64)
        self.seq = np.zeros(0, np.int64)

    def put(self, row: int, seq: int, size: int, last_ts: float, scored: Sequence[int]) -> None:
        if row >= len(self.meta):
            grow = max(64, 2 * len(self.meta), row + 1)
            self.meta = np.concatenate([self.meta, np.zeros((grow - len(self.meta), 3))])
            self.scored = np.concatenate([self.scored, np.zeros((grow - len(self.scored), self.width), np.int64)])
            self.seq = np.concatenate([self.seq, np.zeros(grow - len(self.seq), np.int64)])
        self.seq[row] = seq
        m = len(scored)
        self.meta[row] = (size, last_ts, m)
        self.scored[row, :m] = scored

    def touch(self, row: int, size: int, last_ts: float) -> None:
        """The story on ``row`` took an article into an event it already had: only its size and
        last activity moved."""
        meta = self.meta[row]
        meta[0] = size
        meta[1] = last_ts

    def clear(self, row: int) -> None:
        """The story on ``row`` closed: nothing that labels a story by (row, seq) may find it alive."""
        self.seq[row] = -1

    def gather(self, centroids: np.ndarray, cand: np.ndarray, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The article's cosine to each candidate's scored rows, candidate after candidate, and the
        candidates' (articles, last active time, scored rows): what ``kernels.join_features`` reads."""
        return _gather(centroids, cand, self.meta, self.scored, vector)


def warm_up() -> None:
    """Compile (or load from numba's cache) the gather before the first article."""
    table = StoryTable(1)
    table.put(0, 1, 1, 0.0, [0])
    table.gather(np.ones((1, 2), np.float32), np.zeros(1, np.int64), np.ones(2, np.float32))
