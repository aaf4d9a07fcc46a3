"""Peers side by side: storywire and the detectors users would pick instead, on the same streams, in one run.

    pip install -e '.[bench]'   # river and bertopic: only this benchmark needs them
    python bench/peers.py [--data ../shared/data] [--markdown] [--plot reports/peers.png] [--streams N,...]

Protocol. Every stream is split by time: the first half (tune) picks each method's parameter from a
grid of four values (the same budget for all); the second half (eval) is clustered from a fresh state
with the chosen value and scored. storywire runs its default configuration, no tuning (its join model
was trained on these dev streams, so its figures are in-sample). Embeddings are computed once and
cached (``models/training/embedding_cache``); articles/s is clustering only, given the embeddings,
for every method alike. Peak memory is what each method adds to the process while it runs (a forked
child's peak RSS minus its RSS before the method starts). Windowed B-cubed F1 follows USTORY/SCStory: 7-day
windows sliding by a day (a stream shorter than a week is one window).

Methods: storywire (MiniLM, static); single-pass cosine to running centroids (MiniLM, static: the
data README's baseline); TF-IDF single pass (scikit-learn ``TfidfVectorizer`` fitted on the tune half,
cosine to running centroids); river ``TextClust`` over bag-of-words (its micro-clusters); river
``DBSTREAM`` over the MiniLM embeddings; BERTopic online (IncrementalPCA + MiniBatchKMeans +
OnlineCountVectorizer, ``partial_fit`` in time-ordered batches of 500, as its docs describe); and
fixed time buckets (the text ignored).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import show  # noqa: E402
from models.baselines import centroid_threshold  # noqa: E402
from models.features import ArticleFeatures  # noqa: E402
from models.join_model import JoinModel  # noqa: E402
from models.metrics import Scores, score, windowed_score  # noqa: E402
from models.replay import cluster_features  # noqa: E402
from models.training.train_join import load_stream  # noqa: E402
from stream.settings import SAMPLE_STREAM  # noqa: E402

STREAMS = ("uci-news-2014.dev.jsonl", "crisislex-t26.dev.concurrent.jsonl", "crisislex-t26.dev.jsonl")
BERTOPIC_BATCH = 500


@dataclass
class Part:
    """One half of a stream, in event-time order, with both embeddings."""

    features: dict[str, list[ArticleFeatures]]  # embedder -> features (same articles)
    gold: list[str | None]

    @property
    def titles(self) -> list[str]:
        return [f.title for f in self.features["static"]]

    @property
    def times(self) -> list[float]:
        return [f.timestamp for f in self.features["static"]]

    def vectors(self, embedder: str) -> np.ndarray:
        return np.stack([f.vector for f in self.features[embedder]])


Labels = Sequence[Any]
Method = Callable[[Part, Part, Any], Labels]  # (tune, target, parameter) -> labels of target


def storywire(embedder: str, tune: Part, part: Part, _: Any) -> Labels:
    result = cluster_features(part.features[embedder], part.gold, JoinModel.load(embedder))
    return [a.story_id for a in result.assignments]


def centroid(embedder: str, tune: Part, part: Part, threshold: float) -> Labels:
    return centroid_threshold(part.vectors(embedder), threshold)


def tfidf_single_pass(tune: Part, part: Part, t: float) -> Labels:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english", max_features=5000)
    vectorizer.fit(tune.titles)  # the past only: online use of a vocabulary learnt before the stream
    x = vectorizer.transform(part.titles).astype(np.float32).toarray()
    return centroid_threshold(x, t)


def textclust(tune: Part, part: Part, radius: float) -> Labels:
    from river import cluster, feature_extraction

    bow = feature_extraction.BagOfWords(lowercase=True, stop_words=None)
    model = cluster.TextClust(real_time_fading=False, fading_factor=0.001, tgap=100, auto_r=True, radius=radius)
    labels = []
    for i, title in enumerate(part.titles):
        x = bow.transform_one(title)
        model.learn_one(x, t=i)
        labels.append(model.predict_one(x, type="micro"))
    return labels


def dbstream(tune: Part, part: Part, threshold: float) -> Labels:
    from river import cluster

    model = cluster.DBSTREAM(clustering_threshold=threshold, fading_factor=0.01, cleanup_interval=2)
    labels = []
    for v in part.vectors("minilm"):
        x = dict(enumerate(v.tolist()))
        model.learn_one(x)
        labels.append(model.predict_one(x))
    return labels


def bertopic_online(tune: Part, part: Part, k: int) -> Labels:
    from bertopic import BERTopic
    from bertopic.vectorizers import OnlineCountVectorizer
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import IncrementalPCA

    model = BERTopic(
        embedding_model=None,
        umap_model=IncrementalPCA(n_components=5),
        hdbscan_model=MiniBatchKMeans(n_clusters=k, random_state=0, n_init=3),
        vectorizer_model=OnlineCountVectorizer(stop_words="english", decay=0.01),
    )
    vectors = part.vectors("minilm").astype(np.float64)
    titles = part.titles
    labels: list[int] = []
    for i in range(0, len(titles), BERTOPIC_BATCH):
        batch = slice(i, i + BERTOPIC_BATCH)
        if len(titles[batch]) < k:  # MiniBatchKMeans needs k samples per partial_fit: the tail joins
            labels += [int(x) for x in model.transform(titles[batch], embeddings=vectors[batch])[0]]
            continue
        model.partial_fit(titles[batch], embeddings=vectors[batch])
        labels += [int(x) for x in model.topics_]
    return labels


def time_buckets(tune: Part, part: Part, days: float) -> Labels:
    return [int(t // (days * 86400)) for t in part.times]


METHODS: list[tuple[str, Method, Sequence[Any], str]] = [
    ("storywire minilm", partial(storywire, "minilm"), [None], "default"),
    ("storywire static", partial(storywire, "static"), [None], "default"),
    ("centroid minilm", partial(centroid, "minilm"), [0.3, 0.4, 0.5, 0.6], "t"),
    ("centroid static", partial(centroid, "static"), [0.3, 0.4, 0.5, 0.6], "t"),
    ("tf-idf single pass", tfidf_single_pass, [0.2, 0.3, 0.4, 0.5], "t"),
    ("river TextClust", textclust, [0.3, 0.5, 0.7, 0.9], "radius"),
    ("river DBSTREAM minilm", dbstream, [0.4, 0.6, 0.8, 1.0], "threshold"),
    ("BERTopic online", bertopic_online, [10, 20, 50, 100], "k"),
    ("time buckets", time_buckets, [1, 3, 7, 14], "days"),
]


def _child(method: Method, tune: Part, part: Part, param: Any, conn: Any) -> None:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        start = time.perf_counter()
        labels = list(method(tune, part, param))
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send(("ok", labels, seconds, max(0, peak - base) / 1024))
    except Exception:
        conn.send(("error", traceback.format_exc(limit=3), 0.0, 0.0))


def measure(method: Method, tune: Part, part: Part, param: Any) -> tuple[Labels, float, float]:
    """Run in a fresh child process (spawned: forking a process with BLAS/torch threads can hang):
    labels, seconds, peak MB added while running. Raises with the child's traceback."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(method, tune, part, param, child))
    proc.start()
    status, labels, seconds, peak = parent.recv()
    proc.join()
    if status != "ok":
        raise RuntimeError(labels)
    return labels, seconds, peak


def split(path: Path) -> tuple[Part, Part]:
    streams = {e: load_stream(path, e) for e in ("minilm", "static")}
    n = len(streams["static"].gold)
    half = n // 2
    parts = []
    for lo, hi in ((0, half), (half, n)):
        parts.append(Part({e: s.features[lo:hi] for e, s in streams.items()}, streams["static"].gold[lo:hi]))
    return parts[0], parts[1]


def row(stream: str, name: str, setting: str, s: Scores, windowed: float, n: int, seconds: float, peak: float):
    return {
        "stream": stream,
        "method": name,
        "setting": setting,
        "B3 P": f"{s.bcubed_precision:.3f}",
        "B3 R": f"{s.bcubed_recall:.3f}",
        "B3 F1": f"{s.bcubed_f1:.3f}",
        "pair P": f"{s.pairwise_precision:.3f}",
        "pair R": f"{s.pairwise_recall:.3f}",
        "pair F1": f"{s.pairwise_f1:.3f}",
        "7d B3 F1": f"{windowed:.3f}",
        "AMI": f"{s.ami:.3f}",
        "ARI": f"{s.ari:.3f}",
        "clusters/gold": f"{s.clusters}/{s.gold_clusters}",
        "art/s": f"{n / seconds:,.0f}" if seconds else "",
        "peak MB": f"{peak:,.0f}",
    }


def evaluate_stream(path: Path, methods: list[tuple[str, Method, Sequence[Any], str]]) -> list[dict[str, Any]]:
    from rich.progress import track

    tune, evaluation = split(path)
    rows = []
    for name, method, grid, knob in track(methods, description=f"{path.stem}"):
        try:
            best, best_f1 = grid[0], -1.0
            if len(grid) > 1:
                for value in grid:
                    labels, _, _ = measure(method, tune, tune, value)
                    f1 = score(tune.gold, labels).bcubed_f1
                    if f1 > best_f1:
                        best, best_f1 = value, f1
            labels, seconds, peak = measure(method, tune, evaluation, best)
        except Exception as exc:  # one peer failing must not hide the others: say so in the table
            blank = dict.fromkeys(row("", "", "", score([], []), 0, 0, 0, 0), "")
            rows.append(
                {**blank, "stream": path.stem, "method": name, "setting": f"failed: {str(exc).splitlines()[-1]}"}
            )
            continue
        s = score(evaluation.gold, labels)
        w = windowed_score(evaluation.gold, labels, evaluation.times).bcubed_f1
        setting = "default" if best is None else f"{knob}={best}"
        rows.append(row(path.stem, name, setting, s, w, len(labels), seconds, peak))
    return rows


def plot(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = list(dict.fromkeys(r["stream"] for r in rows))
    names = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        values = [
            next((float(r["B3 F1"]) for r in rows if r["stream"] == s and r["method"] == name), 0.0) for s in streams
        ]
        ax.bar(np.arange(len(streams)) + j * width, values, width, label=name)
    ax.set_xticks(np.arange(len(streams)) + 0.4 - width / 2, streams)
    ax.set_ylabel("B-cubed F1 (eval half)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, not over them
    ax.set_title("storywire and peers, same streams, same machine")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--streams", help="comma-separated file names (default: the dev streams and the sample)")
    parser.add_argument("--methods", help="comma-separated method names (default: all)")
    parser.add_argument("--plot", type=Path, default=Path("reports/peers.png"))
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.streams:
        paths = [args.data / s if (args.data / s).exists() else Path(s) for s in args.streams.split(",")]
    else:
        paths = [args.data / s for s in STREAMS if (args.data / s).exists()] + [SAMPLE_STREAM]
    for p in paths:
        if not p.is_file():
            parser.error(f"no such stream: {p}")
    methods = METHODS
    if args.methods:
        wanted = set(args.methods.split(","))
        methods = [m for m in METHODS if m[0] in wanted]
        if not methods:
            parser.error(f"no such method; choose from: {', '.join(m[0] for m in METHODS)}")
    rows = [r for p in paths for r in evaluate_stream(p, methods)]
    show("storywire and peers (eval half of each stream; parameters chosen on the tune half)", rows, args.markdown)
    plot([r for r in rows if r["B3 F1"]], args.plot)
    print(f"plot: {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
