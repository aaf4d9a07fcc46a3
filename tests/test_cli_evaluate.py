"""``storywire evaluate`` as a user runs it: a real process, the real default model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, SAMPLE

STORYWIRE = [sys.executable, "-m", "stream.cli"]


def storywire(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STORYWIRE, *args], cwd=REPO, capture_output=True, text=True, timeout=900)


def test_evaluate_sample_with_default_model(tmp_path: Path):
    out = tmp_path / "assignments.jsonl"
    report = tmp_path / "report"
    proc = storywire("evaluate", str(SAMPLE), "--json", "--assignments", str(out), "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in (
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
        "ami",
        "ari",
        "clusters",
        "gold_clusters",
        "articles",
        "articles_per_second",
    ):
        assert key in result
    assert result["articles"] == 420 and result["gold_clusters"] == 10
    assert result["bcubed_f1"] > 0.8, result
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 420 and {"id", "event_id", "story_id", "score", "decision"} <= rows[0].keys()
    assert {r["decision"] for r in rows} == {"new", "join"}
    assert (report / "report.md").read_text().count("|") > 20
    for png in ("stories_over_time.png", "cluster_purity.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_malformed_lines_are_reported_with_line_numbers_and_skipped(tmp_path: Path):
    lines = SAMPLE.read_text().splitlines()[:20]
    lines.insert(3, "{broken json")
    lines.insert(7, json.dumps({"id": "no-title", "published_at": "2014-03-10T17:00:00Z"}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    proc = storywire("evaluate", str(bad), "--embedder", "static", "--json", "--windowed", "20m")
    assert proc.returncode == 0, proc.stderr
    assert f"{bad}:4: skipped: not JSON" in proc.stderr
    assert f"{bad}:8: skipped: missing field 'title'" in proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["articles"] == 20 and result["skipped_lines"] == 2
    # 20 min windows sliding by 20 min over the 73 minutes of these 20 articles, each scored on its own
    assert result["windows"] >= 2 and 0 < result["windowed_bcubed_f1"] <= 1
    assert {"windowed_bcubed_precision", "windowed_bcubed_recall", "windowed_ami"} <= result.keys()


def test_missing_file_and_bad_arguments_get_one_line():
    for args, expected in [
        (("evaluate", "nope.jsonl"), "no such file: nope.jsonl"),
        (("evaluate", str(SAMPLE), "--embedder", "bert"), "invalid choice: 'bert'"),
        (("evaluate", str(SAMPLE), "--join-threshold", "3"), "--join-threshold must be between 0 and 1"),
        (("evaluate", str(SAMPLE), "--windowed", "week"), "--windowed wants a positive duration"),
    ]:
        proc = storywire(*args)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
