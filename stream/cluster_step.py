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
import math
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
DF_COMPACT_EVERY = 50  # df delta records between two compactions into the base buckets
# Each item carries its article's vector (~2 KB for MiniLM): this keeps a record far below Kafka's
# default 1 MB message limit however many articles one checkpoint decides.
ASSIGNMENTS_PER_RECORD = 128
META_KEY = "meta"
CKPT = "ckpt"  # the checkpoint a record was written in

Table = MutableMapping[str, Any]


def _committed(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored record as of the last complete checkpoint, without its own rollback copy."""
    if record is None:
        return None
    return {k: v for k, v in record.items() if k != "prev"}


def _assignment_items(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The assignments in one stored record (one per checkpoint; older workers wrote one per article)."""
    if "items" in record:
        return list(record["items"])
    return [{k: v for k, v in record.items() if k != CKPT}]


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
        self._batch_of: dict[str, str] = {}  # article id -> the assignment record holding it
        self._left: dict[str, int] = {}  # assignment record -> its items not yet forgotten
        self._deltas: list[str] = []  # df delta records since the last compaction
        self._obsolete_deltas: list[str] = []  # df delta records a compaction made obsolete
        self._dirty: set[str] = set()  # terms moved since the last compaction

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
        df = self._restore_df(last)
        # Assignments are stored one record per checkpoint; items already forgotten (past the story
        # horizon) stay in a record until all of its items are, and are dropped here.
        watermark = meta.get("watermark") if meta else None
        horizon = watermark - self.config.story_ttl_hours * 3600 if watermark is not None else -math.inf
        assigned = []
        self._batch_of, self._left = {}, {}
        for key, record in list(t.assigned.items()):
            live = [a for a in _assignment_items(record) if a["timestamp"] >= horizon]
            if record[CKPT] > last or not live:
                del t.assigned[key]
                continue
            assigned.extend(live)
            self._batch_of.update((a["id"], key) for a in live)
            self._left[key] = len(live)
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
        for sid in self._expired:  # expired or merged: gone from the state either way
            t.stories[sid] = {"expired": True, CKPT: k, "prev": _committed(t.stories.get(sid))}
            into = c.resolve(sid)
            gone = {"status": "merged", "merged_into": into} if into != sid else {"status": "expired"}
            snapshots.append({"id": sid, **gone})
        # One record per checkpoint, not per article: on the local broker every record is a request.
        # Each carries the article's slot in the nearest-neighbour memory, which restore puts back.
        items = [
            {**c.assigned[aid].to_dict(), "knn": c.recent.entry(aid)} for aid in changes.assigned if aid in c.assigned
        ]
        for j in range(0, len(items), ASSIGNMENTS_PER_RECORD):
            key, part = f"b{k}.{j // ASSIGNMENTS_PER_RECORD}", items[j : j + ASSIGNMENTS_PER_RECORD]
            t.assigned[key] = {CKPT: k, "items": part}
            self._batch_of.update((a["id"], key) for a in part)
            self._left[key] = len(part)
        for aid in changes.forgotten:
            batch = self._batch_of.pop(aid, None)
            if batch is not None:
                self._left[batch] -= 1
                if not self._left[batch]:
                    del self._left[batch]
                    t.assigned.pop(batch, None)
        self._write_df(changes.terms, changes.df_pruned)
        return snapshots

    # ------------------------------------------------------------- document frequencies
    # Stored as base buckets (all terms, rewritten only at a compaction) plus one delta record per
    # checkpoint (the new counts of the terms that moved). On the local broker every record is its own
    # request, so a checkpoint writes one df record, not one per bucket touched (there were ~50).

    def _write_df(self, moved: set[str], pruned: bool) -> None:
        c, t, k = self.clusterer, self.tables, self.ckpt
        for key in self._obsolete_deltas:  # made obsolete by a compaction that is now complete
            t.df.pop(key, None)
        self._obsolete_deltas = []
        self._dirty |= moved
        if not pruned and len(self._deltas) < DF_COMPACT_EVERY:
            if moved:
                key = f"d{k}"
                t.df[key] = {CKPT: k, "counts": {term: c.df.get(term, 0) for term in sorted(moved)}}
                self._deltas.append(key)
            return
        buckets = {str(b) for b in range(DF_BUCKETS)} if pruned else {df_bucket(term) for term in self._dirty}
        fresh: dict[str, dict[str, int]] = {b: {} for b in buckets}
        for term, count in c.df.items():
            b = df_bucket(term)
            if b in fresh:
                fresh[b][term] = count
        for b in sorted(buckets):
            stored = t.df.get(b)
            old = stored["counts"] if stored else {}
            undo = {x: old.get(x, 0) for x in old.keys() | fresh[b].keys() if old.get(x) != fresh[b].get(x)}
            t.df[b] = {CKPT: k, "counts": fresh[b], "undo": undo, "from": stored[CKPT] if stored else 0}
        self._obsolete_deltas, self._deltas, self._dirty = self._deltas, [], set()

    def _restore_df(self, last: int) -> dict[str, int]:
        t = self.tables
        df: dict[str, int] = {}
        base: dict[str, int] = {}  # bucket -> the checkpoint its stored counts are of
        deltas: list[tuple[int, str]] = []
        for key, record in list(t.df.items()):
            if key.startswith("d"):
                if record[CKPT] > last:
                    del t.df[key]
                else:
                    deltas.append((record[CKPT], key))
                continue
            counts, of = record["counts"], record[CKPT]
            if of > last:  # a torn compaction: back to the counts it replaced
                counts = dict(counts)
                for term, before in record["undo"].items():
                    if before:
                        counts[term] = before
                    else:
                        counts.pop(term, None)
                of = record.get("from", 0)
                t.df[key] = {CKPT: of, "counts": counts, "undo": {}, "from": of}
            base[key] = of
            df.update(counts)
        deltas.sort()
        self._dirty = set()
        for of, key in deltas:
            for term, count in t.df[key]["counts"].items():
                if of > base.get(df_bucket(term), 0):
                    self._dirty.add(term)
                    if count:
                        df[term] = count
                    else:
                        df.pop(term, None)
        compacted = max(base.values(), default=0)
        self._obsolete_deltas = [key for of, key in deltas if of <= compacted]
        self._deltas = [key for of, key in deltas if of > compacted]
        return df

    def snapshot(self, story_id: str, now: float) -> dict[str, Any]:
        c = self.clusterer
        story = c.stories[story_id]
        active = [c.events[e].summary() for e in story.events[-self.config.events_scored :] if e in c.events]
        snap = story_snapshot(story, c._idf, c.watermark, active)
        snap["updated_at"] = now
        return snap
