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
def tf_idf(counts: np.ndarray, dfs: np.ndarray, docs: float) -> np.ndarray:  # pragma: no cover - compiled
    """Weights ``(1 + log count) * idf`` over a text's terms, scaled to sum to 1; ``counts`` all 0
    for names (weight = idf). idf = ``log(docs / (1 + df)) + 1`` with ``docs`` = 1 + documents seen.
    Sums run in the terms' order, so a Python loop in that order gives the same bits.

    >>> tf_idf(np.array([1, 2]), np.array([0, 9]), 10.0).round(3).tolist()
    [0.661, 0.339]
    """
    n = counts.shape[0]
    out = np.empty(n)
    total = 0.0
    for i in range(n):
        idf = math.log(docs / (1.0 + dfs[i])) + 1.0
        out[i] = (1.0 + math.log(counts[i])) * idf if counts[i] > 0 else idf
        total += out[i]
    if total == 0.0:
        total = 1.0
    for i in range(n):
        out[i] = out[i] / total
    return out


@njit(cache=True, nogil=True)
def votes_at(
    rows: np.ndarray, vote_rows: np.ndarray, shares: np.ndarray, bests: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """``out[i]`` = (share, best cosine) of the nearest-neighbour vote for the story on ``rows[i]``,
    (0, 0) when its articles are not among the nearest (``models.neighbours`` gives the votes).

    >>> votes_at(np.array([4, 2]), np.array([2]), np.array([1.0]), np.array([0.5])).tolist()
    [[0.0, 0.0], [1.0, 0.5]]
    """
    out = np.zeros((rows.shape[0], 2))
    for i in range(rows.shape[0]):
        for j in range(vote_rows.shape[0]):
            if vote_rows[j] == rows[i]:
                out[i, 0] = shares[j]
                out[i, 1] = bests[j]
                break
    return out


@njit(cache=True, nogil=True, fastmath=True)
def dot_rows(table: np.ndarray, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``table[rows] @ vector`` without gathering the rows into a new matrix first. (``fastmath``
    lets the sum vectorise: the order is fixed by the compiled code, so a given input and
    machine always give the same bits.)

    >>> table = np.array([[1, 0], [0.5, 0.25]], np.float32)
    >>> dot_rows(table, np.array([1, 1, 0]), np.array([1, 2], np.float32)).tolist()
    [1.0, 1.0, 1.0]
    """
    out = np.empty(rows.shape[0], np.float32)
    for i in range(rows.shape[0]):
        r = rows[i]
        s = np.float32(0.0)
        for j in range(vector.shape[0]):
            s += table[r, j] * vector[j]
        out[i] = s
    return out


@njit(cache=True, nogil=True)
def normalise_into(total: np.ndarray, table: np.ndarray, row: int) -> None:  # pragma: no cover - compiled
    """``table[row] = total / ||total||`` as float32 (left as ``total`` when it is all zeros)."""
    sq = 0.0
    for j in range(total.shape[0]):
        sq += total[j] * total[j]
    norm = math.sqrt(sq) if sq > 0.0 else 1.0
    for j in range(total.shape[0]):
        table[row, j] = total[j] / norm


@njit(cache=True, nogil=True)
def accumulate(total: np.ndarray, vector: np.ndarray, table: np.ndarray, row: int) -> None:  # pragma: no cover
    """``total += vector`` in place, then :func:`normalise_into` the row."""
    for j in range(total.shape[0]):
        total[j] += vector[j]
    normalise_into(total, table, row)


@njit(cache=True, nogil=True)
def join_probability(
    features: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    hidden_weights: np.ndarray,
    hidden_bias: np.ndarray,
    coef: np.ndarray,
    intercept: float,
) -> np.ndarray:  # pragma: no cover - compiled; exercised through JoinModel
    """The join model's probability row by row: features standardised (``(x - mean) / scale``),
    through one layer of ReLU units (``hidden_weights``: features x units) when there is one, then
    ``sigmoid(h @ coef + intercept)`` with z clipped to ±30. With no hidden units (a features x 0
    matrix) it is logistic regression on the standardised features.

    >>> x = np.array([[1.0, 2.0]])
    >>> join_probability(x, np.zeros(2), np.ones(2), np.zeros((2, 0)), np.zeros(0), np.array([1.0, -1.0]), 1.0)
    array([0.5])
    >>> w = np.array([[1.0, -1.0], [0.0, 0.0]])  # unit 0 reads feature 0, unit 1 its negation
    >>> join_probability(x, np.zeros(2), np.ones(2), w, np.zeros(2), np.array([2.0, 5.0]), -2.0)
    array([0.5])
    """
    n, m = features.shape
    units = hidden_weights.shape[1]
    z_in = np.empty(m)
    out = np.empty(n)
    for i in range(n):
        for j in range(m):
            z_in[j] = (features[i, j] - mean[j]) / scale[j]
        z = intercept
        if units == 0:
            for j in range(m):
                z += z_in[j] * coef[j]
        else:
            for u in range(units):
                h = hidden_bias[u]
                for j in range(m):
                    h += z_in[j] * hidden_weights[j, u]
                if h > 0.0:
                    z += h * coef[u]
        z = min(max(z, -30.0), 30.0)
        out[i] = 1.0 / (1.0 + math.exp(-z))
    return out


@njit(cache=True, nogil=True)
def best_event(
    centroids: np.ndarray, rows: np.ndarray, vector: np.ndarray, events: np.ndarray, weights: np.ndarray, horizon: float
) -> tuple[int, float]:  # pragma: no cover - compiled; exercised through StoryClusterer
    """Which of a story's events an article continues: (index, similarity), index -1 when every
    event fell silent before ``horizon``. Event ``i`` has its centroid on ``centroids[rows[i]]``;
    ``events[i]``: (articles, last active time, then how often it used each of the article's terms,
    of weights ``weights``). Similarity = half the dense cosine, half the article's term weight
    the event has used per article (at most 1).

    >>> table, article = np.eye(2, dtype=np.float32), np.array([0.2, 0.9], np.float32)
    >>> events = np.array([[1, 5.0, 1], [1, 0.0, 1]])  # the second fell silent before the horizon
    >>> best_event(table, np.array([0, 1]), article, events, np.ones(1), 1.0)
    (0, 0.6000000014901161)
    """
    dense = dot_rows(centroids, rows, vector)
    best = -1
    best_sim = -1.0
    for i in range(events.shape[0]):
        if events[i, 1] < horizon:
            continue
        lexical = 0.0
        for j in range(weights.shape[0]):
            lexical += weights[j] * events[i, 2 + j]
        sim = 0.5 * float(dense[i]) + 0.5 * min(lexical / events[i, 0], 1.0)
        if sim > best_sim:
            best, best_sim = i, sim
    return best, best_sim


@njit(cache=True, nogil=True)
def best_two(scores: np.ndarray) -> tuple[int, int]:  # pragma: no cover - compiled; exercised through StoryClusterer
    """The indices of the largest and second largest scores (-1 when there are fewer), the lower
    index first among equal ones: the first two of a stable descending sort, without the sort
    (an article reads only those two of its ~20 candidates' probabilities).

    >>> best_two(np.array([0.2, 0.9, 0.5, 0.9])), best_two(np.array([0.3])), best_two(np.zeros(0))
    ((1, 3), (0, -1), (-1, -1))
    """
    first = -1
    second = -1
    for i in range(scores.shape[0]):
        s = scores[i]
        if first < 0 or s > scores[first]:
            first, second = i, first
        elif second < 0 or s > scores[second]:
            second = i
    return first, second


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


@njit(cache=True, nogil=True)
def quantise_into(
    vector: np.ndarray, codes: np.ndarray, scales: np.ndarray, slack: np.ndarray, row: int
) -> None:  # pragma: no cover - compiled; exercised through nearest
    """Store ``vector`` as int8 codes for :func:`nearest`: ``codes[row] * scales[row]`` approximates
    it, and ``slack[row]`` = (norm of what that misses, norm of the approximation), the two terms
    that bound how far a dot product with the codes can be from the exact one."""
    peak = 0.0
    for j in range(vector.shape[0]):
        peak = max(peak, abs(float(vector[j])))
    scale = peak / 127.0
    missed = 0.0
    kept = 0.0
    for j in range(vector.shape[0]):
        c = round(float(vector[j]) / scale) if scale > 0.0 else 0.0
        codes[row, j] = np.int8(c)
        approx = c * scale
        missed += (float(vector[j]) - approx) ** 2
        kept += approx * approx
    scales[row] = scale
    slack[row, 0] = math.sqrt(missed)
    slack[row, 1] = math.sqrt(kept)


@njit(cache=True, nogil=True, fastmath=True)
def _code_dots(codes: np.ndarray, n: int, query: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(n, np.int32)
    for i in range(n):
        s = np.int32(0)
        for j in range(query.shape[0]):
            s += np.int32(codes[i, j]) * np.int32(query[j])  # both int8: this form vectorises
        out[i] = s
    return out


@njit(cache=True, nogil=True)
def nearest(
    vectors: np.ndarray, codes: np.ndarray, scales: np.ndarray, slack: np.ndarray, n: int, query: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled; exercised through RecentArticles
    """``top_k(dot_rows(vectors, 0..n-1, query), k)`` and those similarities, the same rows and the
    same bits, at a quarter of the memory traffic.

    Why: the nearest-neighbour memory holds 2,000 vectors and every article reads them all; as
    float32 they no longer fit a core's cache, and that read was the largest cost of the cluster
    step. The int8 codes fit. Their dot products come with a bound on how far each is from the
    exact one; only rows whose upper bound reaches the k-th best lower bound can be among the
    ``k`` nearest, and only those (a few dozen) are computed exactly, so the answer is exact.
    """
    dim = query.shape[0]
    peak = 0.0
    norm = 0.0
    for j in range(dim):
        peak = max(peak, abs(float(query[j])))
        norm += float(query[j]) ** 2
    norm = math.sqrt(norm)
    step = peak / 127.0
    q = np.zeros(dim, np.int8)
    missed = 0.0
    for j in range(dim):
        c = round(float(query[j]) / step) if step > 0.0 else 0.0
        q[j] = np.int8(c)
        missed += (float(query[j]) - c * step) ** 2
    missed = math.sqrt(missed)
    dots = _code_dots(codes, n, q)
    kk = max(0, min(k, n))
    if kk == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    # the kk largest lower bounds so far, kept sorted, largest first: at least kk rows are at least
    # as similar as the last one (``floor``)
    lows = np.full(kk, -np.inf)
    approx = np.empty(n)
    bound = np.empty(n)
    for i in range(n):
        a = float(dots[i]) * scales[i] * step
        # the codes' error, the query's error, and float32 rounding of the exact sum (generously)
        b = norm * slack[i, 0] + slack[i, 1] * missed + 1e-4 * (1.0 + norm) * (1.0 + slack[i, 1])
        approx[i] = a
        bound[i] = b
        low = a - b
        if low > lows[kk - 1]:
            p = kk - 1
            while p > 0 and lows[p - 1] < low:
                lows[p] = lows[p - 1]
                p -= 1
            lows[p] = low
    floor = lows[kk - 1]
    keep = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        if approx[i] + bound[i] >= floor:
            keep[m] = i
            m += 1
    keep = keep[:m]
    sims = dot_rows(vectors, keep, query)
    chosen = top_k(sims, kk)
    return keep[chosen], sims[chosen]


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
    table = np.ones((1, 2), np.float32)
    dot_rows(table, np.zeros(1, np.int64), sims)
    accumulate(np.zeros(2), sims, table, 0)
    normalise_into(np.zeros(2), table, 0)
    features = join_features(sims, np.array([[1.0, 0.0, 2.0]]), row, one, row, one, np.zeros((1, 2)), 0.0)
    units = np.ones(2)  # two hidden units: the bias and output weights must be as long
    join_probability(features, np.zeros(N_FEATURES), np.ones(N_FEATURES), np.ones((N_FEATURES, 2)), units, units, 0.0)
    best_event(table, np.zeros(1, np.int64), sims, np.ones((1, 3)), one, 0.0)
    top_k(sims, 1)
    best_two(one)
    votes_at(np.zeros(1, np.int64), np.zeros(1, np.int64), one, one)
    tf_idf(np.ones(1, np.int64), np.zeros(1, np.int64), 2.0)
    codes, scales, slack = np.zeros((1, 2), np.int8), np.zeros(1), np.zeros((1, 2))
    quantise_into(sims, codes, scales, slack, 0)
    nearest(table, codes, scales, slack, 1, sims, 1)
