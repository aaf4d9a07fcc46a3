"""Embedders behind one interface: ``minilm`` (default) and ``static``."""

from __future__ import annotations

from models.embedders.base import Embedder, normalise_rows

EMBEDDERS = ("minilm", "static")


def load_embedder(name: str) -> Embedder:
    """Build an embedder by name; raises ``ValueError`` naming the valid choices."""
    if name == "minilm":
        from models.embedders.minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    if name == "static":
        from models.embedders.static import StaticEmbedder

        return StaticEmbedder()
    raise ValueError(f"unknown embedder {name!r}; choose one of: {', '.join(EMBEDDERS)}")


__all__ = ["EMBEDDERS", "Embedder", "load_embedder", "normalise_rows"]
