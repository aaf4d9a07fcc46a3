"""Online, single-pass clustering of articles into events and developing stories.

Each article is scored against a bounded set of candidate stories (retrieved through an inverted
index over the stories' own vocabulary, plus the most recently active stories), a learned join
model decides whether it continues the best one, and inside that story it either joins one of the
story's events or opens a new one — a *development*. Stories and events that fall silent expire,
so per-article cost and memory stay flat however long the stream runs.

Decisions are deterministic for a given input order, and the whole state round-trips through plain
dicts (``to_dict`` / ``from_dict``), which is how the stream layer keeps it in Faust tables.

>>> import numpy as np
>>> from models.features import ArticleFeatures
>>> def art(i, t, terms, v):
...     return ArticleFeatures(str(i), t, f"t{i}", "src", np.asarray(v, np.float32), terms, [])
>>> c = StoryClusterer(JoinModel.load("static"))
>>> c.learn_one(art(1, 0.0, {"quake": 1, "chile": 1}, [1, 0, 0])).decision
'new'
>>> c.learn_one(art(2, 60.0, {"quake": 1, "chile": 1, "tsunami": 1}, [0.99, 0.14, 0])).story_id
's1'
"""

from __future__ import annotations

import base64
import math
from collections import OrderedDict
from collections.abc import Iterable, KeysView
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models import MODEL_VERSION
from models.centroids import CentroidTable
from models.features import ArticleFeatures
from models.join_model import FEATURE_NAMES, JoinModel
from models.kernels import best_event, best_two, join_features, tf_idf, votes_at, warm_up
from models.neighbours import RecentArticles
from models.neighbours import warm_up as warm_up_votes
from models.row_counts import RowCounts
from models.row_counts import warm_up as warm_up_counts
from models.story_table import StoryTable
from models.story_table import warm_up as warm_up_stories


@dataclass(frozen=True)
class ClusterConfig:
    """Knobs of the clusterer. Defaults are the configuration evaluated in the README."""

    max_candidates: int = 12  # stories scored per article, from the inverted index
    recent_candidates: int = 2  # plus this many most recently active stories
    max_posting_scan: int = 100  # terms in more stories than this do not drive retrieval
    entity_veto_names: int = 3  # an article naming this many things, none known to a story, cannot join it
    event_threshold: float = 0.45  # similarity to join an event inside the chosen story
    event_ttl_hours: float = 36.0  # an event silent this long is closed
    story_ttl_hours: float = 168.0  # a story silent this long leaves the active state
    events_scored: int = 6  # most recent events of a story used for dense_event
    max_story_terms: int = 300  # vocabulary kept per story (pruned to the most frequent)
    max_event_terms: int = 80
    max_titles: int = 20  # recent titles kept per story for its label
    max_vocabulary: int = 200_000  # online document frequencies kept
    knn_window: int = 2000  # recent articles remembered one by one, for nearest-neighbour votes
    knn_k: int = 10  # nearest recent articles that vote for their stories
    merge_check_size: int = 3  # two stories this large merge only if the smaller one, read as one
    #                            article, would join the larger (0: no check)
    named_story_share: float = 0.4  # a likely story whose articles name what the article names (this
    #                                 share of them) wins over one that hardly does (0: off)
    id_prefix: str = ""  # distinguishes shards: story ids are never reused


@dataclass(slots=True)
class Assignment:
    """Where one article went. ``score`` is the join probability (or event similarity)."""

    article_id: str
    event_id: str
    story_id: str
    score: float
    decision: str  # "new" (new story) or "join" (existing story)
    event_decision: str  # "new" (new event: a development) or "join"
    timestamp: float
    model_version: str = MODEL_VERSION
    merged: list[str] = field(default_factory=list)  # stories this decision merged into ``story_id``

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.article_id,
            "event_id": self.event_id,
            "story_id": self.story_id,
            "score": round(self.score, 4),
            "decision": self.decision,
            "event_decision": self.event_decision,
            "timestamp": self.timestamp,
            "model_version": self.model_version,
            "merged": list(self.merged),
        }

    @classmethod
    def from_dict(cls, a: dict[str, Any]) -> Assignment:
        return cls(
            a["id"],
            a["event_id"],
            a["story_id"],
            a["score"],
            a["decision"],
            a["event_decision"],
            a["timestamp"],
            a.get("model_version", MODEL_VERSION),
            list(a.get("merged", [])),
        )


def final_story_ids(assignments: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Article id -> its story as it stands after every merge the records announce (``merged``):
    what a consumer of the ``assignments`` topic does to see the stories the clusterer has now.

    >>> final_story_ids([{"id": "a", "story_id": "s2", "merged": []}, {"id": "b", "story_id": "s1", "merged": ["s2"]}])
    {'a': 's1', 'b': 's1'}
    """
    records = list(assignments)
    into = {gone: a["story_id"] for a in records for gone in a.get("merged", [])}
    out = {}
    for a in records:
        story = a["story_id"]
        while story in into:
            story = into[story]
        out[a["id"]] = story
    return out


def encode_vector(v: np.ndarray) -> str:
    """Exact float64 bytes as base64: a story record is stored at every checkpoint that touches it,
    and decimal JSON made its vectors 90 % of the bytes and of the serialisation time."""
    return base64.b64encode(np.asarray(v, dtype="<f8").tobytes()).decode("ascii")


def decode_vector(data: str | list[float]) -> np.ndarray:
    """The inverse of :func:`encode_vector`; also reads the decimal lists older states hold."""
    if isinstance(data, str):
        return np.frombuffer(base64.b64decode(data), dtype="<f8").astype(np.float64)
    return np.asarray(data, dtype=np.float64)


def _bounded(counts: dict[str, int], limit: int) -> dict[str, int]:
    if len(counts) <= 2 * limit:
        return counts
    keep = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return dict(keep)


def _counted(counts: dict[str, int], more: dict[str, int], limit: int) -> dict[str, int]:
    for k, n in more.items():
        counts[k] = counts.get(k, 0) + n
    return _bounded(counts, limit)


MAX_SOURCES = 50  # sources counted per story
MAX_SUMMARY_TERMS = 20  # a story read as one article (the merge check): its most used terms
MAX_SUMMARY_NAMES = 5  # and names


def _tally(
    mirror: RowCounts, row: int, counts: dict[str, int], more: dict[str, int] | KeysView[str], limit: int
) -> dict[str, int]:
    """Count ``more`` (a dict of counts, or distinct keys counted once each) into ``counts``
    (bounded to ``limit`` keys) and into its compiled mirror at ``row``; returns the counts."""
    if isinstance(more, dict):
        for k, n in more.items():
            counts[k] = counts.get(k, 0) + n
        mirror.add(row, more)
    else:
        for k in more:
            counts[k] = counts.get(k, 0) + 1
        mirror.add_one(row, more)
    kept = _bounded(counts, limit)
    if kept is not counts:
        mirror.drop(row, [k for k in counts if k not in kept])
    return kept


def _event_matrix(events: list[Event], keys: list[str]) -> np.ndarray:
    """Per event: (articles, last active time, then how often it used each of ``keys``), as one
    float matrix: the chosen story's ≤ 6 events × the article's terms (the candidates' counts are
    read from ``models.row_counts`` instead)."""
    flat = [x for ev in events for x in (ev.size, ev.last_ts, *[ev.terms.get(k, 0) for k in keys])]
    return np.fromiter(flat, float, len(flat)).reshape(len(events), 2 + len(keys))


@dataclass(slots=True)
class Event:
    """A tight cluster: articles about the same happening."""

    id: str
    story_id: str
    first_ts: float
    last_ts: float
    size: int
    vector_sum: np.ndarray
    terms: dict[str, int]
    title: str
    first_article: str
    row: int = -1  # its centroid's row in the clusterer's CentroidTable

    def add(self, f: ArticleFeatures, max_terms: int, centroids: CentroidTable) -> None:
        self.size += 1
        self.last_ts = max(self.last_ts, f.timestamp)
        centroids.add(self.row, self.vector_sum, f.vector)
        for t in f.terms:
            self.terms[t] = self.terms.get(t, 0) + 1
        self.terms = _bounded(self.terms, max_terms)

    def summary(self) -> dict[str, Any]:
        """What a story keeps of an event once it is no longer scored."""
        return {
            "id": self.id,
            "title": self.title,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "size": self.size,
            "first_article": self.first_article,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "story_id": self.story_id,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "size": self.size,
            "vector_sum": encode_vector(self.vector_sum),
            "terms": dict(self.terms),
            "title": self.title,
            "first_article": self.first_article,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(
            d["id"],
            d["story_id"],
            d["first_ts"],
            d["last_ts"],
            d["size"],
            decode_vector(d["vector_sum"]),
            dict(d["terms"]),
            d["title"],
            d["first_article"],
        )


@dataclass(slots=True)
class Story:
    """A developing thread of related events; its vocabulary and names are what link new events."""

    id: str
    seq: int
    first_ts: float
    last_ts: float
    size: int
    vector_sum: np.ndarray
    terms: dict[str, int]
    entities: dict[str, int]
    events: list[str]  # the scored (most recent) events' ids; older ones are ``past_events``
    sources: dict[str, int]
    titles: list[tuple[str, list[str]]]  # recent (title, its terms) for labelling
    hourly: dict[int, int]  # hour bucket -> articles, for rate and sparkline
    attributions: list[dict[str, str]] = field(default_factory=list)
    past_events: list[dict[str, Any]] = field(default_factory=list)
    alert_state: dict[str, Any] = field(default_factory=dict)  # what models.alerts has raised for it
    event_count: int = 0  # events (developments) the story has had, merged stories' included
    row: int = -1  # its centroid's row in the clusterer's CentroidTable
    scored_events: list[Event] = field(default_factory=list)  # its most recent events, as scored

    def refresh_events(self, events: dict[str, Event], recent: int) -> None:
        """Cache the events every article scores a candidate story against (its most recent
        ones; the one an article joins is chosen among them too)."""
        self.scored_events = [events[e] for e in self.events[-recent:]]

    @property
    def scored(self) -> list[int]:
        """The centroid rows an article is scored against: the story's own, then its scored
        events' (rows of the clusterer's CentroidTable)."""
        return [self.row] + [e.row for e in self.scored_events]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "size": self.size,
            "vector_sum": encode_vector(self.vector_sum),
            "terms": dict(self.terms),
            "entities": dict(self.entities),
            "events": list(self.events),
            "sources": dict(self.sources),
            "titles": [list(t) for t in self.titles],
            "hourly": {str(k): v for k, v in self.hourly.items()},
            "attributions": list(self.attributions),
            "past_events": list(self.past_events),
            "alert_state": dict(self.alert_state),
            "event_count": self.event_count,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Story:
        return cls(
            d["id"],
            d["seq"],
            d["first_ts"],
            d["last_ts"],
            d["size"],
            decode_vector(d["vector_sum"]),
            dict(d["terms"]),
            dict(d["entities"]),
            list(d["events"]),
            dict(d["sources"]),
            [(t[0], list(t[1])) for t in d["titles"]],
            {int(k): v for k, v in d["hourly"].items()},
            list(d.get("attributions", [])),
            list(d.get("past_events", [])),
            dict(d.get("alert_state", {})),
            d.get("event_count", len(d["events"])),  # older states listed every event id ever
        )


@dataclass(slots=True)
class Changes:
    """What changed since the last :meth:`StoryClusterer.drain_changes`: the incremental checkpoint.

    The stream layer writes only these to its tables, so persisting state costs per batch what the
    batch touched, not the size of the whole state.
    """

    stories: set[str] = field(default_factory=set)
    removed_stories: set[str] = field(default_factory=set)  # expired or merged
    assigned: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # assignments past the horizon
    terms: set[str] = field(default_factory=set)  # document frequencies that moved
    df_pruned: bool = False


@dataclass(slots=True)
class WeightedTerms:
    """An article's (or a story summary's) terms or names and their tf-idf weights (summing to 1),
    in the same order: what the compiled tables and kernels read."""

    keys: list[str]
    weights: np.ndarray


NO_TERMS = WeightedTerms([], np.zeros(0))


@dataclass(slots=True)
class Candidates:
    """Stories scored for one article: ids and the feature matrix the join model reads."""

    rows: list[int]  # the stories' rows (their ids are looked up only where needed: ~20 misses in a big map)
    features: np.ndarray  # (len(rows), len(FEATURE_NAMES))
    story_at: dict[int, str]  # row -> story id, the clusterer's

    @property
    def story_ids(self) -> list[str]:
        return [self.story_at[r] for r in self.rows]


class StoryClusterer:
    """Single-pass article → event → story clustering with a learned join decision.

    ``learn_one`` assigns an article and updates the state; ``predict_one`` says what it would do
    without changing anything. Re-learning an article id already assigned returns the first
    assignment unchanged: processing is at-least-once upstream, so this step must be idempotent.
    """

    def __init__(self, model: JoinModel, config: ClusterConfig | None = None) -> None:
        self.model = model
        self.config = config or ClusterConfig()
        self.stories: OrderedDict[str, Story] = OrderedDict()  # least recently active first
        self.events: dict[str, Event] = {}
        self.centroids = CentroidTable()  # every live story's and event's unit centroid
        # the stories' term and name counts by centroid row: what every article reads of ~20
        # candidates, mirrored from their dicts into compiled tables
        self.term_counts = RowCounts()
        self.name_counts = RowCounts()
        self.story_table = StoryTable(self.config.events_scored)  # what articles read of candidates
        self.story_at: dict[int, str] = {}  # row -> the story on it (what the compiled tables return)
        self.df: dict[str, int] = {}
        self.docs = 0
        self.next_story = 1
        self.next_event = 1
        self.watermark = -math.inf
        self.assigned: OrderedDict[str, Assignment] = OrderedDict()
        self.merged: dict[str, tuple[str, float]] = {}  # merged story -> (the story it went into, when)
        self._oldest_merge = math.inf  # no merge in ``merged`` is older (checked per article: no scan)
        self.expired_stories = 0
        self.recent = RecentArticles(self.config.knn_window, self.config.knn_k)
        self.changes = Changes()
        self._weights_of: tuple[tuple[str, int] | None, WeightedTerms] = (None, NO_TERMS)
        warm_up()  # compiled once per process (seconds the first time, then from numba's cache)
        warm_up_stories()
        warm_up_counts()
        warm_up_votes()

    # ----------------------------------------------------------------- scoring
    def _idf(self, term: str) -> float:
        """The idf ``kernels.tf_idf`` computes for the cluster step, one term at a time (story
        snapshots and the report read it)."""
        return math.log((1.0 + self.docs) / (1.0 + self.df.get(term, 0))) + 1.0

    def _term_weights(self, terms: dict[str, int]) -> WeightedTerms:
        keys = list(terms)
        df = self.df.get
        dfs = np.fromiter([df(t, 0) for t in keys], np.int64, len(keys))
        return WeightedTerms(keys, tf_idf(np.fromiter(terms.values(), np.int64, len(keys)), dfs, 1.0 + self.docs))

    def _article_weights(self, f: ArticleFeatures) -> WeightedTerms:
        """The article's term weights, computed once per article (retrieval, features and the event
        choice all read them, and the document frequencies do not move in between)."""
        key = (f.id, self.docs)
        if self._weights_of[0] != key:
            self._weights_of = (key, self._term_weights(f.terms))
        return self._weights_of[1]

    def _entity_weights(self, names: Iterable[str]) -> WeightedTerms:
        return self._term_weights(dict.fromkeys(names, 0))  # count 0: a name weighs its idf alone

    def candidates(self, f: ArticleFeatures) -> Candidates:
        """Retrieve candidate stories and compute the join features for each."""
        cfg = self.config
        terms = self._article_weights(f)
        term_ids = self.term_counts.ids(terms.keys)
        # the stories sharing the most term weight with the article (ties: the older story), from
        # the postings the term table keeps
        top = self.term_counts.top_rows(
            term_ids, terms.weights, cfg.max_posting_scan, self.story_table.seq, cfg.max_candidates
        )
        rows = top.tolist()
        seen = set(rows)
        votes = self.recent.votes(f.vector, self.story_table.seq)  # nearest articles' stories, best first
        for r in votes[0].tolist():
            if r not in seen:
                rows.append(r)
                seen.add(r)
        limit = len(rows) + cfg.recent_candidates
        for story in reversed(self.stories.values()):
            if len(rows) >= limit:
                break
            if story.row not in seen:
                rows.append(story.row)
                seen.add(story.row)
        return Candidates(rows, self._features(f, rows, terms, term_ids, votes), self.story_at)

    def _features(
        self,
        f: ArticleFeatures,
        story_rows: list[int],
        terms: WeightedTerms,
        term_ids: np.ndarray,
        votes: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> np.ndarray:
        """The join features of ``f`` against the stories on ``story_rows``; ``term_ids`` are its
        terms' ids in the term table, ``votes`` what ``RecentArticles.votes`` gave for it."""
        n = len(story_rows)
        rows = np.fromiter(story_rows, np.int64, n)
        sims, meta = self.story_table.gather(self.centroids.rows, rows, f.vector)
        counts = self.term_counts.matrix_of(rows, term_ids)
        if f.entities:
            names = self._entity_weights(f.entities)
            ecounts = self.name_counts.matrix(rows, names.keys)
        else:  # most news headlines name no one: nothing to look up
            names, ecounts = NO_TERMS, np.zeros((n, 0))
        return join_features(
            sims, meta, counts, terms.weights, ecounts, names.weights, votes_at(rows, *votes), f.timestamp
        )

    def predict_one(self, f: ArticleFeatures) -> tuple[str | None, float]:
        """The story this article would join (``None``: a new story) and the join probability."""
        if f.id in self.assigned:
            a = self.assigned[f.id]
            return a.story_id, a.score
        story_id, p, _ = self._choose(f)
        return story_id, p

    def _choose(self, f: ArticleFeatures) -> tuple[str | None, float, str | None]:
        """(story to join or None, its probability, a second story the article also joins so surely
        that the two are one story: ``merge_threshold``)."""
        cands = self.candidates(f)
        if not cands.rows:
            return None, 0.0, None
        probs = self.model.probability(cands.features)
        if self.config.entity_veto_names and len(f.entities) >= self.config.entity_veto_names:
            # A name-rich article that shares no name with a story is about something else, however
            # close the wording ("Kansas City parade shooting" vs "Crocus City Hall shooting").
            novel = cands.features[:, FEATURE_NAMES.index("novel_entities")]
            probs = np.where(novel >= 0.999, 0.0, probs)
        best, second = best_two(probs)
        p = float(probs[best])
        if p < self.model.threshold:
            return None, p, None
        named = self._named_story(f, cands, probs, best, second)
        if named != best:
            # the article continues the story it names; it is no evidence that the two are one
            return self.story_at[cands.rows[named]], float(probs[named]), None
        merge = second >= 0 and probs[second] >= self.model.merge_threshold
        story_at = self.story_at
        return story_at[cands.rows[best]], p, story_at[cands.rows[second]] if merge else None

    def _named_story(self, f: ArticleFeatures, cands: Candidates, probs: np.ndarray, best: int, second: int) -> int:
        """The candidate the article should join: ``best``, unless ``best`` hardly uses the names the
        article gives and another likely story (as likely as the join threshold) is about them.

        Why: a story that has absorbed several of its neighbours is broad, so it scores well for
        every article near any of them, and the join model reads the names only as a weighted
        mean. When 18 crises unfold at once, the stories of the Bohol and the Guatemala
        earthquakes and of the Philippine floods began joining into one story, which then drew
        the tweets of every other crisis; a tweet naming Guatemala, with the Guatemala story among
        its likely candidates, goes there. "Hardly" is a fifth of ``named_story_share``: a story
        in which a name is an aside (3 % of its articles) is not the story of that name. Measured
        in the README (Quality, stop 29).
        """
        share = self.config.named_story_share
        threshold = self.model.threshold
        if not share or not f.entities or second < 0 or probs[second] < threshold:
            return best  # (most articles: checked before any lookup)

        def naming(i: int) -> float:  # the largest share of the story's articles that use one of the names
            story = self.stories[self.story_at[cands.rows[i]]]
            return max(story.entities.get(n, 0) for n in f.entities) / story.size

        if naming(best) >= share / 5:
            return best
        about = [int(i) for i in np.flatnonzero(probs >= threshold) if i != best and naming(int(i)) >= share]
        return max(about, key=lambda i: float(probs[i])) if about else best

    # ----------------------------------------------------------------- updating
    def learn_one(self, f: ArticleFeatures) -> Assignment:
        """Assign the article and fold it into the state (idempotent by article id)."""
        if f.id in self.assigned:
            return self.assigned[f.id]
        story_id, p, second = self._choose(f)
        merged = []
        if story_id is not None and second is not None:
            self._advance(f.timestamp)  # expiry first, as apply does
            if story_id in self.stories and second in self.stories and self._reads_as_one(story_id, second):
                # The older story keeps its id: people may already follow it.
                keep, gone = sorted((story_id, second), key=lambda s: self.stories[s].seq)
                self.merge(gone, into=keep, timestamp=f.timestamp)
                story_id, merged = keep, [gone]
        assignment = self.apply(f, story_id, p)
        assignment.merged = merged  # published with the assignment: its consumers can follow the merge
        return assignment

    def _reads_as_one(self, a: str, b: str) -> bool:
        """Whether two stories an article would join both are one story by their own evidence.

        An article can bridge two stories that are not one: "Bitcoin exchange Mt. Gox files for US
        bankruptcy" is likely to join the Mt. Gox story and the Sbarro bankruptcy story; "True
        Detective Watch: I Am the Cosmos" both the series finale and the Cosmos premiere. Of the
        merges between two stories of five or more articles on the news dev stream, 7 of 8 were
        such. Once both stories have their own vocabulary, the smaller one is read as one article
        (its centroid, most used terms and names) and must be likely to join the larger one.
        """
        small, big = sorted((self.stories[a], self.stories[b]), key=lambda s: (s.size, s.seq))
        if not self.config.merge_check_size or small.size < self.config.merge_check_size:
            return True
        top_terms = sorted(small.terms.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_SUMMARY_TERMS]
        names = sorted(small.entities.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_SUMMARY_NAMES]
        summary = ArticleFeatures(
            f"story:{small.id}",
            small.last_ts,
            "",
            "",
            self.centroids.vector(small.row),
            dict(top_terms),
            [e for e, n in names if n * 5 >= small.size],  # names at least a fifth of its articles use
        )
        votes = self.recent.votes(summary.vector, self.story_table.seq)
        terms = self._term_weights(summary.terms)
        x = self._features(summary, [big.row], terms, self.term_counts.ids(terms.keys), votes)
        return float(self.model.probability(x)[0]) >= self.model.threshold

    def _label(self, story_id: str) -> tuple[str, int, int]:
        """(the story ``story_id`` lives on as, its row, its seq); row -1 when it is gone."""
        story = self.resolve(story_id)
        live = self.stories.get(story)
        return (story, live.row, live.seq) if live is not None else (story, -1, -1)

    def resolve(self, story_id: str) -> str:
        """The story a (possibly merged) story id lives on as.

        >>> c = StoryClusterer(JoinModel.load("static"))
        >>> c.merged.update({"s3": ("s2", 0.0), "s2": ("s1", 5.0)})
        >>> c.resolve("s3"), c.resolve("s4")
        ('s1', 's4')
        """
        while story_id in self.merged:
            story_id = self.merged[story_id][0]
        return story_id

    def merge(self, source: str, into: str, timestamp: float) -> None:
        """Fold story ``source`` into ``into``: one story that was detected twice.

        Why merge at all: a story's first articles often open several stories (the quake, the
        rescue, the appeal for donations) before any article shows they are one; single-pass
        clustering never revisits that split, and on the crisis streams it was most of the lost
        recall. An article that is very likely to join each of two stories is that evidence.
        ``merged`` remembers where ``source`` went, so its earlier assignments resolve."""
        cfg = self.config
        src = self.stories.pop(source)
        dst = self.stories[into]
        self._release_story(src)
        dst.size += src.size
        dst.first_ts = min(dst.first_ts, src.first_ts)
        dst.last_ts = max(dst.last_ts, src.last_ts)
        dst.vector_sum = dst.vector_sum + src.vector_sum
        self.centroids.put(dst.row, dst.vector_sum)
        self._add_terms(dst, src.terms)
        dst.entities = _tally(self.name_counts, dst.row, dst.entities, src.entities, cfg.max_story_terms // 2)
        dst.sources = _counted(dst.sources, src.sources, MAX_SOURCES)
        for hour, n in src.hourly.items():
            dst.hourly[hour] = dst.hourly.get(hour, 0) + n
        dst.titles = (src.titles + dst.titles)[-cfg.max_titles :]
        dst.attributions = (dst.attributions + src.attributions)[:50]
        # The most recent events of both stay scored (the tail of ``events``); older ones become summaries.
        k = cfg.events_scored
        live = sorted(
            (e for e in dst.events[-k:] + src.events[-k:] if e in self.events),
            key=lambda e: (self.events[e].last_ts, e),
        )
        for eid in live:
            self.events[eid].story_id = into
        for eid in live[:-k]:
            gone_event = self.events.pop(eid)
            self.centroids.give_back(gone_event.row)
            dst.past_events.append(gone_event.summary())
        dst.past_events = (dst.past_events + src.past_events)[-50:]
        dst.events = live[-k:]
        dst.event_count += src.event_count
        self._refresh(dst)
        self.recent.relabel(src.seq, into, dst.row, dst.seq)
        self.merged[source] = (into, timestamp)
        self._oldest_merge = min(self._oldest_merge, timestamp)
        self.stories.move_to_end(into)
        self.changes.stories.add(into)
        self.changes.stories.discard(source)
        self.changes.removed_stories.add(source)

    def apply(self, f: ArticleFeatures, story_id: str | None, score: float = 1.0) -> Assignment:
        """Put the article into ``story_id`` (or a new story). Training uses it to force gold choices."""
        self._advance(f.timestamp)
        if story_id is None or story_id not in self.stories:
            story = self._new_story(f)
            event = self._new_event(f, story)
            decision, event_decision, score_out = "new", "new", score
        else:
            story = self.stories[story_id]
            best, _ = self._best_event(f, story)
            if best is None:
                event = self._new_event(f, story)
                event_decision = "new"
            else:
                event = best
                event.add(f, self.config.max_event_terms, self.centroids)
                event_decision = "join"
            decision, score_out = "join", score
            self._add_to_story(f, story)
        if event_decision == "join":  # the story's events (its scored rows) are as they were
            self.story_table.touch(story.row, story.size, story.last_ts)
        else:
            self._refresh(story)
        self._learn_df(f)
        self.recent.add(f.id, story.id, story.row, story.seq, f.timestamp, f.vector)
        assignment = Assignment(f.id, event.id, story.id, float(score_out), decision, event_decision, f.timestamp)
        self.assigned[f.id] = assignment
        self.changes.stories.add(story.id)
        self.changes.assigned.append(f.id)
        return assignment

    def _best_event(self, f: ArticleFeatures, story: Story) -> tuple[Event | None, float]:
        weights = self._article_weights(f)
        events = story.scored_events
        i, sim = best_event(
            self.centroids.rows,
            self.story_table.scored[story.row, 1 : 1 + len(events)],  # the same events' centroids
            f.vector,
            _event_matrix(events, weights.keys),
            weights.weights,
            f.timestamp - self.config.event_ttl_hours * 3600,
        )
        if i < 0 or sim < self.config.event_threshold:
            return None, sim
        return events[i], sim

    def _new_story(self, f: ArticleFeatures) -> Story:
        sid = f"{self.config.id_prefix}s{self.next_story}"
        story = Story(
            sid, self.next_story, f.timestamp, f.timestamp, 0, np.zeros(len(f.vector)), {}, {}, [], {}, [], {}
        )
        story.row = self.centroids.take(len(f.vector))
        self.story_at[story.row] = sid
        self.next_story += 1
        self.stories[sid] = story
        self._add_to_story(f, story)
        return story

    def _new_event(self, f: ArticleFeatures, story: Story) -> Event:
        eid = f"{self.config.id_prefix}e{self.next_event}"
        self.next_event += 1
        event = Event(eid, story.id, f.timestamp, f.timestamp, 0, np.zeros(len(f.vector)), {}, f.title, f.id)
        event.row = self.centroids.take(len(f.vector))
        event.add(f, self.config.max_event_terms, self.centroids)
        self.events[eid] = event
        story.events.append(eid)
        story.event_count += 1
        k = self.config.events_scored
        if len(story.events) > k:
            # Only the most recent events are ever scored; older ones live on as summaries, and the
            # id list stays bounded however long the story runs (it is stored at every checkpoint).
            old = self.events.pop(story.events[-k - 1], None)
            if old is not None:
                self.centroids.give_back(old.row)
                story.past_events = (story.past_events + [old.summary()])[-50:]
            story.events = story.events[-k:]
        return event

    def _add_to_story(self, f: ArticleFeatures, story: Story) -> None:
        cfg = self.config
        story.size += 1
        story.last_ts = max(story.last_ts, f.timestamp)
        self.centroids.add(story.row, story.vector_sum, f.vector)
        self._add_terms(story, f.terms.keys())
        story.entities = _tally(
            self.name_counts, story.row, story.entities, dict.fromkeys(f.entities, 1).keys(), cfg.max_story_terms // 2
        )
        if f.source:
            story.sources = _counted(story.sources, {f.source: 1}, MAX_SOURCES)
        story.titles = (story.titles + [(f.title, sorted(f.terms))])[-cfg.max_titles :]
        hour = int(f.timestamp // 3600)
        story.hourly[hour] = story.hourly.get(hour, 0) + 1
        if len(story.hourly) > 96:
            story.hourly = dict(sorted(story.hourly.items())[-72:])
        for a in f.attributions:
            if len(story.attributions) < 50:
                story.attributions.append(
                    {
                        "kind": a.kind,
                        "actor": a.actor,
                        "speaker": a.speaker,
                        "source": f.source,
                        "article_id": f.id,
                        "evidence": a.evidence,
                    }
                )
        self.stories.move_to_end(story.id)

    def _refresh(self, story: Story) -> None:
        """After a story changed: what articles score it against, in its object and in the table."""
        story.refresh_events(self.events, self.config.events_scored)
        self.story_table.put(story.row, story.seq, story.size, story.last_ts, story.scored)

    def _add_terms(self, story: Story, counts: dict[str, int] | KeysView[str]) -> None:
        """Count terms into the story's vocabulary (and the term table, whose postings are the
        inverted index retrieval reads), keeping the bound."""
        story.terms = _tally(self.term_counts, story.row, story.terms, counts, self.config.max_story_terms)

    def _release_story(self, story: Story) -> None:
        """Give a closed story's row back, its counts first (the row is reused)."""
        self.term_counts.drop(story.row, story.terms)
        self.name_counts.drop(story.row, story.entities)
        del self.story_at[story.row]
        self.story_table.clear(story.row)
        self.centroids.give_back(story.row)

    def _learn_df(self, f: ArticleFeatures) -> None:
        self.docs += 1
        seen = f.terms.keys() | f.entities if f.entities else f.terms.keys()
        df = self.df
        for t in seen:
            df[t] = df.get(t, 0) + 1
        self.changes.terms.update(seen)
        if len(self.df) > self.config.max_vocabulary:
            self.changes.df_pruned = True
            # Forget the rarest terms: they matter only inside stories, which keep their own counts.
            keep = sorted(self.df.items(), key=lambda kv: (-kv[1], kv[0]))[: self.config.max_vocabulary // 2]
            self.df = dict(keep)

    # ----------------------------------------------------------------- expiry
    def _advance(self, ts: float) -> None:
        if ts <= self.watermark:
            return
        self.watermark = ts
        self.expire(ts)

    def expire(self, now: float) -> list[str]:
        """Drop stories silent for ``story_ttl_hours`` and events past their TTL; return expired story ids."""
        cfg = self.config
        horizon = now - cfg.story_ttl_hours * 3600
        gone: list[str] = []
        while self.stories:
            sid, story = next(iter(self.stories.items()))
            if story.last_ts >= horizon:
                break
            del self.stories[sid]
            self._release_story(story)
            for eid in story.events[-self.config.events_scored :]:
                event = self.events.pop(eid, None)
                if event is not None:
                    self.centroids.give_back(event.row)
            gone.append(sid)
        self.expired_stories += len(gone)
        self.changes.stories.difference_update(gone)
        self.changes.removed_stories.update(gone)
        while self.assigned:
            aid, a = next(iter(self.assigned.items()))
            if a.timestamp >= horizon:
                break
            del self.assigned[aid]
            self.changes.forgotten.append(aid)
        self.recent.forget_before(horizon)
        if self._oldest_merge < horizon:
            # every article of a story merged before the horizon is forgotten: nothing resolves through it
            self.merged = {s: m for s, m in self.merged.items() if m[1] >= horizon}
            self._oldest_merge = min((m[1] for m in self.merged.values()), default=math.inf)
        return gone

    # ----------------------------------------------------------------- state
    def drain_changes(self) -> Changes:
        """Return what changed since the last call and start a new change set."""
        changes, self.changes = self.changes, Changes()
        return changes

    def story_record(self, story_id: str) -> dict[str, Any]:
        """One story with its active events: the unit the stream layer stores per table key."""
        story = self.stories[story_id]
        events = [self.events[e].to_dict() for e in story.events[-self.config.events_scored :] if e in self.events]
        return {"story": story.to_dict(), "events": events}

    def meta(self) -> dict[str, Any]:
        """Counters and ids: everything in the state that is neither a story, a df nor an assignment."""
        return {
            "version": MODEL_VERSION,
            "docs": self.docs,
            "next_story": self.next_story,
            "next_event": self.next_event,
            "watermark": self.watermark if math.isfinite(self.watermark) else None,
            "expired_stories": self.expired_stories,
            "merged": {s: list(m) for s, m in self.merged.items()},
        }

    @classmethod
    def from_parts(
        cls,
        meta: dict[str, Any],
        story_records: Iterable[dict[str, Any]],
        df: dict[str, int],
        assigned: Iterable[dict[str, Any]],
        model: JoinModel,
        config: ClusterConfig | None = None,
    ) -> StoryClusterer:
        """Rebuild from what :meth:`drain_changes` let the stream layer store (the inverse of it).
        The parts must be of one moment: the stream layer rolls a torn checkpoint back first."""
        records = list(story_records)
        stories = {r["story"]["id"]: r["story"] for r in records}
        data = {
            **meta,
            "stories": sorted(stories.values(), key=lambda s: (s["last_ts"], s["seq"])),
            "events": [e for r in records for e in r["events"]],
            "df": df,
            "assigned": sorted(assigned, key=lambda a: (a["timestamp"], a["id"])),
            "recent": [a["knn"] for a in assigned if a.get("knn")],
        }
        return cls.from_dict(data, model, config)

    @property
    def active_events(self) -> int:
        return len(self.events)

    def story(self, story_id: str) -> Story | None:
        return self.stories.get(story_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MODEL_VERSION,
            "stories": [s.to_dict() for s in self.stories.values()],
            "events": [e.to_dict() for e in self.events.values()],
            "df": self.df,
            "docs": self.docs,
            "next_story": self.next_story,
            "next_event": self.next_event,
            "watermark": self.watermark if math.isfinite(self.watermark) else None,
            "assigned": [a.to_dict() for a in self.assigned.values()],
            "expired_stories": self.expired_stories,
            "merged": {s: list(m) for s, m in self.merged.items()},
            "recent": self.recent.entries(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], model: JoinModel, config: ClusterConfig | None = None) -> StoryClusterer:
        c = cls(model, config)
        for sd in data["stories"]:
            story = Story.from_dict(sd)
            c.stories[story.id] = story
            story.row = c.centroids.take(len(story.vector_sum))
            c.centroids.put(story.row, story.vector_sum)
            c.story_at[story.row] = story.id
            c.term_counts.add(story.row, story.terms)
            c.name_counts.add(story.row, story.entities)
        c.events = {e["id"]: Event.from_dict(e) for e in data["events"]}
        for event in c.events.values():
            event.row = c.centroids.take(len(event.vector_sum))
            c.centroids.put(event.row, event.vector_sum)
        for story in c.stories.values():
            c._refresh(story)
        c.df, c.docs = dict(data["df"]), data["docs"]
        c.next_story, c.next_event = data["next_story"], data["next_event"]
        c.watermark = data["watermark"] if data["watermark"] is not None else -math.inf
        for a in data["assigned"]:
            c.assigned[a["id"]] = Assignment.from_dict(a)
        c.expired_stories = data.get("expired_stories", 0)
        c.merged = {s: (m[0], float(m[1])) for s, m in data.get("merged", {}).items()}
        c._oldest_merge = min((m[1] for m in c.merged.values()), default=math.inf)
        c.recent.restore(data.get("recent", []), c._label)  # stories merged since an entry was stored: resolved
        return c
