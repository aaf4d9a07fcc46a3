"""One typed settings object, read from ``STORYWIRE_*`` environment variables; CLI flags override.

Every knob the runtime reads lives here, so the README's configuration table is this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.clustering import ClusterConfig

if TYPE_CHECKING:
    from stream.webhooks import WebhookEndpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STREAM = REPO_ROOT / "data" / "sample-news.jsonl"


class Settings(BaseSettings):
    """storywire configuration. Environment: ``STORYWIRE_<FIELD>`` (e.g. ``STORYWIRE_EMBEDDER=static``)."""

    model_config = SettingsConfigDict(env_prefix="STORYWIRE_", extra="ignore")

    embedder: Literal["minilm", "static"] = Field("minilm", description="sentence embedder")
    embed_batch_size: int = Field(
        128, ge=1, le=512, description="articles per embed micro-batch (MiniLM sorts them by length into batches of 32)"
    )
    embed_processes: int = Field(
        2, ge=1, le=32, description="encoder processes per embed worker; each micro-batch is shared among them"
    )
    embed_threads: int = Field(1, ge=1, le=64, description="encoder threads in each embed process (MiniLM)")
    embed_pipeline: int = Field(
        3, ge=1, le=32, description="micro-batches in flight (above embed_processes keeps every process busy)"
    )
    join_threshold: float | None = Field(None, ge=0.0, le=1.0, description="override the trained join threshold")
    merge_threshold: float | None = Field(
        None, ge=0.0, description="override the trained merge threshold (above 1: never merge stories)"
    )
    event_threshold: float = Field(
        ClusterConfig.event_threshold, ge=0.0, le=1.0, description="similarity to join an event"
    )
    event_ttl_hours: float = Field(ClusterConfig.event_ttl_hours, gt=0, description="an event silent this long closes")
    story_ttl_hours: float = Field(ClusterConfig.story_ttl_hours, gt=0, description="a story silent this long expires")
    max_candidates: int = Field(
        ClusterConfig.max_candidates, ge=1, description="stories retrieved from the inverted index per article"
    )
    recent_candidates: int = Field(
        ClusterConfig.recent_candidates, ge=0, description="plus this many most recently active stories"
    )
    merge_check_size: int = Field(
        ClusterConfig.merge_check_size,
        ge=0,
        description="stories this large merge only if the smaller, read as one article, would join the larger (0: off)",
    )
    named_story_share: float = Field(
        ClusterConfig.named_story_share,
        ge=0.0,
        le=1.0,
        description="an article joins a likely story this share of whose articles use its names, over a best "
        "story that hardly uses them (0: off)",
    )
    cache_dir: Path | None = Field(None, description="where the distilled static model and caches live")

    # --- streaming runtime (stream/app.py)
    broker: str | None = Field(None, description="kafka://host:port; unset: `demo` starts a local broker")
    local_broker: bool = Field(
        False, description="the broker is the embedded tansu: enable its workarounds (one record per batch)"
    )
    app_id: str = Field("storywire", description="Faust app id: consumer group and changelog topic prefix")
    role: Literal["all", "embed", "cluster"] = Field(
        "all", description="stages this worker runs: all, or embed / cluster as separate services (README, Scaling)"
    )
    store: str = Field("memory://", description="table store: memory:// (tests, demo) or rocksdb:// (production)")
    data_dir: Path = Field(Path("var/worker"), description="worker data directory (RocksDB tables)")
    partitions: int = Field(4, ge=1, description="partitions of the articles topic: the embed stage's parallelism")
    web_host: str = Field("127.0.0.1", description="address of the worker's web server (dashboard, API, /metrics)")
    web_port: int = Field(6066, ge=0, le=65535, description="port of the worker's web server")
    cluster_batch_size: int = Field(
        1024, ge=1, description="most embedded articles per cluster step (and checkpoint) when the input backs up"
    )
    allowed_lateness_seconds: float = Field(
        0.2, ge=0, description="event-time window in which the cluster step re-orders articles before deciding"
    )
    reorder_idle_seconds: float = Field(
        0.25, gt=0, description="quiet input releases the re-order buffer after this (a burst's tail waits so long)"
    )
    fetch_max_wait_ms: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="longest a consumer fetch waits for new records; unset: 200 on the local broker, else Faust's 1500",
    )
    output_linger_ms: int = Field(
        5, ge=0, le=1000, description="how long the output producer waits to fill a batch (embedded, assignments...)"
    )
    session_timeout_seconds: float = Field(
        10.0, gt=0, description="consumer session timeout (the local broker wants 2-3 s)"
    )

    webhooks: str | None = Field(
        None, description='JSON list of webhook endpoints: [{"url", "secret", "types", "min_severity", "format"}]'
    )
    webhooks_file: Path | None = Field(None, description="a file holding the same JSON list")
    webhook_attempts: int = Field(5, ge=1, le=20, description="delivery attempts per alert and endpoint")
    webhook_timeout_seconds: float = Field(5.0, gt=0, description="one webhook request's time limit")
    webhook_max_delay_seconds: float = Field(30.0, gt=0, description="longest backoff between attempts")
    webhook_concurrency: int = Field(4, ge=1, le=64, description="deliveries in flight per endpoint")

    def webhook_endpoints(self) -> list[WebhookEndpoint]:
        """Endpoints from operator configuration only (env or file), never from input."""
        from stream.webhooks import WebhookEndpoint

        endpoints = WebhookEndpoint.parse_list(self.webhooks) if self.webhooks else []
        if self.webhooks_file:
            endpoints += WebhookEndpoint.parse_list(self.webhooks_file.read_text())
        return endpoints

    def as_env(self) -> dict[str, str]:
        """The settings as ``STORYWIRE_*`` variables, to hand the same configuration to a child process."""
        return {f"STORYWIRE_{k.upper()}": str(v) for k, v in self.model_dump().items() if v is not None}

    def cluster_config(self) -> ClusterConfig:
        return ClusterConfig(
            event_threshold=self.event_threshold,
            event_ttl_hours=self.event_ttl_hours,
            story_ttl_hours=self.story_ttl_hours,
            max_candidates=self.max_candidates,
            recent_candidates=self.recent_candidates,
            merge_check_size=self.merge_check_size,
            named_story_share=self.named_story_share,
        )
