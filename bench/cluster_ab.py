"""The cluster step of this checkout against another git ref, in one process, article by article.

    python bench/cluster_ab.py [--ref main] [--events 10000] [--articles 4000] [--markdown]
    python bench/cluster_ab.py --stream ../shared/data/uci-news-2014.dev.jsonl [--embedder static]

Why paired: on this shared machine the same command gave rates up to ±30 % apart within an hour,
so two versions run one after the other could not tell a 10 % change from the noise. Here the
ref's ``models/`` is exported (``git archive``) under another package name, both clusterers
are built on the same synthetic state (``bench/cluster_speed.py``'s), and every article goes to
both, in alternating order, each call timed alone: whatever the machine does, both see it. The
table gives each one's articles/s per run (each run on fresh clusterers), their ratio, and whether
every decision (story, event, score, merges) was the same.

The cyclic garbage collector is paused while articles are timed and run every 250 articles
between them: with two clusterers' state in one process, a collection is charged to whichever
version happens to allocate the object that triggers it, and that moved a measured ratio from
0.95 to 0.85 with nothing else changed. Run alone, collections are ~1 % of the step.

``--stream`` replays a labelled stream instead, from an empty state with the default
configuration, as ``storywire evaluate`` does (embeddings from the training cache, computed once).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench._table import show  # noqa: E402
from bench.cluster_speed import DIM, synthetic  # noqa: E402

ALIAS = "models_ref"


def export_models(ref: str, into: Path) -> None:
    """``ref``'s ``models/`` as the package ``models_ref`` in ``into`` (its imports rewritten)."""
    try:
        data = subprocess.run(["git", "archive", ref, "models"], cwd=REPO, capture_output=True, check=True).stdout
    except subprocess.CalledProcessError as e:
        sys.exit(f"cluster_ab: git cannot export {ref!r} ({e.stderr.decode().strip()}); pass --ref a commit or branch")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    (into / "models").rename(into / ALIAS)
    pattern = re.compile(r"\b(from|import) models(\.|\s)")
    for path in (into / ALIAS).rglob("*.py"):
        path.write_text(pattern.sub(rf"\1 {ALIAS}\2", path.read_text()))


def build(package: str, embedder: str, synthetic_state: bool) -> Any:
    """An empty clusterer of ``package`` (``models`` or the exported ref): as cluster_speed builds
    it for the synthetic state, as evaluate does for a stream."""
    clustering: ModuleType = importlib.import_module(f"{package}.clustering")
    join_model: ModuleType = importlib.import_module(f"{package}.join_model")
    config = clustering.ClusterConfig(story_ttl_hours=10_000, event_ttl_hours=10_000) if synthetic_state else None
    return clustering.StoryClusterer(join_model.JoinModel.load(embedder), config)


def stream_features(path: Path, embedder: str) -> list[Any]:
    from models.training.train_join import load_stream

    if not path.is_file():
        sys.exit(f"cluster_ab: no stream at {path}; pass --stream a JSON-lines file (see ../shared/data)")
    return load_stream(path, embedder).features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="the git ref to compare against (default: main)")
    parser.add_argument("--events", type=int, default=10_000, help="active events in the state first")
    parser.add_argument("--articles", type=int, default=4_000, help="articles timed per run")
    parser.add_argument("--stream", type=Path, help="replay this labelled stream instead of the synthetic state")
    parser.add_argument("--embedder", choices=["static", "minilm"], default="static", help="with --stream")
    parser.add_argument("--repeats", type=int, default=4, help="runs, each on fresh clusterers (default: 4)")
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="time each call by this thread's CPU time, or by wall clock",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.events < 1 or args.articles < 4 or args.repeats < 1:
        sys.exit("cluster_ab: --events and --repeats must be ≥ 1 and --articles ≥ 4")
    with tempfile.TemporaryDirectory() as tmp:
        export_models(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        if args.stream is not None:
            fill, stream = [], stream_features(args.stream, args.embedder)
            if len(stream) < 4:
                sys.exit(f"cluster_ab: {args.stream} has {len(stream)} articles; it needs at least 4")
        else:
            rng = np.random.default_rng(1)
            topics = rng.normal(size=(args.events, DIM)).astype(np.float32)
            topics /= np.linalg.norm(topics, axis=1, keepdims=True)
            fill = synthetic(args.events, 0, rng, topics)
            stream = synthetic(args.articles, args.events, rng, topics)
        rows, spent, same = [], np.zeros(2), True
        clock = time.thread_time if args.clock == "cpu" else time.perf_counter
        for run in range(args.repeats):
            this_first = run % 2 == 1
            seconds, agreed = paired_run(fill, stream, args.embedder, args.stream is None, this_first, clock)
            spent += seconds
            same &= agreed
            rows.append(_row(f"{run + 1}", "this checkout" if this_first else args.ref, len(stream), seconds, args.ref))
        rows.append(_row("all", "", args.repeats * len(stream), spent, args.ref))
        ratios = [float(r["ratio"]) for r in rows[:-1]]
        rows[-1]["ratio"] += f" ({min(ratios):.3f}–{max(ratios):.3f})"
    where = f"{args.stream.name} ({args.embedder})" if args.stream else f"{args.events:,} active events"
    title = f"cluster step, {where}, this checkout vs {args.ref}; same decisions: {same}"
    show(title, rows, args.markdown)
    if not same:
        sys.exit(1)


def paired_run(
    fill: list[Any],
    stream: list[Any],
    embedder: str,
    synthetic_state: bool,
    this_first: bool,
    clock: Callable[[], float],
) -> Any:
    """Seconds each clusterer spent on ``stream`` (ref, this) and whether they decided alike. The one
    built (and filled) first alternates between runs: where each state lands in memory was worth a
    few per cent either way in A/A runs."""
    order = ("models", ALIAS) if this_first else (ALIAS, "models")
    built = {package: build(package, embedder, synthetic_state) for package in order}
    for package in order:
        for f in fill:  # one event per story, as in bench/cluster_speed.py
            built[package].apply(f, None)
    ref, this = built[ALIAS], built["models"]
    spent = np.zeros(2)
    same = True
    gc.collect()
    gc.disable()
    try:
        with threadpool_limits(1, user_api="blas"):
            for i, f in enumerate(stream):
                if i % 250 == 249:
                    gc.collect()
                out: list[Any] = [None, None]
                for k in (0, 1) if i % 2 else (1, 0):
                    clusterer = (ref, this)[k]
                    start = clock()
                    out[k] = clusterer.learn_one(f)
                    spent[k] += clock() - start
                a, b = out
                same &= (a.story_id, a.event_id, a.score, a.merged) == (b.story_id, b.event_id, b.score, b.merged)
    finally:
        gc.enable()
    return spent, same


def _row(run: str, first: str, articles: int, seconds: np.ndarray, ref: str) -> dict[str, Any]:
    ref_rate, this_rate = articles / seconds[0], articles / seconds[1]
    return {
        "run": run,
        "built first": first,
        f"{ref} art/s": round(ref_rate),
        "this checkout art/s": round(this_rate),
        "ratio": f"{this_rate / ref_rate:.3f}",
    }


if __name__ == "__main__":
    main()
