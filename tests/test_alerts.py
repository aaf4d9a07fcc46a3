"""Alert rules on the seed story (in-process, both embedders' default model: static here)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from models.alerts import AlertRules
from models.clustering import StoryClusterer
from models.features import featurize_batch
from models.join_model import JoinModel
from models.replay import event_time_order
from stream.evaluate import read_labelled
from tests.conftest import SEED_STREAM


@pytest.mark.parametrize("embedder_name", ["minilm", "static"])
def test_seed_story_raises_new_development_and_dispute_and_nothing_else_disputes(embedder_name, request):
    embedder = request.getfixturevalue(embedder_name)
    items = event_time_order(read_labelled(SEED_STREAM)[0])
    gold = {x.article.id: x.gold for x in items}
    clusterer, rules = StoryClusterer(JoinModel.load(embedder_name)), AlertRules()
    by_story: dict[str, list] = defaultdict(list)
    story_gold: dict[str, str | None] = {}
    for f in featurize_batch([x.article for x in items], embedder):
        a = clusterer.learn_one(f)
        story_gold.setdefault(a.story_id, gold[f.id])
        by_story[a.story_id] += rules.on_assignment(clusterer.stories[a.story_id], a)
    (crocus,) = [s for s, g in story_gold.items() if g == "crocus-city-hall"]
    types = [x.type for x in by_story[crocus]]
    assert types.count("story.new") == 1
    assert types.count("story.development") >= 1
    assert types.count("story.dispute") == 1
    (dispute,) = [x for x in by_story[crocus] if x.type == "story.dispute"]
    assert "islamic state" in dispute.summary and "ukraine" in dispute.summary
    assert dispute.severity == "high" and dispute.evidence
    others = [x for s, alerts in by_story.items() if s != crocus for x in alerts]
    assert not [x for x in others if x.type == "story.dispute"]


def test_same_input_gives_same_alert_ids(static):
    items = event_time_order(read_labelled(SEED_STREAM)[0])
    runs = []
    for _ in range(2):
        clusterer, rules = StoryClusterer(JoinModel.load("static")), AlertRules()
        ids = []
        for f in featurize_batch([x.article for x in items], static):
            a = clusterer.learn_one(f)
            ids += [x.id for x in rules.on_assignment(clusterer.stories[a.story_id], a)]
        runs.append(ids)
    assert runs[0] == runs[1] and len(set(runs[0])) == len(runs[0]) > 0
