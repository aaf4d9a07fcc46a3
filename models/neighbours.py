"""A fixed-size memory of the most recent articles, for nearest-neighbour votes.

A story's centroid blurs what it is about once it has hundreds of articles on many sub-topics (a
flood: rescues, donations, closed roads, casualty counts); a new article is often far from that
centroid and yet nearly repeats one recent article of the story. Letting the article's nearest
recent articles vote for their stories catches that, at a cost that does not grow with the number
of active stories: the memory holds ``window`` vectors, whatever the stream's size.

Each article takes slot ``seq % window`` (``seq`` counts the articles ever added), so a memory
restored from its entries is laid out exactly as the one that wrote them, and ties between equal
similarities (retweets, syndicated copies) are broken the same way after a restart.

>>> import numpy as np
>>> m = RecentArticles(window=3, k=2)
>>> for i, (story, v) in enumerate([("s1", [1, 0]), ("s2", [0, 1]), ("s1", [0.8, 0.6])]):
...     m.add(f"a{i}", story, float(i), np.asarray(v, np.float32))
>>> {s: (round(share, 2), round(best, 2)) for s, (share, best) in m.votes(np.array([1, 0], np.float32)).items()}
{'s1': (1.0, 1.0)}
>>> m.add("a3", "s2", 3.0, np.array([0.0, 1.0], np.float32))  # the window is full: a0 is forgotten
>>> m.votes(np.array([1, 0], np.float32))  # a1 and a3 are orthogonal to the query: no vote
{'s1': (1.0, 0.800000011920929)}
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Container, Iterable
from typing import Any

import numpy as np

from models.kernels import nearest, quantise_into


class RecentArticles:
    """The last ``window`` articles' unit vectors and stories; ``k`` of them vote per query.

    ``resolve`` maps a story id to the story it lives on as (the clusterer merges stories): it is
    applied to the neighbours of a query and to what :meth:`entry` stores, so a merge rewrites
    nothing here (relabelling the whole memory on every merge was 8 % of a synthetic cluster step).
    """

    def __init__(self, window: int, k: int, resolve: Callable[[str], str] | None = None) -> None:
        self.window = window
        self.k = k
        self.resolve = resolve or (lambda story: story)
        self.count = 0  # articles ever added; the next one takes slot count % window
        self._vectors = np.zeros((0, 0), np.float32)
        self._codes = np.zeros((0, 0), np.int8)  # the same vectors as int8, for kernels.nearest
        self._scales = np.zeros(0)
        self._slack = np.zeros((0, 2))
        self._times = np.zeros(0)
        self._stories: list[str] = []
        self._ids: list[str] = []
        self._slot_of: dict[str, int] = {}
        self._oldest = np.inf  # no remembered article is older than this (a bound, not always exact)

    def __len__(self) -> int:
        return min(self.count, self.window)

    def add(self, article_id: str, story_id: str, timestamp: float, vector: np.ndarray) -> None:
        if not self.window:
            return
        self._allocate(len(vector))
        self._put(self.count, article_id, story_id, timestamp, vector)
        self.count += 1

    def _allocate(self, dim: int) -> None:
        if not len(self._vectors):  # the dimension is known at the first article
            self._vectors = np.zeros((self.window, dim), np.float32)
            self._codes = np.zeros((self.window, dim), np.int8)
            self._scales = np.zeros(self.window)
            self._slack = np.zeros((self.window, 2))
            self._times = np.full(self.window, np.inf)
            self._stories = [""] * self.window
            self._ids = [""] * self.window

    def _put(self, seq: int, article_id: str, story_id: str, timestamp: float, vector: np.ndarray) -> None:
        slot = seq % self.window
        self._slot_of.pop(self._ids[slot], None)
        self._vectors[slot] = vector
        quantise_into(self._vectors[slot], self._codes, self._scales, self._slack, slot)
        self._times[slot] = timestamp
        self._stories[slot] = story_id
        self._ids[slot] = article_id
        self._slot_of[article_id] = slot
        self._oldest = min(self._oldest, timestamp)

    def votes(self, vector: np.ndarray, alive: Container[str] | None = None) -> dict[str, tuple[float, float]]:
        """story -> (its similarity-weighted share of the ``k`` nearest, its best cosine among them).

        Neighbours of stories not in ``alive`` (expired), and those not similar at all, neither vote
        nor count in the shares.
        """
        n = len(self)
        if not n or not self.k:
            return {}
        rows, sims = nearest(self._vectors, self._codes, self._scales, self._slack, n, vector, self.k)
        total = 0.0
        out: dict[str, tuple[float, float]] = {}
        for j, sim in zip(rows.tolist(), sims.tolist()):
            if sim <= 0.0:
                continue
            story = self.resolve(self._stories[j])
            if alive is not None and story not in alive:
                continue
            total += sim
            share, best = out.get(story, (0.0, 0.0))
            out[story] = (share + sim, max(best, sim))
        return {s: (share / total, best) for s, (share, best) in out.items()}

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
        self._oldest = float(self._times.min()) if len(self._times) else np.inf

    def entry(self, article_id: str) -> list[Any] | None:
        """What to store so :meth:`restore` can put this article back: ``[seq, id, story, time, vector]``."""
        slot = self._slot_of.get(article_id)
        if slot is None:
            return None
        seq = self.count - 1 - ((self.count - 1 - slot) % self.window)
        vec = base64.b64encode(np.asarray(self._vectors[slot], "<f4").tobytes()).decode("ascii")
        return [seq, article_id, self.resolve(self._stories[slot]), float(self._times[slot]), vec]

    def entries(self) -> list[list[Any]]:
        """Every remembered article, oldest first."""
        slots = sorted(self._slot_of.values(), key=lambda s: (s - self.count) % self.window)
        return [e for e in (self.entry(self._ids[s]) for s in slots) if e is not None]

    def restore(self, entries: Iterable[list[Any]]) -> None:
        """Put back what :meth:`entry` returned (any order; only the newest ``window`` are kept)."""
        rows = sorted(entries, key=lambda e: e[0])[-self.window :] if self.window else []
        if not rows:
            return
        for seq, article_id, story_id, timestamp, vec in rows:
            vector = np.frombuffer(base64.b64decode(vec), "<f4")
            self._allocate(len(vector))
            self._put(int(seq), article_id, story_id, float(timestamp), vector)
        self.count = int(rows[-1][0]) + 1
