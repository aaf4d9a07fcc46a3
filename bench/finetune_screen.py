"""Would MiniLM fine-tuned on one fold's gold stories separate the other fold's stories better?

    python bench/finetune_screen.py [--stream uci-news-2014.dev.jsonl] [--salts ",a,b,c"]
        [--steps 150] [--threads 2] [--markdown]

Why: the news errors left are stories the aggregator kept apart that read alike (README, *Where
the errors are*). A sentence encoder trained contrastively on labelled stories could learn that
granularity, and a learned linear map did not (docs/quality-log.md, stop 28). This is the cheap
screen before anything goes through the clusterer: for each split of the gold stories into two
folds (``fold_of``, the training script's split), MiniLM is fine-tuned on one fold's stories (pairs of
headlines of one story, the other stories of the batch as negatives: the symmetric in-batch
softmax loss of sentence-transformers' MultipleNegativesRankingLoss, scale 20, AdamW 2e-5, 32
stories a step) and the single-pass centroid baseline, its threshold tuned on the fold it scores
as in ``bench/held_out.py --baseline``, is scored on the other fold with and without it. A larger
encoder lifted this baseline by 0.032 on news and storywire by 0.004 (stop 30), so a gain here
much under that is not worth a fold-model run. Each fold is about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._table import show  # noqa: E402
from bench.held_out import tuned_centroid  # noqa: E402
from models.article import parse_article  # noqa: E402
from models.embedders.minilm import packaged_model_path  # noqa: E402
from models.replay import LabelledArticle, event_time_order  # noqa: E402
from models.training.train_join import fold_of  # noqa: E402


def fine_tuned(base: Any, texts: list[str], gold: list[str | None], steps: int, seed: int = 0) -> Any:
    """A copy of ``base`` trained on headline pairs of one gold story against the batch's others."""
    import torch

    model = copy.deepcopy(base)
    model.train()
    rng = random.Random(seed)
    by_story: dict[str, list[int]] = {}
    for i, g in enumerate(gold):
        if g is not None:
            by_story.setdefault(g, []).append(i)
    stories = sorted(s for s, idx in by_story.items() if len(idx) >= 2)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def embed(batch: list[str]) -> Any:
        features = model.preprocess(batch) if hasattr(model, "preprocess") else model.tokenize(batch)
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=1)

    for _ in range(steps):
        pairs = [rng.sample(by_story[s], 2) for s in rng.sample(stories, min(32, len(stories)))]
        similarity = 20.0 * embed([texts[i] for i, _ in pairs]) @ embed([texts[j] for _, j in pairs]).T
        labels = torch.arange(len(pairs))
        loss = torch.nn.functional.cross_entropy(similarity, labels)
        loss = (loss + torch.nn.functional.cross_entropy(similarity.T, labels)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--stream", default="uci-news-2014.dev.jsonl")
    parser.add_argument("--salts", default=",a,b,c", help='comma-separated fold salts ("" is the training split)')
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps of 32 stories each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    path = args.data / args.stream
    if not path.is_file():
        sys.exit(f"finetune_screen: {path} not found; pass --data the shared data folder")
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: give 1 or more")

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    lines = path.open().read().splitlines()
    items = event_time_order([LabelledArticle(parse_article(x), json.loads(x).get("event")) for x in lines])
    texts = [x.article.embedding_text() for x in items]
    gold = [x.gold for x in items]
    base = SentenceTransformer(str(packaged_model_path()), device="cpu")
    base.max_seq_length = 128

    def encode(model: Any, idx: list[int]) -> np.ndarray:
        return np.asarray(model.encode([texts[i] for i in idx], batch_size=64, normalize_embeddings=True))

    rows: list[dict[str, Any]] = []
    for salt in args.salts.split(","):
        for fold in (0, 1):
            start = time.perf_counter()
            test = [i for i, g in enumerate(gold) if g is None or fold_of(g, salt) == fold]
            train = [i for i, g in enumerate(gold) if g is not None and fold_of(g, salt) != fold]
            test_gold = [gold[i] for i in test]
            before, t_before = tuned_centroid(encode(base, test), test_gold)
            model = fine_tuned(base, [texts[i] for i in train], [gold[i] for i in train], args.steps)
            after, t_after = tuned_centroid(encode(model, test), test_gold)
            rows.append(
                {
                    "split": salt or '""',
                    "scored fold": fold,
                    "MiniLM": f"{before:.4f} (t={t_before})",
                    "fine-tuned": f"{after:.4f} (t={t_after})",
                    "gain": f"{after - before:+.4f}",
                    "s": f"{time.perf_counter() - start:.0f}",
                }
            )
            print(rows[-1], file=sys.stderr, flush=True)
    scored = [(float(r["MiniLM"].split()[0]), float(r["fine-tuned"].split()[0])) for r in rows]
    mean_before, mean_after = (float(np.mean(c)) for c in zip(*scored))
    rows.append(
        {
            "split": "mean",
            "scored fold": "",
            "MiniLM": f"{mean_before:.4f}",
            "fine-tuned": f"{mean_after:.4f}",
            "gain": f"{mean_after - mean_before:+.4f}",
            "s": "",
        }
    )
    show(f"centroid baseline on {args.stream}, {args.steps} fine-tuning steps", rows, args.markdown)


if __name__ == "__main__":
    main()
