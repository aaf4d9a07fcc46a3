"""A fixed-size memory of the most recent articles, for nearest-neighbour votes.

A story's centroid blurs what it is about once it has hundreds of articles on many sub-topics (a
flood: rescues, donations, closed roads, casualty counts); a new article is often far from that
centroid and yet nearly repeats one recent article of the story. Letting the article's nearest
recent articles vote for their stories catches that, at a cost that does not grow with the number
of active stories: the memory holds ``window`` vectors, whatever the stream's size.

Each article takes slot ``seq % window`` (``seq`` counts the articles ever added), so a memory
restored from its entries is laid out exactly as the one that wrote them, and ties between equal
similarities (retweets, syndicated copies) are broken the same way after a restart.

Each slot also holds its story's label as the owner's tables know it: (row, seq), where the row
indexes the owner's ``versions`` array and ``versions[row] == seq`` while that story is alive. So a
vote is counted in compiled code, with no story id in sight, and a story that closed (its row
cleared or given to another story) stops voting without the memory being told.

>>> import numpy as np
>>> m = RecentArticles(window=3, k=2)
>>> for i, (row, v) in enumerate([(0, [1, 0]), (1, [0, 1]), (0, [0.8, 0.6])]):
...     m.add(f"a{i}", f"s{row}", row, row + 10, float(i), np.asarray(v, np.float32))
>>> versions = np.array([10, 11])  # row 0 holds story seq 10, row 1 seq 11
>>> rows, shares, best = m.votes(np.array([1, 0], np.float32), versions)
>>> rows.tolist(), shares.tolist(), best.round(2).tolist()
([0], [1.0], [1.0])
>>> m.add("a3", "s1", 1, 11, 3.0, np.array([0.0, 1.0], np.float32))  # the window is full: a0 is forgotten
>>> m.votes(np.array([1, 0], np.float32), versions)[2].tolist()  # a1 and a3 are orthogonal: no vote
[0.800000011920929]
>>> m.votes(np.array([1, 0], np.float32), np.array([-1, 11]))[0].tolist()  # story 10 closed
[]
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numba import njit

from models.kernels import nearest, quantise_into


@njit(cache=True, nogil=True)
def _tally_votes(
    slots: np.ndarray, sims: np.ndarray, label_rows: np.ndarray, label_seqs: np.ndarray, versions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled; exercised through RecentArticles
    """(rows, shares, best cosines) of the stories the neighbours ``slots`` (with cosines ``sims``,
    in slot order) belong to, alive ones only, largest share first, ties to the smaller seq."""
    k = slots.shape[0]
    rows = np.empty(k, np.int64)
    seqs = np.empty(k, np.int64)
    share = np.empty(k)
    best = np.empty(k)
    m = 0
    total = 0.0
    for q in range(k):
        sim = float(sims[q])
        if sim <= 0.0:
            continue
        row, seq = label_rows[slots[q]], label_seqs[slots[q]]
        if row < 0 or versions[row] != seq:
            continue
        total += sim
        j = 0
        while j < m and seqs[j] != seq:
            j += 1
        if j == m:
            rows[m], seqs[m], share[m], best[m] = row, seq, 0.0, 0.0
            m += 1
        share[j] += sim
        best[j] = max(best[j], sim)
    for j in range(m):
        share[j] = share[j] / total
    by_seq = np.argsort(seqs[:m], kind="mergesort")
    order = by_seq[np.argsort(-share[:m][by_seq], kind="mergesort")]
    return rows[order], share[order], best[order]


@njit(cache=True, nogil=True)
def _store(
    vectors: np.ndarray,
    codes: np.ndarray,
    scales: np.ndarray,
    slack: np.ndarray,
    times: np.ndarray,
    rows: np.ndarray,
    seqs: np.ndarray,
    slot: int,
    vector: np.ndarray,
    timestamp: float,
    row: int,
    seq: int,
) -> None:  # pragma: no cover - compiled; exercised through RecentArticles
    """Write one article into ``slot``: its vector, int8 codes, time and story label."""
    for j in range(vector.shape[0]):
        vectors[slot, j] = vector[j]
    quantise_into(vectors[slot], codes, scales, slack, slot)
    times[slot] = timestamp
    rows[slot] = row
    seqs[slot] = seq


class RecentArticles:
    """The last ``window`` articles' unit vectors and stories; ``k`` of them vote per query."""

    def __init__(self, window: int, k: int) -> None:
        self.window = window
        self.k = k
        self.count = 0  # articles ever added; the next one takes slot count % window
        self._vectors = np.zeros((0, 0), np.float32)
        self._codes = np.zeros((0, 0), np.int8)  # the same vectors as int8, for kernels.nearest
        self._scales = np.zeros(0)
        self._slack = np.zeros((0, 2))
        self._times = np.zeros(0)
        self._rows = np.zeros(0, np.int64)  # each slot's story label: (row, seq); row -1 = none
        self._seqs = np.zeros(0, np.int64)
        self._stories: list[str] = []
        self._ids: list[str] = []
        self._slot_of: dict[str, int] = {}
        self._oldest = np.inf  # no remembered article is older than this (a bound, not always exact)

    def __len__(self) -> int:
        return min(self.count, self.window)

    def add(self, article_id: str, story_id: str, row: int, seq: int, timestamp: float, vector: np.ndarray) -> None:
        if not self.window:
            return
        self._allocate(len(vector))
        self._put(self.count, article_id, story_id, row, seq, timestamp, vector)
        self.count += 1

    def _allocate(self, dim: int) -> None:
        if not len(self._vectors):  # the dimension is known at the first article
            self._vectors = np.zeros((self.window, dim), np.float32)
            self._codes = np.zeros((self.window, dim), np.int8)
            self._scales = np.zeros(self.window)
            self._slack = np.zeros((self.window, 2))
            self._times = np.full(self.window, np.inf)
            self._rows = np.full(self.window, -1, np.int64)
            self._seqs = np.full(self.window, -1, np.int64)
            self._stories = [""] * self.window
            self._ids = [""] * self.window

    def _put(
        self, seq: int, article_id: str, story_id: str, row: int, story_seq: int, timestamp: float, vector: np.ndarray
    ) -> None:
        slot = seq % self.window
        self._slot_of.pop(self._ids[slot], None)
        _store(
            self._vectors,
            self._codes,
            self._scales,
            self._slack,
            self._times,
            self._rows,
            self._seqs,
            slot,
            vector,
            timestamp,
            row,
            story_seq,
        )
        self._stories[slot] = story_id
        self._ids[slot] = article_id
        self._slot_of[article_id] = slot
        self._oldest = min(self._oldest, timestamp)

    def votes(self, vector: np.ndarray, versions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, shares, best cosines) of the stories among the ``k`` nearest: each story's
        similarity-weighted share of them and its best cosine among them, largest share first (ties
        to the older story). Neighbours of stories no longer alive by ``versions`` (see the module),
        and those not similar at all, neither vote nor count in the shares."""
        n = len(self)
        if not n or not self.k:
            empty = np.zeros(0)
            return np.zeros(0, np.int64), empty, empty
        slots, sims = nearest(self._vectors, self._codes, self._scales, self._slack, n, vector, self.k)
        return _tally_votes(slots, sims, self._rows, self._seqs, versions)

    def relabel(self, seq: int, story_id: str, row: int, new_seq: int) -> None:
        """The articles of story ``seq`` now belong to ``story_id`` (label (row, new_seq)): it was
        merged into that one. Rewrites only their slots (found in one pass over the labels)."""
        for slot in np.flatnonzero(self._seqs == seq).tolist():
            self._rows[slot], self._seqs[slot] = row, new_seq
            self._stories[slot] = story_id

    def forget_before(self, horizon: float) -> None:
        """Empty the slots of articles older than ``horizon``: the stream layer forgets their
        assignments there, so a restored memory would not have them either."""
        if horizon <= self._oldest:  # the usual case, checked per article: nothing to scan
            return
        old = np.flatnonzero(self._times < horizon)
        for slot in old.tolist():
            self._slot_of.pop(self._ids[slot], None)
            self._ids[slot] = self._stories[slot] = ""
        self._vectors[old] = 0.0
        self._codes[old] = 0
        self._scales[old] = 0.0
        self._slack[old] = 0.0
        self._times[old] = np.inf
        self._rows[old] = self._seqs[old] = -1
        self._oldest = float(self._times.min()) if len(self._times) else np.inf

    def entry(self, article_id: str) -> list[Any] | None:
        """What to store so :meth:`restore` can put this article back: ``[seq, id, story, time, vector]``."""
        slot = self._slot_of.get(article_id)
        if slot is None:
            return None
        seq = self.count - 1 - ((self.count - 1 - slot) % self.window)
        vec = base64.b64encode(np.asarray(self._vectors[slot], "<f4").tobytes()).decode("ascii")
        return [seq, article_id, self._stories[slot], float(self._times[slot]), vec]

    def entries(self) -> list[list[Any]]:
        """Every remembered article, oldest first."""
        slots = sorted(self._slot_of.values(), key=lambda s: (s - self.count) % self.window)
        return [e for e in (self.entry(self._ids[s]) for s in slots) if e is not None]

    def restore(self, entries: Iterable[list[Any]], label: Callable[[str], tuple[str, int, int]]) -> None:
        """Put back what :meth:`entry` returned (any order; only the newest ``window`` are kept).
        ``label`` maps a stored story id to (the story it is now, its row, its seq); row -1 for
        a story that is gone."""
        rows = sorted(entries, key=lambda e: e[0])[-self.window :] if self.window else []
        if not rows:
            return
        for seq, article_id, story_id, timestamp, vec in rows:
            vector = np.frombuffer(base64.b64decode(vec), "<f4")
            self._allocate(len(vector))
            story, row, story_seq = label(story_id)
            self._put(int(seq), article_id, story, row, story_seq, float(timestamp), vector)
        self.count = int(rows[-1][0]) + 1


def warm_up() -> None:
    """Compile (or load from numba's cache) the vote count before the first article."""
    m = RecentArticles(window=1, k=1)
    m.add("a", "s", 0, 1, 0.0, np.ones(2, np.float32) / np.sqrt(2))
    m.votes(np.ones(2, np.float32) / np.sqrt(2), np.array([1]))
