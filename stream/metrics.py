"""Prometheus metrics of the worker (served at ``/metrics`` by the Faust web server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ARTICLES_IN = Counter("storywire_articles_received_total", "Messages read from the articles topic")
DEADLETTERS = Counter("storywire_deadletters_total", "Invalid articles sent to the dead-letter topic", ["reason"])
ASSIGNMENTS = Counter("storywire_assignments_total", "Articles assigned to a story", ["decision"])
DUPLICATES = Counter("storywire_duplicate_articles_total", "Redelivered articles answered from state")
LATE = Counter("storywire_late_articles_total", "Articles that arrived after their event-time turn")
EMBED_SECONDS = Histogram(
    "storywire_embed_batch_seconds", "Time to validate and embed one micro-batch, summed over the encoder processes"
)
CLUSTER_SECONDS = Histogram("storywire_cluster_batch_seconds", "Time to decide and checkpoint one batch")
CHECKPOINT_SECONDS = Histogram(
    "storywire_checkpoint_seconds", "Time to store one checkpoint's table records (both phases), part of a batch"
)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
ASSIGNMENT_LATENCY = Histogram(
    "storywire_article_assignment_seconds",
    "From the embed stage reading an article to its assignment",
    buckets=LATENCY_BUCKETS,
)
ALERT_LATENCY = Histogram(
    "storywire_article_alert_seconds",
    "From the embed stage reading an article to the alert it caused",
    buckets=LATENCY_BUCKETS,
)
ACTIVE_STORIES = Gauge("storywire_active_stories", "Stories in the active state")
ACTIVE_EVENTS = Gauge("storywire_active_events", "Events in the active state")
REORDER_BUFFER = Gauge("storywire_reorder_buffer_articles", "Articles waiting for their event-time turn")
ALERTS = Counter("storywire_alerts_total", "Alerts raised", ["type"])
WEBHOOK_DELIVERIES = Counter("storywire_webhook_deliveries_total", "Webhook deliveries by outcome", ["outcome"])
ASSIGNED_PARTITIONS = Gauge("storywire_assigned_partitions", "Input partitions this worker owns", ["topic"])
