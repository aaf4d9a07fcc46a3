"""A story's public snapshot says what the dashboard and the API show about it."""

from __future__ import annotations

import numpy as np

from models.clustering import StoryClusterer
from models.features import ArticleFeatures
from models.join_model import JoinModel
from models.labels import story_snapshot


def test_the_snapshot_counts_every_source_and_lists_the_ten_most_frequent():
    clusterer = StoryClusterer(JoinModel.load("static"))
    terms = {"quake": 1, "chile": 1, "tsunami": 1}
    for i in range(14):
        source = "wire" if i < 3 else f"paper-{i}"  # 12 sources, one of them thrice
        vector = np.array([1.0, 0.0, 0.0], np.float32)
        clusterer.learn_one(ArticleFeatures(f"a{i}", 60.0 * i, f"Chile quake {i}", source, vector, terms, []))
    (story,) = clusterer.stories.values()
    snap = story_snapshot(story, clusterer._idf, clusterer.watermark, [])
    assert snap["articles"] == 14
    assert snap["source_count"] == 12
    assert len(snap["sources"]) == 10 and next(iter(snap["sources"])) == "wire"
