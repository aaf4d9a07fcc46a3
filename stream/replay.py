"""``storywire replay``: publish a JSON-lines file of articles to the ``articles`` topic.

A historical replay is sent in event-time order (``published_at``, then id) with each record's
original timestamp and its id as key, so partitions keep per-story order. Lines that are not valid
articles are sent first, exactly as they are: the pipeline's dead-letter path must see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer
from kafka.errors import KafkaError
from rich.console import Console

from models.article import ArticleError, parse_article
from stream.progress import progress_bar

TOPIC = "articles"
# Articles over Kafka's usual 1 MB happen (a 10 MB body is truncated by the worker, not refused):
# the producer may send records up to this size; a broker with a lower limit refuses them, and the
# replay reports each refusal instead of dropping it silently.
MAX_RECORD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Line:
    raw: bytes
    key: bytes | None
    timestamp: float | None  # epoch seconds; None: not a valid article


@dataclass(frozen=True)
class ReplaySummary:
    sent: int
    invalid: int
    seconds: float
    failed: int = 0  # lines the broker did not take (each reported on stderr)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def read_lines(path: Path) -> list[Line]:
    """Every non-blank line, invalid ones first (in file order), then articles in event-time order."""
    bad: list[Line] = []
    good: list[tuple[float, str, Line]] = []
    with path.open("rb") as handle:
        for raw in handle:
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                article = parse_article(raw)
            except ArticleError:
                bad.append(Line(raw, None, None))
                continue
            good.append((article.timestamp, article.id, Line(raw, article.id.encode(), article.timestamp)))
    good.sort(key=lambda x: (x[0], x[1]))
    return bad + [line for _, _, line in good]


def bootstrap_of(broker: str) -> str:
    """``kafka://host:port[;kafka://host2:port]`` (Faust's form) to kafka-python's ``host:port,...``."""
    return ",".join(part.strip().removeprefix("kafka://") for part in broker.replace(";", ",").split(","))


def replay(
    path: Path,
    broker: str,
    rate: float | None = None,
    speed: float | None = None,
    console: Console | None = None,
    progress: bool = True,
    delivery_timeout: float = 120.0,
) -> ReplaySummary:
    """Send ``path``; pace by ``rate`` articles/s, or by event time sped up ``speed`` times, or not at all."""
    lines = read_lines(path)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_of(broker),
        acks="all",
        linger_ms=5,
        delivery_timeout_ms=int(delivery_timeout * 1000),
        max_request_size=MAX_RECORD_BYTES,
        max_block_ms=int(delivery_timeout * 1000),  # a broker down for a while: keep trying this long
    )
    console = console or Console(stderr=True)
    failures: list[str] = []

    def failed(line_no: int) -> Callable[[Exception], None]:
        def report(exc: Exception) -> None:
            failures.append(f"line {line_no}: not sent: {type(exc).__name__}: {exc}")

        return report

    first_ts = next((line.timestamp for line in lines if line.timestamp is not None), None)
    start = time.perf_counter()
    with progress_bar(console, disable=not progress) as bar:
        task = bar.add_task("replay", total=len(lines))
        for i, line in enumerate(lines):
            due = None
            if rate:
                due = start + i / rate
            elif speed and line.timestamp is not None and first_ts is not None:
                due = start + (line.timestamp - first_ts) / speed
            if due is not None and (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            ts_ms = int(line.timestamp * 1000) if line.timestamp is not None else None
            try:
                future = producer.send(TOPIC, value=line.raw, key=line.key, timestamp_ms=ts_ms)
                future.add_errback(failed(i + 1))
            except KafkaError as exc:  # too large for the producer, or no broker within max_block_ms
                failed(i + 1)(exc)
            bar.advance(task)
        producer.flush()
    producer.close()
    for message in failures[:20]:
        console.print(f"[red]{message}[/red]")
    if len(failures) > 20:
        console.print(f"[red]... and {len(failures) - 20} more lines not sent[/red]")
    invalid = sum(1 for line in lines if line.timestamp is None)
    return ReplaySummary(len(lines) - len(failures), invalid, time.perf_counter() - start, len(failures))
