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
