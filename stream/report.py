"""``--report DIR``: a Markdown summary and PNG plots a person can read at a glance."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from models.labels import keywords, story_title  # noqa: E402
from models.replay import ReplayResult  # noqa: E402


def _plot_stories_over_time(result: ReplayResult, out: Path) -> None:
    hours: dict[str, Counter[int]] = defaultdict(Counter)
    for a in result.assignments:
        hours[a.story_id][int(a.timestamp // 3600)] += 1
    top = sorted(hours, key=lambda s: -sum(hours[s].values()))[:8]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    times = [datetime.fromtimestamp(a.timestamp, UTC) for a in result.assignments]
    seen: set[str] = set()
    cumulative = []
    for a in result.assignments:
        seen.add(a.story_id)
        cumulative.append(len(seen))
    ax1.plot(times, cumulative, label="stories opened")
    ax1.plot(times, result.active_events, label="active events")
    ax1.set_ylabel("count")
    ax1.legend(loc="upper left")
    ax1.set_title("Stories over time")
    for sid in top:
        xs = sorted(hours[sid])
        ax2.plot([datetime.fromtimestamp(h * 3600, UTC) for h in xs], [hours[sid][h] for h in xs], label=sid)
    ax2.set_ylabel("articles / hour")
    ax2.legend(loc="upper left", fontsize=7, ncol=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _purity(result: ReplayResult) -> list[tuple[str, int, float]]:
    members: dict[str, Counter[str]] = defaultdict(Counter)
    for a, g in zip(result.assignments, result.gold):
        if g is not None:
            members[a.story_id][g] += 1
    rows = [(sid, sum(c.values()), c.most_common(1)[0][1] / sum(c.values())) for sid, c in members.items()]
    return sorted(rows, key=lambda r: -r[1])


def _plot_purity(rows: list[tuple[str, int, float]], out: Path) -> None:
    top = rows[:25]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar([r[0] for r in top], [r[2] for r in top], color=["tab:green" if r[2] >= 0.9 else "tab:orange" for r in top])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("purity (share of the main gold story)")
    ax.set_title("Purity of the 25 largest stories")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_report(result: ReplayResult, summary: dict[str, Any], source: Path, embedder: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_stories_over_time(result, out_dir / "stories_over_time.png")
    purity = _purity(result)
    _plot_purity(purity, out_dir / "cluster_purity.png")
    clusterer = result.clusterer
    idf = clusterer._idf
    lines = [
        f"# storywire evaluation: {source.name}",
        "",
        f"Embedder `{embedder}`, {summary['articles']} articles, "
        f"{summary['articles_per_second']} articles/s end to end.",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in summary.items()],
        "",
        "![stories over time](stories_over_time.png)",
        "",
        "![cluster purity](cluster_purity.png)",
        "",
        "## Largest active stories",
        "",
        "| story | articles | events | purity | title | keywords |",
        "|---|---|---|---|---|---|",
    ]
    purity_of = {sid: p for sid, _, p in purity}
    for story in sorted(clusterer.stories.values(), key=lambda s: -s.size)[:15]:
        title = story_title(story, idf).replace("|", "/")
        lines.append(
            f"| {story.id} | {story.size} | {story.event_count} | {purity_of.get(story.id, float('nan')):.2f} "
            f"| {title} | {', '.join(keywords(story, idf, 6))} |"
        )
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
