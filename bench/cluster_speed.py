"""Speed and memory of storywire's stages on this machine, printed as a table.

    python bench/cluster_speed.py [--markdown] [--skip-embedders]

- cluster step alone: articles/s for an incoming stream while the state already holds N active
  events (10k, 30k, 100k), synthetic vectors and a Zipf vocabulary; the ratio to the 10k row shows
  whether per-article cost stays flat as history grows;
- the join model alone on 14 candidates (the default count): the shipped hidden layer against the
  logistic regression it replaced (the same features, the same kernel with 0 hidden units);
- each embedder's texts/s on the bundled sample (title-length texts);
- evaluate end to end (load the embedder, embed, featurise, cluster) articles/s, warm; peak RSS of
  this process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._table import show  # noqa: E402
from models.clustering import ClusterConfig, StoryClusterer  # noqa: E402
from models.features import ArticleFeatures  # noqa: E402
from models.join_model import NO_HIDDEN, JoinModel  # noqa: E402

DIM = 256
VOCAB = 50_000


def synthetic(n: int, start: int, rng: np.random.Generator, topics: np.ndarray) -> list[ArticleFeatures]:
    """Articles around random topic vectors, with Zipf-distributed words and a per-topic name."""
    out = []
    for i in range(start, start + n):
        topic = int(rng.integers(len(topics)))
        v = topics[topic] + 0.6 * rng.normal(size=DIM).astype(np.float32) / np.sqrt(DIM)
        words = {f"w{int(w) % VOCAB}": 1 for w in rng.zipf(1.3, size=8)}
        words[f"topic{topic}"] = 1
        out.append(
            ArticleFeatures(
                f"a{i}",
                float(i),
                f"title {i}",
                f"src{i % 40}",
                (v / np.linalg.norm(v)).astype(np.float32),
                words,
                [f"topic{topic}"],
            )
        )
    return out


def cluster_rate(active_events: int, measured: int = 3000) -> dict[str, object]:
    rng = np.random.default_rng(1)
    topics = rng.normal(size=(active_events, DIM)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    c = StoryClusterer(JoinModel.load("static"), ClusterConfig(story_ttl_hours=10_000, event_ttl_hours=10_000))
    for f in synthetic(active_events, 0, rng, topics):  # fill the state: one event per story
        c.apply(f, None)
    stream = synthetic(measured, active_events, rng, topics)
    # The median of three chunks: this shared machine's noise between runs was larger than any trend.
    rates = []
    with threadpool_limits(1, user_api="blas"):  # as in the worker (stream/cli.py)
        for part in np.array_split(np.arange(measured), 3):
            start = time.perf_counter()
            for i in part:
                c.learn_one(stream[i])
            rates.append(len(part) / (time.perf_counter() - start))
    return {
        "stage": "cluster step",
        "setting": f"{active_events:,} active events",
        "items/s": round(float(np.median(rates))),
        "events after": f"{c.active_events:,}",
    }


def join_model_rates(candidates: int = 14, calls: int = 20_000) -> list[dict[str, object]]:
    """Articles/s of the join probability alone: what the hidden layer costs per article."""
    model = JoinModel.load("static")
    x = np.random.default_rng(2).normal(size=(candidates, len(model.mean)))
    logistic = replace(model, hidden_weights=NO_HIDDEN, hidden_bias=np.zeros(0), coef=np.ones(len(model.mean)))
    rows = []
    for label, m in ((f"{model.hidden_units} ReLU units (shipped)", model), ("logistic (0 units)", logistic)):
        m.probability(x)  # compiled before timing
        best = min(_timed(m.probability, x, calls) for _ in range(5))
        setting = f"{candidates} candidates, {label}"
        rows.append({"stage": "join model alone", "setting": setting, "items/s": round(calls / best)})
    return rows


def _timed(fn: Callable[[np.ndarray], object], x: np.ndarray, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return time.perf_counter() - start


def embedder_rate(name: str, texts: list[str]) -> dict[str, object]:
    from models.embedders import load_embedder

    embedder = load_embedder(name)
    embedder.encode(texts[:32])  # warm up
    start = time.perf_counter()
    for i in range(0, len(texts), 32):
        embedder.encode(texts[i : i + 32])
    return {
        "stage": f"embed {name}",
        "setting": f"{len(texts)} sample titles, batch 32",
        "items/s": round(len(texts) / (time.perf_counter() - start)),
        "events after": "",
    }


def evaluate_rate(name: str) -> dict[str, object]:
    from stream.evaluate import run_evaluation
    from stream.settings import SAMPLE_STREAM

    # The first run in a process reads the model files cold and loads the compiled kernels (~0.5 s,
    # most of the time on 420 articles); each run still loads the embedder (warm, as a repeated
    # ``storywire evaluate`` would), and the median of the three after the first is reported.
    run_evaluation(SAMPLE_STREAM, name, ClusterConfig())
    runs = [run_evaluation(SAMPLE_STREAM, name, ClusterConfig()) for _ in range(3)]
    result, _, seconds = sorted(runs, key=lambda r: r[2])[1]
    return {
        "stage": f"evaluate end to end ({name})",
        "setting": f"{result.articles} sample articles",
        "items/s": round(result.articles / seconds),
        "events after": result.clusterer.active_events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--skip-embedders", action="store_true")
    parser.add_argument("--sizes", default="10000,30000,100000")
    args = parser.parse_args()
    cluster_rate(1000, measured=500)  # warm-up (imports, allocator, BLAS threads): the first row read low without it
    rows = [cluster_rate(int(n)) for n in args.sizes.split(",")]
    base = rows[0]["items/s"]
    for r in rows:
        r["vs 10k"] = f"{r['items/s'] / base:.2f}" if isinstance(base, int) else ""
    rows += [{**r, "events after": "", "vs 10k": ""} for r in join_model_rates()]
    if not args.skip_embedders:
        from stream.evaluate import read_labelled
        from stream.settings import SAMPLE_STREAM

        texts = [x.article.embedding_text() for x in read_labelled(SAMPLE_STREAM)[0]]
        for name in ("minilm", "static"):
            rows.append({**embedder_rate(name, texts), "vs 10k": ""})
            rows.append({**evaluate_rate(name), "vs 10k": ""})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(
        {
            "stage": "peak RSS (this process)",
            "setting": "",
            "items/s": f"{peak:,.0f} MB",
            "events after": "",
            "vs 10k": "",
        }
    )
    show("storywire speed (2 cores)", rows, args.markdown)


if __name__ == "__main__":
    main()
