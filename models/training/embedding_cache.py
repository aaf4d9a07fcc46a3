"""Embeddings of a JSON-lines file, cached on disk by content hash so training reruns are cheap."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from models.embedders import Embedder, load_embedder
from models.embedders.static import default_cache_dir


def cached_embeddings(
    texts: Sequence[str], embedder_name: str, batch: int = 256, load: Callable[[], Embedder] | None = None
) -> np.ndarray:
    """``load`` builds the embedder on a cache miss (default: the named one); the name keys the cache."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = default_cache_dir() / "embeddings" / f"{embedder_name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    embedder = load() if load is not None else load_embedder(embedder_name)
    parts = [embedder.encode(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
