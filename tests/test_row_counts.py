"""The compiled count table against plain dicts: adds, deletions (backward shift), growth, id reuse,
and its postings and ranking against a Python reference."""

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
            for k in vocab:  # every key's posting is exactly the rows holding it, each once
                held_by = counts.rows_of(k)
                assert len(held_by) == len(set(held_by)) and set(held_by) == {r for r in truth if k in truth[r]}
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


def _ranked_by_python(truth: dict[int, dict[str, int]], weights: dict[str, float], max_scan: int, seq, n: int):
    """What the clusterer did with dict postings: sums in the query's key order, ties by seq."""
    posting: dict[str, list[int]] = {}
    for row, held in truth.items():
        for k in held:
            posting.setdefault(k, []).append(row)
    score: dict[int, float] = {}
    for k, w in weights.items():
        rows = posting.get(k, [])
        if not rows or len(rows) > max_scan:
            continue
        for r in rows:
            score[r] = w if r not in score else score[r] + w
    return [r for _, _, r in sorted((-v, int(seq[r]), r) for r, v in score.items())][:n]


@pytest.mark.parametrize("seed", range(3))
def test_top_rows_ranks_as_the_python_postings_did(seed):
    """Same rows, same order, bit-equal sums: ties (equal weights are common: one term each) go to
    the smaller seq, keys held by more than ``max_scan`` rows are skipped, freed rows never return."""
    rng = random.Random(seed)
    counts = RowCounts(16)
    truth: dict[int, dict[str, int]] = {}
    vocab = [f"k{i}" for i in range(60)]
    seq = np.array(rng.sample(range(10_000), 400), np.int64)
    for step in range(3000):
        row = rng.randrange(400)
        held = truth.setdefault(row, {})
        if rng.random() < 0.75:
            keys = [k for k in rng.sample(vocab, rng.randint(1, 6)) if k not in held]
            counts.add_one(row, keys)
            held.update(dict.fromkeys(keys, 1))
        else:
            gone = list(held) if rng.random() < 0.3 else rng.sample(list(held), min(len(held), 2))
            counts.drop(row, gone)
            for k in gone:
                del held[k]
        if step % 100 == 99:
            query = rng.sample(vocab + ["never-added"], 8)
            weights = {k: rng.choice([0.1, 0.25, rng.random()]) for k in query}
            max_scan, n = rng.choice([5, 40, 1000]), rng.choice([1, 12, 500])
            w = np.fromiter(weights.values(), float, len(weights))
            got = counts.top_rows(counts.ids(list(weights)), w, max_scan, seq, n).tolist()
            assert got == _ranked_by_python(truth, weights, max_scan, seq, n)
