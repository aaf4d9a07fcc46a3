"""Alert rules over story state: ``story.new``, ``story.burst``, ``story.development``, ``story.dispute``.

Rules read a story right after an article changed it and return the alerts that change caused.
What a story has already raised is kept on the story itself (``Story.alert_state``), so it travels
with the story through the stream's tables and a restarted worker does not alert twice. Alert ids
are content hashes of (type, story, what made it fire): the idempotency key downstream, and the
same input gives the same alerts. ``created_at`` is the event time of the triggering article.

>>> from models.clustering import Story, Assignment
>>> import numpy as np
>>> s = Story("s1", 1, 0.0, 60.0, 3, np.zeros(2), {"quake": 3}, {}, ["e1"], {"AP": 2, "BBC": 1},
...           [("Quake hits Chile", ["quake", "chile"])], {0: 3})
>>> a = Assignment("a3", "e1", "s1", 0.9, "join", "join", 60.0)
>>> [x.type for x in AlertRules().on_assignment(s, a)]
['story.new']
>>> AlertRules().on_assignment(s, a)  # already raised: stored on the story
[]
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from models.clustering import Assignment, Story

SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True)
class Alert:
    id: str
    type: str
    story_id: str
    severity: str
    title: str
    summary: str
    evidence: list[str]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AlertConfig:
    new_min_articles: int = 3  # a story is announced once it has this many articles...
    new_min_sources: int = 2  # ...from at least this many sources
    burst_min_articles: int = 5  # articles in the current hour to call it a burst...
    burst_factor: float = 3.0  # ...and this many times the story's mean hourly rate before
    burst_baseline_hours: int = 24
    dispute_min_actors: int = 2  # distinct responsible actors named (claims, blame, denials)


def _alert_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


@dataclass
class AlertRules:
    config: AlertConfig = field(default_factory=AlertConfig)

    def on_assignment(self, story: Story, a: Assignment, title: str = "") -> list[Alert]:
        """Alerts caused by assigning ``a`` to ``story`` (already updated with it)."""
        state = story.alert_state
        alerts: list[Alert] = []
        label = title or (story.titles[-1][0] if story.titles else story.id)
        cfg = self.config
        if not state.get("new") and story.size >= cfg.new_min_articles and len(story.sources) >= cfg.new_min_sources:
            state["new"] = True
            alerts.append(
                Alert(
                    _alert_id("story.new", story.id),
                    "story.new",
                    story.id,
                    "low",
                    label,
                    f"New story: {story.size} articles from {len(story.sources)} sources "
                    f"({', '.join(sorted(story.sources)[:5])}).",
                    [t for t in state.get("evidence", [])][-5:] + [a.article_id],
                    a.timestamp,
                )
            )
        elif state.get("new") and a.decision == "join" and a.event_decision == "new":
            alerts.append(
                Alert(
                    _alert_id("story.development", story.id, a.event_id),
                    "story.development",
                    story.id,
                    "medium",
                    label,
                    f"New development in a story of {story.size} articles: a new event ({a.event_id}) "
                    f"began with this article; the story now has {story.event_count} "
                    "events.",
                    [a.article_id],
                    a.timestamp,
                )
            )
        state["evidence"] = (state.get("evidence", []) + [a.article_id])[-5:]
        burst = self._burst(story, a, label)
        if burst:
            alerts.append(burst)
        dispute = self._dispute(story, a, label)
        if dispute:
            alerts.append(dispute)
        return alerts

    def _burst(self, story: Story, a: Assignment, label: str) -> Alert | None:
        cfg = self.config
        hour = int(a.timestamp // 3600)
        now = story.hourly.get(hour, 0)
        before = [story.hourly.get(h, 0) for h in range(hour - cfg.burst_baseline_hours, hour)]
        baseline = sum(before) / len(before)
        if now < cfg.burst_min_articles or now < cfg.burst_factor * max(baseline, 1.0):
            return None
        if story.alert_state.get("burst_hour", -(10**9)) >= hour - 6:
            return None  # at most one burst alert per story every six hours
        story.alert_state["burst_hour"] = hour
        return Alert(
            _alert_id("story.burst", story.id, str(hour)),
            "story.burst",
            story.id,
            "medium",
            label,
            f"Burst: {now} articles in the last hour against a mean of {baseline:.1f}/h over the previous "
            f"{cfg.burst_baseline_hours} h.",
            [a.article_id],
            a.timestamp,
        )

    def _dispute(self, story: Story, a: Assignment, label: str) -> Alert | None:
        claims: dict[str, set[str]] = {}
        for att in story.attributions:
            claims.setdefault(att["actor"], set()).add(f"{att['kind']}")
        actors = sorted(claims)
        denied_and_blamed = [x for x, kinds in claims.items() if "denial" in kinds and kinds & {"blame", "claim"}]
        disputed = len([x for x in actors if claims[x] & {"claim", "blame"}]) >= self.config.dispute_min_actors
        if not (disputed or denied_and_blamed):
            return None
        key = ",".join(actors)
        if story.alert_state.get("dispute") == key:
            return None
        story.alert_state["dispute"] = key
        parts = []
        for att in story.attributions:
            who = f" by {att['speaker']}" if att.get("speaker") else ""
            source = f" ({att['source']})" if att.get("source") else ""
            parts.append(f"{att['kind']} {att['actor']}{who}{source}")
        evidence = sorted({att["article_id"] for att in story.attributions})
        return Alert(
            _alert_id("story.dispute", story.id, key),
            "story.dispute",
            story.id,
            "high",
            label,
            "Disputed attribution: " + "; ".join(dict.fromkeys(parts)) + ".",
            evidence,
            a.timestamp,
        )


def at_least(alert: Alert, severity: str) -> bool:
    return SEVERITY[alert.severity] >= SEVERITY.get(severity, 0)
