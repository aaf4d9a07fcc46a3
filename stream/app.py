"""The Faust app: topics, tables and the two agents. Agents stay thin; the work is in ``models/``.

articles ─► embed (stateless, N partitions) ─► embedded ─► cluster (one writer per shard)
   └─ invalid ─► articles.deadletter                           ├─► assignments
                                                               └─► stories (compacted)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import EventT

from models.features import ArticleFeatures
from models.join_model import JoinModel
from stream import metrics
from stream.batching import OrderedAcks, run_batched
from stream.cluster_step import ClusterStep, StateTables, StepOutput
from stream.embed_process import EmbeddedBatch, EmbedPool
from stream.faust_fixes import (
    FETCH_WAIT_ATTRIBUTE,
    fetch_max_wait,
    flush_all,
    reread_skipped_offsets,
    seek_before_streams,
)
from stream.live import LiveFeed
from stream.outputs import Outputs, delivered, encode
from stream.packing import Packed, pack_records, unpack_records
from stream.replay import bootstrap_of
from stream.settings import Settings
from stream.topics import ALERTS, ARTICLES, ASSIGNMENTS, DEADLETTER, EMBEDDED, STORIES, WEBHOOKS_DEADLETTER
from stream.webhooks import RetryPolicy, WebhookEndpoint, WebhookSender

log = logging.getLogger("storywire")

DASHBOARD = Path(__file__).parent / "web" / "dashboard.html"
MAX_DEADLETTER_BYTES = 512 * 1024  # larger invalid lines keep their first 512 KiB (header storywire-bytes: size)
EMBED_IDLE_SECONDS = 0.5  # a quiet embed stage waits for its in-flight batches after this (surfacing a failure)
SHARD_KEY = b"shard-0"  # one cluster shard: every embedded article goes to its single partition


def broker_url(settings: Settings) -> str:
    return settings.broker or "kafka://127.0.0.1:9092"


def faust_options(settings: Settings) -> dict[str, Any]:
    """Faust settings, with the local broker's workarounds when it is the embedded tansu."""
    session = 3.0 if settings.local_broker else settings.session_timeout_seconds
    options: dict[str, Any] = {
        "broker": broker_url(settings),
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": session,
        "broker_heartbeat_interval": max(0.5, session / 6),
        "broker_rebalance_timeout": max(10.0, session * 2),
        "broker_commit_interval": 1.0,
        "web_host": settings.web_host,
        "web_bind": settings.web_host,  # Faust binds 0.0.0.0 unless told; web_host alone only names the URL
        "web_port": settings.web_port,
        "web_enabled": True,
        "table_cleanup_interval": 60.0,
        # The API is read-only (GET): no request needs a body, so refuse big ones early.
        "web_application_options": {"client_max_size": 16 * 1024},
    }
    if settings.local_broker:
        # tansu answers end offsets per batch, not per record: one record per batch keeps table
        # recovery exact (see ../shared/notes/local-broker.md). Real Kafka needs none of this.
        options["producer_max_batch_size"] = 1
    return options


# tansu keeps a fetch parked for its whole wait even when records arrive (Kafka answers at once), so
# on the local broker every hop of the pipeline waited up to Faust's 1.5 s: p95 1.35 s at 20 MiniLM
# articles/s; 0.57 s with 200 ms (README, Speed).
LOCAL_BROKER_FETCH_WAIT_MS = 200


def fetch_wait_ms(settings: Settings) -> int | None:
    """The consumers' fetch wait: the setting, else 200 ms on the local broker; ``None``: Faust's 1.5 s."""
    if settings.fetch_max_wait_ms is not None:
        return settings.fetch_max_wait_ms
    return LOCAL_BROKER_FETCH_WAIT_MS if settings.local_broker else None


def input_ref(event: EventT) -> str:
    """``topic/partition/offset`` of an input record: counts lines in = processed + dead-lettered,
    whatever the ids inside them (two lines may carry one id; a redelivery is one line)."""
    msg = event.message
    return f"{msg.topic}/{msg.partition}/{msg.offset}"


class Runtime:
    """What the agents and web pages share: the cluster step's thread and state, the live views."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cluster_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster")
        self.step: ClusterStep[Packed[EventT]] | None = None
        self.snapshots: dict[str, dict[str, Any]] = {}  # latest published snapshot per active story
        self.alerts: list[dict[str, Any]] = []  # the most recent alerts, for the dashboard
        self.live = LiveFeed()
        self.acks: list[OrderedAcks] = []  # cleared when partitions are revoked


AgentFun = Callable[[faust.StreamT], Awaitable[None]]


def fail_fast(app: faust.App) -> Callable[[AgentFun], AgentFun]:
    """An agent that dies stops the worker (non-zero exit) instead of leaving a live husk behind:
    a supervisor restarts it, and it recovers from its tables and committed offsets."""

    def wrap(fun: AgentFun) -> AgentFun:
        @functools.wraps(fun)
        async def run(stream: faust.StreamT) -> None:
            try:
                await fun(stream)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("agent %s crashed; stopping the worker", fun.__name__)
                await app.crash(exc)
                raise

        return run

    return wrap


def create_app(settings: Settings) -> faust.App:
    """The worker's app for its ``role``: ``all`` runs both stages; ``embed`` only the embed stage (its
    own consumer group, no tables: scale it out freely); ``cluster`` only the cluster stage."""
    reread_skipped_offsets()
    seek_before_streams()
    fetch_max_wait()
    app_id = f"{settings.app_id}-embed" if settings.role == "embed" else settings.app_id
    app = faust.App(app_id, **faust_options(settings))
    setattr(app, FETCH_WAIT_ATTRIBUTE, fetch_wait_ms(settings))
    rt = Runtime(settings)
    app.storywire_runtime = rt  # type: ignore[attr-defined]
    # Outputs go through a batching producer of their own; Faust's keeps the changelogs (stream/outputs.py).
    outputs = Outputs(bootstrap_of(broker_url(settings)), settings.output_linger_ms)
    app.add_dependency(outputs)
    if settings.role in ("all", "embed"):
        add_embed_stage(app, rt, outputs)
    if settings.role in ("all", "cluster"):
        add_cluster_stage(app, rt, outputs)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode types receivers loosely
    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Losing the shard: drop held articles (unacknowledged, the new owner gets them) and rebuild
        from the tables if the shard comes back."""
        revoked: set[Any] = args[0] if args else set()
        for acks in rt.acks:
            acks.clear()
        if rt.step is not None and any(tp.topic == EMBEDDED for tp in revoked):
            rt.step.reset()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned: set[Any] = args[0] if args else set()
        for topic in (ARTICLES, EMBEDDED):
            metrics.ASSIGNED_PARTITIONS.labels(topic=topic).set(sum(tp.topic == topic for tp in assigned))

    # Faust's own sensors (messages, rebalances, commit latency, end and committed offset per
    # partition: the lag) and ours share the default registry, served at /metrics.
    setup_prometheus_sensors(app, "/metrics", name_prefix="storywire_faust")

    return app


def add_embed_stage(app: faust.App, rt: Runtime, outputs: Outputs) -> None:
    """``articles`` -> validate, embed -> ``embedded`` (or ``articles.deadletter``)."""
    settings = rt.settings
    articles = app.topic(ARTICLES, value_type=bytes, value_serializer="raw", partitions=settings.partitions)

    @app.agent(articles)
    @fail_fast(app)
    async def embed(agent_stream: faust.StreamT) -> None:
        """Validate and embed micro-batches in the embed process; invalid input goes to the dead-letter
        topic, never lost. Up to ``embed_pipeline`` batches are in flight, so the children embed the next
        batch while this one is published; they are published and acknowledged in input order."""
        stream = cast(faust.Stream, cast(faust.Stream, agent_stream).noack())
        inflight: deque[asyncio.Future[None]] = deque()
        embedding = EmbedPool(settings.embedder, settings.embed_processes, settings.embed_threads)
        warm = asyncio.ensure_future(embedding.warm_up())

        async def publish(
            events: list[EventT], pending: Awaitable[EmbeddedBatch], previous: Awaitable[None] | None
        ) -> None:
            batch = await pending
            metrics.EMBED_SECONDS.observe(batch.seconds)
            if previous is not None:
                await previous  # `embedded` keeps the input order
            sent = []
            for event, outcome in zip(events, batch.outcomes):
                if not isinstance(outcome, bytes):
                    sent.append(await send_deadletter(event, outcome))
            for packed in pack_records([o for o in batch.outcomes if isinstance(o, bytes)]):
                sent.append(await outputs.send(EMBEDDED, SHARD_KEY, packed))
            await delivered(sent)  # stored before the inputs are acknowledged
            for event in events:
                await stream.ack(event)

        async def handle(events: list[EventT]) -> None:
            await warm
            metrics.ARTICLES_IN.inc(len(events))
            raws = [
                e.message.value if isinstance(e.message.value, bytes) else bytes(e.message.value or b"") for e in events
            ]
            batch = asyncio.ensure_future(embedding.embed(raws, [input_ref(e) for e in events], time.time()))
            inflight.append(asyncio.ensure_future(publish(events, batch, inflight[-1] if inflight else None)))
            while len(inflight) >= settings.embed_pipeline:
                await inflight.popleft()

        async def on_idle() -> None:
            while inflight:  # surfaces a failed batch even when no next batch comes
                await inflight.popleft()

        try:
            await run_batched(stream, settings.embed_batch_size, handle, EMBED_IDLE_SECONDS, on_idle)
        finally:
            embedding.stop()

    async def send_deadletter(event: EventT, reason: str) -> Awaitable[Any]:
        msg = event.message
        metrics.DEADLETTERS.labels(reason=reason.split(":")[0][:60]).inc()
        raw = msg.value if isinstance(msg.value, bytes) else b""
        return await outputs.send(
            DEADLETTER,
            msg.key,
            raw[:MAX_DEADLETTER_BYTES],  # the raw line, cut to fit Kafka's default message size
            [
                ("storywire-bytes", str(len(raw)).encode()),
                ("storywire-reason", reason.encode()),
                ("storywire-source", input_ref(event).encode()),
            ],
        )


def add_cluster_stage(app: faust.App, rt: Runtime, outputs: Outputs) -> None:
    """``embedded`` -> decide, checkpoint to tables -> ``assignments``, ``stories``, ``alerts`` -> webhooks;
    and the dashboard and its API, which show this stage's state."""
    settings = rt.settings
    embedded = app.topic(EMBEDDED, key_serializer="raw", value_serializer="json", partitions=1)
    alerts = app.topic(ALERTS, key_serializer="raw", value_serializer="json", partitions=1)
    webhook_deadletter = app.topic(WEBHOOKS_DEADLETTER, key_serializer="raw", value_serializer="json", partitions=1)
    endpoints = settings.webhook_endpoints()

    # Tables are co-partitioned with `embedded` (one partition per shard) and written only by `cluster`.
    tables = StateTables(
        stories=app.Table("cluster-stories", partitions=1, key_type=str),
        df=app.Table("cluster-df", partitions=1, key_type=str),
        meta=app.Table("cluster-meta", partitions=1, key_type=str),
        assigned=app.Table("cluster-assigned", partitions=1, key_type=str),
    )
    model = JoinModel.load(settings.embedder).with_overrides(settings.join_threshold, settings.merge_threshold)

    @app.agent(embedded, concurrency=1)
    @fail_fast(app)
    async def cluster(agent_stream: faust.StreamT) -> None:
        """The shard's single writer: re-order by event time, decide, checkpoint, publish."""
        stream = cast(faust.Stream, cast(faust.Stream, agent_stream).noack())
        loop = asyncio.get_running_loop()
        step = ClusterStep[Packed[EventT]](model, settings.cluster_config(), tables, settings.allowed_lateness_seconds)
        rt.step = step
        acks = OrderedAcks(stream)
        rt.acks.append(acks)
        last_event: list[EventT] = []  # table writes need an event of the shard's partition
        ingested: dict[str, float] = {}  # article id -> when the embed stage read it, for latency

        publishing: list[asyncio.Future[None]] = []  # the last step's outputs, still in flight

        async def decide(flush: bool) -> None:
            # Table writes go to the changelog partition of the current event; this task has none
            # of its own, so name one (every event here is from the shard's single partition).
            stream._set_current_event(last_event[-1])
            if not step.restored:
                log.info("cluster state restored: %d active stories", step.restore())
                rt.snapshots = {sid: step.snapshot(sid, time.time()) for sid in step.clusterer.stories}
            started = time.perf_counter()

            decided = await loop.run_in_executor(rt.cluster_pool, step.decide, flush)
            metrics.REORDER_BUFFER.set(len(step.buffer))
            if not decided:
                return
            stream._set_current_event(last_event[-1])
            # Two-phase checkpoint (stream/cluster_step.py): records, stored; then the commit mark,
            # stored; only then outputs and acks. A crash anywhere in between is rolled back on restore.
            stored = time.perf_counter()
            out = step.checkpoint(decided, time.time())
            await flush_all(app.producer)
            step.commit()
            await flush_all(app.producer)
            metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - stored)
            metrics.CLUSTER_SECONDS.observe(time.perf_counter() - started)
            # The outputs are published and the inputs acknowledged while the next step decides: the
            # decide thread no longer idles through their delivery. Steps publish in order (each waits
            # for the one before), and a failed publication surfaces at the next step.
            previous = publishing.pop() if publishing else None
            publishing.append(asyncio.ensure_future(publish(out, previous, acks.epoch)))
            if previous is not None and previous.done():
                previous.result()

        async def publish(out: StepOutput[Packed[EventT]], previous: asyncio.Future[None] | None, epoch: int) -> None:
            if previous is not None:
                await previous
            now = time.time()
            sent: list[Awaitable[Any]] = []
            for d in out.decisions:
                since = ingested.pop(d.assignment.article_id, now)
                metrics.ASSIGNMENT_LATENCY.observe(now - since)
                for _ in d.alerts:
                    metrics.ALERT_LATENCY.observe(now - since)
                record = {**d.assignment.to_dict(), "processed_at": now, "late": d.late, "input": d.token.input}
                sent.append(await outputs.send(ASSIGNMENTS, d.assignment.article_id.encode(), encode(record)))
                if d.new:
                    metrics.ASSIGNMENTS.labels(decision=d.assignment.decision).inc()
                    if d.late:
                        metrics.LATE.inc()
                else:
                    metrics.DUPLICATES.inc()
                for alert in d.alerts:
                    sent.append(await outputs.send(ALERTS, alert.id.encode(), encode(alert.to_dict())))
                    metrics.ALERTS.labels(type=alert.type).inc()
                    rt.alerts = (rt.alerts + [alert.to_dict()])[-200:]
                    rt.live.publish("alert", alert.to_dict())
            for snap in out.snapshots:
                sent.append(await outputs.send(STORIES, snap["id"].encode(), encode(snap)))
                if snap["status"] in ("expired", "merged"):
                    rt.snapshots.pop(snap["id"], None)
                else:
                    rt.snapshots[snap["id"]] = snap
                rt.live.publish("story", snap)
            metrics.ACTIVE_STORIES.set(len(step.clusterer.stories))
            metrics.ACTIVE_EVENTS.set(step.clusterer.active_events)
            await delivered(sent)  # outputs stored before the inputs are acknowledged
            for d in out.decisions:  # a message is done when every article it carried is
                await acks.done(d.token.event, epoch)

        async def handle(events: list[EventT]) -> None:
            last_event[:] = events[-1:]
            for event in events:
                records = unpack_records(event.value)
                acks.track(event, parts=len(records))
                for record in records:
                    ingested[record["id"]] = float(record.get("ingested_at", time.time()))
                    step.offer(ArticleFeatures.from_dict(record), Packed(event, record.get("input")))
                if not records:
                    await acks.done(event)
            await decide(flush=False)

        async def on_idle() -> None:
            if len(step.buffer) and last_event:
                await decide(flush=True)
            if publishing and publishing[-1].done():
                publishing.pop().result()  # surface a failed publication

        await run_batched(stream, settings.cluster_batch_size, handle, settings.reorder_idle_seconds, on_idle)

    @app.agent(alerts)
    @fail_fast(app)
    async def deliver(agent_stream: faust.StreamT) -> None:
        """Hand each alert to the webhook sender; acknowledge it once every endpoint is done with it."""
        stream = cast(faust.Stream, cast(faust.Stream, agent_stream).noack())

        async def dead(endpoint: WebhookEndpoint, alert: dict[str, Any], reason: str) -> None:
            record = {
                "alert": alert,
                "endpoint": endpoint.label,
                "url": endpoint.safe_url,
                "reason": reason,
                "failed_at": time.time(),
            }
            await webhook_deadletter.send(key=str(alert["id"]).encode(), value=record)

        policy = RetryPolicy(
            attempts=settings.webhook_attempts,
            max_delay=settings.webhook_max_delay_seconds,
            timeout=settings.webhook_timeout_seconds,
            concurrency=settings.webhook_concurrency,
        )
        sender = WebhookSender(
            endpoints, dead, policy, on_outcome=lambda outcome: metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
        )
        await sender.start()
        acks = OrderedAcks(stream)
        rt.acks.append(acks)
        try:
            async for event in stream.events():
                acks.track(event)

                async def ack(event: EventT = event) -> None:
                    await acks.done(event)

                if not sender.submit(cast(dict[str, Any], event.value), ack):
                    await ack()
        finally:
            await sender.stop()

    @app.page("/")
    async def dashboard(web: Any, request: Any) -> Any:
        return web.html(DASHBOARD.read_text())

    @app.page("/api/stories")
    async def api_stories(web: Any, request: Any) -> Any:
        top = sorted(rt.snapshots.values(), key=lambda s: (-s["articles"], s["id"]))[:100]
        return web.json({"stories": top})

    @app.page("/api/alerts")
    async def api_alerts(web: Any, request: Any) -> Any:
        return web.json({"alerts": list(reversed(rt.alerts))})

    @app.page("/api/events")
    async def api_events(web: Any, request: Any) -> Any:
        """Server-sent events: ``story`` (a snapshot) and ``alert``, as they are published."""
        return await rt.live.stream(request)
