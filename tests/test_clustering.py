"""The online clusterer: determinism, idempotency, state round trip, bounded memory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.clustering import ClusterConfig, StoryClusterer
from models.features import ArticleFeatures, featurize_batch
from models.join_model import JoinModel
from models.replay import event_time_order
from stream.evaluate import read_labelled
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def sample_features(static) -> list[ArticleFeatures]:
    items = event_time_order(read_labelled(SAMPLE)[0])
    return featurize_batch([x.article for x in items], static)


def run(features, clusterer=None):
    c = clusterer or StoryClusterer(JoinModel.load("static"))
    return c, [c.learn_one(f).to_dict() for f in features]


def test_same_order_gives_same_assignments(sample_features):
    _, first = run(sample_features)
    _, second = run(sample_features)
    assert first == second
    assert len({a["story_id"] for a in first}) < len(first) / 3  # it does cluster


def test_redelivered_article_never_counts_twice(sample_features):
    c, assignments = run(sample_features[:50])
    sizes = {s.id: s.size for s in c.stories.values()}
    again = [c.learn_one(f).to_dict() for f in sample_features[:50]]
    assert again == assignments
    assert {s.id: s.size for s in c.stories.values()} == sizes
    assert sum(sizes.values()) == 50


@pytest.mark.parametrize("window", [2000, 64], ids=["window-not-full", "window-wrapped"])
def test_state_round_trips_through_plain_dicts(sample_features, window):
    config = ClusterConfig(knn_window=window)
    _, uninterrupted = run(sample_features, StoryClusterer(JoinModel.load("static"), config))
    half = len(sample_features) // 2
    c, before = run(sample_features[:half], StoryClusterer(JoinModel.load("static"), config))
    state = json.loads(json.dumps(c.to_dict()))  # what a Faust table would hold
    restored = StoryClusterer.from_dict(state, JoinModel.load("static"), config)
    assert restored.recent.entries() == c.recent.entries()
    _, after = run(sample_features[half:], restored)
    assert before + after == uninterrupted


def test_state_stays_bounded_as_history_grows():
    rng = np.random.default_rng(0)
    config = ClusterConfig(story_ttl_hours=2, event_ttl_hours=1)
    c = StoryClusterer(JoinModel.load("static"), config)
    peak = 0
    for i in range(3000):
        v = rng.normal(size=256).astype(np.float32)
        f = ArticleFeatures(
            f"a{i}", i * 60.0, f"t{i}", "src", v / np.linalg.norm(v), {f"w{i}": 1, f"topic{i // 50}": 1}, []
        )
        c.learn_one(f)
        peak = max(peak, len(c.stories))
    # 3,000 articles one minute apart, a new topic every 50, 2 h TTL: whatever the joins, only the
    # last ~120 articles' stories, events and ids can be alive at once.
    assert c.expired_stories > 10
    assert peak <= 125 and len(c.assigned) <= 125 and len(c.events) <= 125
    assert sum(s.size for s in c.stories.values()) <= 125 + 50


def test_new_development_opens_an_event_inside_the_story():
    c = StoryClusterer(JoinModel.load("static"), ClusterConfig(event_threshold=0.9))
    v = np.eye(256, dtype=np.float32)
    base = {"crocus": 1, "moscow": 1, "attack": 1}
    c.learn_one(ArticleFeatures("a", 0, "attack", "A", v[0], base, ["crocus"]))
    second = c.learn_one(ArticleFeatures("b", 60, "attack again", "B", v[0], base, ["crocus"]))
    claim = c.learn_one(
        ArticleFeatures(
            "c", 120, "claim", "C", (v[0] + v[1]) / np.sqrt(2), {**base, "claim": 1, "islamic": 1}, ["crocus"]
        )
    )
    assert second.story_id == claim.story_id == "s1"
    assert second.event_decision == "join" and claim.event_decision == "new" and claim.event_id != second.event_id
