"""One typed settings object, read from ``STORYWIRE_*`` environment variables; CLI flags override.

Every knob the runtime reads lives here, so the README's configuration table is this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.clustering import ClusterConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STREAM = REPO_ROOT / "data" / "sample-news.jsonl"


class Settings(BaseSettings):
    """storywire configuration. Environment: ``STORYWIRE_<FIELD>`` (e.g. ``STORYWIRE_EMBEDDER=static``)."""

    model_config = SettingsConfigDict(env_prefix="STORYWIRE_", extra="ignore")

    embedder: Literal["minilm", "static"] = Field("minilm", description="sentence embedder")
    embed_batch_size: int = Field(32, ge=1, le=512, description="texts per encoder call")
    join_threshold: float | None = Field(None, ge=0.0, le=1.0, description="override the trained join threshold")
    event_threshold: float = Field(ClusterConfig.event_threshold, ge=0.0, le=1.0, description="similarity to join an event")
    event_ttl_hours: float = Field(ClusterConfig.event_ttl_hours, gt=0, description="an event silent this long closes")
    story_ttl_hours: float = Field(ClusterConfig.story_ttl_hours, gt=0, description="a story silent this long expires")
    max_candidates: int = Field(ClusterConfig.max_candidates, ge=1, description="stories scored per article")
    cache_dir: Path | None = Field(None, description="where the distilled static model and caches live")

    def cluster_config(self) -> ClusterConfig:
        return ClusterConfig(
            event_threshold=self.event_threshold,
            event_ttl_hours=self.event_ttl_hours,
            story_ttl_hours=self.story_ttl_hours,
            max_candidates=self.max_candidates,
        )
