"""The nearest-neighbour memory: a restored memory votes exactly like the one that wrote it."""

from __future__ import annotations

import json

import numpy as np

from models.neighbours import RecentArticles


def filled(window: int, n: int, seed: int = 0) -> RecentArticles:
    rng = np.random.default_rng(seed)
    m = RecentArticles(window, k=5)
    base = rng.normal(size=(8, 16))
    for i in range(n):
        # many exact copies (retweets): equal similarities that only the slot order breaks
        v = base[i % 8] if i % 3 else rng.normal(size=16)
        m.add(f"a{i}", f"s{i % 5}", float(i), (v / np.linalg.norm(v)).astype(np.float32))
    return m


def test_a_restored_memory_votes_like_the_original_after_the_window_wrapped():
    original = filled(window=30, n=107)
    stored = json.loads(json.dumps([original.entry(f"a{i}") for i in range(107) if original.entry(f"a{i}")]))
    assert len(stored) == 30  # only the window is remembered
    restored = RecentArticles(30, k=5)
    restored.restore(reversed(stored))  # any order
    assert restored.entries() == original.entries()
    rng = np.random.default_rng(1)
    for q in rng.normal(size=(20, 16)).astype(np.float32):
        assert restored.votes(q) == original.votes(q)
    original.add("next", "s9", 200.0, np.ones(16, np.float32) / 4)
    restored.add("next", "s9", 200.0, np.ones(16, np.float32) / 4)
    assert restored.entries() == original.entries()


def test_votes_are_shares_of_the_nearest_and_skip_expired_stories():
    m = RecentArticles(window=10, k=3)
    e = np.eye(3, dtype=np.float32)
    m.add("a", "flood", 0.0, e[0])
    m.add("b", "flood", 1.0, (e[0] + e[1]) / np.sqrt(2))
    m.add("c", "fire", 2.0, e[0])
    m.add("d", "quake", 3.0, e[2])
    votes = m.votes(e[0])
    assert set(votes) == {"flood", "fire"}  # quake is not among the 3 nearest with any similarity
    assert votes["flood"][0] > votes["fire"][0] and abs(sum(v[0] for v in votes.values()) - 1) < 1e-6
    assert votes["fire"][1] == 1.0
    assert set(m.votes(e[0], alive={"flood"})) == {"flood"}


def test_articles_older_than_the_horizon_are_forgotten():
    m = filled(window=50, n=40)
    m.forget_before(25.0)
    assert [e[1] for e in m.entries()] == [f"a{i}" for i in range(25, 40)]
    assert m.entry("a3") is None
    assert all(e[3] >= 25.0 for e in m.entries())


def test_neighbours_of_a_merged_story_vote_for_and_are_stored_as_the_story_it_went_into():
    merged: dict[str, str] = {}
    m = RecentArticles(window=4, k=2, resolve=lambda s: merged.get(s, s))
    m.add("a1", "s2", 1.0, np.array([1.0, 0.0], np.float32))
    m.add("a2", "s1", 2.0, np.array([0.9, 0.1], np.float32))
    assert set(m.votes(np.array([1.0, 0.0], np.float32))) == {"s1", "s2"}
    merged["s2"] = "s1"  # the clusterer merged s2 into s1: nothing in the memory is rewritten
    votes = m.votes(np.array([1.0, 0.0], np.float32))
    assert set(votes) == {"s1"} and votes["s1"][0] == 1.0
    assert m.entry("a1")[2] == "s1"  # a checkpoint stores where the article lives now
