"""Classifier two-sample test against sklearn's AUC and the Mann–Whitney null distribution."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from recogan_app.errors import InputError
from recogan_app.metrics.c2st import _weighted_auc, classifier_two_sample_test

ROWS = 20_000
FAST = {"n_estimators": 20, "max_depth": 3, "nthread": 2, "n_boot": 200}


def gaussian(rows, seed, shift=(0.0, 0.0, 0.0, 0.0), width=(1.0, 1.0, 1.0, 1.0)):
    values = np.random.default_rng(seed).normal(shift, width, size=(rows, 4))
    return pd.DataFrame(values, columns=["pt", "eta", "dca", "chi2"])


@pytest.fixture(scope="module")
def same():
    return classifier_two_sample_test(gaussian(ROWS, 0), gaussian(ROWS + 500, 1), seed=0, **FAST)


@pytest.fixture(scope="module")
def shifted():
    return classifier_two_sample_test(gaussian(ROWS, 2), gaussian(ROWS, 3, shift=(0, 0, 3, 0), width=(1, 2, 1, 1)),
                                      seed=0, **FAST)


def test_one_distribution_gives_auc_one_half(same):
    assert same.auc == pytest.approx(0.5, abs=0.02)
    # Under H0 the AUC (Mann–Whitney U / n1 n0) has sd √((n1 + n0 + 1) / (12 n1 n0)).
    half = same.n_test // 2
    null_sd = np.sqrt((2 * half + 1) / (12 * half**2))
    lo, hi = same.auc_interval
    assert lo < same.auc < hi
    assert (hi - lo) / 2 == pytest.approx(null_sd, rel=0.25)
    assert all(abs(v - 0.5) < 0.02 for v in same.per_feature_auc.values())


def test_clear_shift_is_found(shifted):
    assert shifted.auc > 0.9
    assert max(shifted.feature_importance, key=shifted.feature_importance.get) == "dca"
    assert sum(shifted.feature_importance.values()) == pytest.approx(1, abs=1e-5)
    assert shifted.per_feature_auc["dca"] > 0.9
    # A change of width alone: an AUC of the raw values would stay at 0.5, the binned classifier does not.
    assert shifted.per_feature_auc["eta"] > 0.6
    assert shifted.per_feature_auc["pt"] == pytest.approx(0.5, abs=0.02)


def test_auc_and_roc_agree_with_sklearn(shifted):
    labels = np.r_[np.ones(shifted.scores_reference.size), np.zeros(shifted.scores_synthetic.size)]
    scores = np.r_[shifted.scores_reference, shifted.scores_synthetic]
    assert shifted.auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr = shifted.roc
    assert np.trapezoid(tpr, fpr) == pytest.approx(shifted.auc, abs=1e-9)


def test_sizes_are_balanced_and_capped(same):
    assert same.n_test == same.n_train == ROWS  # the larger sample is cut to the smaller one's size
    assert same.scores_reference.size == same.scores_synthetic.size == ROWS // 2
    capped = classifier_two_sample_test(gaussian(1000, 4), gaussian(3000, 5), n_max=600, test_fraction=0.25,
                                        seed=1, **FAST)
    assert (capped.n_train, capped.n_test) == (900, 300)


def test_same_seed_same_result():
    reference, synthetic = gaussian(800, 6), gaussian(800, 7, shift=(0.3, 0, 0, 0))
    first, second = (classifier_two_sample_test(reference, synthetic, seed=3, **FAST) for _ in range(2))
    assert first.auc == second.auc and first.auc_interval == second.auc_interval


def test_bootstrap_weights_give_sklearns_weighted_auc():
    rng = np.random.default_rng(8)
    positives, negatives = rng.integers(0, 20, 300) / 20, rng.integers(0, 15, 200) / 20  # many ties
    weight_pos, weight_neg = rng.integers(0, 4, 300), rng.integers(0, 4, 200)
    order = np.argsort(negatives)
    sorted_negatives = negatives[order]
    below = np.searchsorted(sorted_negatives, positives, side="left")
    upto = np.searchsorted(sorted_negatives, positives, side="right")
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[positives, negatives],
                             sample_weight=np.r_[weight_pos, weight_neg])
    assert _weighted_auc(below, upto, weight_pos, weight_neg[order]) == pytest.approx(expected, abs=1e-12)


def test_bad_arguments_are_refused():
    frame = gaussian(50, 9)
    with pytest.raises(ValueError, match="test_fraction"):
        classifier_two_sample_test(frame, frame, test_fraction=1.0)
    with pytest.raises(InputError, match="column 'chi2'"):
        classifier_two_sample_test(frame, frame.drop(columns="chi2"))


def conditional_sample(conditions: np.ndarray, seed: int, spread: float = 1.0) -> pd.DataFrame:
    """Two targets whose response depends on three conditions (one of them a discrete species),
    beside those conditions: a conditional model's sample, row i given the conditions of row i."""
    rng = np.random.default_rng(seed)
    p, eta, species = conditions.T
    targets = np.column_stack([np.sin(2 * p) + eta * species + spread * rng.normal(size=len(p)),
                               np.abs(p) * (1 + spread * rng.exponential(size=len(p)))])
    return pd.DataFrame(np.column_stack([conditions, targets]), columns=["p", "eta", "species", "dll_k", "dll_p"])


def test_paired_twins_give_one_half_when_the_generator_is_the_truth_and_more_when_it_is_wrong():
    """A conditional sample's row i shares its conditions with MC row i. Folds that split the twins
    let the BDT learn "this condition was MC" and anti-predict (the defect: AUC far below 0.5);
    paired folds give chance for the truth and an AUC above chance for a too-wide response."""
    rng = np.random.default_rng(0)
    conditions = np.column_stack([rng.normal(size=1000), rng.uniform(-1, 1, 1000), rng.integers(0, 3, 1000)])
    mc, truth, wide = (conditional_sample(conditions, seed, spread) for seed, spread in ((1, 1.0), (2, 1.0), (3, 1.6)))
    options = {"seed": 1}  # the BDT of validate: deep enough to learn single condition values
    split_apart = classifier_two_sample_test(mc, truth, **options)
    paired, wrong = (classifier_two_sample_test(mc, sample, paired=True, **options) for sample in (truth, wide))
    half = paired.n_test // 2
    null_sd = np.sqrt((2 * half + 1) / (12 * half**2))  # Mann–Whitney AUC under H0
    assert abs(paired.auc - 0.5) < 3 * null_sd
    assert split_apart.auc < 0.5 - 3 * null_sd
    assert wrong.auc > 0.5 + 3 * null_sd and wrong.auc_interval[0] > paired.auc_interval[1]
    with pytest.raises(ValueError, match="paired samples need as many rows"):
        classifier_two_sample_test(mc, truth.iloc[:-1], paired=True, **options)
