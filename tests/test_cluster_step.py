"""The cluster step's two-phase checkpoint: a crash between any two table writes is rolled back exactly.

Tables here are dicts that log their writes. A crash in checkpoint ``j`` is simulated by keeping, per
table, a random prefix of that checkpoint's writes (each Kafka changelog keeps a prefix of its own
writes), with or without the commit mark; a fresh step restores from that and the stream goes on.
The result must equal a run without the crash: same assignments, same stories, same state.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from models.clustering import ClusterConfig
from models.features import ArticleFeatures, featurize_batch
from models.join_model import JoinModel
from models.replay import event_time_order
from stream import cluster_step
from stream.cluster_step import META_KEY, ClusterStep, StateTables
from stream.evaluate import read_labelled
from tests.conftest import SAMPLE

BATCH = 30
GONE = object()


class LoggedTable(dict[str, Any]):
    """A dict that records every write while ``log`` is a list."""

    log: list[tuple[str, Any]] | None = None

    def __setitem__(self, key: str, value: Any) -> None:
        if self.log is not None:
            self.log.append((key, copy.deepcopy(value)))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if self.log is not None:
            self.log.append((key, GONE))
        super().__delitem__(key)

    def pop(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            value = self[key]
            del self[key]
            return value
        return default


NAMES = ("stories", "df", "meta", "assigned")


def new_tables() -> StateTables:
    return StateTables(*(LoggedTable() for _ in NAMES))


def copy_tables(tables: StateTables) -> StateTables:
    out = new_tables()
    for name in NAMES:
        dict.update(getattr(out, name), copy.deepcopy(dict(getattr(tables, name))))
    return out


@pytest.fixture(scope="module")
def features(static) -> list[ArticleFeatures]:
    items = event_time_order(read_labelled(SAMPLE)[0])
    return featurize_batch([x.article for x in items], static)


def new_step(
    tables: StateTables, max_vocabulary: int = 200_000, merge_threshold: float | None = None
) -> ClusterStep[str]:
    # a short story TTL, so stories expire (tombstones) within the sample too; a small neighbour
    # window, so the memory restored from the assignment records has wrapped around
    config = ClusterConfig(story_ttl_hours=24.0, event_ttl_hours=6.0, max_vocabulary=max_vocabulary, knn_window=100)
    model = JoinModel.load("static").with_overrides(None, merge_threshold)
    step: ClusterStep[str] = ClusterStep(model, config, tables, allowed_lateness=0.0)
    step.restore()
    return step


def feed(step: ClusterStep[str], batch: list[ArticleFeatures]) -> list[dict[str, Any]]:
    for f in batch:
        step.offer(f, f.id)
    return [d.assignment.to_dict() for d in step.step(0.0, flush=True).decisions]


def batches(features: list[ArticleFeatures]) -> list[list[ArticleFeatures]]:
    return [features[i : i + BATCH] for i in range(0, len(features), BATCH)]


def state(step: ClusterStep[str]) -> dict[str, Any]:
    """The clusterer's whole state; events keyed by id (their dict order carries no meaning)."""
    data = step.clusterer.to_dict()
    data["events"] = {e["id"]: e for e in data["events"]}
    return data


@pytest.mark.parametrize(
    ("compact_every", "max_vocabulary", "merge_threshold"),
    [(50, 200_000, None), (3, 200_000, None), (3, 600, None), (50, 200_000, 0.6)],
    ids=["df-deltas", "df-compactions", "df-pruning", "story-merges"],
)
def test_a_crash_anywhere_in_a_checkpoint_is_rolled_back_exactly(
    features, monkeypatch, compact_every, max_vocabulary, merge_threshold
):
    monkeypatch.setattr(cluster_step, "DF_COMPACT_EVERY", compact_every)
    clean_step = new_step(new_tables(), max_vocabulary, merge_threshold)
    clean = {a["id"]: a for b in batches(features) for a in feed(clean_step, b)}
    assert clean_step.clusterer.expired_stories > 0  # the runs cover story expiry too
    if merge_threshold is not None:
        assert sum(len(a["merged"]) for a in clean.values()) >= 3  # and merges
    rng = random.Random(7)
    for trial in range(12):
        j = rng.randrange(1, len(batches(features)))
        tables = new_tables()
        step = new_step(tables, max_vocabulary, merge_threshold)
        for b in batches(features)[:j]:
            feed(step, b)
        before = copy_tables(tables)
        logs: dict[str, list[tuple[str, Any]]] = {}
        for name in NAMES:
            logs[name] = getattr(tables, name).log = []
        feed(step, batches(features)[j])  # the checkpoint the crash tears
        committed = trial % 4 == 0  # sometimes the commit mark landed: then every record had, too
        torn = before
        for name in NAMES:
            writes = logs[name] if committed else [w for w in logs[name] if w[0] != META_KEY]
            for key, value in writes[: len(writes) if committed else rng.randint(0, len(writes))]:
                table = getattr(torn, name)
                if value is GONE:
                    dict.pop(table, key, None)
                else:
                    dict.__setitem__(table, key, value)
        again = new_step(torn, max_vocabulary, merge_threshold)
        seen = {}
        for b in batches(features)[j:]:  # the torn batch comes again: it was never acknowledged
            seen.update({a["id"]: a for a in feed(again, b)})
        for aid, a in seen.items():
            assert a == clean[aid], f"trial {trial}: {aid} differs after a crash in checkpoint {j}"
        assert state(again) == state(clean_step), f"trial {trial}: state differs after checkpoint {j}"


@pytest.mark.parametrize("per_record", [128, 7], ids=["one-record", "split-records"])
def test_assignments_are_stored_one_record_per_checkpoint_and_dropped_once_all_are_forgotten(
    features, monkeypatch, per_record
):
    monkeypatch.setattr(cluster_step, "ASSIGNMENTS_PER_RECORD", per_record)
    tables = new_tables()
    step = new_step(tables)
    for b in batches(features):
        feed(step, b)
    records = dict(tables.assigned)
    per_checkpoint = -(-BATCH // per_record)
    assert 0 < len(records) < len(batches(features)) * per_checkpoint  # early ones are gone: all forgotten
    assert all(len(r["items"]) <= per_record for r in records.values())
    stored = [a["id"] for r in records.values() for a in r["items"]]
    assert len(stored) == len(set(stored))
    assert set(step.clusterer.assigned) <= set(stored)  # what the clusterer still remembers is stored
    again = new_step(copy_tables(tables))
    assert state(again) == state(step)


def test_every_record_the_step_writes_or_publishes_is_plain_json(features):
    """Faust encodes table values with orjson (installed with storywire), which refuses numpy scalars
    that the standard library's json would have let through: a leak would crash the worker."""
    import json

    from faust.utils import json as faust_json

    from stream.outputs import encode

    tables = new_tables()
    step = new_step(tables)
    published: list[Any] = []
    for batch in batches(features):
        for f in batch:
            step.offer(f, f.id)
        out = step.step(now=1e9, flush=True)
        published += [d.assignment.to_dict() for d in out.decisions] + out.snapshots
        published += [a.to_dict() for d in out.decisions for a in d.alerts]
    published += [f.to_dict() for f in features[:20]]
    assert any(d.get("status") for d in published)  # story snapshots are among them
    assert any(d.get("type") == "story.new" for d in published)  # and alerts
    for name in NAMES:
        for value in getattr(tables, name).values():
            assert json.loads(faust_json.dumps(value)) is not None
    for record in published:
        assert json.loads(encode(record)) is not None
