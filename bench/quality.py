"""Clustering quality on the dev streams beside simple baselines, computed in the same run.

    python bench/quality.py [--data ../shared/data] [--embedders minilm,static] [--markdown]

Rows: storywire (default configuration; the shipped join model was trained on these dev streams,
so these are in-sample figures — the held-out figures are printed by the training script), the
single-pass cosine-to-running-centroid baseline of the data README (threshold swept and the best
one reported, which flatters the baseline), and 14-day time buckets (what time alone explains).
Embeddings are cached in the user cache directory after the first run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from datetime import UTC

from bench._table import show  # noqa: E402
from models.baselines import centroid_threshold, time_buckets  # noqa: E402
from models.join_model import JoinModel  # noqa: E402
from models.metrics import score  # noqa: E402
from models.replay import cluster_features  # noqa: E402
from models.training.train_join import load_stream  # noqa: E402
from stream.settings import SAMPLE_STREAM  # noqa: E402

STREAMS = ("uci-news-2014.dev.jsonl", "crisislex-t26.dev.concurrent.jsonl", "crisislex-t26.dev.jsonl")
BASELINE_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def row(stream: str, method: str, s, seconds: float, n: int) -> dict[str, object]:
    return {
        "stream": stream,
        "method": method,
        "B3 P": f"{s.bcubed_precision:.3f}",
        "B3 R": f"{s.bcubed_recall:.3f}",
        "B3 F1": f"{s.bcubed_f1:.3f}",
        "pair F1": f"{s.pairwise_f1:.3f}",
        "AMI": f"{s.ami:.3f}",
        "ARI": f"{s.ari:.3f}",
        "clusters/gold": f"{s.clusters}/{s.gold_clusters}",
        "art/s": f"{n / seconds:,.0f}" if seconds else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--embedders", default="minilm,static")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    paths = [args.data / s for s in STREAMS if (args.data / s).exists()] + [SAMPLE_STREAM]
    rows = []
    for path in paths:
        for embedder in args.embedders.split(","):
            stream = load_stream(path, embedder)
            start = time.perf_counter()
            result = cluster_features(stream.features, stream.gold, JoinModel.load(embedder))
            seconds = time.perf_counter() - start
            rows.append(row(path.stem, f"storywire {embedder}", result.scores, seconds, len(stream.gold)))
            if result.scores != result.scores_as_decided:
                as_decided = f"storywire {embedder}, as first decided (merges not followed)"
                rows.append(row(path.stem, as_decided, result.scores_as_decided, 0, 0))
            vectors = __import__("numpy").stack([f.vector for f in stream.features])
            best = None
            for t in track(BASELINE_THRESHOLDS, description=f"baseline {path.stem} {embedder}"):
                start = time.perf_counter()
                s = score(stream.gold, centroid_threshold(vectors, t))
                secs = time.perf_counter() - start
                if best is None or s.bcubed_f1 > best[1].bcubed_f1:
                    best = (t, s, secs)
            assert best is not None
            rows.append(
                row(path.stem, f"centroid baseline {embedder} (t={best[0]})", best[1], best[2], len(stream.gold))
            )
        from datetime import datetime

        times = [datetime.fromtimestamp(f.timestamp, UTC) for f in stream.features]
        rows.append(row(path.stem, "time buckets (14 d)", score(stream.gold, time_buckets(times)), 0, 0))
    show("clustering quality, dev streams (story level)", rows, args.markdown)


if __name__ == "__main__":
    main()
