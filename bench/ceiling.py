"""How far can the gold stories be told apart from what an article carries? A supervised ceiling.

    python bench/ceiling.py [--embedders minilm,static] [--salts ",a,b,c"] [--markdown]

Why: the news target (B-cubed F1 >= 0.95 on held-out stories) has not moved past ~0.90 in many
stops, and the errors left are stories of the news aggregator that read alike (README, *Where the
errors are*). Before another change to the clusterer, this asks whether the stories are separable
at all from the article's vector and words: on each held-out fold of ``bench/held_out.py`` (the
same four splits of the gold stories), a **supervised** classifier is given the gold story of 80 %
of the fold's articles, of every story, and predicts the story of the other 20 % (five-fold
stratified cross-validation inside the fold, so every article gets a prediction from a model that
did not see it). The predicted stories are scored as a clustering, like the clusterer's output.

This is not a strict bound, but it is generous to the classifier: it knows how many stories there
are and has seen most of each, with no stream order, no threshold, no cold start; a single-pass
clusterer sees none of that. Where the classifier stays under the target, an unsupervised online
clusterer reaching it would be a surprise. Two classifiers:

- ``1-NN``: the gold story of the nearest labelled article by cosine (what the kNN votes of the
  clusterer approximate, with the labels given);
- ``logistic``: multinomial logistic regression over the embedding beside the TF-IDF of the
  clusterer's own terms (names, words, bigrams), C chosen per fold on the fold's own scores (so the
  optimistic end of what it can do);
- ``logistic + source, URL``: the same, with the article's source and the words of its URL (not
  its numbers: many URLs carry a date, and the crawl time is what the news file's shuffle removed)
  among the terms: every field an article of this data carries but the gold label and the
  aggregator's ``category`` (one per gold story: a label, not a feature).

Noise (gold ``null``) is neither trained on nor scored, as in the B-cubed scores.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._table import show  # noqa: E402
from models.metrics import score  # noqa: E402
from models.training.train_join import DEV_STREAMS, Stream, fold_streams, load_stream  # noqa: E402

C_GRID = (1.0, 10.0, 100.0)
FOLDS_INSIDE = 5
URL_WORD = re.compile(r"[a-z]*[a-z][a-z]+")


def source_and_url_terms(stream: Stream, urls: dict[str, str]) -> list[dict[str, int]]:
    """The scored articles' terms (as :func:`labelled` gives them) with each one's source and URL
    words (``urls``: id -> URL) among them."""
    out = []
    for f, g in zip(stream.features, stream.gold):
        if g is not None:
            words = {f"url:{w}": 1 for w in URL_WORD.findall(urls.get(f.id, "").lower())}
            out.append({**f.terms, **words, f"source:{f.source.lower()}": 1})
    return out


def labelled(stream: Stream) -> tuple[np.ndarray, list[dict[str, int]], list[str]]:
    """Unit vectors, term counts and gold stories of the stream's scored articles."""
    keep = [i for i, g in enumerate(stream.gold) if g is not None]
    x = np.stack([stream.features[i].vector for i in keep]).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, [stream.features[i].terms for i in keep], [str(stream.gold[i]) for i in keep]


def nearest_neighbour(x: np.ndarray, y: list[str], splits: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Each article's story as its nearest article's in the other inner folds."""
    out = [""] * len(y)
    for train, test in splits:
        best = np.argmax(x[test] @ x[train].T, axis=1)
        for i, j in zip(test, best):
            out[i] = y[train[j]]
    return out


def logistic(
    x: np.ndarray, terms: list[dict[str, int]], y: list[str], splits: list[tuple[np.ndarray, np.ndarray]], c: float
) -> list[str]:
    """Each article's story as predicted by a logistic regression fit on the other inner folds."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    out = [""] * len(y)
    labels = np.array(y)
    for train, test in splits:
        vocab = DictVectorizer()
        tfidf = TfidfTransformer(sublinear_tf=True)
        words_train = tfidf.fit_transform(vocab.fit_transform([terms[i] for i in train]))
        words_test = tfidf.transform(vocab.transform([terms[i] for i in test]))
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(hstack([csr_matrix(x[train]), words_train]).tocsr(), labels[train])
        for i, p in zip(test, model.predict(hstack([csr_matrix(x[test]), words_test]).tocsr())):
            out[i] = str(p)
    return out


def inner_splits(y: list[str], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Five stratified folds; a story with fewer articles than folds lands in as many as it has."""
    from sklearn.model_selection import StratifiedKFold

    counts = Counter(y)
    strata = [g if counts[g] >= FOLDS_INSIDE else "_small" for g in y]
    folds = StratifiedKFold(FOLDS_INSIDE, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in folds.split(np.zeros(len(y)), strata)]


def ceilings(stream: Stream, urls: dict[str, str]) -> dict[str, float]:
    """B-cubed F1 of the supervised predictions on one held-out fold of one stream."""
    x, terms, y = labelled(stream)
    splits = inner_splits(y)
    out = {"1-NN": score(y, nearest_neighbour(x, y, splits)).bcubed_f1}
    out["logistic"] = max(score(y, logistic(x, terms, y, splits, c)).bcubed_f1 for c in C_GRID)
    all_terms = source_and_url_terms(stream, urls)
    out["logistic + source, URL"] = max(score(y, logistic(x, all_terms, y, splits, c)).bcubed_f1 for c in C_GRID)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--embedders", default="minilm", help="comma-separated: minilm, static")
    parser.add_argument("--salts", default=",a,b,c", help='comma-separated fold salts ("" is the training split)')
    parser.add_argument("--streams", default=",".join(DEV_STREAMS), help="comma-separated dev stream file names")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    names = [n for n in args.streams.split(",") if n]
    embedders = [e for e in args.embedders.split(",") if e]
    if unknown := sorted(set(embedders) - {"minilm", "static"}):
        parser.error(f"--embedders {','.join(unknown)}: choose from minilm, static")
    missing = [n for n in names if not (args.data / n).is_file()]
    if missing:
        sys.exit(f"ceiling: {args.data / missing[0]} not found; pass --data the shared data folder")

    urls = {a["id"]: a.get("url", "") for n in names for a in map(json.loads, (args.data / n).open())}
    rows: list[dict[str, Any]] = []
    means: list[dict[str, Any]] = []
    for embedder in embedders:
        streams = [load_stream(args.data / name, embedder) for name in names]
        per_stream: dict[tuple[str, str], list[float]] = {}
        for salt in args.salts.split(","):
            for fold in (0, 1):
                start = time.perf_counter()
                for s in fold_streams(streams, fold, salt):
                    found = ceilings(s, urls)
                    for method, f1 in found.items():
                        per_stream.setdefault((s.name, method), []).append(f1)
                    rows.append(
                        {
                            "embedder": embedder,
                            "split": repr(salt),
                            "fold": fold,
                            "stream": s.name,
                            **{m: f"{v:.3f}" for m, v in found.items()},
                            "s": round(time.perf_counter() - start),
                        }
                    )
                    print(rows[-1], file=sys.stderr, flush=True)
        for (name, method), f1s in per_stream.items():
            means.append(
                {
                    "embedder": embedder,
                    "stream": name,
                    "classifier": method,
                    "folds": len(f1s),
                    "mean B3 F1": f"{np.mean(f1s):.4f}",
                    "min": f"{min(f1s):.3f}",
                    "max": f"{max(f1s):.3f}",
                }
            )
    show("supervised ceiling per held-out fold", rows, False)
    show("supervised ceiling: mean over the held-out folds", means, args.markdown)


if __name__ == "__main__":
    main()
