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


@njit(cache=True, nogil=True)
def best_event(
    dense: np.ndarray, meta: np.ndarray, counts: np.ndarray, weights: np.ndarray, horizon: float
) -> tuple[int, float]:  # pragma: no cover - compiled; exercised through StoryClusterer
    """Which of a story's events an article continues: (index, similarity), index -1 when every
    event fell silent before ``horizon``. ``meta[i]``: (articles, last active time) of event ``i``;
    similarity = half the dense cosine ``dense[i]``, half the article's term weight the event has
    used per article (at most 1).

    >>> best_event(np.array([0.2, 0.9], np.float32), np.array([[1, 5.0], [1, 0.0]]), np.ones((2, 1)), np.ones(1), 1.0)
    (0, 0.6000000014901161)
    """
    best = -1
    best_sim = -1.0
    for i in range(meta.shape[0]):
        if meta[i, 1] < horizon:
            continue
        lexical = 0.0
        for j in range(weights.shape[0]):
            lexical += weights[j] * counts[i, j]
        sim = 0.5 * float(dense[i]) + 0.5 * min(lexical / meta[i, 0], 1.0)
        if sim > best_sim:
            best, best_sim = i, sim
    return best, best_sim


@njit(cache=True, nogil=True)
def top_k(scores: np.ndarray, k: int) -> np.ndarray:  # pragma: no cover - compiled; exercised through RecentArticles
    """Indices of the ``k`` largest scores, in increasing index order; among equal scores the lower
    index wins (a rule, where a partition's choice would be whatever its pivots made it).

    >>> top_k(np.array([0.1, 0.9, 0.5, 0.9, 0.2]), 2).tolist(), top_k(np.array([0.3, 0.3, 0.3]), 2).tolist()
    ([1, 3], [0, 1])
    >>> top_k(np.array([0.5]), 3).tolist(), top_k(np.array([0.5]), 0).tolist()
    ([0], [])
    """
    n = scores.shape[0]
    k = max(0, min(k, n))
    if k == 0:
        return np.empty(0, np.int64)
    vals = np.empty(k, scores.dtype)
    idx = np.empty(k, np.int64)
    filled = 0
    low = 0  # position of the smallest kept score (latest index among equals) once ``filled == k``
    for j in range(n):
        s = scores[j]
        if filled < k:
            vals[filled], idx[filled] = s, j
            filled += 1
            if filled == k:
                low = _weakest(vals, idx)
        elif s > vals[low]:
            vals[low], idx[low] = s, j
            low = _weakest(vals, idx)
    return np.sort(idx)


@njit(cache=True, nogil=True, inline="always")
def _weakest(vals: np.ndarray, idx: np.ndarray) -> int:  # pragma: no cover - compiled
    """The kept entry to give up first: the smallest score, the latest index among equal ones."""
    low = 0
    for i in range(1, vals.shape[0]):
        if vals[i] < vals[low] or (vals[i] == vals[low] and idx[i] > idx[low]):
            low = i
    return low


def warm_up() -> None:
    """Compile (or load from the cache) every kernel with the argument types the clusterer passes,
    so a worker pays for it when it starts rather than on its first article."""
    one, row = np.ones(1), np.ones((1, 1))
    sims = np.ones(2, np.float32)
    features = join_features(sims, np.array([[1.0, 0.0, 2.0]]), row, one, row, one, np.zeros((1, 2)), 0.0)
    logistic(features, np.zeros(N_FEATURES), np.ones(N_FEATURES), np.ones(N_FEATURES), 0.0)
    best_event(sims, np.ones((1, 2)), row, one, 0.0)
    top_k(sims, 1)
