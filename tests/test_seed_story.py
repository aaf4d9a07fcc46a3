"""The founders' example: Crocus City Hall is one developing story with several developments."""

from __future__ import annotations

from collections import defaultdict

import pytest

from models.clustering import StoryClusterer
from models.features import featurize_batch
from models.join_model import JoinModel
from models.replay import event_time_order
from stream.evaluate import read_labelled
from tests.conftest import SEED_STREAM


@pytest.mark.parametrize("embedder_name", ["minilm", "static"])
def test_seed_articles_form_one_story_with_developments(embedder_name, request):
    embedder = request.getfixturevalue(embedder_name)
    items = event_time_order(read_labelled(SEED_STREAM)[0])
    seed_ids = {x.article.id for x in items if x.gold == "crocus-city-hall"}
    assert len(seed_ids) == 8
    clusterer = StoryClusterer(JoinModel.load(embedder_name))
    story_of, event_of = {}, {}
    for f in featurize_batch([x.article for x in items], embedder):
        a = clusterer.learn_one(f)
        story_of[f.id], event_of[f.id] = a.story_id, a.event_id
    story_of = {aid: clusterer.resolve(sid) for aid, sid in story_of.items()}  # as it stands, merges followed
    stories = defaultdict(set)
    for aid, sid in story_of.items():
        stories[sid].add(aid)
    seed_stories = {story_of[i] for i in seed_ids}
    assert len(seed_stories) == 1, f"seed split over {[sorted(stories[s]) for s in seed_stories]}"
    (crocus,) = seed_stories
    assert stories[crocus] == seed_ids, f"unrelated articles joined: {sorted(stories[crocus] - seed_ids)}"
    developments = {event_of[i] for i in seed_ids}
    assert len(developments) >= 2
    # The story remembers who was said to be responsible, from which source.
    kinds = {(a["kind"], a["actor"]) for a in clusterer.stories[crocus].attributions}
    assert {("claim", "islamic state"), ("blame", "ukraine"), ("denial", "ukraine")} <= kinds
