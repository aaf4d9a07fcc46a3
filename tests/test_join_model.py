"""The join model's training and artifact: what the hidden layer is for, and that it ships intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.features import ArticleFeatures
from models.join_model import FEATURE_NAMES, JoinModel
from models.training.train_join import Architecture, Stream, fit, fold_streams


def _interaction_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows where "same story" needs two features read together: high ``dense_story`` counts only
    when ``terms`` agrees, as a cosine between two foreign-language tweets counts only with shared
    words. No weighted sum of the two separates that."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, len(FEATURE_NAMES)))
    dense, terms = x[:, FEATURE_NAMES.index("dense_story")], x[:, FEATURE_NAMES.index("terms")]
    return x, (dense > 0) == (terms > 0)


def _accuracy(model: JoinModel, x: np.ndarray, y: np.ndarray) -> float:
    return float(((model.probability(x) >= 0.5) == y).mean())


def test_hidden_units_learn_an_interaction_that_logistic_regression_cannot() -> None:
    train, test = _interaction_rows(30_000, 0), _interaction_rows(2000, 1)
    net = fit([train], "static", 0.5, "test", Architecture(16))
    linear = fit([train], "static", 0.5, "test", Architecture(0))
    assert net.hidden_units == 16 and linear.hidden_units == 0
    assert _accuracy(net, *test) > 0.9
    assert _accuracy(linear, *test) < 0.65


def test_the_same_rows_give_the_same_model() -> None:
    rows = _interaction_rows(2000, 2)
    a, b = fit([rows], "static", 0.5, "test"), fit([rows], "static", 0.5, "test")
    np.testing.assert_array_equal(a.hidden_weights, b.hidden_weights)
    np.testing.assert_array_equal(a.coef, b.coef)


def test_an_artifact_round_trips_with_its_hidden_layer(tmp_path: Path) -> None:
    x, y = _interaction_rows(2000, 3)
    model = fit([(x, y)], "static", 0.5, "test", Architecture(8)).with_threshold(0.4, 0.8)
    model.save(tmp_path / "join_static.json")
    loaded = JoinModel.load("static", tmp_path)
    assert (loaded.threshold, loaded.merge_threshold, loaded.hidden_units) == (0.4, 0.8, 8)
    np.testing.assert_array_equal(loaded.probability(x), model.probability(x))


def test_an_ensemble_scores_the_mean_logit_of_its_members() -> None:
    x, y = _interaction_rows(3000, 4)
    single = fit([(x, y)], "static", 0.5, "test", Architecture(8))
    ensemble = fit([(x, y)], "static", 0.5, "test", Architecture(8, members=3))
    assert ensemble.hidden_units == 24
    np.testing.assert_array_equal(ensemble.hidden_weights[:, :8], single.hidden_weights)  # member 0 is seed 0
    # Member k on its own: its units and its output weights (undo the division by 3).
    logits = []
    for k in range(3):
        units = slice(8 * k, 8 * (k + 1))
        member = JoinModel(
            ensemble.mean,
            ensemble.scale,
            ensemble.coef[units] * 3,
            0.0,
            0.5,
            "static",
            hidden_weights=np.ascontiguousarray(ensemble.hidden_weights[:, units]),
            hidden_bias=ensemble.hidden_bias[units],
        )
        logits.append(_logit(member.probability(x[:200])))
    np.testing.assert_allclose(
        np.mean(logits, axis=0) + ensemble.intercept, _logit(ensemble.probability(x[:200])), atol=1e-6
    )
    assert not np.allclose(logits[0], logits[1])  # the members differ: other seeds


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def test_the_two_folds_of_a_split_share_no_story_and_both_keep_the_noise() -> None:
    """Held-out figures are only held out if no gold story is on both sides of a split."""
    gold = [f"story-{i % 20}" for i in range(200)] + [None] * 10
    features = [ArticleFeatures(str(i), float(i), "t", "", np.zeros(2, np.float32), {}, []) for i in range(len(gold))]
    stream = Stream("s", features, gold)
    for salt in ("", "a"):
        (zero,), (one,) = fold_streams([stream], 0, salt), fold_streams([stream], 1, salt)
        stories = [{g for g in fold.gold if g is not None} for fold in (zero, one)]
        assert stories[0] and stories[1] and not stories[0] & stories[1]
        assert stories[0] | stories[1] == {g for g in gold if g is not None}
        assert zero.gold.count(None) == one.gold.count(None) == 10
    # another salt is another split of the same stories
    assert {g for g in fold_streams([stream], 0, "")[0].gold} != {g for g in fold_streams([stream], 0, "a")[0].gold}
