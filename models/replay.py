"""Replay a labelled stream in event-time order through the clusterer: the evaluator's engine.

The stream layer feeds the very same ``StoryClusterer`` from Kafka; given the same order, both
produce the same assignments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from models.article import Article
from models.clustering import Assignment, ClusterConfig, StoryClusterer, final_story_ids
from models.features import ArticleFeatures, featurize
from models.join_model import JoinModel
from models.metrics import Scores, score


@dataclass(frozen=True)
class LabelledArticle:
    article: Article
    gold: str | None


def event_time_order(items: Sequence[LabelledArticle]) -> list[LabelledArticle]:
    """``published_at`` order, ties broken by id: the order every replay uses."""
    return sorted(items, key=lambda x: (x.article.published_at, x.article.id))


@dataclass
class ReplayResult:
    assignments: list[Assignment]
    gold: list[str | None]
    scores: Scores
    event_scores: Scores
    scores_as_decided: Scores  # before merges resolved
    seconds_embed: float
    seconds_cluster: float
    clusterer: StoryClusterer
    active_events: list[int] = field(default_factory=list)

    @property
    def articles(self) -> int:
        return len(self.assignments)


def featurize_all(
    items: Sequence[LabelledArticle],
    vectors: np.ndarray,
) -> list[ArticleFeatures]:
    return [featurize(x.article, v) for x, v in zip(items, vectors)]


def cluster_features(
    features: Sequence[ArticleFeatures],
    gold: Sequence[str | None],
    model: JoinModel,
    config: ClusterConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Run the clusterer over already-featurised articles (in the order given) and score it."""
    clusterer = StoryClusterer(model, config)
    assignments: list[Assignment] = []
    active: list[int] = []
    start = time.perf_counter()
    for i, f in enumerate(features):
        assignments.append(clusterer.learn_one(f))
        active.append(clusterer.active_events)
        if progress and (i + 1) % 100 == 0:
            progress(100)
    seconds = time.perf_counter() - start
    if progress:
        progress(len(features) % 100)
    # The stories as they stand at the end, merges resolved: what the dashboard shows and the
    # evaluator scores (the scores of the decisions as first made are kept beside them).
    # Followed through the assignments' own ``merged`` lists, as a consumer of the topic does: the
    # clusterer forgets a merge with the articles it concerned (after the story TTL).
    final_story = final_story_ids(a.to_dict() for a in assignments)
    final = [replace(a, story_id=final_story[a.article_id]) for a in assignments]
    return ReplayResult(
        assignments=final,
        gold=list(gold),
        scores=score(gold, [a.story_id for a in final]),
        scores_as_decided=score(gold, [a.story_id for a in assignments]),
        event_scores=score(gold, [a.event_id for a in assignments]),
        seconds_embed=0.0,
        seconds_cluster=seconds,
        clusterer=clusterer,
        active_events=active,
    )
