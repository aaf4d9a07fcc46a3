"""How often each story has used each term (or name), in one compiled hash table.

Why: every article reads, for ~20 candidate stories, how often each used each of the article's
~40 terms. As Python dicts that is ~800 lookups scattered over ~20 separately allocated tables,
per article, and it was the largest share of the cluster step that was not compiled. Here the
counts are one open-addressing table keyed by (row, key id) and one compiled loop answers the
whole matrix (20 stories × 39 terms with the caches evicted in between: 127–238 µs as dict
lookups, 67–93 µs here).

The table mirrors the stories' own ``terms`` / ``entities`` dicts, which stay the state that is
stored and restored; the clusterer updates both in the same step (and ``tests/test_clustering.py``
checks they agree through pruning, merges, expiry and restores). That double update costs about
half of what the lookups save, which is why the events' terms (read for one story per article)
are not mirrored. Rows are the stories' rows in the clusterer's
:class:`~models.centroids.CentroidTable`, so a row given back must be cleared here first
(:meth:`drop` with every key it holds).

>>> counts = RowCounts()
>>> counts.add(3, {"quake": 2, "chile": 1})
>>> counts.add(5, {"quake": 1})
>>> counts.matrix([3, 5], ["chile", "quake", "unseen"]).tolist()
[[1.0, 2.0, 0.0], [0.0, 1.0, 0.0]]
>>> counts.drop(3, ["quake", "chile"]); counts.matrix([3, 5], ["quake"]).tolist(), len(counts)
([[0.0], [1.0]], 1)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import numpy as np
from numba import njit

EMPTY = np.int64(-1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads consecutive keys over the table


@njit(cache=True, nogil=True, inline="always")
def _home(key: np.int64, shift: np.uint64) -> np.int64:  # pragma: no cover - compiled
    return np.int64((np.uint64(key) * _GOLDEN) >> shift)


@njit(cache=True, nogil=True, inline="always")
def _slot(keys: np.ndarray, shift: np.uint64, key: np.int64) -> np.int64:  # pragma: no cover - compiled
    """Where ``key`` is, or the empty slot where it would go (linear probing)."""
    mask = np.int64(keys.shape[0] - 1)
    s = _home(key, shift)
    while keys[s] != EMPTY and keys[s] != key:
        s = (s + 1) & mask
    return s


@njit(cache=True, nogil=True)
def _add(
    keys: np.ndarray, vals: np.ndarray, refs: np.ndarray, shift: np.uint64, row: int, ids: np.ndarray, incs: np.ndarray
) -> int:  # pragma: no cover - compiled; exercised through RowCounts
    """Add ``incs[i]`` (all 1 when ``incs`` is empty) to (row, ids[i]); return how many pairs
    were new (each new pair is one more reference to its id)."""
    new = 0
    for i in range(ids.shape[0]):
        key = (np.int64(row) << 32) | ids[i]
        s = _slot(keys, shift, key)
        if keys[s] == EMPTY:
            keys[s] = key
            vals[s] = 0
            refs[ids[i]] += 1
            new += 1
        vals[s] += incs[i] if incs.shape[0] else 1
    return new


@njit(cache=True, nogil=True)
def _drop(
    keys: np.ndarray, vals: np.ndarray, refs: np.ndarray, shift: np.uint64, row: int, ids: np.ndarray
) -> tuple[int, np.ndarray]:  # pragma: no cover - compiled; exercised through RowCounts
    """Remove (row, ids[i]) (backward-shift deletion: no tombstones, probes stay short); return
    how many pairs were there, and the ids no row holds any more."""
    mask = np.int64(keys.shape[0] - 1)
    found = 0
    freed = np.empty(ids.shape[0], np.int64)
    n_freed = 0
    for i in range(ids.shape[0]):
        key = (np.int64(row) << 32) | ids[i]
        s = _slot(keys, shift, key)
        if keys[s] == EMPTY:
            continue
        found += 1
        refs[ids[i]] -= 1
        if refs[ids[i]] == 0:
            freed[n_freed] = ids[i]
            n_freed += 1
        hole = s
        j = s
        while True:
            j = (j + 1) & mask
            if keys[j] == EMPTY:
                break
            home = _home(keys[j], shift)
            # keys[j] may fill the hole only if its home is not cyclically within (hole, j]
            if (hole < j and hole < home <= j) or (hole > j and (home > hole or home <= j)):
                continue
            keys[hole] = keys[j]
            vals[hole] = vals[j]
            hole = j
        keys[hole] = EMPTY
    return found, freed[:n_freed]


@njit(cache=True, nogil=True)
def _matrix(
    keys: np.ndarray, vals: np.ndarray, shift: np.uint64, rows: np.ndarray, ids: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled; exercised through RowCounts
    out = np.zeros((rows.shape[0], ids.shape[0]))
    for i in range(rows.shape[0]):
        for j in range(ids.shape[0]):
            if ids[j] < 0:
                continue
            key = (np.int64(rows[i]) << 32) | ids[j]
            s = _slot(keys, shift, key)
            if keys[s] == key:
                out[i, j] = vals[s]
    return out


@njit(cache=True, nogil=True)
def _rehash(
    old_keys: np.ndarray, old_vals: np.ndarray, keys: np.ndarray, vals: np.ndarray, shift: np.uint64
) -> None:  # pragma: no cover - compiled; exercised through RowCounts
    mask = np.int64(keys.shape[0] - 1)
    for i in range(old_keys.shape[0]):
        key = old_keys[i]
        if key == EMPTY:
            continue
        s = _home(key, shift)
        while keys[s] != EMPTY:
            s = (s + 1) & mask
        keys[s] = key
        vals[s] = old_vals[i]


class RowCounts:
    """Counts of string keys per integer row. Keys are interned to ids that live as long as some
    row holds them, so the id space stays as large as the live vocabulary, not the history."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._keys = np.full(size, EMPTY, np.int64)
        self._vals = np.zeros(size, np.int64)
        self._shift = np.uint64(64 - (size.bit_length() - 1))
        self._pairs = 0
        self._ids: dict[str, int] = {}
        self._refs = np.zeros(1024, np.int64)  # id -> rows holding that key
        self._names: list[str] = []  # id -> key, to free ids
        self._free: list[int] = []
        self._no_incs = np.zeros(0, np.int64)

    def __len__(self) -> int:
        """(row, key) pairs held."""
        return self._pairs

    def _ids_of(self, keys: Iterable[str], n: int) -> np.ndarray:
        """The keys' ids, new ones interned."""
        get = self._ids.get
        ids = [get(k, -1) for k in keys]
        if -1 in ids:
            ids = [i if i >= 0 else self._intern(k) for k, i in zip(keys, ids)]
        return np.fromiter(ids, np.int64, n)

    def _intern(self, key: str) -> int:
        if self._free:
            i = self._free.pop()
            self._names[i] = key
        else:
            i = len(self._names)
            self._names.append(key)
            if i == len(self._refs):
                self._refs = np.concatenate([self._refs, np.zeros(len(self._refs), np.int64)])
        self._ids[key] = i
        return i

    def _room_for(self, more: int) -> None:
        if 2 * (self._pairs + more) <= len(self._keys):
            return
        size = len(self._keys)
        while 2 * (self._pairs + more) > size:
            size *= 2
        keys, vals = np.full(size, EMPTY, np.int64), np.zeros(size, np.int64)
        shift = np.uint64(64 - (size.bit_length() - 1))
        _rehash(self._keys, self._vals, keys, vals, shift)
        self._keys, self._vals, self._shift = keys, vals, shift

    def add(self, row: int, counts: dict[str, int]) -> None:
        """``row``'s count of each key += its number in ``counts``."""
        if counts:
            n = len(counts)
            self._room_for(n)
            ids = self._ids_of(counts, n)  # before reading self._refs: interning may grow it
            incs = np.fromiter(counts.values(), np.int64, n)
            self._pairs += _add(self._keys, self._vals, self._refs, self._shift, row, ids, incs)

    def add_one(self, row: int, keys: Collection[str]) -> None:
        """``row``'s count of each of ``keys`` (distinct) += 1: what every article does."""
        if keys:
            n = len(keys)
            self._room_for(n)
            ids = self._ids_of(keys, n)
            self._pairs += _add(self._keys, self._vals, self._refs, self._shift, row, ids, self._no_incs)

    def drop(self, row: int, keys: Iterable[str]) -> None:
        """Forget ``row``'s counts of ``keys`` (all of them when its object closes)."""
        get = self._ids.get
        known = [i for i in (get(k, -1) for k in keys) if i >= 0]
        if not known:
            return
        found, freed = _drop(self._keys, self._vals, self._refs, self._shift, row, np.asarray(known, np.int64))
        self._pairs -= found
        for i in freed.tolist():
            del self._ids[self._names[i]]
            self._names[i] = ""
            self._free.append(i)

    def matrix(self, rows: Sequence[int] | np.ndarray, keys: Sequence[str]) -> np.ndarray:
        """``out[i, j]`` = row ``rows[i]``'s count of ``keys[j]`` (0 when it has none), as floats."""
        ids = self._ids
        key_ids = np.fromiter([ids.get(k, -1) for k in keys], np.int64, len(keys))
        return _matrix(self._keys, self._vals, self._shift, np.asarray(rows, np.int64), key_ids)


def warm_up() -> None:
    """Compile (or load from numba's cache) the table's kernels before the first article."""
    counts = RowCounts(16)
    counts.add(0, {"a": 1})
    counts.add_one(0, ["a"])
    counts.matrix([0], ["a"])
    counts.drop(0, ["a"])
    counts._room_for(64)
