"""Hostile input: every line is either an article (possibly normalised) or a dead letter with a reason.

Properties (hypothesis) pin the contract of ``parse_article`` on arbitrary bytes and JSON; the corpus
test sends the documented hostile cases through the real broker and worker and counts that nothing
is lost: lines in = lines processed + lines dead-lettered, and the worker is still up at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from models.article import MAX_TEXT_CHARS, MAX_TITLE_CHARS, Article, ArticleError, parse_article
from tests.conftest import REPO, SAMPLE

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("id", "title", "text", "body", "published_at", "source", "url", "lang")


def outcome(raw: bytes | str | dict) -> Article | ArticleError:
    """The only two outcomes allowed: an Article, or an ArticleError with a one-line reason."""
    try:
        return parse_article(raw)
    except ArticleError as exc:
        assert exc.reason and "\n" not in exc.reason
        return exc


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_an_article_or_a_reason(raw: bytes):
    outcome(raw)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_any_json_object_is_an_article_or_a_reason(data: dict):
    result = outcome(json.dumps(data).encode())
    if isinstance(result, Article):
        assert result.id and result.title
        assert "\x00" not in result.title + result.text + result.id


@settings(max_examples=150, deadline=None)
@given(title=st.text(min_size=1, max_size=2500), text=st.text(max_size=30_000))
def test_strings_are_cleaned_and_bounded_never_rejected_for_content(title: str, text: str):
    raw = {"id": "a", "title": title, "text": text, "published_at": "2024-03-22T18:00:00Z"}
    result = outcome(raw)
    if isinstance(result, ArticleError):  # only an empty title may be refused
        assert "title" in result.reason and not title.replace("\x00", "").strip()
        return
    assert len(result.title) <= MAX_TITLE_CHARS and len(result.text) <= MAX_TEXT_CHARS
    assert "\x00" not in result.title + result.text
    assert result.truncated == (len(title) > MAX_TITLE_CHARS or len(text) > MAX_TEXT_CHARS)


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_dates_outside_the_plausible_range_are_refused(when: datetime):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    raw = {"id": "a", "title": "t", "published_at": when.isoformat()}
    result = parse_article(raw, now=now.timestamp()) if _plausible(when, now) else _refused(raw, now)
    assert isinstance(result, Article) and result.published_at == when


def _plausible(when: datetime, now: datetime) -> bool:
    return datetime(1970, 1, 1, tzinfo=UTC) <= when <= now + timedelta(hours=24)


def _refused(raw: dict, now: datetime) -> Article:
    try:
        parse_article(raw, now=now.timestamp())
    except ArticleError as exc:
        assert "published_at" in exc.reason
        return Article.model_validate(raw)  # the date itself parses: the range is what is refused
    raise AssertionError(f"{raw['published_at']} was accepted")


def hostile_corpus(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The sample's first 40 articles plus the hostile cases; returns the file and the expected dead letters
    (a fragment of the raw line -> a word its reason must contain)."""
    good = SAMPLE.read_text().splitlines()[:40]
    first = json.loads(good[0])
    base = {"source": "drill", "published_at": first["published_at"]}
    lines: list[bytes] = [line.encode() for line in good]
    normalised = [
        {"id": "nul-bytes", "title": "Quake\x00 hits\x00 Chile", **base},
        {"id": "huge-body", "title": "A very long article", "text": "word " * 2_100_000, **base},  # ~10 MB
        {"id": "markup", "title": "<img src=x onerror=alert(1)><script>alert(2)</script>", **base},
        {"id": first["id"], "title": "Same id, other content", **base},  # the first one wins
        {"id": "extra-fields", "title": "Kept extras", "category": "b", "nested": {"x": [1]}, **base},
    ]
    lines += [json.dumps(a).encode() for a in normalised]
    dead = {
        "{not json": "JSON",
        '"title": 42': "title",
        '"id": ["x"]': "id",
        '"missing-title"': "title",
        '"missing-date"': "published_at",
        '"bad-date"': "published_at",
        '"far-future"': "published_at",
        '"ancient"': "published_at",
        '"blank-title"': "title",
        "[1, 2, 3]": "object",
    }
    lines += [
        b"{not json",
        json.dumps({"id": "wrong-type", "title": 42, **base}).encode(),
        json.dumps({"id": ["x"], "title": "list id", **base}).encode(),
        json.dumps({"id": "missing-title", **base}).encode(),
        json.dumps({"id": "missing-date", "title": "No date"}).encode(),
        json.dumps({"id": "bad-date", "title": "Bad date", "published_at": "yesterday"}).encode(),
        json.dumps({"id": "far-future", "title": "From the future", "published_at": "2999-01-01T00:00:00Z"}).encode(),
        json.dumps({"id": "ancient", "title": "Ancient", "published_at": "1066-10-14T09:00:00Z"}).encode(),
        json.dumps({"id": "blank-title", "title": "   ", **base}).encode(),
        b"[1, 2, 3]",
        b'{"id": "latin1", "title": "caf\xe9", "published_at": "2014-03-10T17:00:00Z"}',  # not UTF-8
    ]
    dead['"latin1"'] = "UTF-8"
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, dead


def test_hostile_corpus_through_the_worker_loses_nothing(tmp_path: Path):
    path, dead = hostile_corpus(tmp_path)
    out = tmp_path / "assignments.jsonl"
    letters = tmp_path / "deadletters.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", "demo", "--input", str(path), "--embedder", "static", "--until-idle",
         "--json", "--assignments", str(out), "--deadletters", str(letters), "--timeout", "300"],
        cwd=REPO, env={**os.environ, "STORYWIRE_REORDER_IDLE_SECONDS": "2"}, capture_output=True, text=True,
        timeout=420,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    n_lines = len(path.read_bytes().splitlines())
    assert summary["articles_in"] == n_lines == summary["processed"] + summary["deadletters"]
    assert summary["deadletters"] == len(dead)
    assert summary["assignments"] == 40 + 4  # the repeated id is processed, answered with the first assignment
    reasons = [json.loads(line) for line in letters.read_text().splitlines()]
    for fragment, word in dead.items():
        (match,) = [r for r in reasons if fragment in r["raw"]]
        assert word.lower() in match["reason"].lower(), (fragment, match["reason"])
    assigned = {json.loads(line)["id"] for line in out.read_text().splitlines()}
    assert {"nul-bytes", "huge-body", "markup", "extra-fields"} <= assigned
