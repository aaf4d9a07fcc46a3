"""The unit centroid of every live story and event, one row each of one float32 matrix.

Why one matrix: every article is scored against ~20 candidate stories, each by its centroid and
its recent events' centroids (~130 vectors). Kept per object, a story restacked its vectors on
every article it took, and every article concatenated its candidates' stacks before one
matrix-vector product; as rows of one table, a compiled loop reads them where they lie, and a
story's vectors are stored once, not twice. A row is taken when a story or event opens and given
back when it closes, so the table stays as large as the live state, not the history.

The table is derived state: a story or event stores its ``vector_sum``, and its row is rebuilt
from it (:meth:`put`) whenever the state is restored.

>>> import numpy as np
>>> table = CentroidTable()
>>> a, b = table.take(2), table.take(2)
>>> total = np.zeros(2)
>>> table.add(a, total, np.array([3.0, 4.0], np.float32)); total.tolist(), table.rows[a].tolist()
([3.0, 4.0], [0.6000000238418579, 0.800000011920929])
>>> table.give_back(a); table.take(2) == a  # a freed row is reused first
True
>>> table.take(3)  # vectors from another embedder: refused, not silently mixed
Traceback (most recent call last):
ValueError: a 3-dimensional vector among 2-dimensional ones
"""

from __future__ import annotations

import numpy as np

from models.kernels import accumulate, normalise_into


class CentroidTable:
    """Rows of unit vectors handed out by index; freed rows are reused, the matrix only grows."""

    def __init__(self) -> None:
        self.rows = np.zeros((0, 0), np.float32)
        self._free: list[int] = []
        self._used = 0  # rows ever handed out (the free list holds the returned ones)

    def take(self, dim: int) -> int:
        """A row for a new story or event (zeros until :meth:`put` or :meth:`add` fills it)."""
        if self._used and self.rows.shape[1] != dim:
            raise ValueError(f"a {dim}-dimensional vector among {self.rows.shape[1]}-dimensional ones")
        if self._free:
            row = self._free.pop()
            self.rows[row] = 0.0
            return row
        if self._used == len(self.rows):
            grown = np.zeros((max(64, 2 * len(self.rows)), dim), np.float32)
            if self._used:
                grown[: self._used] = self.rows
            self.rows = grown
        self._used += 1
        return self._used - 1

    def give_back(self, row: int) -> None:
        self._free.append(row)

    def put(self, row: int, total: np.ndarray) -> None:
        """Set the row to ``total`` scaled to unit length (zeros stay zeros)."""
        normalise_into(total, self.rows, row)

    def add(self, row: int, total: np.ndarray, vector: np.ndarray) -> None:
        """``total += vector`` in place, then the row to the new total's direction: one compiled
        call where four numpy operations were, on every article for its story and its event."""
        accumulate(total, vector, self.rows, row)

    def vector(self, row: int) -> np.ndarray:
        """A copy of one row (the table may grow, and a view would then go stale)."""
        return self.rows[row].copy()

    @property
    def live(self) -> int:
        """Rows in use."""
        return self._used - len(self._free)
