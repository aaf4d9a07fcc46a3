"""``--report DIR``: a Markdown summary and PNG plots a person can read at a glance."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from models.labels import keywords, story_title  # noqa: E402
from models.replay import ReplayResult  # noqa: E402

TOP_STORIES_PLOTTED = 12


def _story_label(result: ReplayResult, story_id: str, size: int, width: int = 48) -> str:
    """The story's title (its id where it has left the clusterer's state) and size, for an axis."""
    story = result.clusterer.stories.get(story_id)
    title = story_title(story, result.clusterer._idf) if story is not None else story_id
    title = title if len(title) <= width else title[: width - 1] + "…"
    return f"{title} ({size})"


def _plot_stories_over_time(result: ReplayResult, out: Path) -> None:
    """Above, how many stories and live events there are; below, when the largest stories were
    written about: a heat map of articles per hour, one row per story, named by its title (a line
    per story was unreadable past three stories, and hid the hours without articles)."""
    hours: dict[str, Counter[int]] = defaultdict(Counter)
    for a in result.assignments:
        hours[a.story_id][int(a.timestamp // 3600)] += 1
    top = sorted(hours, key=lambda s: -sum(hours[s].values()))[:TOP_STORIES_PLOTTED]
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [1, 1.4]}, constrained_layout=True
    )
    times = [datetime.fromtimestamp(a.timestamp, UTC) for a in result.assignments]
    seen: set[str] = set()
    cumulative = []
    for a in result.assignments:
        seen.add(a.story_id)
        cumulative.append(len(seen))
    ax1.plot(times, cumulative, label="stories (as they stand at the end)")
    ax1.plot(times, result.active_events, label="active events")
    ax1.set_ylabel("count")
    ax1.legend(loc="upper left")
    ax1.set_title("Stories over time")
    if top:
        first = min(min(hours[s]) for s in top)
        last = max(max(hours[s]) for s in top)
        grid = np.zeros((len(top), last - first + 1))
        for row, sid in enumerate(top):
            for h, n in hours[sid].items():
                grid[row, h - first] = n
        extent = (
            mdates.date2num(datetime.fromtimestamp(first * 3600, UTC)),
            mdates.date2num(datetime.fromtimestamp((last + 1) * 3600, UTC)),
            len(top) - 0.5,
            -0.5,
        )
        image = ax2.imshow(grid, aspect="auto", cmap="Blues", extent=extent, interpolation="nearest")
        ax2.set_yticks(range(len(top)))
        ax2.set_yticklabels([_story_label(result, s, sum(hours[s].values())) for s in top], fontsize=7)
        ax2.xaxis_date()
        fig.colorbar(image, ax=ax2, label="articles / hour", pad=0.01)
    ax2.set_title(f"The {len(top)} largest stories, articles per hour (size in brackets)", fontsize=10)
    for label in ax2.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    fig.savefig(out, dpi=110)
    plt.close(fig)


Held = dict[str, Counter[str | None]]  # story -> its articles' gold stories (None: unlabelled)
Went = dict[str, Counter[str]]  # gold story -> the stories its articles are in


def _composition(result: ReplayResult) -> tuple[Held, Went]:
    """What each story holds and where each gold story went: one pass for the table and the plot."""
    held: Held = defaultdict(Counter)
    went: Went = defaultdict(Counter)
    for a, g in zip(result.assignments, result.gold):
        held[a.story_id][g] += 1
        if g is not None:
            went[g][a.story_id] += 1
    return held, went


def _purity(held: Held) -> list[tuple[str, int, float]]:
    """Per story with labelled articles: (id, labelled articles, share of its main gold story), largest first."""
    rows = []
    for sid, c in held.items():
        labelled = Counter({g: n for g, n in c.items() if g is not None})
        if labelled:
            total = sum(labelled.values())
            rows.append((sid, total, labelled.most_common(1)[0][1] / total))
    return sorted(rows, key=lambda r: -r[1])


BARS_PLOTTED = 20


def _plot_purity(result: ReplayResult, held: Held, went: Went, out: Path) -> None:
    """Left, what the largest stories hold (their main gold story, other gold stories, unlabelled
    noise); right, where the largest gold stories went (their main story and the rest): precision
    and recall errors a person can point at, one bar per story, named."""
    stories = sorted(held, key=lambda s: -sum(held[s].values()))[:BARS_PLOTTED][::-1]
    golds = sorted(went, key=lambda g: -sum(went[g].values()))[:BARS_PLOTTED][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 0.32 * max(len(stories), len(golds), 4) + 1.6))
    main, other, noise = [], [], []
    for sid in stories:
        labelled = Counter({g: n for g, n in held[sid].items() if g is not None})
        main.append(labelled.most_common(1)[0][1] if labelled else 0)
        other.append(sum(labelled.values()) - main[-1])
        noise.append(held[sid][None])
    y = range(len(stories))
    left.barh(y, main, color="tab:green", label="its main gold story")
    left.barh(y, other, left=main, color="tab:orange", label="other gold stories")
    left.barh(y, noise, left=[m + o for m, o in zip(main, other)], color="lightgrey", label="unlabelled")
    left.set_yticks(list(y), [_story_label(result, s, sum(held[s].values()), 40) for s in stories], fontsize=7)
    left.set_xlabel("articles")
    left.set_xlim(0, 1.04 * max((m + o + n for m, o, n in zip(main, other, noise)), default=1))
    left.set_title("The largest stories: what they hold", fontsize=10)
    left.legend(loc="lower right", fontsize=7)
    kept, rest, names = [], [], []
    for g in golds:
        (top_story, n), *_ = went[g].most_common(1)
        kept.append(n)
        rest.append(sum(went[g].values()) - n)
        others = len(went[g]) - 1
        spread = f" +{others} {'story' if others == 1 else 'stories'}" if others else ", all of it"
        names.append(_story_label(result, top_story, n, 34) + spread)
    y = range(len(golds))
    right.barh(y, kept, color="tab:blue", label="in its main story")
    right.barh(y, rest, left=kept, color="tab:red", label="split off to other stories")
    right.set_yticks(list(y), names, fontsize=7)
    right.set_xlabel("articles of the gold story")
    right.set_title("The largest gold stories: where they went (main story named)", fontsize=10)
    right.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_report(result: ReplayResult, summary: dict[str, Any], source: Path, embedder: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_stories_over_time(result, out_dir / "stories_over_time.png")
    held, went = _composition(result)
    purity = _purity(held)
    _plot_purity(result, held, went, out_dir / "cluster_purity.png")
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
