"""Per-feature distances against scipy, closed forms and hand-computed cases."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from recogan_app.errors import InputError
from recogan_app.metrics.distributions import (
    bootstrap_interval,
    feature_metrics,
    iqr,
    is_discrete,
    ks_floor,
    ks_statistic,
    ks_summary,
    ks_test,
    noise_floor,
    split_halves,
    wasserstein,
)
from recogan_app.metrics.verdict import EXCELLENT, GOOD


def test_ks_and_w1_by_hand():
    # F_a = 1/3, 2/3, 1, 1, 1 and F_b = 0, 1/4, 1/2, 3/4, 1 at x = 1..5: largest gap 1/2 at x = 3;
    # W1 = 1/3 + 5/12 + 1/2 + 1/4 = 3/2 (= difference of the means, as F_a ≥ F_b everywhere).
    assert ks_statistic([1, 2, 3], [2, 3, 4, 5]) == pytest.approx(0.5, abs=1e-15)
    assert wasserstein([1, 2, 3], [2, 3, 4, 5]) == pytest.approx(1.5, abs=1e-15)


def test_discrete_ks_uses_exact_values_with_ties():
    # F_a(0, 1, 2) = 2/6, 5/6, 1 and F_b = 1/6, 3/6, 1: D = 1/3; W1 = 1/6 + 2/6 = 1/2.
    a, b = [0, 0, 1, 1, 1, 2], [0, 1, 1, 2, 2, 2]
    assert ks_statistic(a, b) == pytest.approx(1 / 3, abs=1e-15)
    assert wasserstein(a, b) == pytest.approx(0.5, abs=1e-15)
    statistic, pvalue = ks_test(a, b)
    reference = stats.ks_2samp(a, b, method="exact")
    assert (statistic, pvalue) == pytest.approx((reference.statistic, reference.pvalue), abs=1e-12)


samples = st.lists(st.one_of(st.integers(-3, 3), st.floats(-1e3, 1e3)), min_size=1, max_size=60)


@pytest.mark.filterwarnings("ignore:ks_2samp:RuntimeWarning")  # scipy's p-value, unused here
@settings(max_examples=300, deadline=None)
@given(samples, samples)
def test_ks_and_w1_equal_scipy_on_any_sample(a, b):
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12, abs=1e-12)


def test_large_samples_equal_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20_000), rng.normal(0.02, 1.1, size=15_000)
    statistic, pvalue = ks_test(a, b)
    reference = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(reference.statistic, abs=1e-12)
    assert pvalue == pytest.approx(reference.pvalue, rel=0.03)  # Kolmogorov limit vs kstwo at n·m/(n+m)
    assert wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


def test_small_samples_get_scipys_exact_pvalue():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=400), rng.normal(0.2, 1, size=300)
    assert ks_test(a, b)[1] == stats.ks_2samp(a, b, method="exact").pvalue


def test_refuses_empty_and_nonfinite_samples():
    with pytest.raises(ValueError, match="empty"):
        ks_statistic([], [1.0])
    with pytest.raises(ValueError, match="1 NaN"):
        wasserstein([1.0, np.nan], [1.0])


def test_iqr_equals_scipy():
    x = np.random.default_rng(3).exponential(size=1001)
    assert iqr(x) == pytest.approx(stats.iqr(x), rel=1e-12)


def test_is_discrete():
    assert is_discrete([0, 1, 1, 2, 7])
    assert is_discrete(np.array([1.0, 2.0, 2.0]))
    assert not is_discrete([0.5, 1.0])
    assert not is_discrete(np.arange(1000))  # integral but too many values to call discrete


def test_feature_metrics_columns_and_values():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"x": rng.normal(size=3000), "n": rng.poisson(3, size=3000)})
    synthetic = pd.DataFrame({"n": rng.poisson(3.2, size=2000), "x": rng.normal(0.1, 1, size=2000)})
    table = feature_metrics(reference, synthetic)
    assert list(table.index) == ["x", "n"] and table.index.name == "feature"
    assert list(table.columns) == ["ks", "ks_pvalue", "wasserstein", "wasserstein_iqr", "discrete"]
    for name in ["x", "n"]:
        expected = stats.ks_2samp(reference[name], synthetic[name], method="exact")
        assert table.loc[name, "ks"] == pytest.approx(expected.statistic, abs=1e-12)
        assert table.loc[name, "ks_pvalue"] == pytest.approx(expected.pvalue, abs=1e-12)
        w1 = stats.wasserstein_distance(reference[name], synthetic[name])
        assert table.loc[name, "wasserstein"] == pytest.approx(w1, rel=1e-12)
        assert table.loc[name, "wasserstein_iqr"] == pytest.approx(w1 / stats.iqr(reference[name]), rel=1e-12)
    assert table["discrete"].tolist() == [False, True]


def test_wasserstein_scale_falls_back_to_std_when_iqr_is_zero():
    reference = pd.DataFrame({"hits": [7] * 8 + [5, 6], "const": [1.0] * 10})
    synthetic = pd.DataFrame({"hits": [7] * 9 + [6], "const": [1.0] * 9 + [2.0]})
    table = feature_metrics(reference, synthetic)
    assert table.loc["hits", "wasserstein_iqr"] == pytest.approx(
        stats.wasserstein_distance(reference["hits"], synthetic["hits"]) / np.std(reference["hits"]))
    assert np.isnan(table.loc["const", "wasserstein_iqr"])


def test_feature_metrics_names_the_bad_column():
    good = pd.DataFrame({"decay_length": [1.0, 2.0], "dca": [0.1, 0.2]})
    with pytest.raises(InputError, match="column 'decay_lenght'.*closest: 'decay_length'"):
        feature_metrics(good, good, features=["decay_lenght"])
    with pytest.raises(InputError, match="column 'dca': synthetic sample has 1 NaN"):
        feature_metrics(good, good.assign(dca=[0.1, np.nan]))
    with pytest.raises(InputError, match="column 'dca'.*not numbers"):
        feature_metrics(good, good.assign(dca=["a", "b"]))


def test_bootstrap_interval_of_a_mean_difference_matches_its_standard_error():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, size=400), rng.normal(0, 2, size=600)
    lo, hi = bootstrap_interval(lambda x, y: x.mean() - y.mean(), a, b, n_boot=400, rng=6)
    standard_error = np.sqrt(a.var() / a.size + b.var() / b.size)
    assert (hi - lo) / 2 == pytest.approx(stats.norm.ppf(0.84) * standard_error, rel=0.15)
    assert lo < a.mean() - b.mean() < hi
    assert bootstrap_interval(ks_statistic, a, b, n_boot=20, rng=7) == bootstrap_interval(ks_statistic, a, b, n_boot=20, rng=7)


def test_bootstrap_interval_of_ks_is_the_replicas_spread_placed_on_the_measured_value():
    """Two samples of one distribution: every KS replica lies above the measured KS (noise adds to a
    distance), and the interval is their 16-84 % spread around their median, moved onto it."""
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=300), rng.normal(size=300)
    ks = stats.ks_2samp(a, b).statistic
    draws = np.random.default_rng(9)
    replicas = [stats.ks_2samp(a[draws.integers(0, 300, 300)], b[draws.integers(0, 300, 300)]).statistic
                for _ in range(100)]
    q16, q50, q84 = np.quantile(replicas, [0.16, 0.5, 0.84])
    assert q16 > ks  # the raw percentile interval would not contain the measurement
    lo, hi = bootstrap_interval(ks_statistic, a, b, n_boot=100, rng=9)
    assert (lo, hi) == pytest.approx((ks + q16 - q50, ks + q84 - q50), abs=1e-12)
    assert lo < ks < hi


def test_split_halves_are_disjoint_and_capped():
    frame = pd.DataFrame({"x": np.arange(101)})
    first, second = split_halves(frame, rng=0)
    assert len(first) == len(second) == 50 and not set(first["x"]) & set(second["x"])
    assert [len(h) for h in split_halves(frame, size=20, rng=0)] == [20, 20]
    with pytest.raises(InputError):
        split_halves(frame.iloc[:1])


def test_noise_floor_is_feature_metrics_of_the_halves():
    frame = pd.DataFrame(np.random.default_rng(8).normal(size=(1000, 3)), columns=list("abc"))
    expected = feature_metrics(*split_halves(frame, 300, rng=9))
    pd.testing.assert_frame_equal(noise_floor(frame, n_synthetic=300, rng=9), expected)


def test_empirical_noise_floor_agrees_with_the_closed_form():
    # 300 independent features: each half-vs-half KS is one draw of the null distribution.
    frame = pd.DataFrame(np.random.default_rng(10).normal(size=(3000, 300)))
    floor = noise_floor(frame, rng=11)["ks"].to_numpy()
    assert np.mean(floor <= ks_floor(1500, 1500, cl=0.68)) == pytest.approx(0.68, abs=0.09)
    assert np.quantile(floor, 0.68) == pytest.approx(ks_floor(1500, 1500), rel=0.1)


def test_ks_floor_closed_form():
    assert ks_floor(100, 400, cl=0.95) == pytest.approx(np.sqrt(500 / 40_000) * 1.3580986, rel=1e-6)


@pytest.mark.parametrize(("values", "verdict"), [
    ([0.01, 0.01, 0.07], "excellent"),
    ([EXCELLENT[0]] * 2, "good"),            # the limits are strict
    ([0.0, 0.0, EXCELLENT[1]], "good"),
    ([0.01, 0.01, 0.01, 0.14], "good"),
    ([GOOD[0]] * 2, "poor"),
    ([0.0, 0.0, 0.0, GOOD[1]], "poor"),
    ([0.072, 0.220], "poor"),                # what seed 000 reports for 12 features
])
def test_ks_summary_verdict(values, verdict):
    summary = ks_summary(values)
    assert summary["verdict"] == verdict
    assert summary["mean"] == pytest.approx(np.mean(values)) and summary["max"] == max(values)
