"""The compiled join features and join probability against their definitions written as numpy."""

from __future__ import annotations

import numpy as np

from models.join_model import FEATURE_NAMES
from models.kernels import (
    best_event,
    best_two,
    dot_rows,
    join_features,
    join_probability,
    nearest,
    quantise_into,
    top_k,
)


def reference_features(
    blocks: list[np.ndarray],
    vector: np.ndarray,
    sizes: np.ndarray,
    last: np.ndarray,
    counts: np.ndarray,
    w_terms: np.ndarray,
    ecounts: np.ndarray,
    w_ents: np.ndarray,
    votes: np.ndarray,
    now: float,
) -> np.ndarray:
    """The features as the clusterer computed them before they were compiled (one column each)."""
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    out = np.zeros((len(blocks), len(FEATURE_NAMES)))
    dense = np.array([b[0] @ vector for b in blocks], float)
    terms = np.minimum(counts @ w_terms / sizes, 1.0)
    out[:, col["dense_story"]] = dense
    out[:, col["dense_event"]] = [float((b[1:] @ vector).max()) for b in blocks]
    out[:, col["terms"]] = terms
    out[:, col["entities"]] = np.minimum(ecounts @ w_ents / sizes, 1.0)
    out[:, col["log_gap_hours"]] = np.log1p(np.maximum(0.0, now - last) / 3600.0)
    out[:, col["log_size"]] = np.log1p(sizes)
    out[:, col["dense_x_terms"]] = dense * terms
    out[:, col["rank_gap"]] = dense - dense.max()
    out[:, col["term_coverage"]] = (counts > 0) @ w_terms
    out[:, col["novel_entities"]] = (ecounts == 0) @ w_ents
    out[:, col["knn_vote"]] = votes[:, 0]
    out[:, col["knn_max"]] = votes[:, 1]
    return out


def test_compiled_join_features_equal_their_numpy_definition_on_random_candidates() -> None:
    rng = np.random.default_rng(7)
    for n, n_terms, n_names in [(1, 0, 0), (5, 12, 0), (40, 35, 6)]:
        blocks = [rng.normal(size=(1 + int(rng.integers(1, 7)), 16)).astype(np.float32) for _ in range(n)]
        vector = rng.normal(size=16).astype(np.float32)
        sizes = rng.integers(1, 300, size=n).astype(float)
        last = rng.uniform(0, 10 * 3600, size=n)
        counts = rng.integers(0, 4, size=(n, n_terms)).astype(float)
        ecounts = rng.integers(0, 3, size=(n, n_names)).astype(float)
        w_terms, w_ents = rng.dirichlet(np.ones(max(n_terms, 1)))[:n_terms], rng.uniform(size=n_names)
        votes = rng.uniform(size=(n, 2))
        now = 9 * 3600.0
        sims = np.concatenate(blocks) @ vector
        meta = np.array([[s, t, len(b)] for s, t, b in zip(sizes, last, blocks)], float)
        got = join_features(sims, meta, counts, w_terms, ecounts, w_ents, votes, now)
        want = reference_features(blocks, vector, sizes, last, counts, w_terms, ecounts, w_ents, votes, now)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_join_probability_without_hidden_units_is_the_sigmoid_of_the_standardised_linear_score() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 12))
    x[0] *= 1e6  # far outside: z is clipped to ±30, no overflow
    mean, scale, coef = rng.normal(size=12), rng.uniform(0.5, 2, size=12), rng.normal(size=12)
    z = np.clip(((x - mean) / scale) @ coef + 0.3, -30, 30)
    got = join_probability(x, mean, scale, np.zeros((12, 0)), np.zeros(0), coef, 0.3)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-z)), rtol=1e-12)


def test_join_probability_with_hidden_units_is_a_relu_layer_then_the_sigmoid() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 12))
    x[0] *= 1e6
    mean, scale = rng.normal(size=12), rng.uniform(0.5, 2, size=12)
    w, b, coef = rng.normal(size=(12, 7)), rng.normal(size=7), rng.normal(size=7)
    hidden = np.maximum((x - mean) / scale @ w + b, 0.0)
    want = 1 / (1 + np.exp(-np.clip(hidden @ coef - 0.2, -30, 30)))
    np.testing.assert_allclose(join_probability(x, mean, scale, w, b, coef, -0.2), want, rtol=1e-12)
    assert (hidden == 0).any() and (hidden > 0).any()  # both sides of the ReLU are exercised


def test_nearest_through_int8_codes_finds_exactly_the_rows_and_similarities_of_a_full_scan() -> None:
    """The two-stage search must be exact, not approximate: same rows, same tie-breaking, same
    bits, on unit and raw vectors, duplicates (retweets) and emptied slots."""
    rng = np.random.default_rng(11)
    for trial in range(200):
        n, dim, k = int(rng.integers(1, 300)), int(rng.choice([3, 16, 256, 384])), int(rng.integers(0, 12))
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        if trial % 2:
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors[rng.random(n) < 0.3] = vectors[0]  # many exact copies: ties only the index breaks
        vectors[rng.random(n) < 0.1] = 0.0  # forgotten slots
        codes, scales, slack = np.zeros((n, dim), np.int8), np.zeros(n), np.zeros((n, 2))
        for i in range(n):
            quantise_into(vectors[i], codes, scales, slack, i)
        query = vectors[int(rng.integers(n))] if trial % 3 == 0 else rng.normal(size=dim).astype(np.float32)
        full = dot_rows(vectors, np.arange(n), query)
        want = top_k(full, k)
        rows, sims = nearest(vectors, codes, scales, slack, n, query, k)
        assert rows.tolist() == want.tolist()
        assert sims.tolist() == full[want].tolist()
    np.testing.assert_allclose(full, vectors @ query, rtol=1e-5, atol=1e-5)  # and dot_rows is the product


def test_best_two_is_the_head_of_a_stable_descending_sort():
    """The clusterer reads only the first two of a stable argsort; ties (equal probabilities, the
    veto's zeros) must go to the lower index, as the sort gave them."""
    rng = np.random.default_rng(3)
    for n in [0, 1, 2, 3, 20, 40]:
        for _ in range(200):
            probs = rng.choice([0.0, 0.25, 0.5, 0.9], size=n) if n % 2 else rng.random(n)
            order = np.argsort(-probs, kind="stable").tolist() + [-1, -1]
            assert best_two(probs) == (order[0], order[1])


def test_best_event_is_half_cosine_half_used_term_weight_among_live_events():
    rng = np.random.default_rng(4)
    table = rng.normal(size=(30, 16)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    for _ in range(200):
        k, m = int(rng.integers(1, 7)), int(rng.integers(0, 8))
        rows = rng.choice(30, size=k, replace=False)
        vector = table[int(rng.integers(30))]
        sizes, last = rng.integers(1, 20, size=k).astype(float), rng.uniform(0, 10, size=k)
        counts, weights = rng.integers(0, 4, size=(k, m)).astype(float), rng.random(m)
        events = np.column_stack([sizes, last, counts])
        sims = 0.5 * (table[rows] @ vector) + 0.5 * np.minimum(counts @ weights / sizes, 1.0)
        sims = np.where(last < 5.0, -np.inf, sims)
        i, sim = best_event(table, rows.astype(np.int64), vector, events, weights, 5.0)
        if np.isinf(sims).all():
            assert i == -1
        else:
            assert i == int(np.argmax(sims)) and abs(sim - sims[i]) < 1e-6
