"""The learned join decision: P(article belongs to this story | features of the pair).

Trained offline with scikit-learn (``python -m models.training.train_join``) and shipped as a small
JSON artifact per embedder. Scored here with a compiled kernel: calling sklearn per article costs
more than the whole rest of the cluster step.

Why a hidden layer: the evidence does not add up linearly. A cosine of 0.6 means "same story" for
an English headline that shares its names with the story and little for a Spanish tweet that the
English embedders place near every other Spanish tweet; a linear model over the same features
could not read one cosine two ways (held out, 16 ReLU units over the same 12 features: static
0.76 → 0.83, mostly on the concurrent crises). With no hidden units it is logistic regression.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from models.kernels import join_probability

ARTIFACT_DIR = Path(__file__).parent / "artifacts"
FEATURE_NAMES = (
    "dense_story",  # cosine to the story centroid
    "dense_event",  # best cosine to one of the story's active event centroids
    "terms",  # share of the article's IDF mass that is typical of the story
    "entities",  # the same over names, hashtags and acronyms
    "log_gap_hours",  # log1p(hours since the story was last active)
    "log_size",  # log1p(articles in the story)
    "dense_x_terms",  # dense and lexical evidence reinforce each other
    "rank_gap",  # this candidate's dense cosine minus the best candidate's
    "term_coverage",  # share of the article's IDF mass the story has used at all
    "novel_entities",  # share of the article's names the story has never mentioned
    "knn_vote",  # share of the article's nearest recent articles (similarity-weighted) in the story
    "knn_max",  # cosine to the story's nearest recent article among those neighbours
)


NEVER_MERGE = 1.1


NO_HIDDEN = np.zeros((len(FEATURE_NAMES), 0))


@dataclass(frozen=True)
class JoinModel:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # output weights: one per hidden unit (one per feature when there are none)
    intercept: float
    threshold: float
    embedder: str
    trained_on: str = ""
    # An article at least this likely to join each of two stories shows they are one story: they
    # merge. Above 1: never. Chosen with the join threshold by the same held-out search.
    merge_threshold: float = NEVER_MERGE
    hidden_weights: np.ndarray = field(default_factory=lambda: NO_HIDDEN)  # features x ReLU units
    hidden_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(join) for each row of a (candidates x features) matrix."""
        return join_probability(
            np.asarray(features, float),
            self.mean,
            self.scale,
            self.hidden_weights,
            self.hidden_bias,
            self.coef,
            self.intercept,
        )

    @property
    def hidden_units(self) -> int:
        return int(self.hidden_weights.shape[1])

    def with_threshold(self, threshold: float, merge_threshold: float | None = None) -> JoinModel:
        merge = self.merge_threshold if merge_threshold is None else merge_threshold
        return replace(self, threshold=threshold, merge_threshold=merge)

    def with_overrides(self, threshold: float | None, merge_threshold: float | None) -> JoinModel:
        """This model with the operator's thresholds where given (None keeps the trained one)."""
        return self.with_threshold(self.threshold if threshold is None else threshold, merge_threshold)

    def to_dict(self) -> dict[str, object]:
        return {
            "features": list(FEATURE_NAMES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "hidden_weights": self.hidden_weights.tolist(),
            "hidden_bias": self.hidden_bias.tolist(),
            "threshold": self.threshold,
            "merge_threshold": self.merge_threshold,
            "embedder": self.embedder,
            "trained_on": self.trained_on,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, embedder: str, directory: Path = ARTIFACT_DIR) -> JoinModel:
        path = directory / f"join_{embedder}.json"
        if not path.exists():
            raise FileNotFoundError(
                f"no join model for embedder {embedder!r} at {path}; run python -m models.training.train_join"
            )
        data = json.loads(path.read_text())
        if tuple(data["features"]) != FEATURE_NAMES:
            raise ValueError(f"{path} was trained on other features; retrain with python -m models.training.train_join")
        return cls(
            mean=np.asarray(data["mean"]),
            scale=np.asarray(data["scale"]),
            coef=np.asarray(data["coef"]),
            intercept=float(data["intercept"]),
            threshold=float(data["threshold"]),
            embedder=data["embedder"],
            trained_on=data.get("trained_on", ""),
            merge_threshold=float(data.get("merge_threshold", NEVER_MERGE)),
            hidden_weights=_matrix(data.get("hidden_weights"), len(FEATURE_NAMES)),
            hidden_bias=np.ascontiguousarray(data.get("hidden_bias", []), float),
        )


def _matrix(rows: list[list[float]] | None, features: int) -> np.ndarray:
    """A features x units matrix from JSON (``[]`` or absent: no hidden layer), C-ordered for the kernel."""
    if not rows:
        return NO_HIDDEN
    return np.ascontiguousarray(rows, float).reshape(features, -1)
