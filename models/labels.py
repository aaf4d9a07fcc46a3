"""Human labels for a story: a title, keywords, main names. Computed from the story's own counts.

Labels belong to each story, not to a global decaying vocabulary: keywords are class-based
TF-IDF (a term's share of this story, weighted by how few stories overall use it), so a merge or
a new development re-labels the story from its own counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from models.clustering import Story

Idf = Callable[[str], float]


def keywords(story: Story, idf: Idf, k: int = 8) -> list[str]:
    """Top class-based TF-IDF terms of the story.

    >>> import numpy as np
    >>> s = Story("s1", 1, 0, 0, 2, np.zeros(2), {"crocus": 2, "attack": 2, "said": 1}, {}, [], {}, [], {})
    >>> keywords(s, lambda t: {"crocus": 5.0, "attack": 2.0}.get(t, 1.0), k=2)
    ['crocus', 'attack']
    """
    scored = {t: (c / story.size) * idf(t) for t, c in story.terms.items()}
    return [t for t, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def main_entities(story: Story, k: int = 6) -> list[str]:
    """Names mentioned by the most articles of the story."""
    return [e for e, _ in sorted(story.entities.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def story_title(story: Story, idf: Idf) -> str:
    """The most central recent headline: the one whose terms are most typical of the story."""
    if not story.titles:
        return ""
    weight: dict[str, float] = {}  # each term's idf once: the titles share most of their terms

    def centrality(item: tuple[str, list[str]]) -> float:
        title, terms = item
        if not terms:
            return 0.0
        for t in terms:
            if t not in weight:
                weight[t] = idf(t)
        mass = sum(weight[t] for t in terms)
        return sum(weight[t] * story.terms.get(t, 0) / story.size for t in terms) / mass * math.log1p(len(terms))

    return max(story.titles, key=centrality)[0]


def story_snapshot(story: Story, idf: Idf, now: float, active_events: list[dict[str, Any]]) -> dict[str, Any]:
    """The public view of a story (the ``stories`` topic, the dashboard, the API).

    ``rate_per_hour`` counts articles of the story in the last hour of event time before ``now``.
    """
    hour = int(now // 3600)
    developments = (list(story.past_events) + active_events)[-20:]
    return {
        "id": story.id,
        "title": story_title(story, idf),
        "keywords": keywords(story, idf),
        "entities": main_entities(story),
        "articles": story.size,
        "developments": developments,
        "sources": dict(sorted(story.sources.items(), key=lambda kv: -kv[1])[:10]),
        "source_count": len(story.sources),  # all it counted, not the ten shown
        "first_seen": story.first_ts,
        "last_seen": story.last_ts,
        "rate_per_hour": story.hourly.get(hour, 0),
        "hourly": {str(k): v for k, v in sorted(story.hourly.items())[-48:]},
        "attributions": story.attributions[-20:],
        "headlines": [t for t, _ in story.titles[-10:]][::-1],
        "disputed": bool(story.alert_state.get("dispute")),
        "status": "active",
    }
