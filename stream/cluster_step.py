"""The cluster stage between Kafka and ``models/``: re-order, decide, checkpoint to tables.

It knows tables only as mutable mappings, so the same class runs on Faust tables in the worker and
on plain dicts in a unit test. The clusterer's state is stored incrementally — per story, per
document-frequency bucket, per assignment — so a checkpoint costs what a batch touched, and a
restarted worker rebuilds the clusterer from the tables instead of replaying the world.

A checkpoint has two phases, because a crash (``kill -9``) can land between any two table writes and
each changelog keeps a different prefix of its own writes:

1. :meth:`ClusterStep.checkpoint` writes the batch's records, each tagged with the checkpoint number
   and carrying what it replaced (a story's previous record, a df bucket's previous counts of the
   terms that moved);
2. once those are stored, :meth:`ClusterStep.commit` writes the meta record naming the checkpoint
   complete. Only then are outputs published and inputs acknowledged.

:meth:`ClusterStep.restore` rolls every record newer than the last complete checkpoint back to what
it replaced, so the state is exactly that of the last complete checkpoint; the articles after it were
never acknowledged, are delivered again and decided again, in the same order. Nothing is lost,
nothing counts twice, and the stories equal those of a run without the crash.
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
CKPT = "ckpt"  # the checkpoint a record was written in

Table = MutableMapping[str, Any]


def _committed(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored record as of the last complete checkpoint, without its own rollback copy."""
    if record is None:
        return None
    return {k: v for k, v in record.items() if k != "prev"}


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
        self.ckpt = 0  # the last complete checkpoint
        self._expired: list[str] = []  # story tombstones of the last checkpoint, deleted by the next

    def restore(self) -> int:
        """Rebuild the clusterer from the tables as of the last complete checkpoint, repairing the
        records a crash left newer than it; returns the number of active stories recovered."""
        t = self.tables
        meta = t.meta.get(META_KEY)
        last = int(meta[CKPT]) if meta else 0
        stories = []
        for sid, record in list(t.stories.items()):
            if record[CKPT] > last:  # torn: back to what it replaced
                record = record["prev"]
                if record is None:
                    del t.stories[sid]
                else:
                    t.stories[sid] = record
            if record is not None and not record.get("expired"):
                stories.append(record)
        df: dict[str, int] = {}
        for b, bucket in list(t.df.items()):
            counts = bucket["counts"]
            if bucket[CKPT] > last:
                counts = dict(counts)
                for term, before in bucket["undo"].items():
                    if before:
                        counts[term] = before
                    else:
                        counts.pop(term, None)
                t.df[b] = {CKPT: last, "counts": counts, "undo": {}}
            df.update(counts)
        assigned = []
        for aid, a in list(t.assigned.items()):
            if a[CKPT] > last:
                del t.assigned[aid]
            else:
                assigned.append(a)
        self.ckpt = last
        self._expired = [sid for sid, r in t.stories.items() if r.get("expired")]
        if meta:
            self.clusterer = StoryClusterer.from_parts(meta, stories, df, assigned, self.model, self.config)
        else:
            self.clusterer = StoryClusterer(self.model, self.config)
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
        """Phase 1: write what the decisions changed; return them with the changed stories' snapshots.
        Call :meth:`commit` once these writes are stored."""
        return StepOutput(decisions, self._write_changes(now) if decisions else [])

    def commit(self) -> None:
        """Phase 2: name the checkpoint complete (its records must be stored before this is written)."""
        self.tables.meta[META_KEY] = {**self.clusterer.meta(), CKPT: self.ckpt}

    def step(self, now: float, flush: bool = False) -> StepOutput[T]:
        """:meth:`decide`, :meth:`checkpoint` and :meth:`commit`, for callers with tables that store at once."""
        out = self.checkpoint(self.decide(flush), now)
        if out.decisions:
            self.commit()
        return out

    def _write_changes(self, now: float) -> list[dict[str, Any]]:
        c, t = self.clusterer, self.tables
        changes = c.drain_changes()
        self.ckpt += 1
        k = self.ckpt
        for sid in self._expired:  # tombstones of a complete checkpoint: no longer needed for a rollback
            if sid not in c.stories:
                t.stories.pop(sid, None)
        self._expired = sorted(changes.removed_stories)
        snapshots = []
        for sid in sorted(changes.stories):
            if sid in c.stories:
                t.stories[sid] = {**c.story_record(sid), CKPT: k, "prev": _committed(t.stories.get(sid))}
                snapshots.append(self.snapshot(sid, now))
        for sid in self._expired:
            t.stories[sid] = {"expired": True, CKPT: k, "prev": _committed(t.stories.get(sid))}
            snapshots.append({"id": sid, "status": "expired"})
        for aid in changes.assigned:
            if aid in c.assigned:
                t.assigned[aid] = {**c.assigned[aid].to_dict(), CKPT: k}
        for aid in changes.forgotten:
            t.assigned.pop(aid, None)
        moved: dict[str, set[str]] = {}  # bucket -> terms whose count changed
        if changes.df_pruned:
            fresh: dict[str, dict[str, int]] = {str(b): {} for b in range(DF_BUCKETS)}
            for term, count in c.df.items():
                fresh[df_bucket(term)][term] = count
            for b, counts in fresh.items():
                old = t.df[b]["counts"] if b in t.df else {}
                moved[b] = {x for x in old.keys() | counts.keys() if old.get(x) != counts.get(x)}
        else:
            fresh = {}
            for term in changes.terms:
                moved.setdefault(df_bucket(term), set()).add(term)
            for b, terms in moved.items():
                counts = dict(t.df[b]["counts"]) if b in t.df else {}
                for term in terms:
                    if term in c.df:
                        counts[term] = c.df[term]
                    else:
                        counts.pop(term, None)
                fresh[b] = counts
        for b in sorted(moved):
            old = t.df[b]["counts"] if b in t.df else {}
            undo = {term: old.get(term, 0) for term in moved[b]}
            t.df[b] = {CKPT: k, "counts": fresh[b], "undo": undo}
        return snapshots

    def snapshot(self, story_id: str, now: float) -> dict[str, Any]:
        c = self.clusterer
        story = c.stories[story_id]
        active = [c.events[e].summary() for e in story.events[-self.config.events_scored :] if e in c.events]
        snap = story_snapshot(story, c._idf, c.watermark, active)
        snap["updated_at"] = now
        return snap
