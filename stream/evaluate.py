"""``storywire evaluate``: replay a labelled JSON-lines stream in-process and score the stories."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import Progress

from models.article import ArticleError, parse_article
from models.clustering import ClusterConfig
from models.embedders import load_embedder
from models.features import ArticleFeatures, featurize_batch
from models.join_model import JoinModel
from models.replay import LabelledArticle, ReplayResult, cluster_features, event_time_order
from stream.progress import progress_bar

stderr = Console(stderr=True)


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


def read_labelled(path: Path) -> tuple[list[LabelledArticle], list[BadLine]]:
    """Parse every line; a malformed one is reported with its number and skipped, never fatal."""
    items: list[LabelledArticle] = []
    bad: list[BadLine] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                article = parse_article(raw)
            except ArticleError as exc:
                bad.append(BadLine(number, exc.reason))
                continue
            gold = getattr(article, "event", None)
            items.append(LabelledArticle(article, gold if isinstance(gold, str) else None))
    return items, bad


def _progress() -> Progress:
    return progress_bar(stderr)


def _batches(items: list[LabelledArticle], size: int) -> Iterator[list[LabelledArticle]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def run_evaluation(
    path: Path,
    embedder_name: str,
    config: ClusterConfig,
    join_threshold: float | None = None,
    batch_size: int = 32,
    merge_threshold: float | None = None,
) -> tuple[ReplayResult, list[BadLine], float]:
    """Read, order, embed and cluster a file; returns the result, the bad lines and total seconds."""
    items, bad = read_labelled(path)
    for b in bad:
        sys.stderr.write(f"{path}:{b.line}: skipped: {b.reason}\n")
    items = event_time_order(items)
    model = JoinModel.load(embedder_name).with_overrides(join_threshold, merge_threshold)
    start = time.perf_counter()
    embedder = load_embedder(embedder_name)
    features: list[ArticleFeatures] = []
    with _progress() as progress:
        task = progress.add_task(f"embedding ({embedder_name})", total=len(items))
        for batch in _batches(items, batch_size):
            features.extend(featurize_batch([x.article for x in batch], embedder))
            progress.advance(task, len(batch))
        embed_seconds = time.perf_counter() - start
        task = progress.add_task("clustering", total=len(items))
        result = cluster_features(
            features, [x.gold for x in items], model, config, progress=lambda n: progress.advance(task, n)
        )
    result.seconds_embed = embed_seconds
    return result, bad, time.perf_counter() - start


def summary(result: ReplayResult, seconds: float) -> dict[str, Any]:
    s = result.scores
    return {
        "bcubed_precision": round(s.bcubed_precision, 4),
        "bcubed_recall": round(s.bcubed_recall, 4),
        "bcubed_f1": round(s.bcubed_f1, 4),
        "pairwise_f1": round(s.pairwise_f1, 4),
        "ami": round(s.ami, 4),
        "ari": round(s.ari, 4),
        "clusters": s.clusters,
        "gold_clusters": s.gold_clusters,
        "events": result.event_scores.clusters,
        "articles": result.articles,
        "articles_per_second": round(result.articles / seconds, 1) if seconds else 0.0,
    }


def write_assignments(result: ReplayResult, out: TextIO) -> None:
    for a in result.assignments:
        out.write(
            json.dumps(
                {
                    "id": a.article_id,
                    "event_id": a.event_id,
                    "story_id": a.story_id,
                    "score": round(a.score, 4),
                    "decision": a.decision,
                }
            )
            + "\n"
        )


def print_table(path: Path, embedder: str, data: dict[str, Any], console: TextIO = sys.stdout) -> None:
    from rich.table import Table

    table = Table(title=f"{path.name} · {embedder}")
    for key in data:
        table.add_column(key.replace("_", " "), justify="right")
    table.add_row(*[str(v) for v in data.values()])
    Console(file=console).print(table)
