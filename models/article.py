"""The input contract: what an article is, and why one is rejected.

Unknown fields are kept (downstream users rely on their own extras); oversized text is truncated
with a flag rather than rejected, because a long article is still news.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_TITLE_CHARS = 1_000
MAX_TEXT_CHARS = 20_000
# Event time drives expiry: one article dated 2999 would advance the watermark and expire every live
# story, so dates must be plausible. Earliest: the unix epoch; latest: a day past the wall clock.
EARLIEST_PUBLISHED = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE_SECONDS = 24 * 3600


class ArticleError(ValueError):
    """An input that cannot become an Article; ``reason`` is one line a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Article(BaseModel):
    """One news item. ``text`` also accepts ``body``; ``published_at`` is normalised to UTC."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=512)
    title: str = Field(min_length=1)
    text: str = ""
    published_at: datetime
    source: str = ""
    url: str = ""
    lang: str = ""
    truncated: bool = False

    @field_validator("id", "title", "text", "source", "url", "lang", mode="before")
    @classmethod
    def _strings_only(cls, value: Any) -> Any:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {type(value).__name__}")
        return value.replace("\x00", "")

    @field_validator("published_at", mode="after")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def timestamp(self) -> float:
        """Event time in unix seconds: the clock every online decision uses."""
        return self.published_at.timestamp()

    def embedding_text(self, max_chars: int = 600) -> str:
        """Title plus the lead of the body: headlines carry the story, the lead its entities."""
        if not self.text:
            return self.title
        return f"{self.title}. {self.text[:max_chars]}"


def parse_article(raw: dict[str, Any] | str | bytes, now: float | None = None) -> Article:
    """Validate one article from a dict, a JSON string or raw bytes; ``now`` (default: the wall clock)
    bounds ``published_at`` from above.

    >>> a = parse_article('{"id": "a1", "title": "Quake hits", "published_at": "2024-03-22T18:00:00Z"}')
    >>> a.id, a.published_at.isoformat()
    ('a1', '2024-03-22T18:00:00+00:00')
    >>> parse_article('{"id": "a1"}')
    Traceback (most recent call last):
    ...
    models.article.ArticleError: missing field 'title'; missing field 'published_at'
    >>> parse_article('{"id": "a2", "title": "t", "published_at": "2999-01-01T00:00:00Z"}')
    Traceback (most recent call last):
    ...
    models.article.ArticleError: field 'published_at': 2999-01-01T00:00:00+00:00 is more than 24 h in the future
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArticleError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ArticleError(f"not JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(raw, dict):
        raise ArticleError(f"not a JSON object: got {type(raw).__name__}")
    data = dict(raw)
    if "text" not in data and "body" in data:
        data["text"] = data.pop("body")
    title, text = data.get("title"), data.get("text")
    truncated = False
    if isinstance(title, str) and len(title) > MAX_TITLE_CHARS:
        data["title"], truncated = title[:MAX_TITLE_CHARS], True
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        data["text"], truncated = text[:MAX_TEXT_CHARS], True
    data["truncated"] = truncated
    try:
        article = Article.model_validate(data)
    except ValidationError as exc:
        raise ArticleError(_explain(exc)) from None
    when = article.published_at
    if when < EARLIEST_PUBLISHED:
        raise ArticleError(f"field 'published_at': {when.isoformat()} is before {EARLIEST_PUBLISHED.date()}")
    if article.timestamp > (time.time() if now is None else now) + MAX_FUTURE_SECONDS:
        raise ArticleError(f"field 'published_at': {when.isoformat()} is more than 24 h in the future")
    return article


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "article"
        if err["type"] == "missing":
            parts.append(f"missing field {field!r}")
        else:
            parts.append(f"field {field!r}: {err['msg']}")
    return "; ".join(parts)
