"""Fault drills: misbehaving webhook endpoints, and a broker that stops answering for a while.

    python bench/faults.py [--drill webhooks|broker|all] [--outage 30] [--json] [--markdown]

webhooks: the sample is sent at 20 articles/s with live timestamps to a worker with no webhooks
  (baseline) and then to a fresh worker with six endpoints on a local HTTP server: healthy, down
  (nothing listens until the outage ends), HTTP 500, timing out, resetting connections (each of those
  three until the outage ends, then healthy) and one that always answers after 10 s (longer than the
  client timeout, so storywire never sees it succeed). Figures: article→assignment latency p50/p95
  in both runs (the ratio is what the faults cost the pipeline), alerts raised, and per endpoint the
  alerts it received (signature verified), those storywire dead-lettered (a slow endpoint may
  receive an alert after storywire gave up on it), and those lost (neither).
broker: the drill input (the sample repeated with fresh ids) is replayed at a fixed rate; mid-way
  the broker process is frozen (SIGSTOP) for ``--outage`` seconds and resumed (SIGCONT), as a
  broker that hangs or a network partition would. Figures: lines the replay could not send, ids
  lost, ids with conflicting assignments, worker restarts, and the seconds from the resume to the
  first new assignment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import show  # noqa: E402
from bench.chaos import all_records, drill_input, read_topic  # noqa: E402
from stream.broker import LocalBroker, free_port  # noqa: E402
from stream.demo import OutputWatcher, worker_metric, worker_process  # noqa: E402
from stream.replay import replay  # noqa: E402
from stream.settings import SAMPLE_STREAM, Settings  # noqa: E402
from stream.topics import ALERTS, ARTICLES, WEBHOOKS_DEADLETTER, ensure_topics  # noqa: E402
from stream.webhooks import verify  # noqa: E402

SECRET = "drill-secret"
BEHAVIOURS = ("healthy", "down", "http500", "timeout", "reset", "slow10")


class FaultyReceiver:
    """One aiohttp server on its own thread; each path misbehaves its own way until ``recover_at``."""

    def __init__(self, recover_at: float) -> None:
        self.recover_at = recover_at
        self.port, self.down_port = free_port(), free_port()
        self.got: dict[str, set[str]] = defaultdict(set)  # behaviour -> alert ids delivered and verified
        self.requests: dict[str, int] = defaultdict(int)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        body = await request.read()
        self.requests[kind] += 1
        failing = time.time() < self.recover_at
        if kind == "slow10" or (kind == "timeout" and failing):
            await asyncio.sleep(10)
        elif kind == "http500" and failing:
            return web.Response(status=500)
        elif kind == "reset" and failing:
            assert request.transport is not None
            request.transport.abort()  # connection reset, no answer at all
            return web.Response(status=500)
        if verify(SECRET, request.headers.get("X-Storywire-Signature", ""), body):
            self.got[kind].add(request.headers["X-Storywire-Delivery"])
        return web.Response(status=204)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(self.port), self.loop).result()

        async def open_down_port_later() -> None:
            await asyncio.sleep(max(0.0, self.recover_at - time.time()))
            await self._serve(self.down_port)

        asyncio.run_coroutine_threadsafe(open_down_port_later(), self.loop)

    async def _serve(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/{kind}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    def endpoints(self) -> list[dict[str, str]]:
        return [
            {
                "name": kind,
                "url": f"http://127.0.0.1:{self.down_port if kind == 'down' else self.port}/{kind}",
                "secret": SECRET,
            }
            for kind in BEHAVIOURS
        ]


def live_articles(prefix: str) -> list[dict[str, Any]]:
    base = [json.loads(line) for line in SAMPLE_STREAM.read_text().splitlines()]
    base.sort(key=lambda a: (a["published_at"], a["id"]))
    return [{**a, "id": f"{prefix}-{a['id']}"} for a in base]


def send_live(broker: LocalBroker, items: list[dict[str, Any]], rate: float) -> dict[str, float]:
    """Send at ``rate``/s with ``published_at`` = now: a live feed. Returns id -> send time."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    start = time.time()
    for i, a in enumerate(items):
        if (wait := start + i / rate - time.time()) > 0:
            time.sleep(wait)
        now = time.time()
        a = {**a, "published_at": datetime.fromtimestamp(now, UTC).isoformat()}
        sent[a["id"]] = now
        producer.send(ARTICLES, json.dumps(a).encode(), key=a["id"].encode())
        producer.flush()
    producer.close()
    return sent


def latency_run(workdir: Path, rate: float, webhooks: list[dict[str, str]] | None) -> dict[str, Any]:
    items = live_articles("live")
    workdir.mkdir(parents=True, exist_ok=True)
    with LocalBroker(log_path=workdir / "broker.log") as broker:
        ensure_topics(broker.bootstrap, 4)
        settings = Settings(
            embedder="static", web_port=free_port(), app_id=f"faults-{uuid.uuid4().hex[:6]}",
            data_dir=workdir / "worker", webhooks=json.dumps(webhooks) if webhooks else None,
            webhook_attempts=4, webhook_timeout_seconds=2.0, webhook_max_delay_seconds=4.0, webhook_concurrency=8,
        )  # fmt: skip
        watcher = OutputWatcher(broker.url)
        with worker_process(settings, broker.url, True, workdir / "worker.log") as worker:
            warm = live_articles("warm")[:8]
            send_live(broker, warm, 100)
            watcher.wait_for(len(warm), 300, worker)
            sent = send_live(broker, items, rate)
            out = watcher.wait_for(len(warm) + len(items), 300, worker)
            lat = np.array([out.assignments[i]["processed_at"] - t for i, t in sent.items()])
            expected = 0
            if webhooks:  # wait until every endpoint has finished every alert: delivered or dead-lettered
                deadline = time.monotonic() + 600
                name = "storywire_webhook_deliveries_total"
                while time.monotonic() < deadline:
                    expected = len(watcher.poll().alerts) * len(webhooks)
                    done = sum(
                        worker_metric(settings, f'{name}{{outcome="{o}"}}') for o in ("delivered", "dead_lettered")
                    )
                    if expected and done >= expected:
                        break
                    time.sleep(1.0)
        alerts = {a["id"] for a in read_topic(broker.url, ALERTS)}
        dead = read_topic(broker.url, WEBHOOKS_DEADLETTER) if webhooks else []
        watcher.close()
    return {"latency": lat, "alerts": alerts, "dead": dead}


def webhook_drill(outage: float, rate: float, workdir: Path) -> list[dict[str, Any]]:
    base = latency_run(workdir / "baseline", rate, None)
    receiver = FaultyReceiver(recover_at=time.time() + outage)  # from the worker's start, through the stream
    receiver.start()
    faulty = latency_run(workdir / "faulty", rate, receiver.endpoints())
    rows = []
    for kind in BEHAVIOURS:
        dead = {d["alert"]["id"] for d in faulty["dead"] if d["endpoint"] == kind}
        delivered = receiver.got[kind] & faulty["alerts"]
        rows.append(
            {
                "endpoint": kind,
                "alerts": len(faulty["alerts"]),
                "received (signature ok)": len(delivered),
                "dead-lettered": len(dead),
                "received and dead-lettered": len(delivered & dead),  # answered after storywire gave up
                "lost": len(faulty["alerts"] - delivered - dead),
                "requests": receiver.requests[kind],
            }
        )
    p = {name: np.percentile(run["latency"], [50, 95]) for name, run in (("base", base), ("faulty", faulty))}
    summary = {
        "endpoint": "pipeline latency",
        "alerts": len(faulty["alerts"]),
        "p50 base / faults (s)": f"{p['base'][0]:.3f} / {p['faulty'][0]:.3f}",
        "p95 base / faults (s)": f"{p['base'][1]:.3f} / {p['faulty'][1]:.3f}",
        "p95 ratio": round(float(p["faulty"][1] / p["base"][1]), 2),
    }
    return [summary, *rows]


def broker_drill(outage: float, articles: int, rate: float, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "input.jsonl"
    ids = drill_input(articles, source)
    os.environ["STORYWIRE_ALLOWED_LATENESS_SECONDS"] = "120"
    with LocalBroker(log_path=workdir / "broker.log") as broker:
        ensure_topics(broker.bootstrap, 4)
        settings = Settings(
            embedder="static", web_port=free_port(), app_id=f"outage-{uuid.uuid4().hex[:6]}",
            data_dir=workdir / "worker",
        )  # fmt: skip
        watcher = OutputWatcher(broker.url)
        summary: dict[str, Any] = {}

        def send() -> None:
            result = replay(source, broker.url, rate=rate, progress=False, delivery_timeout=outage + 120)
            summary["failed"] = result.failed

        sender = threading.Thread(target=send)
        restarts, resumed_at, first_after = 0, 0.0, None
        deadline = time.monotonic() + outage + 900
        while time.monotonic() < deadline and len(watcher.poll().assignments) < len(ids):
            log = workdir / f"worker-{restarts + 1}.log"
            with worker_process(settings, broker.url, True, log) as worker:
                if not sender.is_alive() and "failed" not in summary:
                    sender.start()
                while time.monotonic() < deadline:
                    out = watcher.poll()
                    if not resumed_at and len(out.assignments) >= len(ids) // 3:
                        broker.pause()
                        time.sleep(outage)
                        broker.resume()
                        resumed_at = time.time()
                    if resumed_at and first_after is None:
                        fresh = [a for a in out.assignments.values() if a["processed_at"] > resumed_at]
                        first_after = min((a["processed_at"] for a in fresh), default=None)
                    if len(out.assignments) >= len(ids) or worker.poll() is not None:
                        break
                if worker.poll() is not None:
                    restarts += 1  # what a supervisor (docker restart policy) does
        sender.join(timeout=outage + 180)
        records = all_records(broker.url)
        watcher.close()
    return {
        "articles": articles,
        "outage (s)": outage,
        "replay failed lines": summary.get("failed", "replay did not finish"),
        "lost": len(set(ids) - set(records)),
        "conflicting": sum(len(v) > 1 for v in records.values()),
        "worker restarts": restarts,
        "recovery (s)": round(first_after - resumed_at, 2) if first_after else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drill", choices=["webhooks", "broker", "all"], default="all")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the faults last")
    parser.add_argument("--rate", type=float, default=20.0, help="articles/s (webhooks drill)")
    parser.add_argument("--articles", type=int, default=1500, help="articles in the broker drill")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.outage <= 0 or args.rate <= 0 or args.articles < 10:
        parser.error("--outage and --rate must be positive, --articles at least 10")
    work = Path(tempfile.mkdtemp(prefix="storywire-faults-"))
    result: dict[str, Any] = {}
    if args.drill in ("webhooks", "all"):
        rows = webhook_drill(args.outage, args.rate, work / "webhooks")
        show("webhook faults", rows[1:], args.markdown)
        show("pipeline latency with and without them", rows[:1], args.markdown)
        result["webhooks"] = rows
    if args.drill in ("broker", "all"):
        row = broker_drill(args.outage, args.articles, 50.0, work / "broker")
        show("broker frozen mid-stream", [row], args.markdown)
        result["broker"] = row
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
