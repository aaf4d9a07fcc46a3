"""End-to-end speed through the local broker: articles/s and article→assignment latency.

    python bench/stream_speed.py [--embedders minilm,static] [--markdown]

For each embedder: a fresh tansu broker and one worker process (as in ``storywire demo``).
1. Throughput: N articles produced as fast as possible; time from the first send to the last
   assignment read back, beside the raw encoder on the same texts in this process (the ratio is
   what the pipeline costs on top of embedding).
2. Latency: articles sent at a fixed rate with ``published_at`` = now (a live feed); latency is the
   assignment's ``processed_at`` minus the send time (same host clock), p50/p95.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import show  # noqa: E402
from models.article import parse_article  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from stream.broker import LocalBroker, free_port  # noqa: E402
from stream.demo import OutputWatcher, worker_process  # noqa: E402
from stream.settings import SAMPLE_STREAM, Settings  # noqa: E402
from stream.topics import ARTICLES, ensure_topics  # noqa: E402

SIZES = {"minilm": 600, "static": 4200}


def articles(n: int) -> list[dict]:
    base = [json.loads(line) for line in SAMPLE_STREAM.read_text().splitlines()]
    out = []
    for i in range(n):
        a = dict(base[i % len(base)])
        a["id"] = f"{a['id']}-{i // len(base)}"
        out.append(a)
    return out


def metrics_text(port: int, timeout: float = 5) -> str:
    """The worker's Prometheus page."""
    import urllib.request

    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout).read().decode()


def wait_ready(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = metrics_text(port, timeout=2)
            if 'storywire_assigned_partitions{topic="embedded"} 1.0' in body:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError("worker not ready")


def stage_seconds(port: int) -> dict[str, float]:
    """Sums of the worker's stage histograms: where a burst's time went."""
    body = metrics_text(port)
    wanted = {
        "storywire_embed_batch_seconds_sum": "embed",
        "storywire_cluster_batch_seconds_sum": "cluster",
        "storywire_checkpoint_seconds_sum": "checkpoint",
        "storywire_checkpoint_seconds_count": "checkpoints",
    }
    out = {}
    for line in body.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


def run(embedder: str, rate: float, latency_n: int) -> dict[str, object]:
    n = SIZES[embedder]
    items = articles(n)
    enc = load_embedder(embedder)
    texts = [parse_article(a).embedding_text() for a in items]
    enc.encode(texts[:32])
    t0 = time.perf_counter()
    enc.encode(texts)
    raw = n / (time.perf_counter() - t0)
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, 4)
        settings = Settings(
            embedder=embedder,  # type: ignore[arg-type]
            web_port=free_port(),
            app_id=f"bench-{uuid.uuid4().hex[:6]}",
            data_dir=Path(f"/tmp/storywire-bench-{uuid.uuid4().hex[:6]}"),
        )
        log = Path("/tmp") / f"storywire-bench-{embedder}.log"
        with worker_process(settings, broker.url, True, log) as worker:
            wait_ready(settings.web_port)
            watcher = OutputWatcher(broker.url)
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
            # warm-up: the model loads lazily on the first batch
            warm = articles(8)
            for a in warm:
                a["id"] = "warm-" + a["id"]
                producer.send(ARTICLES, json.dumps(a).encode(), key=a["id"].encode())
            producer.flush()
            watcher.wait_for(len(warm), 300, worker)
            before = stage_seconds(settings.web_port)
            start = time.perf_counter()
            for a in items:
                producer.send(ARTICLES, json.dumps(a).encode(), key=a["id"].encode())
            producer.flush()
            watcher.wait_for(len(warm) + n, 900, worker)
            e2e = n / (time.perf_counter() - start)
            stages = {k: v - before.get(k, 0.0) for k, v in stage_seconds(settings.web_port).items()}
            # latency at a fixed rate, live timestamps
            sent: dict[str, float] = {}
            live = articles(latency_n)
            t_start = time.time()
            for i, a in enumerate(live):
                due = t_start + i / rate
                if (wait := due - time.time()) > 0:
                    time.sleep(wait)
                a["id"] = "live-" + a["id"]
                now = time.time()
                a["published_at"] = datetime.fromtimestamp(now, UTC).isoformat()
                sent[a["id"]] = now
                producer.send(ARTICLES, json.dumps(a).encode(), key=a["id"].encode())
                producer.flush()
            out = watcher.wait_for(len(warm) + n + latency_n, 300, worker)
            lat = np.array([out.assignments[i]["processed_at"] - t for i, t in sent.items()])
            producer.close()
            watcher.close()
    return {
        "embedder": embedder,
        "articles": n,
        "raw encoder texts/s": round(raw, 1),
        "end to end articles/s": round(e2e, 1),
        "e2e / raw": round(e2e / raw, 2),
        "burst: embed s": round(stages.get("embed", 0.0), 1),
        "decide + checkpoint s": round(stages.get("cluster", 0.0), 1),
        "of which checkpoint s": round(stages.get("checkpoint", 0.0), 1),
        "checkpoints": int(stages.get("checkpoints", 0)),
        f"latency p50 @ {rate:g}/s (s)": round(float(np.percentile(lat, 50)), 3),
        f"latency p95 @ {rate:g}/s (s)": round(float(np.percentile(lat, 95)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default="minilm,static")
    parser.add_argument("--rate", type=float, default=20.0, help="articles/s for the latency run")
    parser.add_argument("--latency-articles", type=int, default=200)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [run(e, args.rate, args.latency_articles) for e in args.embedders.split(",")]
    show("end-to-end through the local broker", rows, args.markdown)


if __name__ == "__main__":
    main()
