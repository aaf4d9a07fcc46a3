"""Clustering quality against gold labels: B-cubed, pairwise, AMI, ARI.

Items whose gold label is ``None`` (noise) are streamed and clustered but not scored: both
partitions are restricted to the labelled items before any measure is computed.

>>> s = score(["a", "a", "b", "b"], ["x", "x", "x", "y"])
>>> round(s.bcubed_precision, 3), round(s.bcubed_recall, 3), round(s.bcubed_f1, 3)
(0.667, 0.75, 0.706)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score


@dataclass(frozen=True)
class Scores:
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    ami: float
    ari: float
    clusters: int
    gold_clusters: int
    scored: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(gold: Sequence[Hashable | None], predicted: Sequence[Hashable]) -> Scores:
    """Score a predicted partition against gold labels (same order, ``None`` = unscored)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    pairs = [(g, p) for g, p in zip(gold, predicted) if g is not None]
    if not pairs:
        return Scores(0, 0, 0, 0, 0, 0, 0, 0, len(set(predicted)), 0, 0)
    g_lab = [g for g, _ in pairs]
    p_lab = [p for _, p in pairs]
    joint = Counter(pairs)
    g_size = Counter(g_lab)
    p_size = Counter(p_lab)
    n = len(pairs)
    # B-cubed: each item's precision is the share of its cluster with its gold label.
    precision = sum(c * c / p_size[p] for (_, p), c in joint.items()) / n
    recall = sum(c * c / g_size[g] for (g, _), c in joint.items()) / n
    same_both = sum(c * (c - 1) / 2 for c in joint.values())
    same_pred = sum(c * (c - 1) / 2 for c in p_size.values())
    same_gold = sum(c * (c - 1) / 2 for c in g_size.values())
    pp = same_both / same_pred if same_pred else 1.0
    pr = same_both / same_gold if same_gold else 1.0
    return Scores(
        bcubed_precision=precision,
        bcubed_recall=recall,
        bcubed_f1=_f1(precision, recall),
        pairwise_precision=pp,
        pairwise_recall=pr,
        pairwise_f1=_f1(pp, pr),
        ami=float(adjusted_mutual_info_score(g_lab, p_lab)),
        ari=float(adjusted_rand_score(g_lab, p_lab)),
        clusters=len(p_size),
        gold_clusters=len(g_size),
        scored=n,
    )


@dataclass(frozen=True)
class WindowedScores:
    """B-cubed and AMI averaged over sliding windows: the protocol of USTORY and SCStory."""

    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    ami: float
    windows: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def windowed_score(
    gold: Sequence[Hashable | None],
    predicted: Sequence[Hashable],
    timestamps: Sequence[float],
    window: float = 7 * 86400.0,
    slide: float = 86400.0,
) -> WindowedScores:
    """Score the articles of each window ``[t, t + window)``, ``t`` sliding by ``slide`` from the first
    article, and average over windows with at least two scored articles.

    A window sees each cluster only through its own articles, so a story that runs for weeks is
    judged by what a reader of that week sees; a stream shorter than the window is one window.

    >>> w = windowed_score(["a", "a", "b", "b"], [1, 1, 2, 3], [0.0, 1.0, 10.0, 11.0], window=5.0, slide=5.0)
    >>> w.windows, round(w.bcubed_precision, 3), round(w.bcubed_recall, 3)
    (2, 1.0, 0.75)
    """
    if not (len(gold) == len(predicted) == len(timestamps)):
        raise ValueError("gold, predicted and timestamps must have the same length")
    if window <= 0 or slide <= 0:
        raise ValueError("window and slide must be positive")
    if not timestamps:
        return WindowedScores(0.0, 0.0, 0.0, 0.0, 0)
    order = sorted(range(len(timestamps)), key=lambda i: timestamps[i])
    times = [timestamps[i] for i in order]
    per_window: list[Scores] = []
    start, last = times[0], times[-1]
    lo = hi = 0
    while True:
        while lo < len(times) and times[lo] < start:
            lo += 1
        while hi < len(times) and times[hi] < start + window:
            hi += 1
        idx = order[lo:hi]
        s = score([gold[i] for i in idx], [predicted[i] for i in idx])
        if s.scored >= 2:
            per_window.append(s)
        if start + window > last:
            break
        start += slide
    if not per_window:
        return WindowedScores(0.0, 0.0, 0.0, 0.0, 0)
    n = len(per_window)
    return WindowedScores(
        bcubed_precision=sum(s.bcubed_precision for s in per_window) / n,
        bcubed_recall=sum(s.bcubed_recall for s in per_window) / n,
        bcubed_f1=sum(s.bcubed_f1 for s in per_window) / n,
        ami=sum(s.ami for s in per_window) / n,
        windows=n,
    )
