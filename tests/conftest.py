"""Shared fixtures. The real MiniLM model is loaded once per session (it is the default path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SEED_STREAM = REPO / "tests" / "data" / "seed-stream.jsonl"
SAMPLE = REPO / "data" / "sample-news.jsonl"


@pytest.fixture(scope="session")
def minilm():
    from models.embedders import load_embedder

    return load_embedder("minilm")


@pytest.fixture(scope="session")
def static():
    from models.embedders import load_embedder

    return load_embedder("static")
