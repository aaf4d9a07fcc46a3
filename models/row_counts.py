"""How often each story has used each term (or name), and which stories use each term, in one
compiled hash table.

Why: every article reads, for ~20 candidate stories, how often each used each of the article's
~40 terms, and first finds those stories through the terms they share with it. As Python dicts
that was ~800 count lookups scattered over ~20 separately allocated tables and a walk over the
inverted index's dicts, per article: the largest share of the cluster step that was not compiled.
Here the counts are one open-addressing table keyed by (row, key id); each key id also has a
posting, the rows that hold it, packed in one array, so :meth:`RowCounts.top_rows` ranks the rows
sharing an article's terms in one compiled call.

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
>>> sorted(counts.rows_of("quake")), counts.rows_of("unseen")
([3, 5], [])
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
def _compact(
    pool: np.ndarray, start: np.ndarray, cap: np.ndarray, refs: np.ndarray, extra: int
) -> tuple[np.ndarray, int]:  # pragma: no cover - compiled
    """The postings copied, each id's own after the last, into a pool with room for ``extra`` more
    (ids no row holds give their room back); returns it and where its free space starts."""
    live = 0
    for i in range(refs.shape[0]):
        if refs[i] > 0:
            live += cap[i]
        else:
            cap[i] = 0
    out = np.empty(max(64, 2 * (live + extra)), np.int32)
    end = 0
    for i in range(refs.shape[0]):
        if refs[i] > 0:
            s = start[i]
            for p in range(refs[i]):
                out[end + p] = pool[s + p]
            start[i] = end
            end += cap[i]
    return out, end


@njit(cache=True, nogil=True)
def _add(
    keys: np.ndarray,
    vals: np.ndarray,
    pos: np.ndarray,
    refs: np.ndarray,
    shift: np.uint64,
    pool: np.ndarray,
    start: np.ndarray,
    cap: np.ndarray,
    end: int,
    row: int,
    ids: np.ndarray,
    incs: np.ndarray,
) -> tuple[int, np.ndarray, int]:  # pragma: no cover - compiled; exercised through RowCounts
    """Add ``incs[i]`` (all 1 when ``incs`` is empty) to (row, ids[i]); a new pair also joins its
    id's posting (moved to the pool's end, twice as large, when full). Returns how many pairs
    were new, the pool (a new one when it had to grow) and where its free space starts."""
    new = 0
    for i in range(ids.shape[0]):
        key_id = ids[i]
        key = (np.int64(row) << 32) | key_id
        s = _slot(keys, shift, key)
        if keys[s] == EMPTY:
            held = refs[key_id]
            if held == cap[key_id]:
                room = max(4, 2 * held)
                if end + room > pool.shape[0]:
                    pool, end = _compact(pool, start, cap, refs, room)
                for p in range(held):
                    pool[end + p] = pool[start[key_id] + p]
                start[key_id] = end
                cap[key_id] = room
                end += room
            pool[start[key_id] + held] = row
            keys[s] = key
            vals[s] = 0
            pos[s] = held
            refs[key_id] = held + 1
            new += 1
        vals[s] += incs[i] if incs.shape[0] else 1
    return new, pool, end


@njit(cache=True, nogil=True)
def _drop(
    keys: np.ndarray,
    vals: np.ndarray,
    pos: np.ndarray,
    refs: np.ndarray,
    shift: np.uint64,
    pool: np.ndarray,
    start: np.ndarray,
    row: int,
    ids: np.ndarray,
) -> tuple[int, np.ndarray]:  # pragma: no cover - compiled; exercised through RowCounts
    """Remove (row, ids[i]) from the table (backward-shift deletion: no tombstones, probes stay
    short) and from its posting (the posting's last row takes its place); return how many pairs
    were there, and the ids no row holds any more."""
    mask = np.int64(keys.shape[0] - 1)
    found = 0
    freed = np.empty(ids.shape[0], np.int64)
    n_freed = 0
    for i in range(ids.shape[0]):
        key_id = ids[i]
        key = (np.int64(row) << 32) | key_id
        s = _slot(keys, shift, key)
        if keys[s] == EMPTY:
            continue
        found += 1
        last = refs[key_id] - 1
        here = pos[s]
        if here != last:
            moved = np.int64(pool[start[key_id] + last])
            pool[start[key_id] + here] = moved
            pos[_slot(keys, shift, (moved << 32) | key_id)] = here
        refs[key_id] = last
        if last == 0:
            freed[n_freed] = key_id
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
            pos[hole] = pos[j]
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
def _top_rows(
    pool: np.ndarray,
    start: np.ndarray,
    refs: np.ndarray,
    ids: np.ndarray,
    weights: np.ndarray,
    max_scan: int,
    seq: np.ndarray,
    total: np.ndarray,
    mark: np.ndarray,
    epoch: int,
    n: int,
) -> np.ndarray:  # pragma: no cover - compiled; exercised through RowCounts
    """The ``n`` rows with the largest sums of ``weights[j]`` over the ``ids[j]`` they hold (ids
    held by more than ``max_scan`` rows skipped), ties to the smaller ``seq[row]``. Each row's sum
    is taken in the order of ``ids``, so it has the bits a Python loop in that order gives.
    ``total`` and ``mark`` are scratch, one entry per row; ``mark[row] == epoch`` means touched."""
    m = 0
    for j in range(ids.shape[0]):
        if ids[j] >= 0 and refs[ids[j]] <= max_scan:
            m += refs[ids[j]]
    touched = np.empty(m, np.int64)
    t = 0
    for j in range(ids.shape[0]):
        key_id = ids[j]
        if key_id < 0 or refs[key_id] > max_scan:
            continue
        w = weights[j]
        s = start[key_id]
        for p in range(refs[key_id]):
            r = pool[s + p]
            if mark[r] != epoch:
                mark[r] = epoch
                total[r] = w
                touched[t] = r
                t += 1
            else:
                total[r] += w
    by_seq = np.empty(t, np.int64)
    for q in range(t):
        by_seq[q] = seq[touched[q]]
    order = np.argsort(by_seq, kind="mergesort")
    neg = np.empty(t)
    for q in range(t):
        neg[q] = -total[touched[order[q]]]
    ranked = order[np.argsort(neg, kind="mergesort")]  # stable: equal sums stay in seq order
    return touched[ranked[: min(n, t)]]


@njit(cache=True, nogil=True)
def _rehash(
    old_keys: np.ndarray,
    old_vals: np.ndarray,
    old_pos: np.ndarray,
    keys: np.ndarray,
    vals: np.ndarray,
    pos: np.ndarray,
    shift: np.uint64,
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
        pos[s] = old_pos[i]


class RowCounts:
    """Counts of string keys per integer row, and the rows holding each key. Keys are interned to
    ids that live as long as some row holds them, so the id space stays as large as the live
    vocabulary, not the history."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._keys = np.full(size, EMPTY, np.int64)
        self._vals = np.zeros(size, np.int64)
        self._pos = np.zeros(size, np.int32)  # where the pair's row sits in its key's posting
        self._shift = np.uint64(64 - (size.bit_length() - 1))
        self._pairs = 0
        self._ids: dict[str, int] = {}
        self._refs = np.zeros(1024, np.int64)  # id -> rows holding that key (its posting's length)
        self._start = np.zeros(1024, np.int64)  # id -> where its posting starts in the pool
        self._cap = np.zeros(1024, np.int64)  # id -> room the posting has there
        self._pool = np.zeros(4096, np.int32)
        self._end = 0  # the pool's free space starts here
        self._names: list[str] = []  # id -> key, to free ids
        self._free: list[int] = []
        self._no_incs = np.zeros(0, np.int64)
        self._total = np.zeros(0)  # top_rows' scratch, one entry per row
        self._mark = np.zeros(0, np.int64)
        self._epoch = 0

    def __len__(self) -> int:
        """(row, key) pairs held."""
        return self._pairs

    def ids(self, keys: Sequence[str]) -> np.ndarray:
        """The keys' ids, -1 for keys no row holds (what :meth:`matrix_of` and :meth:`top_rows`
        read: look them up once per article, valid until the table next changes)."""
        get = self._ids.get
        return np.fromiter([get(k, -1) for k in keys], np.int64, len(keys))

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
                more = np.zeros(len(self._refs), np.int64)
                self._refs = np.concatenate([self._refs, more])
                self._start = np.concatenate([self._start, more])
                self._cap = np.concatenate([self._cap, more])
        self._ids[key] = i
        return i

    def _room_for(self, row: int, more: int) -> None:
        if row >= len(self._mark):
            grow = max(1024, 2 * len(self._mark), row + 1)
            self._total = np.concatenate([self._total, np.zeros(grow - len(self._total))])
            self._mark = np.concatenate([self._mark, np.zeros(grow - len(self._mark), np.int64)])
        if 2 * (self._pairs + more) <= len(self._keys):
            return
        size = len(self._keys)
        while 2 * (self._pairs + more) > size:
            size *= 2
        keys, vals, pos = np.full(size, EMPTY, np.int64), np.zeros(size, np.int64), np.zeros(size, np.int32)
        shift = np.uint64(64 - (size.bit_length() - 1))
        _rehash(self._keys, self._vals, self._pos, keys, vals, pos, shift)
        self._keys, self._vals, self._pos, self._shift = keys, vals, pos, shift

    def _add_ids(self, row: int, ids: np.ndarray, incs: np.ndarray) -> None:
        new, self._pool, self._end = _add(
            self._keys,
            self._vals,
            self._pos,
            self._refs,
            self._shift,
            self._pool,
            self._start,
            self._cap,
            self._end,
            row,
            ids,
            incs,
        )
        self._pairs += new

    def add(self, row: int, counts: dict[str, int]) -> None:
        """``row``'s count of each key += its number in ``counts``."""
        if counts:
            n = len(counts)
            self._room_for(row, n)
            ids = self._ids_of(counts, n)  # before reading self._refs: interning may grow it
            self._add_ids(row, ids, np.fromiter(counts.values(), np.int64, n))

    def add_one(self, row: int, keys: Collection[str]) -> None:
        """``row``'s count of each of ``keys`` (distinct) += 1: what every article does."""
        if keys:
            n = len(keys)
            self._room_for(row, n)
            self._add_ids(row, self._ids_of(keys, n), self._no_incs)

    def drop(self, row: int, keys: Iterable[str]) -> None:
        """Forget ``row``'s counts of ``keys`` (all of them when its object closes)."""
        ids = self.ids(list(keys))
        known = ids[ids >= 0]
        if not len(known):
            return
        found, freed = _drop(
            self._keys,
            self._vals,
            self._pos,
            self._refs,
            self._shift,
            self._pool,
            self._start,
            row,
            known,
        )
        self._pairs -= found
        for i in freed.tolist():
            del self._ids[self._names[i]]
            self._names[i] = ""
            self._free.append(i)

    def matrix(self, rows: Sequence[int] | np.ndarray, keys: Sequence[str]) -> np.ndarray:
        """``out[i, j]`` = row ``rows[i]``'s count of ``keys[j]`` (0 when it has none), as floats."""
        return self.matrix_of(rows, self.ids(keys))

    def matrix_of(self, rows: Sequence[int] | np.ndarray, ids: np.ndarray) -> np.ndarray:
        """:meth:`matrix` for keys already looked up with :meth:`ids`."""
        return _matrix(self._keys, self._vals, self._shift, np.asarray(rows, np.int64), ids)

    def rows_of(self, key: str) -> list[int]:
        """The rows holding ``key``, in no particular order."""
        i = self._ids.get(key, -1)
        if i < 0:
            return []
        return self._pool[self._start[i] : self._start[i] + self._refs[i]].tolist()

    def top_rows(self, ids: np.ndarray, weights: np.ndarray, max_scan: int, seq: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` rows sharing the most weight with a query (``weights[j]`` for key ``ids[j]``,
        from :meth:`ids`), ties to the smaller ``seq[row]`` (every held row must have one); keys
        held by more than ``max_scan`` rows say too little to rank by and are skipped."""
        self._epoch += 1
        return _top_rows(
            self._pool, self._start, self._refs, ids, weights, max_scan, seq, self._total, self._mark, self._epoch, n
        )


def warm_up() -> None:
    """Compile (or load from numba's cache) the table's kernels before the first article."""
    counts = RowCounts(16)
    counts.add(0, {"a": 1})
    counts.add_one(0, ["a"])
    counts.matrix([0], ["a"])
    counts.top_rows(counts.ids(["a"]), np.ones(1), 10, np.zeros(1, np.int64), 1)
    counts.drop(0, ["a"])
    counts._room_for(0, 64)
