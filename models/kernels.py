"""The cluster step's per-candidate arithmetic, compiled (numba).

Why compiled: an article is scored against ~30 candidate stories on ~12 features, and as numpy
that was ~30 array operations on arrays of 30 — each costs a few microseconds of dispatch whatever
its size, so together they were the largest share of the step. One compiled loop does the same
arithmetic in a few microseconds. The functions are pure (arrays in, arrays out) and keep the
order of every sum fixed, so a given input gives the same bits on every run.

``cache=True`` writes the machine code beside this file (or to ``NUMBA_CACHE_DIR``): a worker
compiles once, later starts load it.

>>> import numpy as np
>>> sims = np.array([0.9, 0.8, 0.5, 0.2], np.float32)  # story 0: centroid, one event; story 1: centroid, one event
>>> meta = np.array([[3, 0.0, 2], [1, 0.0, 2]], float)  # size, last active, rows in ``sims``
>>> x = join_features(sims, meta, np.ones((2, 1)), np.ones(1), np.zeros((2, 0)), np.zeros(0), np.zeros((2, 2)), 3600.0)
>>> x[:, [0, 1, 7]].round(3).tolist()  # dense_story, dense_event, rank_gap
[[0.9, 0.8, 0.0], [0.5, 0.2, -0.4]]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

N_FEATURES = 12  # the order of models.join_model.FEATURE_NAMES


@njit(cache=True, nogil=True)
def join_features(
    sims: np.ndarray,
    meta: np.ndarray,
    counts: np.ndarray,
    w_terms: np.ndarray,
    ecounts: np.ndarray,
    w_ents: np.ndarray,
    votes: np.ndarray,
    now: float,
) -> np.ndarray:  # pragma: no cover - compiled; exercised through StoryClusterer
    """The join features of one article against ``n`` candidate stories.

    ``sims``: the article's cosine to each story's scored vectors, story after story (its centroid,
    then its recent events' centroids); ``meta[i]``: (articles, last active time, rows of ``sims``)
    of story ``i``; ``counts[i, j]``: how often story ``i`` used the article's term ``j`` (weight
    ``w_terms[j]``), ``ecounts``/``w_ents`` the same for names; ``votes[i]``: the nearest-neighbour
    vote share and best cosine.
    """
    n = meta.shape[0]
    out = np.empty((n, N_FEATURES))
    row = 0
    best_dense = -np.inf
    for i in range(n):
        rows = int(meta[i, 2])
        dense = float(sims[row])
        event = -np.inf
        for r in range(row + 1, row + rows):
            event = max(event, float(sims[r]))
        row += rows
        inv_size = 1.0 / meta[i, 0]
        terms = 0.0
        coverage = 0.0
        for j in range(w_terms.shape[0]):
            terms += counts[i, j] * w_terms[j]
            if counts[i, j] > 0:
                coverage += w_terms[j]
        terms = min(terms * inv_size, 1.0)
        ents = 0.0
        novel = 0.0
        for j in range(w_ents.shape[0]):
            ents += ecounts[i, j] * w_ents[j]
            if ecounts[i, j] == 0:
                novel += w_ents[j]
        out[i, 0] = dense
        out[i, 1] = event
        out[i, 2] = terms
        out[i, 3] = min(ents * inv_size, 1.0)
        out[i, 4] = math.log1p(max(0.0, now - meta[i, 1]) / 3600.0)
        out[i, 5] = math.log1p(1.0 / inv_size)
        out[i, 6] = dense * terms
        out[i, 8] = coverage
        out[i, 9] = novel
        out[i, 10] = votes[i, 0]
        out[i, 11] = votes[i, 1]
        best_dense = max(best_dense, dense)
    for i in range(n):
        out[i, 7] = out[i, 0] - best_dense
    return out


@njit(cache=True, nogil=True)
def logistic(
    features: np.ndarray, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float
) -> np.ndarray:  # pragma: no cover - compiled; exercised through JoinModel
    """``sigmoid(((features - mean) / scale) @ coef + intercept)`` row by row, z clipped to ±30."""
    n, m = features.shape
    out = np.empty(n)
    for i in range(n):
        z = 0.0
        for j in range(m):
            z += (features[i, j] - mean[j]) / scale[j] * coef[j]
        z = min(max(z + intercept, -30.0), 30.0)
        out[i] = 1.0 / (1.0 + math.exp(-z))
    return out
