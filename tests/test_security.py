"""Security drill on a real worker: read-only and bounded HTTP, loopback by default, no secret in any output.

The worker gets a webhook endpoint whose URL path and secret are both secrets (as a Slack URL's token
is) and that nobody answers, so it fails, retries, logs and dead-letters: every one of those outputs
is searched for the secrets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from stream.broker import LocalBroker, free_port
from stream.demo import worker_process
from stream.replay import replay
from stream.settings import Settings
from stream.topics import WEBHOOKS_DEADLETTER, ensure_topics
from tests.conftest import REPO, SEED_STREAM

SECRET = "s3cret-" + uuid.uuid4().hex
TOKEN = "T0KEN" + uuid.uuid4().hex[:12]


def request(url: str, method: str = "GET", data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name))


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("security")
    dead_port = free_port()  # nothing listens here
    hooks = [{"url": f"http://127.0.0.1:{dead_port}/services/{TOKEN}", "secret": SECRET}]
    settings = Settings(
        embedder="static", web_port=free_port(), app_id=f"sec-{uuid.uuid4().hex[:8]}", data_dir=tmp / "w",
        webhooks=json.dumps(hooks), reorder_idle_seconds=1,
    )  # fmt: skip
    log = tmp / "worker.log"
    with LocalBroker(log_path=tmp / "broker.log") as broker:
        ensure_topics(broker.bootstrap, 4)
        with worker_process(settings, broker.url, True, log, STORYWIRE_WEBHOOK_ATTEMPTS="2") as proc:
            replay(SEED_STREAM, broker.url, progress=False)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:  # until a delivery has failed for good
                assert proc.poll() is None, log.read_text()[-2000:]
                try:
                    if metric(settings.web_port, 'storywire_webhook_deliveries_total{outcome="dead_lettered"}') >= 1:
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            else:
                pytest.fail("no webhook delivery failed within 180 s")
            yield settings, proc, log, broker


def test_api_is_read_only_and_refuses_oversized_requests(worker):
    settings, proc, _, _ = worker
    base = f"http://127.0.0.1:{settings.web_port}"
    assert request(f"{base}/api/stories") == 200
    for path in ("/", "/api/stories", "/api/alerts", "/api/events", "/metrics"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert request(base + path, method, b"{}") == 405, (method, path)
    assert request(f"{base}/api/stories", "POST", b"x" * 2_000_000) in (405, 413)
    assert request(f"{base}/api/stories?q=" + "a" * 20_000) in (400, 414)  # request line over the limit
    assert proc.poll() is None and request(f"{base}/api/stories") == 200  # still serving


def test_web_server_binds_loopback_only_by_default(worker):
    settings, _, _, _ = worker
    assert Settings().web_host == "127.0.0.1"
    assert listening_addresses(settings.web_port) == {"0100007F"}  # 127.0.0.1, nothing else


def test_no_secret_in_logs_dead_letters_or_errors(worker, tmp_path: Path):
    settings, _, log, broker = worker
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(WEBHOOKS_DEADLETTER, 0)])
    consumer.seek_to_beginning()
    letters = [r.value.decode() for rows in consumer.poll(timeout_ms=3000).values() for r in rows]
    consumer.close()
    assert letters, "the failing endpoint produced no dead letter"
    assert "127.0.0.1" in letters[0] and "reason" in json.loads(letters[0])  # says where and why...
    text = log.read_text()
    assert "127.0.0.1" in text  # ...and so does the log
    for output in [text, *letters]:
        assert SECRET not in output and TOKEN not in output
    # A configuration error names the problem, not the secret.
    bad = json.dumps([{"url": f"ftp://example.invalid/{TOKEN}", "secret": SECRET}])
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker", "--broker", broker.url],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", "STORYWIRE_WEBHOOKS": bad, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "webhook url" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr and TOKEN not in proc.stdout + proc.stderr
