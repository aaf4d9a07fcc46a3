"""The cluster stage between Kafka and ``models/``: re-order, decide, checkpoint to tables.

It knows tables only as mutable mappings, so the same class runs on Faust tables in the worker and
on plain dicts in a unit test. The clusterer's state is stored incrementally — per story, per
document-frequency bucket, per assignment — so a checkpoint costs what a batch touched, and a
restarted worker rebuilds the clusterer from the tables instead of replaying the world.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from models.alerts import Alert, AlertRules
from models.clustering import Assignment, ClusterConfig, StoryClusterer
from models.features import ArticleFeatures
from models.join_model import JoinModel
from models.labels import story_snapshot
from models.reorder import ReorderBuffer

T = TypeVar("T")
DF_BUCKETS = 64
META_KEY = "meta"

Table = MutableMapping[str, Any]


def df_bucket(term: str) -> str:
    return str(int(hashlib.blake2b(term.encode(), digest_size=4).hexdigest(), 16) % DF_BUCKETS)


@dataclass
class StateTables:
    """Where the cluster state lives: Faust tables in the worker, dicts in unit tests."""

    stories: Table
    df: Table
    meta: Table
    assigned: Table


@dataclass
class Decision(Generic[T]):
    assignment: Assignment
    token: T  # what the caller needs to acknowledge the input (a Kafka event)
    new: bool  # False: a redelivered article, answered from the stored assignment
    late: bool
    alerts: list[Alert] = field(default_factory=list)


@dataclass
class StepOutput(Generic[T]):
    decisions: list[Decision[T]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)  # changed or expired stories


class ClusterStep(Generic[T]):
    """One shard's single writer. Call :meth:`restore` once the tables are recovered."""

    def __init__(self, model: JoinModel, config: ClusterConfig, tables: StateTables, allowed_lateness: float) -> None:
        self.model = model
        self.config = config
        self.tables = tables
        self.buffer: ReorderBuffer[tuple[ArticleFeatures, T]] = ReorderBuffer(allowed_lateness)
        self.clusterer = StoryClusterer(model, config)
        self.restored = False
        self.duplicates = 0
        self.rules = AlertRules()

    def restore(self) -> int:
        """Rebuild the clusterer from the tables; returns the number of active stories recovered."""
        meta = self.tables.meta.get(META_KEY)
        if meta:
            df: dict[str, int] = {}
            for bucket in self.tables.df.values():
                df.update(bucket)
            self.clusterer = StoryClusterer.from_parts(
                meta, self.tables.stories.values(), df, self.tables.assigned.values(), self.model, self.config
            )
        self.restored = True
        return len(self.clusterer.stories)

    def reset(self) -> None:
        """Forget in-memory state; the next :meth:`decide` call site must :meth:`restore` first."""
        self.buffer = ReorderBuffer(self.buffer.allowed_lateness)
        self.clusterer = StoryClusterer(self.model, self.config)
        self.restored = False

    def offer(self, features: ArticleFeatures, token: T) -> None:
        self.buffer.push(features.timestamp, features.id, (features, token))

    def decide(self, flush: bool = False) -> list[Decision[T]]:
        """Decide every article that is due (all of them when ``flush``). Pure CPU: runs off the loop."""
        decisions = []
        for (features, token), late in self.buffer.release(everything=flush):
            new = features.id not in self.clusterer.assigned
            if not new:
                self.duplicates += 1
            assignment = self.clusterer.learn_one(features)
            alerts = []
            if new and assignment.story_id in self.clusterer.stories:
                story = self.clusterer.stories[assignment.story_id]
                alerts = self.rules.on_assignment(story, assignment)
            decisions.append(Decision(assignment, token, new, late, alerts))
        return decisions

    def checkpoint(self, decisions: list[Decision[T]], now: float) -> StepOutput[T]:
        """Write what the decisions changed to the tables; return them with the changed stories' snapshots."""
        return StepOutput(decisions, self._write_changes(now) if decisions else [])

    def step(self, now: float, flush: bool = False) -> StepOutput[T]:
        """:meth:`decide` then :meth:`checkpoint`, for callers without an event loop."""
        return self.checkpoint(self.decide(flush), now)

    def _write_changes(self, now: float) -> list[dict[str, Any]]:
        c = self.clusterer
        changes = c.drain_changes()
        snapshots = []
        for sid in sorted(changes.stories):
            if sid in c.stories:
                self.tables.stories[sid] = c.story_record(sid)
                snapshots.append(self.snapshot(sid, now))
        for sid in sorted(changes.removed_stories):
            self.tables.stories.pop(sid, None)
            snapshots.append({"id": sid, "status": "expired"})
        for aid in changes.assigned:
            if aid in c.assigned:
                self.tables.assigned[aid] = c.assigned[aid].to_dict()
        for aid in changes.forgotten:
            self.tables.assigned.pop(aid, None)
        if changes.df_pruned:
            buckets: dict[str, dict[str, int]] = {str(b): {} for b in range(DF_BUCKETS)}
            for term, count in c.df.items():
                buckets[df_bucket(term)][term] = count
        else:
            buckets = {}
            for term in changes.terms:
                b = df_bucket(term)
                if b not in buckets:
                    buckets[b] = dict(self.tables.df.get(b, {}))
                if term in c.df:
                    buckets[b][term] = c.df[term]
        for b, counts in sorted(buckets.items()):
            self.tables.df[b] = counts
        self.tables.meta[META_KEY] = c.meta()
        return snapshots

    def snapshot(self, story_id: str, now: float) -> dict[str, Any]:
        c = self.clusterer
        story = c.stories[story_id]
        active = [c.events[e].summary() for e in story.events[-self.config.events_scored :] if e in c.events]
        snap = story_snapshot(story, c._idf, c.watermark, active)
        snap["updated_at"] = now
        return snap
