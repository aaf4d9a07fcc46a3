"""Webhook delivery against real local HTTP servers (aiohttp), and end to end through the demo."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import web

from stream.broker import free_port
from stream.webhooks import RetryPolicy, WebhookEndpoint, WebhookSender, verify
from tests.conftest import REPO, SEED_STREAM

# One delivery in flight: the scripted receivers answer in order.
FAST = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2, timeout=0.5, concurrency=1)


def alert(i: int, type_: str = "story.new", severity: str = "low") -> dict[str, Any]:
    return {"id": f"a{i}", "type": type_, "story_id": "s1", "severity": severity, "title": "t", "summary": "s",
            "evidence": ["x"], "created_at": 1.0}  # fmt: skip


class Receiver:
    """An aiohttp server whose behaviour per request is scripted by ``plan`` (status codes or 'sleep')."""

    def __init__(self, plan: list[Any] | None = None) -> None:
        self.plan = list(plan or [])
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.port = free_port()
        self.in_flight = self.peak = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        step = self.plan.pop(0) if self.plan else 200
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if step == "sleep":
            await asyncio.sleep(2)
        self.in_flight -= 1
        self.got.append((dict(request.headers), body))
        status = 200 if step == "sleep" else int(step)
        return web.Response(status=status, headers={"Retry-After": "0"} if status == 429 else {})

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


async def run_sender(endpoints, alerts, wait=5.0, policy=FAST):
    dead: list[tuple[str, str, str]] = []
    done: list[str] = []

    async def on_dead(endpoint, a, reason):
        dead.append((endpoint.url, a["id"], reason))

    sender = WebhookSender(endpoints, on_dead, policy)
    await sender.start()
    for a in alerts:

        async def finished(a=a):
            done.append(a["id"])

        if not sender.submit(a, finished):  # no endpoint wants it: nothing to wait for
            done.append(a["id"])
    deadline = time.monotonic() + wait
    while len(done) < len(alerts) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await sender.stop()
    return sender, dead, done


def test_signed_delivery_verifies_and_retries_500_and_timeouts():
    async def go():
        async with Receiver([500, "sleep", 200]) as rx:
            sender, dead, done = await run_sender([WebhookEndpoint(rx.url, "k3y")], [alert(1)])
            return rx, sender, dead, done

    rx, sender, dead, done = asyncio.run(go())
    assert done == ["a1"] and not dead and sender.delivered == 1
    assert len(rx.got) == 3  # 500, timed out, then delivered
    headers, body = rx.got[-1]
    assert headers["X-Storywire-Delivery"] == "a1"
    assert verify("k3y", headers["X-Storywire-Signature"], body)
    assert not verify("other", headers["X-Storywire-Signature"], body)
    assert json.loads(body)["id"] == "a1"


def test_dead_letter_after_last_attempt_and_no_retry_on_4xx():
    async def go():
        async with Receiver([500, 500, 500, 404]) as rx:
            return rx, *(await run_sender([WebhookEndpoint(rx.url, "k")], [alert(1), alert(2)]))

    rx, sender, dead, done = asyncio.run(go())
    assert sorted(done) == ["a1", "a2"]
    assert [(d[1], d[2]) for d in dead] == [("a1", "HTTP 500"), ("a2", "HTTP 404")]
    assert len(rx.got) == 4  # three attempts for the 500s, one for the 404


def test_filters_by_type_and_severity():
    async def go():
        async with Receiver() as rx:
            hook = WebhookEndpoint(rx.url, "k", frozenset({"story.dispute", "story.burst"}), "medium")
            alerts = [alert(1), alert(2, "story.dispute", "high"), alert(3, "story.burst", "low")]
            return rx, *(await run_sender([hook], alerts))

    rx, sender, dead, done = asyncio.run(go())
    assert [json.loads(b)["id"] for _, b in rx.got] == ["a2"]
    assert sorted(done) == ["a1", "a2", "a3"]  # filtered-out alerts need no delivery


def test_a_dead_endpoint_does_not_delay_a_healthy_one():
    async def go():
        async with Receiver() as rx:
            down = WebhookEndpoint(f"http://127.0.0.1:{free_port()}/hook", "k")  # nothing listens
            dead: list[Any] = []

            async def on_dead(e, a, r):
                dead.append(a["id"])

            sender = WebhookSender([down, WebhookEndpoint(rx.url, "k")], on_dead, RetryPolicy(4, 0.5, 1.0, 0.5))
            await sender.start()
            start = time.monotonic()
            for i in range(5):
                sender.submit(alert(i))
            while len(rx.got) < 5 and time.monotonic() - start < 5:
                await asyncio.sleep(0.01)
            healthy_done = time.monotonic() - start
            await sender.stop()
            return rx, healthy_done, dead

    rx, healthy_done, dead = asyncio.run(go())
    assert len(rx.got) == 5
    # the down endpoint needs >= 4 attempts with backoff per alert; the healthy one is not behind it
    assert healthy_done < 1.0, healthy_done
    assert dead == []  # the down endpoint was still retrying its first alert


def test_a_slow_request_does_not_hold_the_endpoint_queue():
    """Several deliveries in flight per endpoint: alerts behind a slow one are not queued behind it."""

    async def go():
        async with Receiver(["sleep"] * 4) as rx:
            policy = RetryPolicy(attempts=1, base_delay=0.05, max_delay=0.2, timeout=5, concurrency=4)
            hook = [WebhookEndpoint(rx.url, "k")]
            sender, dead, done = await run_sender(hook, [alert(i) for i in range(4)], 10, policy)
            return rx.peak, sender, dead, done

    peak, sender, dead, done = asyncio.run(go())
    assert sorted(done) == ["a0", "a1", "a2", "a3"] and not dead
    assert peak == 4


class _Collect(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collect.got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_demo_delivers_signed_alerts_for_the_seed_story(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Collect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "stream.cli", "demo", "--input", str(SEED_STREAM), "--embedder", "static",
             "--until-idle", "--json", "--webhook", url, "--webhook-secret", "s3cret", "--timeout", "300"],
            cwd=REPO, env={**os.environ, "STORYWIRE_ALLOWED_LATENESS_SECONDS": "1e9",
                           "STORYWIRE_REORDER_IDLE_SECONDS": "3"},
            capture_output=True, text=True, timeout=400,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["alerts"] >= 3
    assert summary["webhooks_delivered"] == summary["alerts"] == len(_Collect.got)
    types = set()
    for headers, body in _Collect.got:
        assert verify("s3cret", headers["X-Storywire-Signature"], body)
        types.add(json.loads(body)["type"])
    assert {"story.new", "story.development", "story.dispute"} <= types
