"""The pipeline's topics, created up front with their partition counts and retention.

Creating them before anything produces matters: a broker that auto-creates topics on first use
(tansu does, with 4 partitions) would otherwise give the single-shard ``embedded`` topic the wrong
partition count, and Faust refuses tables whose changelog does not match their source topic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

ARTICLES = "articles"
DEADLETTER = "articles.deadletter"
EMBEDDED = "embedded"
ASSIGNMENTS = "assignments"
STORIES = "stories"
ALERTS = "alerts"
WEBHOOKS_DEADLETTER = "webhooks.deadletter"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


def topic_specs(article_partitions: int) -> list[TopicSpec]:
    return [
        TopicSpec(ARTICLES, article_partitions),
        TopicSpec(DEADLETTER, 1),
        TopicSpec(EMBEDDED, 1),  # one partition per cluster shard; one shard by default
        TopicSpec(ASSIGNMENTS, 1),
        TopicSpec(STORIES, 1, compacted=True),
        TopicSpec(ALERTS, 1),
        TopicSpec(WEBHOOKS_DEADLETTER, 1),
    ]


def ensure_topics(bootstrap: str, article_partitions: int, timeout: float = 30.0) -> list[str]:
    """Create the missing topics; return the names created. Existing topics are left as they are."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        created = []
        for spec in topic_specs(article_partitions):
            if spec.name in existing:
                continue
            config = {"cleanup.policy": "compact"} if spec.compacted else {}
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, 1, topic_configs=config)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
