"""The streaming runtime end to end: a real tansu broker over real sockets, real worker processes.

The static embedder keeps these runs short; the MiniLM path through the same agents is exercised
by ``make demo`` and the benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.clustering import final_story_ids
from stream.broker import LocalBroker, free_port
from stream.demo import OutputWatcher, worker_process
from stream.replay import replay
from stream.settings import Settings
from stream.topics import ensure_topics
from tests.conftest import REPO, SAMPLE

STORYWIRE = [sys.executable, "-m", "stream.cli"]
# Hold everything until the input has been quiet for 5 s, then decide in event-time order: the
# order the evaluator uses (a startup pause of the embed stage must not release half a replay).
NO_LATENESS_LIMIT = {"STORYWIRE_ALLOWED_LATENESS_SECONDS": "1e9", "STORYWIRE_REORDER_IDLE_SECONDS": "5"}


def partition(assignments: Path) -> set[frozenset[str]]:
    """Stories as they stand at the end (merges followed) as sets of article ids: story ids may
    differ, the grouping must not."""
    groups: dict[str, set[str]] = defaultdict(set)
    for aid, story in final_story_ids(json.loads(line) for line in assignments.read_text().splitlines()).items():
        groups[story].add(aid)
    return {frozenset(g) for g in groups.values()}


def offline_partition(source: Path, tmp_path: Path) -> set[frozenset[str]]:
    """The stories ``storywire evaluate`` finds in ``source`` (static embedder), as a partition."""
    offline = tmp_path / "offline.jsonl"
    ev = subprocess.run(
        [*STORYWIRE, "evaluate", str(source), "--embedder", "static", "--assignments", str(offline)],
        cwd=REPO, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr[-2000:]
    return partition(offline)


def with_bad_lines(tmp_path: Path) -> tuple[Path, int]:
    lines = SAMPLE.read_text().splitlines()
    bad = ["{not json", json.dumps({"id": "no-title", "published_at": "2014-03-10T17:00:00Z"})]
    lines[10:10] = bad
    path = tmp_path / "input.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe not utf-8\n")
    return path, len(bad) + 1


def test_demo_through_kafka_gives_the_evaluator_stories_and_dead_letters_bad_input(tmp_path: Path):
    source, n_bad = with_bad_lines(tmp_path)
    env = {**os.environ, **NO_LATENESS_LIMIT}
    streamed = tmp_path / "streamed.jsonl"
    proc = subprocess.run(
        [*STORYWIRE, "demo", "--input", str(source), "--embedder", "static", "--until-idle", "--json",
         "--assignments", str(streamed), "--timeout", "300"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["articles_in"] == 420 + n_bad
    assert summary["assignments"] == 420
    assert summary["deadletters"] == n_bad
    offline = offline_partition(source, tmp_path)
    assert partition(streamed) == offline
    assert summary["stories"] == len(offline)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    with LocalBroker(log_path=tmp_path / "broker.log") as b:
        ensure_topics(b.bootstrap, 4)
        yield b


def worker_settings(tmp_path: Path, name: str, app_id: str) -> Settings:
    return Settings(
        embedder="static",
        web_port=free_port(),
        app_id=app_id,
        data_dir=tmp_path / name,
        allowed_lateness_seconds=1e9,
        reorder_idle_seconds=5,
    )


def metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = [float(line.split()[-1]) for line in body.splitlines() if line.startswith(name + " ")]
    return values[0] if values else 0.0


def api_stories(port: int) -> list[dict]:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stories", timeout=5).read())["stories"]


def wait_web(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "worker exited"
        try:
            metric(port, "storywire_active_stories")
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("worker web server did not come up")


def test_worker_restart_recovers_tables_without_loss_or_double_counting(broker: LocalBroker, tmp_path: Path):
    lines = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    lines.sort(key=lambda a: (a["published_at"], a["id"]))
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps(a) + "\n" for a in lines[:250]))
    resent = lines[200:250]  # redelivered after the restart: must not count twice
    second.write_text("".join(json.dumps(a) + "\n" for a in resent + lines[250:]))
    settings = worker_settings(tmp_path, "w", f"restart-{uuid.uuid4().hex[:8]}")
    watcher = OutputWatcher(broker.url)
    try:
        with worker_process(settings, broker.url, True, tmp_path / "worker1.log") as w1:
            replay(first, broker.url, progress=False)
            before = dict(watcher.wait_for(250, 180, w1).assignments)
            time.sleep(2.5)  # let the offset commit (every second) land before the restart
        with worker_process(settings, broker.url, True, tmp_path / "worker2.log") as w2:
            wait_web(settings.web_port, w2)
            replay(second, broker.url, progress=False)
            lines_sent = 250 + len(resent) + len(lines[250:])  # the watcher counts input lines, resent ones too
            after = watcher.wait_for(lines_sent, 180, w2).assignments
            time.sleep(1.0)
            stories = api_stories(settings.web_port)
            page = urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/", timeout=5).read().decode()
            assert "/api/stories" in page and "<title>storywire" in page  # the dashboard is served
            assert metric(settings.web_port, "storywire_duplicate_articles_total") >= len(resent)
    finally:
        watcher.close()
    assert len(after) == 420
    for a in resent:  # the redelivered articles kept their first assignment
        assert after[a["id"]]["story_id"] == before[a["id"]]["story_id"]
    # Every article counted once across the recovered stories.
    assert sum(s["articles"] for s in stories) == 420
    out = tmp_path / "streamed.jsonl"
    out.write_text("".join(json.dumps(a) + "\n" for a in after.values()))
    assert partition(out) == offline_partition(SAMPLE, tmp_path), "the restart changed the stories of one pass"


def test_two_workers_share_the_embed_stage(broker: LocalBroker, tmp_path: Path):
    app_id = f"pair-{uuid.uuid4().hex[:8]}"
    a, b = worker_settings(tmp_path, "a", app_id), worker_settings(tmp_path, "b", app_id)
    watcher = OutputWatcher(broker.url)
    try:
        with (
            worker_process(a, broker.url, True, tmp_path / "a.log") as wa,
            worker_process(b, broker.url, True, tmp_path / "b.log") as wb,
        ):
            wait_web(a.web_port, wa)
            wait_web(b.web_port, wb)
            deadline = time.monotonic() + 90
            owned = [0.0, 0.0]
            while time.monotonic() < deadline:  # until the group has settled on a 2 + 2 split
                owned = [metric(s.web_port, 'storywire_assigned_partitions{topic="articles"}') for s in (a, b)]
                if owned == [2.0, 2.0]:
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"the two workers never split the articles partitions: {owned}")
            replay(SAMPLE, broker.url, rate=150, progress=False)
            out = watcher.wait_for(420, 180, wa)
            received = [metric(s.web_port, "storywire_articles_received_total") for s in (a, b)]
    finally:
        watcher.close()
    assert len(out.assignments) == 420
    assert all(r > 0 for r in received), f"one worker embedded nothing: {received}"
    assert sum(received) >= 420
