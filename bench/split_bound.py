"""How much precision an event-level split of stories could win back, read off one run.

    storywire evaluate FILE.jsonl --assignments OUT.jsonl
    python bench/split_bound.py FILE.jsonl OUT.jsonl [--markdown]

The news errors that are left are whole gold stories inside another story. If their articles sat
together in one or two events, a check that reads an event as one article and detaches it from a
story it no longer fits (the merge check in reverse) could take them out. This asks an oracle
first: every event whose gold majority differs from its story's is detached (only events of at
least ``k`` articles, which is when such a check could read one), either as a story of its own or
grouped by gold label (a perfect re-merge). If the oracle wins little, the check cannot win more.
The opposite bound too: every story merged into its gold majority, what perfect merges would give
(run with ``STORYWIRE_MERGE_THRESHOLD=1.1`` for the stories as decided before any merge).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._table import show  # noqa: E402
from models.clustering import final_story_ids  # noqa: E402
from models.metrics import score  # noqa: E402
from stream.evaluate import read_labelled  # noqa: E402


def majority(labels: dict[str, str], gold: dict[str, str]) -> dict[str, str]:
    """Cluster -> its most common gold label (ties: the smaller label)."""
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for article, cluster in labels.items():
        counts[cluster][gold[article]] += 1
    return {c: min(n.items(), key=lambda kv: (-kv[1], kv[0]))[0] for c, n in counts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stream", type=Path, help="the labelled stream that was evaluated")
    ap.add_argument("assignments", type=Path, help="what `storywire evaluate --assignments` wrote for it")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    for path in (args.stream, args.assignments):
        if not path.is_file():
            ap.exit(2, f"split_bound: {path} is not a file; give the labelled stream, then its assignments\n")
    gold = {x.article.id: x.gold for x in read_labelled(args.stream)[0] if x.gold is not None}
    records = [json.loads(line) for line in args.assignments.read_text().splitlines() if line.strip()]
    story_of = {a: s for a, s in final_story_ids(records).items() if a in gold}
    event_of = {r["id"]: r["event_id"] for r in records if r["id"] in gold}
    story_gold, event_gold = majority(story_of, gold), majority(event_of, gold)
    event_size = Counter(event_of.values())
    ids = sorted(story_of)
    truth = [gold[a] for a in ids]

    def f1(label: Callable[[str], str]) -> str:
        return f"{score(truth, [label(a) for a in ids]).bcubed_f1:.4f}"

    def detached(a: str, k: int) -> bool:
        e = event_of[a]
        return event_size[e] >= k and event_gold[e] != story_gold[story_of[a]]

    rows = [
        {"stories": "as clustered", "B3 F1": f1(story_of.__getitem__)},
        {"stories": "events only", "B3 F1": f1(event_of.__getitem__)},
        {
            "stories": "oracle: stories merged perfectly (each into its gold majority)",
            "B3 F1": f1(lambda a: story_gold[story_of[a]]),
        },
    ]
    for k in (1, 2, 3, 5):
        own = {a: event_of[a] if detached(a, k) else story_of[a] for a in ids}
        regrouped = {a: f"{story_of[a]}|{event_gold[event_of[a]]}" if detached(a, k) else story_of[a] for a in ids}
        rows.append(
            {
                "stories": f"oracle: intruding events of >= {k} detached, each its own story",
                "B3 F1": f1(own.__getitem__),
            }
        )
        rows.append({"stories": "oracle: the same, regrouped by gold label", "B3 F1": f1(regrouped.__getitem__)})
    show(f"Event-level split bound: {args.stream.name} ({len(ids)} scored articles)", rows, args.markdown)
    intruders = [a for a in ids if gold[a] != story_gold[story_of[a]]]
    alone = sum(event_size[event_of[a]] == 1 for a in intruders)
    print(
        f"{len(intruders)} articles sit in a story of another gold label; {alone} of them "
        f"({alone / max(len(intruders), 1):.0%}) in an event of their own"
    )
    firsts: dict[str, str] = {}
    for r in records:  # in the order the clusterer decided
        if r["id"] in gold:
            firsts.setdefault(gold[r["id"]], r["decision"])
    opened = sum(d == "new" for d in firsts.values())
    print(f"of {len(firsts)} gold stories, {opened} opened a story of their own with their first article")


if __name__ == "__main__":
    main()
