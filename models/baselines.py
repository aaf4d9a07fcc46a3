"""Reference points computed in the same run as storywire, so its numbers have context."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np


def centroid_threshold(vectors: np.ndarray, threshold: float) -> list[int]:
    """Single-pass clustering: join the nearest running centroid if cosine ≥ threshold, else start one.

    The baseline of the data README (titles, cosine to running centroids).

    >>> v = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    >>> centroid_threshold(v / np.linalg.norm(v, axis=1, keepdims=True), 0.8)
    [0, 0, 1]
    """
    sums = np.zeros((max(len(vectors), 1), vectors.shape[1]), dtype=np.float64)
    units = np.zeros_like(sums, dtype=np.float32)
    n = 0
    labels: list[int] = []
    for v in vectors:
        if n:
            sims = units[:n] @ v
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                sums[best] += v
                units[best] = sums[best] / np.linalg.norm(sums[best])
                labels.append(best)
                continue
        sums[n] = v
        units[n] = v
        labels.append(n)
        n += 1
    return labels


def time_buckets(times: Sequence[datetime], days: float = 14.0) -> list[int]:
    """Group by fixed time buckets, ignoring the text: how much of a score time alone explains."""
    width = days * 86400
    return [int(t.timestamp() // width) for t in times]
