"""The embed stage's child process: what it returns per line, and that it never outlives its worker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from models.article import parse_article
from models.features import ArticleFeatures
from stream.embed_process import EmbeddedBatch, EmbedPool, embed_lines

GOOD = {"id": "a1", "title": "Gunmen attack Moscow concert hall", "published_at": "2024-03-22T18:00:00Z"}


def test_each_line_gets_its_record_or_its_reason(static):
    raws = [
        json.dumps(GOOD).encode(),
        b"\xff\xfe not utf-8",
        b'{"id": "a2"}',
        json.dumps({**GOOD, "id": "a3"}).encode(),
    ]
    refs = [f"articles/0/{i}" for i in range(4)]
    out = embed_lines(static, raws, refs, 123.0)
    assert len(out) == 4
    assert isinstance(out[1], str) and out[1].startswith("not UTF-8")
    assert isinstance(out[2], str) and "missing field 'title'" in out[2]
    first, last = (json.loads(out[i]) for i in (0, 3))  # type: ignore[arg-type]
    assert (first["id"], first["input"], first["ingested_at"]) == ("a1", "articles/0/0", 123.0)
    assert last["input"] == "articles/0/3"
    assert "vector_b64" in first and first["terms"]


CHILD_OF_KILLED_PARENT = """
import asyncio, os, sys
from stream.embed_process import EmbedPool
p = EmbedPool("static", processes=2)
asyncio.run(p.warm_up())
print(" ".join(str(c.pid) for c in __import__("multiprocessing").active_children()), flush=True)
import time; time.sleep(600)
"""


def test_the_child_exits_when_the_worker_is_killed(static):
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD_OF_KILLED_PARENT], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        line = parent.stdout.readline()  # type: ignore[union-attr]
        children = [int(p) for p in line.split()]
        assert len(children) == 2, f"warm_up started {children}, not one process per encoder"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        alive = children
        while alive and time.monotonic() < deadline:
            alive = [c for c in children if _alive(c)]
            time.sleep(0.2)
        assert not alive, f"embed process {alive} outlived its killed worker"
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has exited; only its parent's reaper is missing
    except FileNotFoundError:
        return False


def test_vectors_survive_the_trip(static):
    out = embed_lines(static, [json.dumps(GOOD).encode()], ["articles/0/0"], 0.0)
    f = ArticleFeatures.from_dict(json.loads(out[0]))
    direct = static.encode([parse_article(json.dumps(GOOD)).embedding_text()])[0]
    assert np.array_equal(f.vector, direct)  # exact float32 bytes, not a rounded copy


def test_a_pool_shares_every_batch_among_its_processes_and_keeps_it_whole_and_in_order(static):
    async def run() -> list[EmbeddedBatch]:
        pool = EmbedPool("static", processes=2)
        try:
            await pool.warm_up()
            lines = [json.dumps({**GOOD, "id": f"a{i}"}).encode() for i in range(8)]
            lines[4] = b"{not json"  # a bad line keeps its place in its shard
            sizes = [(0, 5), (5, 6), (6, 8)]  # an odd batch, a single line, a pair
            return await asyncio.gather(
                *(pool.embed(lines[a:b], [f"articles/0/{j}" for j in range(a, b)], 0.0) for a, b in sizes)
            )
        finally:
            pool.stop()

    batches = asyncio.run(run())
    ids = [[json.loads(o)["id"] if isinstance(o, bytes) else "bad" for o in b.outcomes] for b in batches]
    assert ids == [["a0", "a1", "a2", "a3", "bad"], ["a5"], ["a6", "a7"]]
    inputs = [json.loads(o)["input"] for o in batches[0].outcomes if isinstance(o, bytes)]
    assert inputs == [f"articles/0/{j}" for j in range(4)]  # each record keeps its own source offset
    assert len(set(batches[0].pids)) == 2 and len(set(batches[2].pids)) == 2, "both processes take a shard"
    assert len(batches[1].pids) == 1
