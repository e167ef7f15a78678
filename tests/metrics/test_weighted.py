"""Weighted metrics (a weighted MC's KS, Wasserstein, histograms, correlations, classifier test)
against scipy, numpy, hand-computed cases and the exact identity "integer weights = repeated rows"."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recogan_app.metrics import classifier_two_sample_test, effective_size, ks_statistic, wasserstein
from recogan_app.metrics.correlations import correlation_matrix
from recogan_app.metrics.distributions import feature_metrics, weighted_quantile
from recogan_app.preprocessing import FeaturePipeline
from recogan_app.validation import compare_histograms


def test_weighted_ks_and_w1_by_hand():
    # a = 1, 2, 3 weighted 3, 1, 1: F_a = 0.6, 0.8, 1 at x = 1, 2, 3; F_b = 0, 1/4, 1/2, 3/4, 1 at x = 1..5.
    # Gaps 0.6, 0.55, 0.5, 0.25, 0: KS 0.6 (0.5 unweighted); W1 = 0.6 + 0.55 + 0.5 + 0.25 = 1.9.
    a, w, b = [1, 2, 3], [3, 1, 1], [2, 3, 4, 5]
    assert ks_statistic(a, b, a_weights=w) == pytest.approx(0.6, abs=1e-15)
    assert wasserstein(a, b, a_weights=w) == pytest.approx(1.9, abs=1e-15)
    assert ks_statistic(a, b) == pytest.approx(0.5, abs=1e-15)


def _weighted_ecdf_ks(a, wa, b, wb):
    """KS the slow way: both weighted ECDFs evaluated at every pooled value."""
    points = np.union1d(a, b)
    cdf = [np.array([wx[x <= t].sum() for t in points]) / wx.sum() for x, wx in ((a, wa), (b, wb))]
    return np.abs(cdf[0] - cdf[1]).max()


@pytest.mark.parametrize("seed", range(5))
def test_weighted_ks_and_w1_equal_the_definition_and_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 8, 40).astype(float), rng.normal(3, 2, 30).round(1)  # ties within and across
    wa, wb = rng.uniform(0, 3, a.size), rng.uniform(0.5, 1.5, b.size)
    assert ks_statistic(a, b, wa, wb) == pytest.approx(_weighted_ecdf_ks(a, wa, b, wb), abs=1e-12)
    assert wasserstein(a, b, wa, wb) == pytest.approx(stats.wasserstein_distance(a, b, wa, wb), rel=1e-12)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=200), rng.normal(0.2, 1.1, 150)
    counts = rng.integers(0, 4, a.size)
    repeated = np.repeat(a, counts)
    assert ks_statistic(a, b, counts) == pytest.approx(ks_statistic(repeated, b), abs=1e-12)
    assert wasserstein(a, b, counts) == pytest.approx(wasserstein(repeated, b), abs=1e-12)
    frame = pd.DataFrame({"x": a, "y": a**2 + rng.normal(size=a.size), "n": rng.integers(0, 3, a.size)})
    for method in ("pearson", "spearman"):
        expected = correlation_matrix(frame.loc[frame.index.repeat(counts)], method)
        np.testing.assert_allclose(correlation_matrix(frame, method, weights=counts), expected, atol=1e-12)


def test_weighted_pearson_equals_numpys_weighted_covariance():
    rng = np.random.default_rng(4)
    values = rng.multivariate_normal([0, 0, 1], [[1, 0.6, 0.2], [0.6, 1, -0.3], [0.2, -0.3, 2]], 300)
    weights = rng.exponential(1.0, 300)
    covariance = np.cov(values, rowvar=False, aweights=weights)
    expected = covariance / np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)))
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    np.testing.assert_allclose(correlation_matrix(frame, weights=weights).to_numpy(), expected, atol=1e-12)


def test_equal_weights_change_nothing():
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=300), "n": rng.integers(0, 5, 300)})
    synthetic = pd.DataFrame({"x": rng.normal(0.1, 1, 400), "n": rng.integers(0, 5, 400)})
    plain = feature_metrics(reference, synthetic)
    weighted = feature_metrics(reference, synthetic, weights=np.full(300, 2.5))
    np.testing.assert_allclose(weighted[["ks", "wasserstein", "wasserstein_iqr"]],
                               plain[["ks", "wasserstein", "wasserstein_iqr"]], atol=1e-12)


def test_weighted_quantiles_reduce_to_numpys_and_follow_the_weights():
    rng = np.random.default_rng(8)
    x, levels = rng.normal(size=501).round(1), np.linspace(0, 1, 41)  # ties
    np.testing.assert_allclose(weighted_quantile(x, levels, np.full(x.size, 0.3)), np.quantile(x, levels), atol=1e-12)
    # uniform values weighted 2u: the weighted distribution has CDF t², its quantiles √p
    u = rng.uniform(size=20_000)
    np.testing.assert_allclose(weighted_quantile(u, [0.25, 0.5, 0.81], 2 * u), [0.5, 0.5**0.5, 0.9], atol=0.01)


def test_weighted_preprocessing_maps_the_weighted_distribution_to_a_normal():
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"u": rng.uniform(size=20_000)})
    z = FeaturePipeline({"u": "quantile"}).fit(frame, weights=2 * frame["u"]).transform(frame)[:, 0]
    mean = np.average(z, weights=frame["u"])
    assert mean == pytest.approx(0.0, abs=0.02)
    assert np.sqrt(np.average((z - mean) ** 2, weights=frame["u"])) == pytest.approx(1.0, abs=0.03)
    assert np.mean(z) < -0.3  # the unweighted rows are not normal: the weights were used


def test_effective_size_by_hand():
    assert effective_size([1, 1, 1, 1]) == 4
    assert effective_size([2, 1, 1]) == pytest.approx(16 / 6)  # (Σw)² = 16, Σw² = 6
    assert effective_size(None, 7) == 7


def test_weighted_histogram_counts_sums_of_weights_with_their_errors():
    h = compare_histograms([0, 1, 1, 2], [0, 1, 2, 2, 2, 2], integer=True, weights=[0.5, 1.0, 2.0, -0.5])
    np.testing.assert_allclose(h.reference, [0.5, 3.0, -0.5])
    np.testing.assert_allclose(h.reference_error, np.sqrt([0.25, 5.0, 0.25]))  # √Σw²
    assert h.scale == pytest.approx(3.0 / 6)  # Σw / synthetic rows
    variance = np.array([0.25, 5.0, 0.25]) + 0.5**2 * np.array([1, 1, 4])
    assert h.chi2 == pytest.approx(np.sum((np.array([0.5, 3.0, -0.5]) - 0.5 * np.array([1, 1, 4])) ** 2 / variance))
    unweighted = compare_histograms([0, 1, 1, 2], [0, 1, 2, 2, 2, 2], integer=True)
    np.testing.assert_allclose(unweighted.reference_error, np.sqrt(unweighted.reference))  # Poisson without weights


def test_importance_weights_make_a_classifier_blind_to_a_shift():
    """MC drawn from N(0.7, 1) with weights N(0, 1)/N(0.7, 1) is N(0, 1): the weighted test sees
    (almost) nothing, the unweighted one sees the shift."""
    rng = np.random.default_rng(6)
    n = 3000
    proposal = rng.normal(0.7, 1.0, (n, 2))
    weights = np.exp(stats.norm.logpdf(proposal).sum(1) - stats.norm.logpdf(proposal, 0.7).sum(1))
    reference = pd.DataFrame(proposal, columns=["x", "y"])
    synthetic = pd.DataFrame(rng.normal(size=(n, 2)), columns=["x", "y"])
    options = dict(n_estimators=40, max_depth=3, seed=0, n_boot=20)
    weighted = classifier_two_sample_test(reference, synthetic, weights=weights, **options)
    plain = classifier_two_sample_test(reference, synthetic, **options)
    assert plain.auc > 0.65
    assert weighted.auc < 0.56
    assert weighted.per_feature_auc["x"] < 0.55 < plain.per_feature_auc["x"]
