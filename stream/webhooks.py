"""Signed webhook delivery: one queue and one sender task per endpoint, so a slow or dead endpoint
delays only itself, never the pipeline or the other endpoints.

Every POST carries the alert as JSON, ``X-Storywire-Delivery: <alert id>`` (receivers de-duplicate
on it) and ``X-Storywire-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
Failures are retried with exponential backoff and full jitter (``Retry-After`` honoured); after the
last attempt the delivery goes to the webhook dead-letter sink with its reason.

>>> header = sign("s3cret", b'{"id":"a1"}', 1700000000)
>>> header.startswith("t=1700000000,v1=")
True
>>> verify("s3cret", header, b'{"id":"a1"}', now=1700000100)
True
>>> verify("wrong", header, b'{"id":"a1"}', now=1700000100)
False
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from models.alerts import SEVERITY

log = logging.getLogger("storywire.webhooks")

Done = Callable[[], Awaitable[None]]
DeadLetter = Callable[["WebhookEndpoint", dict[str, Any], str], Awaitable[None]]


def sign(secret: str, body: bytes, t: int) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float | None = None, tolerance: float = 300) -> bool:
    """What a receiver does: recompute the HMAC over ``"<t>.<body>"`` and reject stale timestamps."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, t), header)


def redact(url: str) -> str:
    """What logs and dead letters may show of a webhook URL: scheme, host and port. Credentials
    (``user:pass@``), paths and queries often carry the receiver's token (Slack's do), so they never leave.

    >>> redact("https://hooks.example.com/services/T0/B0/XXXX?token=1")
    'https://hooks.example.com/…'
    >>> redact("http://user:pw@127.0.0.1:8080")
    'http://127.0.0.1:8080'
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    netloc = f"{host}:{parts.port}" if parts.port else host
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{netloc}{hidden}"


@dataclass(frozen=True)
class WebhookEndpoint:
    """One receiver from operator configuration (never from input)."""

    url: str = field(repr=False)  # may embed a token: logs show redact(url)
    secret: str = field(repr=False)  # never printed, never logged
    types: frozenset[str] = frozenset()  # empty: every alert type
    min_severity: str = "info"
    format: Literal["json", "slack"] = "json"
    name: str = ""  # the operator's label for logs and dead letters (default: the redacted URL)

    @property
    def safe_url(self) -> str:
        return redact(self.url)

    @property
    def label(self) -> str:
        return self.name or self.safe_url

    def wants(self, alert: dict[str, Any]) -> bool:
        if self.types and alert["type"] not in self.types:
            return False
        return SEVERITY.get(alert["severity"], 0) >= SEVERITY.get(self.min_severity, 0)

    def body(self, alert: dict[str, Any]) -> bytes:
        if self.format == "slack":
            text = f"*[{alert['severity']}] {alert['type']}* — {alert['title']}\n{alert['summary']}"
            return json.dumps({"text": text, "alert": alert}).encode()
        return json.dumps(alert, sort_keys=True).encode()

    @classmethod
    def parse_list(cls, raw: str) -> list[WebhookEndpoint]:
        """``[{"url": ..., "secret": ..., "types": [...], "min_severity": ..., "format": ...}, ...]``."""
        items = json.loads(raw)
        if not isinstance(items, list):
            raise ValueError("webhooks must be a JSON list of {url, secret, ...} objects")
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("each webhook must be a JSON object {url, secret, ...}")
            url = str(item.get("url", ""))
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook url must start with http:// or https://, got {redact(url)!r}")
            severity = item.get("min_severity", "info")
            if severity not in SEVERITY:
                raise ValueError(f"webhook min_severity must be one of {sorted(SEVERITY)}, got {severity!r}")
            out.append(
                cls(url, str(item.get("secret", "")), frozenset(item.get("types", [])), severity,
                    item.get("format", "json"), str(item.get("name", "")))
            )  # fmt: skip
        return out


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 5.0
    concurrency: int = 4  # deliveries in flight per endpoint: one slow request does not hold the queue

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)]; Retry-After wins when given."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class _Job:
    alert: dict[str, Any]
    done: Callable[[], Awaitable[None]]


class WebhookSender:
    """Start once on the running loop; :meth:`submit` never waits for HTTP."""

    def __init__(
        self,
        endpoints: list[WebhookEndpoint],
        dead_letter: DeadLetter,
        policy: RetryPolicy | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.dead_letter = dead_letter
        self.policy = policy or RetryPolicy()
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.delivered = 0
        self._queues: list[asyncio.Queue[_Job]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.policy.timeout))
        for endpoint in self.endpoints:
            queue: asyncio.Queue[_Job] = asyncio.Queue()
            self._queues.append(queue)
            for _ in range(self.policy.concurrency):
                self._tasks.append(asyncio.ensure_future(self._run(endpoint, queue)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def submit(self, alert: dict[str, Any], done: Done | None = None) -> int:
        """Queue ``alert`` for every endpoint that wants it and return how many; ``done`` runs once all
        of them have finished (never, when the answer is 0: the caller has nothing to wait for)."""
        targets = [q for e, q in zip(self.endpoints, self._queues) if e.wants(alert)]
        remaining = len(targets)

        async def one_finished() -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0 and done is not None:
                await done()

        for queue in targets:
            queue.put_nowait(_Job(alert, one_finished))
        return len(targets)

    async def _run(self, endpoint: WebhookEndpoint, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._deliver(endpoint, job.alert)
            finally:
                await job.done()

    async def _deliver(self, endpoint: WebhookEndpoint, alert: dict[str, Any]) -> None:
        assert self._session is not None, "start() the sender first"
        body = endpoint.body(alert)
        reason = ""
        for attempt in range(self.policy.attempts):
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "storywire-webhooks/1",
                "X-Storywire-Delivery": alert["id"],
                "X-Storywire-Signature": sign(endpoint.secret, body, int(time.time())),
            }
            retry_after: float | None = None
            try:
                async with self._session.post(endpoint.url, data=body, headers=headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.delivered += 1
                        self.on_outcome("delivered")
                        return
                    reason = f"HTTP {resp.status}"
                    if resp.status < 500 and resp.status not in (408, 429):
                        break  # the receiver refused this alert: retrying will not change that
                    if resp.headers.get("Retry-After", "").isdigit():
                        retry_after = float(resp.headers["Retry-After"])
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}".replace(endpoint.url, endpoint.safe_url)[:200]
            if attempt + 1 < self.policy.attempts:
                self.on_outcome("retried")
                await asyncio.sleep(self.policy.delay(attempt, retry_after))
        log.warning("webhook %s failed for alert %s (%s): dead-lettered", endpoint.label, alert["id"], reason)
        self.on_outcome("dead_lettered")
        await self.dead_letter(endpoint, alert, reason)
