"""Crash drill: kill -9 the worker mid-stream, restart it, and count what was lost or counted twice.

    python bench/chaos.py [--articles 3000] [--kills 1] [--seed 7] [--embedder static] [--json]

A clean run and a chaos run on fresh local brokers, same input: the sample repeated with fresh ids,
``published_at`` one second apart, sent at ``--rate`` articles/s. The worker holds an event-time
re-order window (``STORYWIRE_ALLOWED_LATENESS_SECONDS``) of 600 s (600 articles), wide enough that
both runs decide in the same order unless a restart makes a partition lag further than that
(``late_clean_chaos`` counts the articles decided out of order in each run). In the chaos run the
worker is killed with SIGKILL at seeded random moments (after a random share of the articles has
been assigned) and restarted at once, as a supervisor would.

Then the whole ``assignments`` topic is read back: ``lost`` = input ids with no assignment record;
``double_counted`` = ids whose assignment records disagree (a redelivery must repeat the first
answer), plus the excess of the stories' article counts (from the worker's API) over the ids;
``stories_equal_clean`` compares the partition of ids into stories with the clean run, and
``agreement_b3_f1`` scores it against the clean run's as if that were gold (1.0: identical). ``recovery_seconds``: the
longest time from a kill to the first assignment published after it, over the kills that left work to do
(``idle_kills``: kills after which every article had already been assigned, so nothing could show a recovery).
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

from kafka import KafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import show  # noqa: E402
from models.clustering import final_story_ids  # noqa: E402
from models.metrics import score  # noqa: E402
from stream.broker import LocalBroker, free_port  # noqa: E402
from stream.demo import OutputWatcher, worker_process  # noqa: E402
from stream.replay import bootstrap_of, replay  # noqa: E402
from stream.settings import SAMPLE_STREAM, Settings  # noqa: E402
from stream.topics import ASSIGNMENTS, ensure_topics  # noqa: E402

LATENESS = 600  # event-time seconds (= articles here) the cluster step waits to re-order
IDLE = 1.0  # quiet seconds before the re-order buffer is released: short replay pauses must not release it


def drill_input(n: int, path: Path) -> list[str]:
    """The sample repeated with fresh ids, one article per second of event time; returns the ids."""
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


def stories_of(assignments: dict[str, dict]) -> dict[str, frozenset[str]]:
    """Each article id -> the set of ids in its final story (story ids may differ between runs)."""
    final = final_story_ids(assignments.values())
    members: dict[str, set[str]] = defaultdict(set)
    for aid, story in final.items():
        members[story].add(aid)
    return {aid: frozenset(members[story]) for aid, story in final.items()}


def agreement(clean: dict[str, dict], run: dict[str, dict]) -> float:
    """B-cubed F1 of the run's final stories against the clean run's, over the ids both assigned."""
    ids = sorted(clean.keys() & run.keys())
    a, b = final_story_ids(clean.values()), final_story_ids(run.values())
    return score([a[i] for i in ids], [b[i] for i in ids]).bcubed_f1


def read_topic(broker: str, topic: str) -> list[dict]:
    """Every JSON record of a single-partition topic, from the beginning (no consumer group)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_of(broker), enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out: list[dict] = []
    idle = 0
    while idle < 3:
        batch = consumer.poll(timeout_ms=500, max_records=10_000)
        idle = 0 if batch else idle + 1
        out += [json.loads(r.value) for rows in batch.values() for r in rows]
    consumer.close()
    return out


def all_records(broker: str) -> dict[str, dict[str, dict]]:
    """Every assignment record on the topic: id -> {story/event: latest record} (a redelivery may
    publish an article again; it must say the same)."""
    records: dict[str, dict[str, dict]] = defaultdict(dict)
    for a in read_topic(broker, ASSIGNMENTS):
        records[a["id"]][f"{a['story_id']}/{a['event_id']}"] = a
    return records


def live_stories(port: int, timeout: float = 120.0) -> list[dict]:
    """The worker's story list, once its web server is up (a worker that found nothing left to do
    may still be recovering its tables when the drill asks)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stories", timeout=5).read()
            return json.loads(body)["stories"]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run(source: Path, ids: list[str], embedder: str, rate: float, kill_at: list[float], workdir: Path) -> dict:
    """One run on a fresh broker; ``kill_at``: shares of the input after which to SIGKILL the worker."""
    os.environ["STORYWIRE_ALLOWED_LATENESS_SECONDS"] = str(LATENESS)
    os.environ["STORYWIRE_REORDER_IDLE_SECONDS"] = str(IDLE)
    pending = sorted(kill_at)
    kills: list[float] = []  # wall-clock times of the kills
    workdir.mkdir(parents=True, exist_ok=True)
    with LocalBroker(log_path=workdir / "broker.log") as broker:
        ensure_topics(broker.bootstrap, 4)
        settings = Settings(
            embedder=embedder,  # type: ignore[arg-type]
            web_port=free_port(),
            app_id=f"chaos-{uuid.uuid4().hex[:6]}",
            data_dir=workdir / "worker",
        )
        watcher = OutputWatcher(broker.url)
        sender = threading.Thread(target=replay, args=(source, broker.url), kwargs={"rate": rate, "progress": False})
        generation, story_sum = 0, 0
        while True:
            generation += 1
            with worker_process(settings, broker.url, True, workdir / f"worker-{generation}.log") as worker:
                if generation == 1:
                    sender.start()
                progress_at, seen = time.monotonic(), -1
                while time.monotonic() - progress_at < 120:  # no progress for 2 min: what is missing is lost
                    out = watcher.poll()
                    if len(out.assignments) != seen:
                        progress_at, seen = time.monotonic(), len(out.assignments)
                    if pending and seen >= pending[0] * len(ids):
                        pending.pop(0)
                        os.kill(worker.pid, signal.SIGKILL)
                        worker.wait()
                        kills.append(time.time())
                        break
                    if seen >= len(ids) and not sender.is_alive():
                        break
                    if worker.poll() is not None:
                        raise RuntimeError(f"worker exited with {worker.returncode}; see {workdir}")
                else:
                    kills.append(-1.0)  # stalled: stop here
                if len(kills) < generation or kills[-1] < 0:
                    time.sleep(1.5)
                    stories = live_stories(settings.web_port)
                    story_sum = sum(s["articles"] for s in stories)
                    break
        sender.join()
        watcher.close()
        records = all_records(broker.url)
    latest = {aid: max(r.values(), key=lambda a: a["processed_at"]) for aid, r in records.items()}
    recovery = []
    for killed_at in (k for k in kills if k > 0):
        after = [a["processed_at"] for r in records.values() for a in r.values() if a["processed_at"] > killed_at]
        if after:
            recovery.append(min(after) - killed_at)
    return {
        "assignments": latest,
        "lost": len(set(ids) - set(records)),
        "double_counted": sum(len(r) > 1 for r in records.values()) + max(0, story_sum - len(records)),
        "late": sum(a.get("late", False) for a in latest.values()),
        "recovery_seconds": recovery,
        "idle_kills": sum(k > 0 for k in kills) - len(recovery),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=300.0, help="articles/s sent")
    parser.add_argument("--embedder", choices=["minilm", "static"], default="static")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.articles < 10 or args.kills < 1 or args.rate <= 0:
        parser.error("need --articles >= 10, --kills >= 1 and a positive --rate")
    work = Path(tempfile.mkdtemp(prefix="storywire-chaos-"))
    source = work / "input.jsonl"
    ids = drill_input(args.articles, source)
    rng = random.Random(args.seed)
    kill_at = sorted(rng.uniform(0.15, 0.85) for _ in range(args.kills))
    clean = run(source, ids, args.embedder, args.rate, [], work / "clean")
    chaos = run(source, ids, args.embedder, args.rate, kill_at, work / "chaos")
    clean_stories, chaos_stories = stories_of(clean["assignments"]), stories_of(chaos["assignments"])
    result = {
        "articles": args.articles,
        "kills": args.kills,
        "seed": args.seed,
        "lost": chaos["lost"],
        "double_counted": chaos["double_counted"],
        "recovery_seconds": round(max(chaos["recovery_seconds"], default=0.0), 2),
        "idle_kills": chaos["idle_kills"],
        "stories_equal_clean": set(clean_stories.values()) == set(chaos_stories.values()),
        "agreement_b3_f1": round(agreement(clean["assignments"], chaos["assignments"]), 4),
        "clean_lost": clean["lost"],
        "late_clean_chaos": f"{clean['late']}/{chaos['late']}",
        "kill_points": [round(k, 3) for k in kill_at],
    }
    show("crash drill (kill -9)", [{k: v for k, v in result.items() if k != "kill_points"}], args.markdown)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
