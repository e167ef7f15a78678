"""Correlation matrices and residuals against pandas, scipy and constructed data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recogan_app.errors import InputError
from recogan_app.metrics.correlations import (
    correlation_matrix,
    correlation_residual,
    flagged_pairs,
    max_abs_residual,
    noise_text,
    residual_floor,
    residual_noise,
    residual_undefined,
)
from recogan_app.validation import validate
from recogan_app.metrics.distributions import split_halves
from recogan_app.metrics.verdict import RESIDUAL_TOLERANCE


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    return pd.DataFrame({"x": x, "y": np.exp(x) + rng.normal(size=2000), "n": rng.poisson(2 + (x > 0), size=2000)})


def test_pearson_equals_pandas(frame):
    pd.testing.assert_frame_equal(correlation_matrix(frame), frame.corr(), check_names=False, rtol=1e-12)


def test_spearman_with_ties_equals_scipy(frame):
    expected = stats.spearmanr(frame.to_numpy()).statistic
    np.testing.assert_allclose(correlation_matrix(frame, "spearman").to_numpy(), expected, rtol=1e-12)


def test_residual_is_exact_on_constructed_data():
    # x and y are orthogonal with zero mean and equal variance: corr(x, x + y) = 1/√2 exactly.
    x, y = np.array([1.0, -1, 1, -1]), np.array([1.0, 1, -1, -1])
    reference = pd.DataFrame({"a": x, "b": x + y})
    synthetic = pd.DataFrame({"b": 2 * x, "a": x})
    residual = correlation_residual(reference, synthetic)
    assert list(residual.columns) == ["a", "b"]
    np.testing.assert_allclose(residual.to_numpy(), [[0, 1 - 2**-0.5], [1 - 2**-0.5, 0]], atol=1e-15)


def test_max_abs_residual_and_flagged_pairs():
    names = ["a", "b", "c"]
    residual = pd.DataFrame([[0, 0.02, -0.09], [0.02, 0, 0.06], [-0.09, 0.06, 0]], index=names, columns=names)
    assert max_abs_residual(residual) == 0.09
    pairs = flagged_pairs(residual)
    assert pairs.values.tolist() == [["a", "c", -0.09], ["b", "c", 0.06]]
    assert flagged_pairs(residual, tolerance=0.1).empty
    assert RESIDUAL_TOLERANCE == 0.05
    one = residual.loc[["a"], ["a"]]  # no pair: not computable, never a 0 that reads as agreement
    assert np.isnan(max_abs_residual(one)) and residual_undefined(one) == "one feature: no pair to correlate"
    assert residual_undefined(residual) is None


def test_residual_floor_matches_the_standard_error_of_pearson():
    rho, rows = 0.6, 2000
    frame = pd.DataFrame(np.random.default_rng(1).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=rows))
    spread = np.std([residual_floor(frame, rng=seed).iloc[0, 1] for seed in range(200)])
    # Two disjoint halves of h rows: var(r1 − r2) ≈ 2 (1 − ρ²)² / h.
    assert spread == pytest.approx((1 - rho**2) * np.sqrt(2 / (rows // 2)), rel=0.15)


def test_residual_noise_is_the_scatter_of_one_pair_and_of_the_largest_of_all_pairs():
    """Against a hand computation and 400 draws of independent Gaussian rows (6 columns: 15 pairs)."""
    n, m, k = 300, 3000, 6
    noise = residual_noise(n, m, k)
    assert noise["pair"] == pytest.approx(np.sqrt(1 / (n - 1) + 1 / (m - 1)))  # (1 − ρ²)/√(n − 1) per side, ρ = 0
    largest = noise["largest"]  # P(max of 15 |N(0, σ)| ≤ x) = (2Φ(x/σ) − 1)^15 = 68 %
    assert noise["pairs"] == 15 and (2 * stats.norm.cdf(largest / noise["pair"]) - 1) ** 15 == pytest.approx(0.68)
    rng = np.random.default_rng(4)
    rows = np.triu_indices(k, 1)
    draws = np.array([(np.corrcoef(rng.normal(size=(m, k)), rowvar=False)
                       - np.corrcoef(rng.normal(size=(n, k)), rowvar=False))[rows] for _ in range(400)])
    assert draws.std() == pytest.approx(noise["pair"], rel=0.05)
    assert np.quantile(np.abs(draws).max(axis=1), 0.68) == pytest.approx(largest, rel=0.06)
    assert largest > 2 * noise["pair"]  # a max |Δρ| over 15 pairs is twice one pair's noise by chance alone


def test_training_and_validate_say_the_correlation_noise_in_the_same_words():
    """The worked example's riddle: the training summary's noise is one pair's 1σ between the test split and
    the generated rows, validate's old "MC floor" the largest pair between two MC halves (half as many rows
    a side). Both now print :func:`residual_noise` for the sizes compared, and name the halves as such."""
    from recogan_app.families.tabular import heldout_summary, noise_floors

    rng = np.random.default_rng(5)
    reference, synthetic = (pd.DataFrame(rng.normal(size=(rows, 4)), columns=list("abcd")) for rows in (800, 4000))
    v = validate(reference, synthetic, baseline_train=None, c2st_options={"n_estimators": 10, "max_depth": 2}, n_boot=20)
    said = noise_text(residual_noise(800, 4000, 4))
    largest = v.residual_noise["largest"]
    assert said == f"noise {np.sqrt(1 / 799 + 1 / 3999):.3f} a pair, up to {largest:.3f} over 6 pairs (68%)"
    assert (f"max |Δρ pearson| {v.model.max_residual['pearson']:.3f} ({said}; two MC halves of 400 rows differ by up "
            f"to {v.max_residual_floor['pearson']:.3f})") in v.summary()
    metrics = {"max_corr_residual": 0.1, "sample_size": 800, "generated_rows": 4000, "mean_ks": 0.01, "max_ks": 0.02,
               "verdict": "excellent", "noise": noise_floors(800, 4000, 400, n_features=4), "c2st_auc": 0.5}
    assert f"max |Pearson residual| 0.100 ({said})" in heldout_summary(metrics)


def test_residual_floor_is_the_residual_of_the_halves():
    frame = pd.DataFrame(np.random.default_rng(2).normal(size=(500, 3)), columns=list("abc"))
    pd.testing.assert_frame_equal(residual_floor(frame, "spearman", 100, rng=3),
                                  correlation_residual(*split_halves(frame, 100, rng=3), "spearman"))


def test_constant_feature_gives_nan_not_an_error():
    matrix = correlation_matrix(pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": [5.0, 5.0, 5.0]}))
    assert matrix.loc["a", "a"] == 1.0 and np.isnan(matrix.loc["a", "c"])


def test_bad_method_and_columns_are_refused():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0]})
    with pytest.raises(InputError, match="closest: 'spearman'"):
        correlation_matrix(frame, "spearmann")
    with pytest.raises(InputError, match="column 'b': synthetic sample has no such column"):
        correlation_residual(frame, frame[["a"]])
    with pytest.raises(InputError, match="at least 2"):
        correlation_matrix(frame.iloc[:1])


def test_a_residual_that_cannot_be_computed_is_said_so_not_printed_as_a_number():
    from recogan_app.metrics.correlations import residual_text

    one = pd.DataFrame({"x": np.arange(10.0)})
    residual = correlation_residual(one, one)
    assert residual_undefined(residual) == "one feature: no pair to correlate"
    assert residual_text(max_abs_residual(residual)) == "not computable" and residual_text(0.01234) == "0.012"
