"""The embed stage's CPU work in a child process: parse, validate, embed and encode a micro-batch.

Why a process and not a thread: the cluster step, the event loop and the embedder shared one
interpreter lock. Profiling a static-embedder burst (py-spy) showed the cluster thread spending
3.2× its in-process time, mostly waiting to get the lock back after each numpy call released it,
while the embed thread tokenised and pooled. In a child process the embed stage runs on the other
core; the worker only moves bytes: raw input lines go in, ``embedded`` records (or the reason a
line is invalid) come out.

The child ignores Ctrl-C (the worker stops it) and exits on its own when the worker dies, even by
SIGKILL, so no orphan keeps a model in memory.

Several single-threaded children rather than one multi-threaded one: on the sample's titles
(600, micro-batches of 128, this 2-core machine) one MiniLM process with two threads encoded 158
texts/s at 80 texts per CPU-second; two processes with one thread each 182 texts/s at 97 per
CPU-second. Intra-op threads on short texts spend their time at barriers; separate micro-batches
in separate processes do not, and leave more CPU for the rest of the pipeline.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from models.article import Article, ArticleError, parse_article
from models.embedders import Embedder, load_embedder
from models.features import featurize_batch
from stream.outputs import encode

# What the child returns per input line: the encoded ``embedded`` record, or why the line is invalid.
Outcome = bytes | str


@dataclass(frozen=True, slots=True)
class EmbeddedBatch:
    outcomes: list[Outcome]  # one per input line, in order
    seconds: float  # the children's time on the batch, summed (the embed stage's cost, without queueing)
    pids: tuple[int, ...]  # the children that embedded its shards, in order


_embedder: Embedder | None = None  # the child's embedder, loaded once by _start


def embed_lines(embedder: Embedder, raws: list[bytes], refs: list[str], ingested_at: float) -> list[Outcome]:
    """Validate and embed one micro-batch; ``refs`` (``topic/partition/offset``) travel with each record."""
    valid: list[Article] = []
    at: list[int] = []
    outcomes: list[Outcome] = []
    for i, raw in enumerate(raws):
        try:
            valid.append(parse_article(raw))
            at.append(i)
            outcomes.append(b"")
        except ArticleError as exc:
            outcomes.append(exc.reason)
    for i, f in zip(at, featurize_batch(valid, embedder) if valid else []):
        outcomes[i] = encode({**f.to_dict(), "ingested_at": ingested_at, "input": refs[i]})
    return outcomes


def _start(embedder: str, threads: int | None, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    global _embedder
    _embedder = load_embedder(embedder, threads=threads)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _embed_in_child(raws: list[bytes], refs: list[str], ingested_at: float) -> EmbeddedBatch:
    assert _embedder is not None, "the embed process was not started by EmbedProcess"
    started = time.perf_counter()
    outcomes = embed_lines(_embedder, raws, refs, ingested_at)
    return EmbeddedBatch(outcomes, time.perf_counter() - started, (os.getpid(),))


def _loaded() -> str:
    assert _embedder is not None
    return _embedder.name


class EmbedPool:
    """``processes`` children that each hold the embedder (with ``threads`` encoder threads); started
    on first use (or :meth:`warm_up`).

    Each micro-batch is cut into one contiguous shard per child, the least busy first. Why not whole
    batches to alternate children: a burst then ends with one child finishing the last batch while
    the other idles (with MiniLM on article-length texts a 128-article batch is ~10 s of one core),
    and a lone batch at a live feed's pace waits for one core when two are free. Measured in
    ``bench/stream_speed.py`` (README, Speed)."""

    def __init__(self, embedder: str, processes: int = 1, threads: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")  # not fork: the worker has threads a fork would copy mid-flight
        self._children = [
            ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_start, initargs=(embedder, threads, os.getpid())
            )
            for _ in range(processes)
        ]
        self._inflight = [0] * processes

    async def warm_up(self) -> None:
        """Start the children and load the model, so the first batches do not wait for it."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(child, _loaded) for child in self._children))

    async def embed(self, raws: list[bytes], refs: list[str], ingested_at: float) -> EmbeddedBatch:
        shards = max(1, min(len(self._children), len(raws)))
        children = sorted(range(len(self._children)), key=self._inflight.__getitem__)[:shards]
        bounds = [len(raws) * j // shards for j in range(shards + 1)]
        parts = await asyncio.gather(
            *(
                self._on(child, raws[lo:hi], refs[lo:hi], ingested_at)
                for child, lo, hi in zip(children, bounds, bounds[1:])
            )
        )
        return EmbeddedBatch(
            [o for part in parts for o in part.outcomes],
            sum(part.seconds for part in parts),
            tuple(pid for part in parts for pid in part.pids),
        )

    async def _on(self, child: int, raws: list[bytes], refs: list[str], ingested_at: float) -> EmbeddedBatch:
        self._inflight[child] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._children[child], _embed_in_child, raws, refs, ingested_at
            )
        finally:
            self._inflight[child] -= 1

    def stop(self) -> None:
        for child in self._children:
            child.shutdown(wait=False, cancel_futures=True)
