"""Crash drill: kill -9 the worker mid-stream, restart it, and count what was lost or counted twice.

    python bench/chaos.py [--articles 3000] [--kills 1] [--seed 7] [--embedder static] [--json]

A clean run and a chaos run on fresh local brokers, same input: the sample repeated with fresh ids,
``published_at`` one second apart, sent at ``--rate`` articles/s. The worker holds a 120 s event-time
re-order window (``STORYWIRE_ALLOWED_LATENESS_SECONDS``), wide enough that both runs decide in the
same order. In the chaos run the worker is killed with SIGKILL at seeded random moments (after a
random share of the articles has been assigned) and restarted at once. Then the ``assignments``
topic is read back: ``lost`` = input ids never assigned; ``double_counted`` = ids whose repeated
assignment records disagree, plus the excess of the stories' article counts over the ids;
``stories_equal_clean`` compares the partition of ids into stories with the clean run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import show  # noqa: E402
from stream.broker import LocalBroker, free_port  # noqa: E402
from stream.demo import OutputWatcher, worker_process  # noqa: E402
from stream.replay import bootstrap_of, replay  # noqa: E402
from stream.settings import SAMPLE_STREAM, Settings  # noqa: E402
from stream.topics import ASSIGNMENTS, ensure_topics  # noqa: E402


def drill_input(n: int, path: Path) -> list[str]:
    base = [json.loads(line) for line in SAMPLE_STREAM.read_text().splitlines()]
    base.sort(key=lambda a: (a["published_at"], a["id"]))
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    ids, lines = [], []
    for i in range(n):
        a = dict(base[i % len(base)])
        a["id"] = f"{a['id']}-{i // len(base)}"
        a["published_at"] = datetime.fromtimestamp(start + i, UTC).isoformat()
        ids.append(a["id"])
        lines.append(json.dumps(a))
    path.write_text("\n".join(lines) + "\n")
    return ids


def partition(assignments: dict[str, dict]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for aid, a in assignments.items():
        groups[a["story_id"]].add(aid)
    return {frozenset(g) for g in groups.values()}


def moved(run: dict[str, dict], clean: dict[str, dict]) -> int:
    """Articles whose story (as the set of its articles) differs from the clean run's."""
    story_of = {}
    for assignments, tag in ((run, "run"), (clean, "clean")):
        members: dict[str, set[str]] = defaultdict(set)
        for aid, a in assignments.items():
            members[a["story_id"]].add(aid)
        story_of[tag] = {aid: frozenset(members[a["story_id"]]) for aid, a in assignments.items()}
    return sum(story_of["run"].get(aid) != group for aid, group in story_of["clean"].items())


def all_records(broker: str) -> dict[str, set[str]]:
    """Every assignment record on the topic, per article id (a redelivery may publish one again)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_of(broker), enable_auto_commit=False)
    tp = TopicPartition(ASSIGNMENTS, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records: dict[str, set[str]] = defaultdict(set)
    idle = 0
    while idle < 3:
        batch = consumer.poll(timeout_ms=500, max_records=10_000)
        idle = 0 if batch else idle + 1
        for rows in batch.values():
            for r in rows:
                a = json.loads(r.value)
                records[a["id"]].add(f"{a['story_id']}/{a['event_id']}")
    consumer.close()
    return records


def diagnose(broker: str, app_id: str, lost: set[str], out: Path) -> None:
    from kafka import KafkaConsumer, TopicPartition

    boot = bootstrap_of(broker)
    group = KafkaConsumer(bootstrap_servers=boot, group_id=app_id, enable_auto_commit=False)
    info: dict = {"committed": {f"embedded/{p}": group.committed(TopicPartition("embedded", p)) for p in (0,)}}
    group.close()
    consumer = KafkaConsumer(bootstrap_servers=boot, enable_auto_commit=False)
    for topic in (
        "assignments",
        "embedded",
        f"{app_id}-cluster-assigned-changelog",
        f"{app_id}-cluster-stories-changelog",
    ):
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        hits, idle, total = [], 0, 0
        while idle < 3:
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            idle = 0 if batch else idle + 1
            for rows in batch.values():
                for r in rows:
                    total += 1
                    text = (r.value or b"").decode(errors="replace")
                    for i in lost:
                        if f'"{i}"' in text:
                            hits.append((i, r.partition, r.offset, (r.key or b"").decode(errors="replace")[:40]))
                            break
        info[topic] = {"records": total, "hits": hits[:60], "hit_count": len(hits)}
    consumer.close()
    out.write_text(json.dumps(info, indent=1))


def run(
    source: Path, ids: list[str], embedder: str, rate: float, kill_at: list[float], workdir: Path, stall: float = 120.0
) -> dict:
    """One run on a fresh broker; ``kill_at``: shares of the input after which to SIGKILL the worker."""
    os.environ["STORYWIRE_ALLOWED_LATENESS_SECONDS"] = "120"
    pending = sorted(kill_at)
    recovery: list[float] = []
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, 4)
        settings = Settings(
            embedder=embedder,  # type: ignore[arg-type]
            web_port=free_port(),
            app_id=f"chaos-{uuid.uuid4().hex[:6]}",
            data_dir=workdir / "worker",
        )
        watcher = OutputWatcher(broker.url)
        sender = threading.Thread(target=replay, args=(source, broker.url), kwargs={"rate": rate, "progress": False})
        generation, killed_at, count_at_kill = 0, 0.0, 0
        while True:
            generation += 1
            with worker_process(settings, broker.url, True, workdir / f"worker-{generation}.log") as worker:
                if generation == 1:
                    sender.start()
                killed = False
                progress_at, last_count = time.monotonic(), -1
                while True:
                    out = watcher.poll()
                    if len(out.assignments) != last_count:
                        progress_at, last_count = time.monotonic(), len(out.assignments)
                    elif time.monotonic() - progress_at > stall:
                        break  # no progress: what is missing now is lost
                    if generation > 1 and len(recovery) < generation - 1 and len(out.assignments) > count_at_kill:
                        recovery.append(time.monotonic() - killed_at)  # first new assignment after the restart
                    if pending and len(out.assignments) >= pending[0] * len(ids):
                        pending.pop(0)
                        count_at_kill = len(out.assignments)
                        os.kill(worker.pid, signal.SIGKILL)
                        worker.wait()
                        killed_at, killed = time.monotonic(), True
                        break
                    if len(out.assignments) >= len(ids) and not sender.is_alive():
                        break
                    if worker.poll() is not None:
                        raise RuntimeError(f"worker exited with {worker.returncode}; see {workdir}")
                if not killed:
                    time.sleep(1.5)
                    url = f"http://127.0.0.1:{settings.web_port}/api/stories"
                    story_sum = sum(
                        s["articles"] for s in json.loads(urllib.request.urlopen(url, timeout=5).read())["stories"]
                    )
                    break
        watcher.close()
        records = all_records(broker.url)
        lost_now = sorted(set(ids) - set(watcher.outcome.assignments))
        if lost_now and os.environ.get("CHAOS_DIAG"):
            diagnose(broker.url, settings.app_id, set(lost_now), workdir / "diag.json")
    assignments = watcher.outcome.assignments
    return {
        "assignments": assignments,
        "lost": len(set(ids) - set(records)),
        "watcher_missed": len(set(records) - set(assignments)),
        "lost_ids": sorted(set(ids) - set(assignments))[:20],
        "double_counted": sum(len(v) > 1 for v in records.values()) + max(0, story_sum - len(assignments)),
        "recovery_seconds": recovery,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--embedder", choices=["minilm", "static"], default="static")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.articles < 10 or args.kills < 1:
        parser.error("need --articles >= 10 and --kills >= 1")
    work = Path(tempfile.mkdtemp(prefix="storywire-chaos-"))
    source = work / "input.jsonl"
    ids = drill_input(args.articles, source)
    rng = random.Random(args.seed)
    kill_at = sorted(rng.uniform(0.15, 0.85) for _ in range(args.kills))
    clean = run(source, ids, args.embedder, args.rate, [], work / "clean")
    chaos = run(source, ids, args.embedder, args.rate, kill_at, work / "chaos")
    result = {
        "articles": args.articles,
        "kills": args.kills,
        "kill_points": [round(k, 3) for k in kill_at],
        "lost": chaos["lost"],
        "double_counted": chaos["double_counted"],
        "recovery_seconds": round(max(chaos["recovery_seconds"], default=0.0), 2),
        "stories_equal_clean": partition(chaos["assignments"]) == partition(clean["assignments"]),
        "articles_in_other_story": moved(chaos["assignments"], clean["assignments"]),
        "clean_lost": clean["lost"],
        "lost_ids": chaos["lost_ids"],
        "watcher_missed": chaos["watcher_missed"],
    }
    show("crash drill (kill -9)", [{k: v for k, v in result.items() if k not in ("kill_points", "lost_ids")}])
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
