"""The compiled count table against plain dicts: adds, deletions (backward shift), growth, id reuse."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.row_counts import RowCounts


@pytest.mark.parametrize("seed", range(3))
def test_counts_match_dicts_through_random_adds_drops_and_growth(seed):
    rng = random.Random(seed)
    counts = RowCounts(16)  # grows many times
    truth: dict[int, dict[str, int]] = {}
    vocab = [f"k{i}" for i in range(2000)]
    for step in range(6000):
        row = rng.randrange(150)
        held = truth.setdefault(row, {})
        op = rng.random()
        if op < 0.35:
            more = {k: rng.randint(1, 3) for k in rng.sample(vocab, rng.randint(1, 12))}
            counts.add(row, more)
            for k, n in more.items():
                held[k] = held.get(k, 0) + n
        elif op < 0.7:
            keys = rng.sample(vocab, rng.randint(0, 12))
            counts.add_one(row, dict.fromkeys(keys).keys())
            for k in keys:
                held[k] = held.get(k, 0) + 1
        else:
            gone = list(held) if rng.random() < 0.2 else rng.sample(list(held), min(len(held), rng.randint(0, 6)))
            counts.drop(row, gone + ["never-added"])
            for k in gone:
                del held[k]
        if step % 500 == 499:
            rows, keys = list(range(150)), vocab + ["never-added"]
            expected = np.array([[truth.get(r, {}).get(k, 0) for k in keys] for r in rows], float)
            assert np.array_equal(counts.matrix(rows, keys), expected)
    assert len(counts) == sum(len(h) for h in truth.values())
    # ids live as long as some row holds the key: the id space is the live vocabulary
    assert set(counts._ids) == {k for h in truth.values() for k in h}


def test_a_dropped_row_reads_zero_and_its_ids_are_reused():
    counts = RowCounts()
    counts.add(7, {"quake": 3, "chile": 1})
    counts.drop(7, ["quake", "chile"])
    assert counts.matrix([7], ["quake", "chile"]).tolist() == [[0.0, 0.0]] and len(counts) == 0
    counts.add_one(7, ["tsunami"])  # takes a freed id: must not read the old key's count
    assert counts.matrix([7], ["quake", "chile", "tsunami"]).tolist() == [[0.0, 0.0, 1.0]]
