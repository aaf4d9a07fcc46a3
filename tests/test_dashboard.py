"""The dashboard in a real browser (Debian's chromium driven by Playwright) on a live worker."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

from playwright.sync_api import sync_playwright

from stream.broker import LocalBroker, free_port
from stream.demo import worker_process
from stream.replay import replay
from stream.settings import Settings
from stream.topics import ensure_topics
from tests.conftest import REPO, SAMPLE

XSS = "<img src=x onerror=alert(1)>"
ARTIFACTS = REPO / "tests" / "artifacts"


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), "chromium is not installed (apt-get install chromium; .ci/run does it)"
    return path


def test_stories_appear_and_update_live_and_markup_in_titles_stays_text(tmp_path: Path):
    lines = SAMPLE.read_text().splitlines()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(lines[:200]) + "\n")
    hostile = {"id": "xss-1", "published_at": "2014-03-12T06:00:00Z", "title": XSS, "text": "", "source": "evil"}
    second.write_text("\n".join(lines[200:]) + "\n" + json.dumps(hostile) + "\n")
    settings = Settings(embedder="static", web_port=free_port(), app_id=f"dash-{uuid.uuid4().hex[:8]}",
                        data_dir=tmp_path / "w")  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, 4)
        with worker_process(settings, broker.url, True, tmp_path / "worker.log"), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            url = f"http://127.0.0.1:{settings.web_port}/"
            deadline = time.monotonic() + 60
            while True:  # the worker's web server comes up a moment after the process
                try:
                    page.goto(url)
                    break
                except Exception:
                    assert time.monotonic() < deadline, "dashboard never answered"
                    time.sleep(0.5)
            loaded_at = page.evaluate("window.storywireLoadedAt")
            page.wait_for_selector("#live:has-text('live')", timeout=60_000)
            replay(first, broker.url, progress=False)
            page.wait_for_selector("article.story", timeout=120_000)
            before = page.evaluate("[...document.querySelectorAll('article.story .meta')].length")
            total_before = page.locator("#stats").inner_text()
            replay(second, broker.url, progress=False)
            page.wait_for_function(
                "t => document.querySelector('#stats').innerText !== t", arg=total_before, timeout=120_000
            )
            # The hostile headline is a story title or one of a story's headlines, depending on what
            # it joined; either way it must be there as text.
            shown_as_text = """t => [...document.querySelectorAll('article.story h2, article.story .detail li')]
                                  .some(el => el.textContent.startsWith(t))"""
            page.wait_for_function(shown_as_text, arg=XSS, timeout=120_000)
            # A card counts every source of its story, not the ten the snapshot lists by name.
            api = page.request.get(f"{url}api/stories").json()["stories"]
            assert max(s["source_count"] for s in api) > 10, "the sample has stories from more than ten sources"
            many_sources = """() => [...document.querySelectorAll('article.story .meta')]
                                  .some(m => +((m.textContent.match(/(\\d+) sources/) || [0, 0])[1]) > 10)"""
            page.wait_for_function(many_sources, timeout=30_000)
            page.locator("article.story").first.click()
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            assert page.evaluate("window.storywireLoadedAt") == loaded_at, "the page reloaded"
            assert before > 0
            assert page.locator("#stats").inner_text() != total_before
            # the hostile title is shown as text, and no element was created from it
            assert page.locator("article.story img").count() == 0
            assert not dialogs, dialogs
            browser.close()
