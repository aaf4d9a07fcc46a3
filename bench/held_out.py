"""Held-out B-cubed F1 of clusterer configurations, paired: the same fold models score each one.

    python bench/held_out.py [--embedders minilm,static] [--salts ",a,b,c"] [--markdown]
        [--hidden 16] [--members 1] [--thresholds 0.45,0.9 --thresholds 0.45,0.8 ...]
        [--config entity_veto_names=0] [--config merge_check_size=3,knn_k=20] ...
        [--within-story-map 0.1] [--news-orders 5] [--encoder NAME=DIR]

Why: ``python -m models.training.train_join`` retrains its fold models and searches the thresholds
in one go, and two trainings of nearly the same code differed by ±0.02, more than most changes to
the clusterer are worth. A change that does not touch training (a merge rule, candidate counts)
is measured here instead: the fold models are trained once per split (with the default
configuration), then each ``--config`` (``ClusterConfig`` fields overriding the defaults) is scored
with them at the shipped artifact's join and merge thresholds, on the held-out gold stories of
both dev streams. With ``--train-with-config`` each configuration trains its own fold models
instead (for a knob the features or the training trajectories depend on: unpaired, so expect the
training spread). ``--salts`` gives further splits of the same stories into two folds ("" is the
training script's own split): a change that helps on one split only is noise.

``--baseline`` adds the single-pass centroid baseline on the same folds, its threshold tuned on
each fold it scores (so optimistic, as the data README's figures are): the figure to set beside
the data README's baseline on the held-out stories, which says how hard these folds are.
``--news-orders N`` scores each held-out news fold in N orders: the file's, then N - 1 random
permutations of its articles over the same timestamps. The news file's order is a seeded shuffle
(its timestamps were replaced: data README), so another shuffle is an equally likely stream, and
the spread over them is how much of a news figure is the order. The crisis streams keep their
real time order. The news column is then the mean over the orders, and "news order sd" the
standard deviation of a fold's score over its orders, averaged over the folds.
``--encoder NAME=DIR`` adds an embedder: the sentence-transformers model folder DIR (on disk; nothing
is fetched), with fold models trained on its vectors like the others' and scored at ``--thresholds``
(default: MiniLM's shipped ones). It says whether a different encoder would move the clusterer
before anyone ships one. Its vectors are cached under NAME and a hash of DIR's path.
The last table gives each row's mean over the splits.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._table import show  # noqa: E402
from models.baselines import centroid_threshold  # noqa: E402
from models.clustering import ClusterConfig  # noqa: E402
from models.embedders import Embedder  # noqa: E402
from models.embedders.minilm import SentenceTransformerEmbedder  # noqa: E402
from models.join_model import JoinModel  # noqa: E402
from models.metrics import score  # noqa: E402
from models.training.train_join import (  # noqa: E402
    DEV_STREAMS,
    Architecture,
    Stream,
    add_architecture_flags,
    fold_models,
    fold_streams,
    held_out,
    load_stream,
)

BASELINE_THRESHOLDS = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))  # 0.2 ... 0.8


def tuned_centroid(vectors: np.ndarray, gold: list[str | None]) -> tuple[float, float]:
    """The centroid baseline's best B-cubed F1 over :data:`BASELINE_THRESHOLDS`, and that threshold."""
    return max((score(gold, centroid_threshold(vectors, t)).bcubed_f1, t) for t in BASELINE_THRESHOLDS)


def tuned_baseline(stream: Stream) -> float:
    """The centroid baseline's best B-cubed F1 on ``stream`` (:func:`tuned_centroid`)."""
    return tuned_centroid(np.stack([f.vector for f in stream.features]), stream.gold)[0]


def within_story_map(streams: list[Stream], alpha: float) -> np.ndarray:
    """Σ^-½ of the gold stories' within-story scatter (unit vectors about their story's mean),
    shrunk towards the identity by ``alpha``: a linear map that shrinks the directions articles of
    one story vary along, learned from labelled streams (an experiment: the clusterer does not use it)."""
    x = np.concatenate([np.stack([f.vector for f, g in zip(s.features, s.gold) if g is not None]) for s in streams])
    labels = [g for s in streams for g in s.gold if g is not None]
    x = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    index = {g: i for i, g in enumerate(sorted(set(labels)))}
    y = np.array([index[g] for g in labels])
    means = np.zeros((len(index), x.shape[1]))
    np.add.at(means, y, x)
    means /= np.bincount(y)[:, None]
    r = x - means[y]
    scatter = r.T @ r / len(x)
    d = x.shape[1]
    scatter = (1 - alpha) * scatter + alpha * np.eye(d) * np.trace(scatter) / d
    w, v = np.linalg.eigh(scatter)
    return (v / np.sqrt(w)) @ v.T


def mapped(stream: Stream, m: np.ndarray) -> Stream:
    """The stream with every vector mapped by ``m`` and normalised again."""
    out = []
    for f in stream.features:
        v = f.vector.astype(np.float64) @ m
        out.append(replace(f, vector=(v / np.linalg.norm(v)).astype(f.vector.dtype)))
    return Stream(stream.name, out, stream.gold)


NEWS_STREAM = DEV_STREAMS[0]  # the one whose order is a shuffle, not time


def reordered(stream: Stream, seed: int) -> Stream:
    """The stream's articles permuted by ``seed`` over its own timestamps, in order."""
    idx = np.random.default_rng(seed).permutation(len(stream.features))
    times = [f.timestamp for f in stream.features]
    return Stream(
        stream.name,
        [replace(stream.features[i], timestamp=t) for i, t in zip(idx, times)],
        [stream.gold[i] for i in idx],
    )


def news_order_scores(
    folds: list[tuple[JoinModel, list[Stream]]],
    join: float,
    merge: float,
    config: ClusterConfig,
    orders: int,
    file_order: list[float],
) -> list[list[float]]:
    """Per fold: its news stream's B-cubed F1 in the file's order (``file_order``, as
    :func:`held_out` scored it) and in ``orders - 1`` permutations (:func:`reordered`)."""
    out = []
    for (model, tests), first in zip(folds, file_order):
        news = next(t for t in tests if t.name == NEWS_STREAM)
        permuted = [reordered(news, seed) for seed in range(1, orders)]
        out.append([first, *held_out([(model, permuted)], join, merge, config)])
    return out


def row(
    embedder: str,
    model: str,
    thresholds: str,
    salt: str,
    config: str,
    f1: list[float],
    start: float,
    order_sd: float | None = None,
) -> dict[str, Any]:
    """One table row; ``f1`` in held_out's order: fold 0 news, fold 0 crises, fold 1 news, fold 1 crises."""
    extra = {} if order_sd is None else {"news order sd": f"{order_sd:.4f}"}
    return {
        "embedder": embedder,
        "model": model,
        "thresholds": thresholds,
        "split": repr(salt),
        "config": config,
        "news (fold 0 / 1)": f"{f1[0]:.3f} / {f1[2]:.3f}",
        "crises (fold 0 / 1)": f"{f1[1]:.3f} / {f1[3]:.3f}",
        "mean": f"{float(np.mean(f1)):.4f}",
        **extra,
        "s": round(time.perf_counter() - start),
    }


def means_over_splits(rows: list[dict[str, Any]], f1s: list[list[float]]) -> list[dict[str, Any]]:
    """Per embedder, model, thresholds and configuration: news, crises and their mean over the
    splits, from each row's unrounded scores ``f1s`` (in held_out's order, as :func:`row` takes them)."""
    groups: dict[tuple[str, ...], list[tuple[list[float], str | None]]] = {}
    for r, f1 in zip(rows, f1s):
        key = (r["embedder"], r["model"], r["thresholds"], r["config"])
        groups.setdefault(key, []).append((f1, r.get("news order sd")))
    out = []
    for (embedder, model, thresholds, config), scores in groups.items():
        news = float(np.mean([f[i] for f, _ in scores for i in (0, 2)]))
        crises = float(np.mean([f[i] for f, _ in scores for i in (1, 3)]))
        sds = [float(sd) for _, sd in scores if sd is not None]
        out.append(
            {
                "embedder": embedder,
                "model": model,
                "thresholds": thresholds,
                "config": config,
                "splits": len(scores),
                "news": f"{news:.4f}",
                "crises": f"{crises:.4f}",
                "mean": f"{(news + crises) / 2:.4f}",
                **({"news order sd": f"{float(np.mean(sds)):.4f}"} if sds else {}),
            }
        )
    return out


def parse_config(text: str) -> dict[str, Any]:
    """``"a=1,b=0.5"`` as ClusterConfig overrides, typed like the fields they set."""
    types = {f.name: type(getattr(ClusterConfig(), f.name)) for f in fields(ClusterConfig)}
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name not in types or not value:
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(types))}"
            )
        out[name] = types[name](value)
    return out


def parse_thresholds(text: str) -> tuple[float, float]:
    """``"0.45,0.9"`` as (join threshold, merge threshold)."""
    try:
        join, merge = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected JOIN,MERGE, e.g. 0.45,0.9") from None
    return join, merge


def parse_encoder(text: str) -> tuple[str, Path]:
    """``"mpnet=/models/all-mpnet-base-v2"`` as (name, folder); the folder must hold a model."""
    name, sep, folder = text.partition("=")
    path = Path(folder).expanduser()
    if not sep or not name or not (path / "modules.json").is_file():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=DIR, DIR a sentence-transformers model folder (with modules.json)"
        )
    return name, path


def encoder_loader(name: str, folder: Path) -> tuple[str, Callable[[], Embedder]]:
    """The cache key of an ``--encoder`` and how to build it on a cache miss."""
    tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
    return f"{name}-{tag}", partial(SentenceTransformerEmbedder, folder, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--embedders", default="minilm,static")
    parser.add_argument("--salts", default="", help='comma-separated fold salts ("" is the training split)')
    parser.add_argument("--config", type=parse_config, action="append", help="FIELD=VALUE[,FIELD=VALUE...]")
    parser.add_argument("--rounds", type=int, default=2, help="as train_join's --rounds")
    add_architecture_flags(parser)
    parser.add_argument(
        "--thresholds",
        type=parse_thresholds,
        action="append",
        help="JOIN,MERGE to score at, repeatable (default: the shipped artifact's)",
    )
    parser.add_argument(
        "--train-with-config", action="store_true", help="train fold models per configuration, not once per split"
    )
    parser.add_argument(
        "--baseline", action="store_true", help="also the centroid baseline, tuned on each fold, on the same folds"
    )
    parser.add_argument(
        "--within-story-map",
        type=float,
        metavar="ALPHA",
        help="learn within_story_map (shrinkage ALPHA) on each training fold and cluster the mapped vectors",
    )
    parser.add_argument(
        "--news-orders",
        type=int,
        default=1,
        metavar="N",
        help="score each news fold in N orders (the file's, then random permutations); report mean and spread",
    )
    parser.add_argument(
        "--encoder",
        type=parse_encoder,
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also a sentence-transformers model folder as an embedder, fold models trained on its vectors",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.news_orders < 1:
        parser.error(f"--news-orders {args.news_orders}: give 1 (the file's order only) or more")
    missing = [n for n in DEV_STREAMS if not (args.data / n).is_file()]
    if missing:
        sys.exit(f"held_out: {', '.join(missing)} not in {args.data}; pass --data the shared data folder")
    configs = args.config or [{}]
    arch = Architecture(args.hidden, args.members)

    alpha = args.within_story_map
    prepare = None if alpha is None else (lambda trains: partial(mapped, m=within_story_map(trains, alpha)))
    rows: list[dict[str, Any]] = []
    f1s: list[list[float]] = []  # each row's scores, unrounded, for the means
    encoders = dict(args.encoder)
    names = [e for e in args.embedders.split(",") if e] + list(encoders)
    for embedder in names:
        artifact = JoinModel.load("minilm" if embedder in encoders else embedder)
        grid = args.thresholds or [(artifact.threshold, artifact.merge_threshold)]
        key, load = encoder_loader(embedder, encoders[embedder]) if embedder in encoders else (embedder, None)
        streams = [load_stream(args.data / n, key, load) for n in DEV_STREAMS]
        for salt in args.salts.split(","):
            shared = (
                None
                if args.train_with_config
                else fold_models(streams, embedder, ClusterConfig(), args.rounds, salt, arch, prepare)
            )
            for overrides in configs:
                config = replace(ClusterConfig(), **overrides)
                folds = shared or fold_models(streams, embedder, config, args.rounds, salt, arch, prepare)
                for join, merge in grid:
                    start = time.perf_counter()
                    f1 = held_out(folds, join, merge, config)
                    order_sd = None
                    if args.news_orders > 1:
                        news = news_order_scores(folds, join, merge, config, args.news_orders, [f1[0], f1[2]])
                        f1[0], f1[2] = (float(np.mean(n)) for n in news)  # news is the first stream of each fold
                        order_sd = float(np.mean([np.std(n, ddof=1) for n in news]))
                    config_name = ",".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"
                    rows.append(row(embedder, str(arch), f"{join} / {merge}", salt, config_name, f1, start, order_sd))
                    f1s.append(f1)
                    print(rows[-1], file=sys.stderr, flush=True)
            if args.baseline:
                start = time.perf_counter()
                f1 = [tuned_baseline(t) for fold in (0, 1) for t in fold_streams(streams, fold, salt)]
                rows.append(row(embedder, "centroid baseline", "tuned per fold", salt, "", f1, start))
                f1s.append(f1)
                print(rows[-1], file=sys.stderr, flush=True)
    show("held-out B-cubed F1, the same fold models per split", rows, args.markdown)
    show("mean over the splits", means_over_splits(rows, f1s), args.markdown)


if __name__ == "__main__":
    main()
