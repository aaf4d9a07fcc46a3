import pytest

from models.metrics import score


def test_perfect_partition_scores_one_whatever_the_names():
    s = score(["a", "a", "b"], [7, 7, 3])
    assert s.bcubed_f1 == pytest.approx(1.0) and s.pairwise_f1 == pytest.approx(1.0) and s.ami == pytest.approx(1.0)


def test_everything_in_one_cluster_has_full_recall_low_precision():
    s = score(["a", "a", "b", "b"], [1, 1, 1, 1])
    assert s.bcubed_recall == 1.0 and s.bcubed_precision == pytest.approx(0.5)


def test_singletons_have_full_precision_low_recall():
    s = score(["a", "a", "b", "b"], [1, 2, 3, 4])
    assert s.bcubed_precision == 1.0 and s.bcubed_recall == pytest.approx(0.5)
    assert s.pairwise_recall == 0.0


def test_unlabelled_items_are_not_scored():
    with_noise = score(["a", None, "a", None], [1, 1, 1, 2])
    assert with_noise.bcubed_f1 == pytest.approx(1.0) and with_noise.scored == 2


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        score(["a"], [1, 2])
