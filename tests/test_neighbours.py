"""The nearest-neighbour memory: a restored memory votes exactly like the one that wrote it."""

from __future__ import annotations

import json

import numpy as np

from models.neighbours import RecentArticles

VERSIONS = np.arange(10, 20)  # rows 0..9 hold stories seq 10..19, all alive


def add(m: RecentArticles, article: str, row: int, t: float, v: np.ndarray) -> None:
    m.add(article, f"s{row}", row, 10 + row, t, v)


def filled(window: int, n: int, seed: int = 0) -> RecentArticles:
    rng = np.random.default_rng(seed)
    m = RecentArticles(window, k=5)
    base = rng.normal(size=(8, 16))
    for i in range(n):
        # many exact copies (retweets): equal similarities that only the slot order breaks
        v = base[i % 8] if i % 3 else rng.normal(size=16)
        add(m, f"a{i}", i % 5, float(i), (v / np.linalg.norm(v)).astype(np.float32))
    return m


def as_lists(votes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[list[float]]:
    return [x.tolist() for x in votes]


def test_a_restored_memory_votes_like_the_original_after_the_window_wrapped():
    original = filled(window=30, n=107)
    stored = json.loads(json.dumps([original.entry(f"a{i}") for i in range(107) if original.entry(f"a{i}")]))
    assert len(stored) == 30  # only the window is remembered
    restored = RecentArticles(30, k=5)
    restored.restore(reversed(stored), lambda story: (story, int(story[1:]), 10 + int(story[1:])))  # any order
    assert restored.entries() == original.entries()
    rng = np.random.default_rng(1)
    for q in rng.normal(size=(20, 16)).astype(np.float32):
        assert as_lists(restored.votes(q, VERSIONS)) == as_lists(original.votes(q, VERSIONS))
    add(original, "next", 9, 200.0, np.ones(16, np.float32) / 4)
    add(restored, "next", 9, 200.0, np.ones(16, np.float32) / 4)
    assert restored.entries() == original.entries()


def test_votes_are_shares_of_the_nearest_best_first_and_skip_closed_stories():
    m = RecentArticles(window=10, k=3)
    e = np.eye(3, dtype=np.float32)
    flood, fire, quake = 0, 1, 2
    add(m, "a", flood, 0.0, e[0])
    add(m, "b", flood, 1.0, (e[0] + e[1]) / np.sqrt(2))
    add(m, "c", fire, 2.0, e[0])
    add(m, "d", quake, 3.0, e[2])
    rows, shares, best = m.votes(e[0], VERSIONS)
    assert rows.tolist() == [flood, fire]  # quake is not among the 3 nearest with any similarity
    assert shares[0] > shares[1] and abs(shares.sum() - 1) < 1e-6
    assert best[1] == 1.0
    closed = VERSIONS.copy()
    closed[fire] = -1  # its row was cleared: the fire story closed
    assert m.votes(e[0], closed)[0].tolist() == [flood]
    reused = VERSIONS.copy()
    reused[fire] = 99  # its row now holds another story, which those articles never joined
    assert m.votes(e[0], reused)[0].tolist() == [flood]


def test_equal_shares_go_to_the_older_story():
    m = RecentArticles(window=4, k=2)
    v = np.array([1.0, 0.0], np.float32)
    add(m, "a", 3, 0.0, v)  # seq 13
    add(m, "b", 1, 1.0, v)  # seq 11: older, listed first although its article came later
    assert m.votes(v, VERSIONS)[0].tolist() == [1, 3]


def test_articles_older_than_the_horizon_are_forgotten():
    m = filled(window=50, n=40)
    m.forget_before(25.0)
    assert [e[1] for e in m.entries()] == [f"a{i}" for i in range(25, 40)]
    assert m.entry("a3") is None
    assert all(e[3] >= 25.0 for e in m.entries())
    assert set(m.votes(np.ones(16, np.float32) / 4, VERSIONS)[0].tolist()) <= {0, 1, 2, 3, 4}


def test_neighbours_of_a_merged_story_vote_for_and_are_stored_as_the_story_it_went_into():
    m = RecentArticles(window=4, k=2)
    add(m, "a1", 2, 1.0, np.array([1.0, 0.0], np.float32))
    add(m, "a2", 1, 2.0, np.array([0.9, 0.1], np.float32))
    assert set(m.votes(np.array([1.0, 0.0], np.float32), VERSIONS)[0].tolist()) == {1, 2}
    m.relabel(12, "s1", 1, 11)  # the clusterer merged s2 (seq 12) into s1
    rows, shares, _ = m.votes(np.array([1.0, 0.0], np.float32), VERSIONS)
    assert rows.tolist() == [1] and shares.tolist() == [1.0]
    assert m.entry("a1")[2] == "s1"  # a checkpoint stores where the article lives now
