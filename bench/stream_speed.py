"""End-to-end speed through the local broker: articles/s and article→assignment latency.

    python bench/stream_speed.py [--embedders minilm,static] [--lengths headline,article] [--markdown]

For each embedder and layout (one worker running both stages, or an embed worker and a cluster
worker: ``storywire worker --role``): a fresh tansu broker and the worker processes.
1. Throughput: N articles produced as fast as possible; time from the first send to the last
   assignment read back, beside the raw encoder on the same texts in this process (the ratio is
   what the pipeline costs on top of embedding).
2. Latency: articles sent at a fixed rate with ``published_at`` = now (a live feed); latency is the
   assignment's ``processed_at`` minus the send time (same host clock), p50/p95.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import show  # noqa: E402
from models.article import parse_article  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from stream.broker import LocalBroker, free_port  # noqa: E402
from stream.demo import OutputWatcher, stage_workers, worker_process  # noqa: E402
from stream.embed_process import EmbedPool  # noqa: E402
from stream.settings import SAMPLE_STREAM, Settings  # noqa: E402
from stream.topics import ARTICLES, ensure_topics  # noqa: E402

SIZES = {  # articles per burst: enough that the first and last micro-batch are a small share of it
    ("minilm", "headline"): 1800,
    ("minilm", "article"): 900,
    ("static", "headline"): 4200,
    ("static", "article"): 4200,
}
LEAD_CHARS = 600  # what the embed stage reads of a body (Article.embedding_text)


def with_leads(base: list[dict]) -> list[dict]:
    """Each article with a body lead of ``LEAD_CHARS`` characters, made of the other headlines of its
    story. The sample has headlines only; a newsroom feed has bodies, and an encoder's cost grows
    with the text's length while the pipeline's cost per article does not: the target's reference
    (45-55 texts/s) is for article-length texts."""
    story = [a.get("event") or a["id"] for a in base]
    by_story: dict[str, list[str]] = {}
    for a, key in zip(base, story):
        by_story.setdefault(key, []).append(a["title"])
    out = []
    for a, key in zip(base, story):
        others = [t for t in by_story[key] if t != a["title"]] or [a["title"]]
        lead, i = "", 0
        while len(lead) < LEAD_CHARS:
            lead += others[i % len(others)] + ". "
            i += 1
        out.append({**a, "text": lead[:LEAD_CHARS]})
    return out


def articles(n: int, length: str = "headline") -> list[dict]:
    base = [json.loads(line) for line in SAMPLE_STREAM.read_text().splitlines()]
    if length == "article":
        base = with_leads(base)
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_of(workers: dict[str, int], broker: int) -> dict[str, float]:
    """Where the machine's CPU goes: the cluster worker (the whole worker in the one-worker layout),
    the embed worker, their embed processes, the broker, this client."""
    return {
        "cluster worker": cpu_seconds(workers["cluster"]),
        "embed worker": cpu_seconds(workers["embed"]) if "embed" in workers else 0.0,
        "embed process": sum(cpu_seconds(c) for w in workers.values() for c in children_of(w)),
        "broker": cpu_seconds(broker),
        "client": sum(os.times()[:2]),
    }


def wait_for_role(port: int, role: str, partitions: int, timeout: float = 120) -> None:
    """Until the worker on ``port`` owns what its role reads (the cluster shard, or the articles partitions)."""
    want = {
        "cluster": 'storywire_assigned_partitions{topic="embedded"} 1.0',
        "embed": f'storywire_assigned_partitions{{topic="articles"}} {float(partitions)}',
    }[role]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if want in metrics_text(port, timeout=2):
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{role} worker not ready")


@contextlib.contextmanager
def workers(settings: Settings, broker: str, layout: str, log_dir: Path) -> Iterator[dict[str, tuple[Any, int]]]:
    """``one``: one worker runs both stages. ``split``: an embed worker and a cluster worker, as
    ``storywire demo`` runs them. Yields role -> (process, web port), the cluster stage under "cluster"."""
    with contextlib.ExitStack() as stack:
        if layout == "split":
            split = stack.enter_context(stage_workers(settings, broker, True, log_dir))
            running = {w.role: (w.process, w.settings.web_port) for w in split}
        else:
            proc = stack.enter_context(worker_process(settings, broker, True, log_dir / "worker.log"))
            running = {"cluster": (proc, settings.web_port)}
        wait_for_role(running["cluster"][1], "cluster", settings.partitions)
        wait_for_role(running.get("embed", running["cluster"])[1], "embed", settings.partitions)
        yield running


def embed_pool_alone(embedder: str, items: list[dict]) -> float:
    """Articles/s of the embed stage's processes with no broker: parse, validate, embed, featurise
    and encode, in micro-batches as the worker sends them (the pipeline's ceiling on this machine)."""
    settings = Settings(embedder=embedder)
    lines = [json.dumps(a).encode() for a in items]
    size = settings.embed_batch_size

    async def go() -> float:
        pool = EmbedPool(embedder, settings.embed_processes, settings.embed_threads)
        try:
            await pool.warm_up()
            await pool.embed(lines[:32], ["warm"] * 32, 0.0)
            t0 = time.perf_counter()
            chunks = [lines[i : i + size] for i in range(0, len(lines), size)]
            await asyncio.gather(*(pool.embed(c, ["bench"] * len(c), 0.0) for c in chunks))
            return len(lines) / (time.perf_counter() - t0)
        finally:
            pool.stop()

    return asyncio.run(go())


def run(embedder: str, layout: str, rate: float, latency_n: int, length: str) -> dict[str, object]:
    n = SIZES[embedder, length]
    items = articles(n, length)
    enc = load_embedder(embedder)
    texts = [parse_article(a).embedding_text() for a in items]
    enc.encode(texts[:32])
    t0 = time.perf_counter()
    enc.encode(texts)
    raw = n / (time.perf_counter() - t0)
    del enc
    pool_rate = embed_pool_alone(embedder, items)
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, 4)
        settings = Settings(
            embedder=embedder,
            web_port=free_port(),
            app_id=f"bench-{uuid.uuid4().hex[:6]}",
            data_dir=Path(f"/tmp/storywire-bench-{uuid.uuid4().hex[:6]}"),
        )
        log_dir = Path("/tmp") / f"storywire-bench-{embedder}-{layout}"
        log_dir.mkdir(exist_ok=True)
        with workers(settings, broker.url, layout, log_dir) as running:
            worker, port = running["cluster"]
            embed_port = running.get("embed", running["cluster"])[1]
            pids = {role: p.pid for role, (p, _) in running.items()}
            watcher = OutputWatcher(broker.url)
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
            # warm-up: the model loads lazily on the first batch
            warm = articles(8, length)
            for a in warm:
                a["id"] = "warm-" + a["id"]
                producer.send(ARTICLES, json.dumps(a).encode(), key=a["id"].encode())
            producer.flush()
            watcher.wait_for(len(warm), 300, worker)
            before = {**stage_seconds(port), "embed": stage_seconds(embed_port).get("embed", 0.0)}
            assert broker.process is not None
            cpu_before = cpu_of(pids, broker.process.pid)
            # encoded beforehand: `storywire replay` sends a file's lines as they are
            lines = [(json.dumps(a).encode(), a["id"].encode()) for a in items]
            start = time.perf_counter()
            for line, key in lines:
                producer.send(ARTICLES, line, key=key)
            producer.flush()
            watcher.wait_for(len(warm) + n, 900, worker)
            burst = time.perf_counter() - start
            e2e = n / burst
            cpu = {k: v - cpu_before[k] for k, v in cpu_of(pids, broker.process.pid).items()}
            after = {**stage_seconds(port), "embed": stage_seconds(embed_port).get("embed", 0.0)}
            stages = {k: v - before.get(k, 0.0) for k, v in after.items()}
            # latency at a fixed rate, live timestamps
            sent: dict[str, float] = {}
            live = articles(latency_n, length)
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
        "workers": {"one": "1 (both stages)", "split": "embed + cluster"}[layout],
        "texts": f"{length}s ({np.mean([len(t) for t in texts]):.0f} chars)",
        "articles": n,
        "raw encoder texts/s": round(raw, 1),
        "end to end articles/s": round(e2e, 1),
        "e2e / raw": round(e2e / raw, 2),
        "embed processes alone articles/s": round(pool_rate, 1),
        "e2e / embed processes alone": round(e2e / pool_rate, 2),
        "burst: embed s": round(stages.get("embed", 0.0), 1),
        "decide + checkpoint s": round(stages.get("cluster", 0.0), 1),
        "of which checkpoint s": round(stages.get("checkpoint", 0.0), 1),
        "checkpoints": int(stages.get("checkpoints", 0)),
        "burst CPU s: cluster worker / embed worker / embed processes / broker / client": " / ".join(
            f"{v:.1f}" for v in cpu.values()
        ),
        "CPU used (all cores)": f"{sum(cpu.values()) / burst / (os.cpu_count() or 1):.0%}",
        f"latency p50 @ {rate:g}/s (s)": round(float(np.percentile(lat, 50)), 3),
        f"latency p95 @ {rate:g}/s (s)": round(float(np.percentile(lat, 95)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default="minilm,static")
    parser.add_argument("--rate", type=float, default=20.0, help="articles/s for the latency run")
    parser.add_argument("--latency-articles", type=int, default=200)
    parser.add_argument(
        "--layouts", default="one,split", help="one: one worker runs both stages; split: an embed and a cluster worker"
    )
    parser.add_argument(
        "--lengths",
        default="headline,article",
        help="headline: the sample's titles; article: each with a 600-character lead (see with_leads)",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [
        run(e, layout, args.rate, args.latency_articles, length)
        for e in args.embedders.split(",")
        for length in args.lengths.split(",")
        for layout in args.layouts.split(",")
    ]
    show("end-to-end through the local broker", rows, args.markdown)


if __name__ == "__main__":
    main()
