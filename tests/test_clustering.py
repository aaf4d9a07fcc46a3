"""The online clusterer: determinism, idempotency, state round trip, bounded memory."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from models.clustering import ClusterConfig, StoryClusterer, final_story_ids
from models.features import ArticleFeatures, featurize_batch
from models.join_model import FEATURE_NAMES, JoinModel
from models.replay import cluster_features, event_time_order
from stream.evaluate import read_labelled
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def sample_features(static) -> list[ArticleFeatures]:
    items = event_time_order(read_labelled(SAMPLE)[0])
    return featurize_batch([x.article for x in items], static)


def run(features, clusterer=None):
    c = clusterer or StoryClusterer(JoinModel.load("static"))
    return c, [c.learn_one(f).to_dict() for f in features]


def test_same_order_gives_same_assignments(sample_features):
    _, first = run(sample_features)
    _, second = run(sample_features)
    assert first == second
    assert len({a["story_id"] for a in first}) < len(first) / 3  # it does cluster


def test_redelivered_article_never_counts_twice(sample_features):
    c, assignments = run(sample_features[:50])
    sizes = {s.id: s.size for s in c.stories.values()}
    again = [c.learn_one(f).to_dict() for f in sample_features[:50]]
    assert again == assignments
    assert {s.id: s.size for s in c.stories.values()} == sizes
    assert sum(sizes.values()) == 50


@pytest.mark.parametrize("window", [2000, 64], ids=["window-not-full", "window-wrapped"])
def test_state_round_trips_through_plain_dicts(sample_features, window):
    config = ClusterConfig(knn_window=window)
    _, uninterrupted = run(sample_features, StoryClusterer(JoinModel.load("static"), config))
    half = len(sample_features) // 2
    c, before = run(sample_features[:half], StoryClusterer(JoinModel.load("static"), config))
    state = json.loads(json.dumps(c.to_dict()))  # what a Faust table would hold
    restored = StoryClusterer.from_dict(state, JoinModel.load("static"), config)
    assert restored.recent.entries() == c.recent.entries()
    _, after = run(sample_features[half:], restored)
    assert before + after == uninterrupted


def test_state_stays_bounded_as_history_grows():
    rng = np.random.default_rng(0)
    config = ClusterConfig(story_ttl_hours=2, event_ttl_hours=1)
    c = StoryClusterer(JoinModel.load("static"), config)
    peak = 0
    for i in range(3000):
        v = rng.normal(size=256).astype(np.float32)
        f = ArticleFeatures(
            f"a{i}", i * 60.0, f"t{i}", "src", v / np.linalg.norm(v), {f"w{i}": 1, f"topic{i // 50}": 1}, []
        )
        c.learn_one(f)
        peak = max(peak, len(c.stories))
    # 3,000 articles one minute apart, a new topic every 50, 2 h TTL: whatever the joins, only the
    # last ~120 articles' stories, events and ids can be alive at once.
    assert c.expired_stories > 10
    assert peak <= 125 and len(c.assigned) <= 125 and len(c.events) <= 125
    assert sum(s.size for s in c.stories.values()) <= 125 + 50
    # every closed story and event gave its centroid row back: the table holds the live ones only
    assert c.centroids.live == len(c.stories) + len(c.events)
    assert len(c.centroids.rows) <= 2 * 250
    live_rows = [s.row for s in c.stories.values()] + [e.row for e in c.events.values()]
    assert len(set(live_rows)) == len(live_rows)  # no two live things share a row
    for story in c.stories.values():
        direction = story.vector_sum / np.linalg.norm(story.vector_sum)
        np.testing.assert_allclose(c.centroids.rows[story.row], direction, atol=1e-6)


def test_new_development_opens_an_event_inside_the_story():
    c = StoryClusterer(JoinModel.load("static"), ClusterConfig(event_threshold=0.9))
    v = np.eye(256, dtype=np.float32)
    base = {"crocus": 1, "moscow": 1, "attack": 1}
    c.learn_one(ArticleFeatures("a", 0, "attack", "A", v[0], base, ["crocus"]))
    second = c.learn_one(ArticleFeatures("b", 60, "attack again", "B", v[0], base, ["crocus"]))
    claim = c.learn_one(
        ArticleFeatures(
            "c", 120, "claim", "C", (v[0] + v[1]) / np.sqrt(2), {**base, "claim": 1, "islamic": 1}, ["crocus"]
        )
    )
    assert second.story_id == claim.story_id == "s1"
    assert second.event_decision == "join" and claim.event_decision == "new" and claim.event_id != second.event_id


def test_a_long_running_story_keeps_a_bounded_list_of_event_ids_and_counts_them_all():
    """A story with hundreds of developments is stored at every checkpoint that touches it: its
    record must not grow with them. Its count of developments must still be right (alerts say it)."""
    c = StoryClusterer(JoinModel.load("static"), ClusterConfig(event_threshold=0.99))
    v = np.eye(256, dtype=np.float32)
    terms = {"flood": 1, "valencia": 1}
    first = c.apply(ArticleFeatures("a0", 0, "flood", "A", v[0], terms, []), None)
    for i in range(1, 40):  # each article orthogonal to the last: a new event every time
        c.apply(ArticleFeatures(f"a{i}", 60.0 * i, "flood", "A", v[i], terms, []), first.story_id)
    other = c.apply(ArticleFeatures("b0", 3000, "rain", "B", v[100], {"rain": 1}, []), None)
    for i in range(1, 5):
        c.apply(ArticleFeatures(f"b{i}", 3000 + 60.0 * i, "rain", "B", v[100 + i], {"rain": 1}, []), other.story_id)
    k = c.config.events_scored
    story = c.stories[first.story_id]
    assert story.event_count == 40 and len(story.events) == k and len(story.past_events) == 40 - k
    assert all(e in c.events for e in story.events)
    c.merge(other.story_id, into=first.story_id, timestamp=4000)
    story = c.stories[first.story_id]
    assert story.event_count == 45 and len(story.events) == k and all(e in c.events for e in story.events)
    assert len(c.events) == k  # the rest live on as summaries only
    restored = StoryClusterer.from_dict(json.loads(json.dumps(c.to_dict())), JoinModel.load("static"))
    assert restored.stories[first.story_id].event_count == 45


def _state_is_consistent(c: StoryClusterer) -> None:
    """Postings, events and the neighbour memory only name live stories, and name all of them."""
    assert c.story_at == {s.row: sid for sid, s in c.stories.items()}
    for sid, story in c.stories.items():
        assert all(story.row in c.term_counts.rows_of(t) for t in story.terms)
        assert all(c.events[e].story_id == sid for e in story.events if e in c.events)
    assert not {e[2] for e in c.recent.entries()} & set(c.merged)


def test_merging_two_stories_folds_one_into_the_other():
    c = StoryClusterer(JoinModel.load("static"))
    v = np.eye(256, dtype=np.float32)
    quake = c.apply(ArticleFeatures("a", 0, "quake", "A", v[0], {"quake": 2, "chile": 1}, ["chile"]), None)
    rescue = c.apply(ArticleFeatures("b", 60, "rescue", "B", v[1], {"rescue": 1, "chile": 1}, ["santiago"]), None)
    c.apply(ArticleFeatures("c", 120, "more rescue", "B", v[1], {"rescue": 1}, []), rescue.story_id)
    c.drain_changes()
    stored_before = json.loads(json.dumps(c.recent.entries()))  # a checkpoint from before the merge
    c.merge(rescue.story_id, into=quake.story_id, timestamp=120)
    story = c.stories[quake.story_id]
    assert rescue.story_id not in c.stories and c.resolve(rescue.story_id) == quake.story_id
    assert story.size == 3 and story.terms == {"quake": 1, "chile": 2, "rescue": 2}  # articles using each
    assert story.entities == {"chile": 1, "santiago": 1} and len(story.events) == 2
    voted = c.recent.votes(v[1], c.story_table.seq)[0].tolist()
    assert voted == [story.row]  # the rescue articles now vote for the merged story
    changes = c.drain_changes()
    assert changes.removed_stories == {rescue.story_id} and changes.stories == {quake.story_id}
    _state_is_consistent(c)
    restored = StoryClusterer.from_dict(json.loads(json.dumps(c.to_dict())), JoinModel.load("static"))
    assert restored.resolve(rescue.story_id) == quake.story_id and restored.stories[quake.story_id].size == 3
    # neighbours stored before the merge (the stream layer keeps each article's entry as it was
    # written) vote for the story they went into once restored, and are stored as it again
    late = StoryClusterer.from_dict({**json.loads(json.dumps(c.to_dict())), "recent": stored_before}, c.model)
    assert late.recent.votes(v[1], late.story_table.seq)[0].tolist() == [late.stories[quake.story_id].row]
    assert late.recent.entries() == c.recent.entries()
    # the merge is forgotten with the articles it concerned, after the story TTL
    c.expire(120 + c.config.story_ttl_hours * 3600 + 1)
    assert not c.merged


def test_an_article_sure_of_two_stories_merges_them(sample_features):
    """On the sample, with merging switched on: merges happen, the older story keeps its id, the
    assignment names what it merged, and the state stays consistent and round-trips."""
    model = JoinModel.load("static").with_threshold(JoinModel.load("static").threshold, merge_threshold=0.6)
    c = StoryClusterer(model)
    half = len(sample_features) // 2
    first = [c.learn_one(f) for f in sample_features[:half]]
    restored = StoryClusterer.from_dict(json.loads(json.dumps(c.to_dict())), model)
    rest = [c.learn_one(f) for f in sample_features[half:]]
    assert [restored.learn_one(f).to_dict() for f in sample_features[half:]] == [a.to_dict() for a in rest]
    merging = [a for a in first + rest if a.merged]
    assert merging, "no merge on the sample at 0.6"
    for a in merging:
        assert all(int(gone[1:]) > int(a.story_id[1:]) for gone in a.merged)  # the older story kept its id
        assert all(c.resolve(gone) == c.resolve(a.story_id) for gone in a.merged)
    _state_is_consistent(c)
    members = Counter(c.resolve(a.story_id) for a in first + rest)
    assert {sid: s.size for sid, s in c.stories.items()} == {sid: members[sid] for sid in c.stories}  # none lost


def test_the_evaluator_follows_merges_the_clusterer_has_forgotten(sample_features):
    """A merge is dropped from the state with the articles it concerned (story TTL); the evaluator's
    final stories must still follow it, as a consumer of the assignments topic does."""
    model = JoinModel.load("static").with_overrides(None, 0.6)
    config = ClusterConfig(story_ttl_hours=12, event_ttl_hours=6)
    result = cluster_features(sample_features, [None] * len(sample_features), model, config)
    c = result.clusterer
    plain = run(sample_features, StoryClusterer(model, config))[1]
    forgotten = {gone for a in plain for gone in a["merged"]} - set(c.merged)
    assert forgotten, "no merge was forgotten: the case is not exercised"
    final = final_story_ids(plain)
    assert [a.story_id for a in result.assignments] == [final[f.id] for f in sample_features]
    assert not set(final.values()) & forgotten  # no article is left in a story that was merged away


def _terms_only_model() -> JoinModel:
    """A join model that reads only the ``terms`` feature: P = sigmoid(12 * terms - 4), so an
    article half of whose words a story uses is 0.88 likely to join it, one it shares nothing with 0.02."""
    width = len(FEATURE_NAMES)
    coef = np.zeros(width)
    coef[FEATURE_NAMES.index("terms")] = 12.0
    return JoinModel(np.zeros(width), np.ones(width), coef, -4.0, 0.5, "static", merge_threshold=0.6)


def _two_stories(c: StoryClusterer, first: dict[str, int], second: dict[str, int], size: int) -> tuple[str, str]:
    v = np.eye(256, dtype=np.float32)
    a = c.apply(ArticleFeatures("a0", 0, "a", "A", v[0], first, []), None).story_id
    b = c.apply(ArticleFeatures("b0", 1, "b", "B", v[1], second, []), None).story_id
    for i in range(1, size):
        c.apply(ArticleFeatures(f"a{i}", 2 * i, "a", "A", v[0], first, []), a)
        c.apply(ArticleFeatures(f"b{i}", 2 * i + 1, "b", "B", v[1], second, []), b)
    return a, b


@pytest.mark.parametrize("check", [5, 0], ids=["checked", "unchecked"])
def test_an_article_bridging_two_unrelated_stories_does_not_merge_them(check):
    """ "Bitcoin exchange Mt. Gox files for US bankruptcy" is likely to join both the Mt. Gox story
    and the Sbarro bankruptcy story; the stories themselves share nothing, so they stay apart."""
    c = StoryClusterer(_terms_only_model(), ClusterConfig(merge_check_size=check))
    gox, sbarro = _two_stories(c, {"bitcoin": 1, "gox": 1}, {"sbarro": 1, "bankruptcy": 1}, size=6)
    bridge = ArticleFeatures(
        "x", 20, "Mt. Gox files for bankruptcy", "C", np.eye(256, dtype=np.float32)[2], {"gox": 1, "bankruptcy": 1}, []
    )
    probs = c.model.probability(c.candidates(bridge).features)
    assert sorted(probs)[-2] >= c.model.merge_threshold  # the article alone would merge them
    a = c.learn_one(bridge)
    if check:
        assert not a.merged and {gox, sbarro} <= set(c.stories)
    else:
        assert a.merged and len({c.resolve(gox), c.resolve(sbarro)}) == 1  # what the check prevents


def test_two_stories_that_are_one_still_merge_and_small_ones_are_not_checked():
    c = StoryClusterer(_terms_only_model())
    first, second = _two_stories(c, {"quake": 1, "chile": 1}, {"quake": 1, "chile": 1}, size=6)
    a = c.learn_one(ArticleFeatures("x", 20, "quake", "C", np.eye(256, dtype=np.float32)[2], {"quake": 1}, []))
    assert a.merged == [second] and a.story_id == first
    # Below the check's size, an article's evidence is all there is: unrelated small stories merge.
    c = StoryClusterer(_terms_only_model())
    small = ClusterConfig().merge_check_size - 1
    gox, sbarro = _two_stories(c, {"bitcoin": 1, "gox": 1}, {"sbarro": 1, "bankruptcy": 1}, size=small)
    bridge = ArticleFeatures("x", 20, "bridge", "C", np.eye(256, dtype=np.float32)[2], {"gox": 1, "bankruptcy": 1}, [])
    assert c.learn_one(bridge).merged == [sbarro]


def _hub_and_named_story(config: ClusterConfig) -> tuple[StoryClusterer, str, str]:
    """A broad story H (20 articles about the Bohol quake, one of them naming Guatemala) and a
    small story G whose 5 articles all name Guatemala; both use the word "quake"."""
    c = StoryClusterer(_terms_only_model(), config)
    v = np.eye(256, dtype=np.float32)
    hub = c.apply(ArticleFeatures("h0", 0, "h", "H", v[0], {"quake": 1, "help": 1}, ["bohol"]), None).story_id
    for i in range(1, 20):
        names = ["guatemala"] if i == 7 else ["bohol"]
        c.apply(ArticleFeatures(f"h{i}", i, "h", "H", v[0], {"quake": 1, "help": 1}, names), hub)
    named = c.apply(ArticleFeatures("g0", 20, "g", "G", v[1], {"quake": 1}, ["guatemala"]), None).story_id
    for i in range(1, 5):
        c.apply(ArticleFeatures(f"g{i}", 20 + i, "g", "G", v[1], {"quake": 1}, ["guatemala"]), named)
    return c, hub, named


@pytest.mark.parametrize("share", [ClusterConfig().named_story_share, 0.0], ids=["default", "off"])
def test_an_article_joins_the_story_it_names_over_a_broader_one(share):
    """A tweet naming Guatemala is likelier to join the broad story (it shares all its words) than
    the Guatemala story (it shares one), but the broad story hardly names Guatemala: it goes to
    the story it names, and is no evidence that the two stories are one."""
    c, hub, named = _hub_and_named_story(ClusterConfig(named_story_share=share))
    x = ArticleFeatures("x", 30, "x", "X", np.eye(256, dtype=np.float32)[2], {"quake": 1, "help": 1}, ["guatemala"])
    cands = c.candidates(x)
    probs = dict(zip(cands.story_ids, c.model.probability(cands.features)))
    assert probs[hub] > probs[named] >= c.model.threshold  # both likely, the broad story more
    a = c.learn_one(x)
    if share:
        assert (a.story_id, a.merged) == (named, []) and {hub, named} <= set(c.stories)
    else:  # what the rule prevents: the broad story takes it, and merges the Guatemala story in
        assert a.story_id == hub and c.resolve(named) == hub


def test_an_article_without_names_or_naming_what_the_best_story_names_stays_with_it():
    c, hub, named = _hub_and_named_story(ClusterConfig())
    v = np.eye(256, dtype=np.float32)
    assert c.predict_one(ArticleFeatures("y", 30, "y", "Y", v[2], {"quake": 1, "help": 1}, []))[0] == hub
    assert c.predict_one(ArticleFeatures("z", 30, "z", "Z", v[2], {"quake": 1, "help": 1}, ["bohol"]))[0] == hub


def test_the_inverted_index_is_exactly_the_stories_vocabularies(sample_features):
    """Retrieval reads the postings: a story missing from the posting of a term it uses (or listed
    under one it no longer uses) would change which stories are candidates."""
    config = ClusterConfig(max_story_terms=8)  # vocabularies pruned all the time
    c = StoryClusterer(JoinModel.load("static"), config)
    for i, f in enumerate(sample_features):
        c.learn_one(f)
        if i % 60 == 59:
            c = StoryClusterer.from_dict(json.loads(json.dumps(c.to_dict())), JoinModel.load("static"), config)
        if i % 20 == 19:
            expected: dict[str, set[int]] = {}
            for s in c.stories.values():
                for t in s.terms:
                    expected.setdefault(t, set()).add(s.row)
            held = {t: c.term_counts.rows_of(t) for t in expected}
            assert {t: set(rows) for t, rows in held.items()} == expected
            assert all(len(rows) == len(set(rows)) for rows in held.values())  # no row listed twice
            assert c.story_at == {s.row: s.id for s in c.stories.values()}
    assert len(c.stories) > 12


def churned(features, config: ClusterConfig):
    """The clusterer every 15 articles of a stream run with merges, expiry and a JSON restore every
    70 articles: the paths that change and close stories. Fails unless merges and expiry happened."""
    model = JoinModel.load("static").with_threshold(0.3, merge_threshold=0.6)  # merges happen
    c = StoryClusterer(model, config)
    merges = 0
    for i, f in enumerate(features):
        merges += len(c.learn_one(f).merged)
        if i % 70 == 69:
            c = StoryClusterer.from_dict(json.loads(json.dumps(c.to_dict())), model, config)
        if i % 15 == 14:
            yield c
    assert merges and c.expired_stories
    yield c


def test_the_story_table_is_exactly_what_the_stories_hold(sample_features):
    """The join features read sizes, last activity and scored rows from the story table, not from
    the stories: a size not written back after a join or a merge, or a row left with a closed
    story's entry, would change decisions without failing anything else. Checked through merges,
    expiry and JSON restores."""
    for c in churned(sample_features, ClusterConfig(story_ttl_hours=6, event_ttl_hours=2, events_scored=3)):
        for s in c.stories.values():
            assert c.story_table.meta[s.row].tolist() == [s.size, s.last_ts, len(s.scored)]
            assert c.story_table.scored[s.row, : len(s.scored)].tolist() == s.scored
            assert s.scored == [s.row] + [c.events[e].row for e in s.events[-3:]]
    older, younger = list(c.stories)[:2]  # the last clusterer churned() gave
    c.merge(younger, into=older, timestamp=c.watermark)  # merged directly, with no article after it
    s = c.stories[older]
    assert c.story_table.meta[s.row].tolist() == [s.size, s.last_ts, len(s.scored)]


def test_the_neighbour_memory_labels_each_article_with_its_live_story(sample_features):
    """Votes are counted by (row, seq) labels, checked against the story table: a merged story's
    articles not relabelled, a closed story's row left alive in the table, or a restore that
    labels by the stored id without following merges, would give votes to the wrong story (or
    to none) without failing anything else. Checked through merges, expiry and JSON restores."""
    for c in churned(sample_features, ClusterConfig(story_ttl_hours=6, event_ttl_hours=2)):
        live = {s.seq for s in c.stories.values()}
        assert {int(x) for x in c.story_table.seq} - {-1, 0} <= live  # closed stories' rows cleared
        for slot, story_id in enumerate(c.recent._stories):
            if not story_id:
                continue
            row, seq = int(c.recent._rows[slot]), int(c.recent._seqs[slot])
            assert story_id not in c.merged  # stored (and voted) as the story it went into
            story = c.stories.get(story_id)
            if story is None:  # expired: it must not vote
                assert row < 0 or c.story_table.seq[row] != seq
            else:
                assert (row, seq) == (story.row, story.seq) and c.story_table.seq[row] == seq


def test_the_compiled_counts_are_exactly_the_stories_vocabularies_and_names(sample_features):
    """The join features read the candidates' term and name counts from compiled tables keyed by
    row, not from the stories: a count left behind by a pruned term, or a closed story whose reused
    row kept its counts, would change decisions without failing anything else. Checked through
    pruning, merges, expiry and JSON restores."""
    for c in churned(sample_features, ClusterConfig(max_story_terms=8, story_ttl_hours=6, event_ttl_hours=2)):
        stories = list(c.stories.values())
        rows = [s.row for s in stories]
        terms = sorted({t for s in stories for t in s.terms} | {"never-used"})
        names = sorted({e for s in stories for e in s.entities})
        assert c.term_counts.matrix(rows, terms).tolist() == [[s.terms.get(t, 0) for t in terms] for s in stories]
        assert c.name_counts.matrix(rows, names).tolist() == [[s.entities.get(e, 0) for e in names] for s in stories]
        # nothing held for rows no live story has (closed ones were cleared)
        assert len(c.term_counts) == sum(len(s.terms) for s in stories)
        assert len(c.name_counts) == sum(len(s.entities) for s in stories)
