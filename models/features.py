"""What the embed stage hands to the cluster stage: everything stateless about one article."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.article import Article
from models.attribution import Attribution, attributions
from models.embedders import Embedder
from models.text import terms_and_entities


@dataclass(slots=True)
class ArticleFeatures:
    """An embedded article. Serialisable with :meth:`to_dict` for the ``embedded`` topic."""

    id: str
    timestamp: float
    title: str
    source: str
    vector: np.ndarray
    terms: dict[str, int]
    entities: list[str]
    attributions: list[Attribution] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "title": self.title,
            "source": self.source,
            # Exact float32 bytes: a rounded vector could flip a borderline join after a round trip.
            "vector_b64": base64.b64encode(np.asarray(self.vector, dtype="<f4").tobytes()).decode("ascii"),
            "terms": self.terms,
            "entities": self.entities,
            "attributions": [a.to_dict() for a in self.attributions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArticleFeatures:
        return cls(
            id=data["id"],
            timestamp=float(data["timestamp"]),
            title=data["title"],
            source=data.get("source", ""),
            vector=np.frombuffer(base64.b64decode(data["vector_b64"]), dtype="<f4").astype(np.float32),
            terms=dict(data["terms"]),
            entities=list(data["entities"]),
            attributions=[Attribution.from_dict(a) for a in data.get("attributions", [])],
        )


def featurize(article: Article, vector: np.ndarray) -> ArticleFeatures:
    terms, names = terms_and_entities(article.title, article.text)
    return ArticleFeatures(
        id=article.id,
        timestamp=article.timestamp,
        title=article.title,
        source=article.source,
        vector=np.asarray(vector, dtype=np.float32),
        terms=dict(terms),
        entities=sorted(names),
        attributions=attributions(article.title, article.text),
    )


def featurize_batch(articles: Sequence[Article], embedder: Embedder) -> list[ArticleFeatures]:
    """Embed a micro-batch in one call (the encoder is much faster per text in batches)."""
    vectors = embedder.encode([a.embedding_text() for a in articles])
    return [featurize(a, v) for a, v in zip(articles, vectors)]
