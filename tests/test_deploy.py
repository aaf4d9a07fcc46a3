"""The production shape validates: docker-compose (Debian's 1.29, installed by .ci/run) parses the
compose file without a container engine, and what it points at exists and matches the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import yaml

from tests.conftest import REPO


def compose_config() -> dict:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (apt-get install docker-compose; .ci/run does it)"
    proc = subprocess.run([exe, "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_file_validates_and_wires_kafka_worker_prometheus_grafana():
    config = compose_config()
    services = config["services"]
    assert {"kafka", "embedder", "worker", "prometheus", "grafana"} <= set(services)
    # The two stages as two services: each runs only its role, and each consumes in its own group.
    assert services["embedder"]["command"][:4] == ["storywire", "worker", "--role", "embed"]
    assert services["worker"]["command"][:4] == ["storywire", "worker", "--role", "cluster"]
    assert services["embedder"]["environment"] == services["worker"]["environment"]
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    worker_env = services["worker"]["environment"]
    assert worker_env["STORYWIRE_BROKER"] == "kafka://kafka:9092"
    assert worker_env["STORYWIRE_STORE"] == "rocksdb://"
    assert worker_env["STORYWIRE_LOCAL_BROKER"] == "0"  # no tansu workarounds against real Kafka
    for scaled in ("worker", "embedder"):
        assert "ports" not in services[scaled], f"a published port breaks --scale {scaled}=N"
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    scraped = {name for job in scrape for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
    assert {"worker", "embedder"} <= scraped, "Prometheus must scrape both stages"
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            assert (REPO / source).exists() or source.startswith("/"), source


def test_worker_env_names_only_real_settings():
    from stream.settings import Settings

    fields = {f"STORYWIRE_{name.upper()}" for name in Settings.model_fields}
    names = {line.split("=")[0] for line in (REPO / "deploy" / "worker.env").read_text().splitlines()}
    names = {n for n in names if n.startswith("STORYWIRE_")}
    assert names and names <= fields, names - fields


def test_grafana_dashboard_queries_metrics_the_worker_exports():
    from faust.sensors.prometheus import FaustMetrics
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from stream import metrics

    exported = {m.describe()[0].name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
    faust_registry = CollectorRegistry()
    FaustMetrics.create(faust_registry, "storywire_faust")  # what setup_prometheus_sensors registers
    exported |= {m.name for m in faust_registry.collect()}
    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "storywire.json").read_text())
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"storywire_[a-z_]+", target["expr"])
    }
    assert used and used <= exported, used - exported
