"""A sentence-transformers folder on disk as an embedder: what ``bench/held_out.py --encoder`` tries."""

from __future__ import annotations

import numpy as np

from models.embedders.minilm import SentenceTransformerEmbedder, packaged_model_path

TITLES = [
    "Gunmen attack Moscow concert hall, killing dozens",
    "Islamic State claims responsibility for Crocus City Hall shooting",
    "Apple unveils a larger iPhone",
]


def test_a_model_folder_embeds_as_the_packaged_minilm_does(minilm):
    folder = SentenceTransformerEmbedder(packaged_model_path(), "minilm-folder")
    assert (folder.name, folder.dim) == ("minilm-folder", 384)
    vectors = folder.encode(TITLES)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, minilm.encode(TITLES), atol=1e-5)
    assert folder.encode([]).shape == (0, 384)
