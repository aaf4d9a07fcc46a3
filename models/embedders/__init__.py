"""Embedders behind one interface: ``minilm`` (default) and ``static``."""

from __future__ import annotations

from models.embedders.base import Embedder, normalise_rows

EMBEDDERS = ("minilm", "static")


def load_embedder(name: str, threads: int | None = None) -> Embedder:
    """Build an embedder by name; raises ``ValueError`` naming the valid choices. ``threads``: the
    encoder's intra-op threads (MiniLM; None keeps torch's default, one per core)."""
    if name == "minilm":
        from models.embedders.minilm import MiniLMEmbedder

        return MiniLMEmbedder(threads=threads)
    if name == "static":
        from models.embedders.static import StaticEmbedder

        return StaticEmbedder()
    raise ValueError(f"unknown embedder {name!r}; choose one of: {', '.join(EMBEDDERS)}")


__all__ = ["EMBEDDERS", "Embedder", "load_embedder", "normalise_rows"]
