"""The Gaussian copula baseline: marginals, dependence and dtypes survive fit → sample."""

import numpy as np
import pandas as pd
import pytest

from recogan_app.baseline import GaussianCopula
from recogan_app.errors import InputError, NotFittedError
from recogan_app.metrics.distributions import ks_floor, ks_statistic

ROWS = 20_000


@pytest.fixture(scope="module")
def mc():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "decay_length": rng.exponential(0.05, ROWS),
        "mass": np.where(rng.random(ROWS) < 0.3, rng.normal(2.47, 0.01, ROWS), rng.uniform(2.3, 2.6, ROWS)),
        "n_its": rng.binomial(7, 0.8, ROWS).astype(np.int32),
        "cos_pa": rng.uniform(0.9, 1.0, ROWS).astype(np.float32),
        "positive": rng.random(ROWS) < 0.5,
    })


@pytest.fixture(scope="module")
def synthetic(mc):
    return GaussianCopula().fit(mc).sample(ROWS, seed=1)


def test_marginals_are_reproduced(mc, synthetic):
    # Beyond a 99.9 % fluctuation of two samples plus the quantile grid's resolution: a real defect.
    limit = ks_floor(ROWS, ROWS, cl=0.999) + 0.002
    for name in mc.columns:
        assert ks_statistic(mc[name], synthetic[name]) < limit, name


def test_dtypes_and_ranges_are_kept(mc, synthetic):
    assert list(synthetic.columns) == list(mc.columns)
    assert (synthetic.dtypes == mc.dtypes).all()
    numeric = mc.drop(columns="positive")
    assert (synthetic[numeric.columns].min() >= numeric.min()).all()
    assert (synthetic[numeric.columns].max() <= numeric.max()).all()
    assert set(synthetic["n_its"]) <= set(mc["n_its"])


def test_quantile_maps_follow_numpys_linear_rule(mc):
    copula = GaussianCopula(n_quantiles=101).fit(mc)
    expected = np.quantile(mc.to_numpy(np.float64), np.linspace(0, 1, 101), axis=0)
    np.testing.assert_allclose(copula.quantiles_, expected, rtol=1e-12, atol=1e-12)
    assert copula.n_samples_ == ROWS


def test_gaussian_correlation_is_reproduced():
    rho = 0.7
    values = np.random.default_rng(2).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=ROWS)
    sample = GaussianCopula().fit(pd.DataFrame(values, columns=["a", "b"])).sample(ROWS, seed=3)
    assert np.corrcoef(sample["a"], sample["b"])[0, 1] == pytest.approx(rho, abs=0.02)


def test_sampling_is_reproducible():
    frame = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0) ** 2})
    copula = GaussianCopula(random_state=4).fit(frame)
    pd.testing.assert_frame_equal(copula.sample(30), copula.sample(30))
    pd.testing.assert_frame_equal(copula.sample(30, seed=5), copula.sample(30, seed=5))
    assert not copula.sample(30, seed=5).equals(copula.sample(30, seed=6))


def test_refuses_unfitted_use_and_bad_input():
    with pytest.raises(NotFittedError):
        GaussianCopula().sample(3)
    with pytest.raises(InputError, match="column 'x': training sample has 1 NaN"):
        GaussianCopula().fit(pd.DataFrame({"x": [1.0, np.nan, 2.0]}))
    with pytest.raises(InputError, match="at least 2"):
        GaussianCopula().fit(pd.DataFrame({"x": [1.0]}))


def test_given_conditions_the_targets_follow_the_gaussian_conditional():
    """Given the conditions' values, a target's normal score has the closed-form conditional mean
    Σ_tc Σ_cc⁻¹ z_c and variance Σ_tt − Σ_tc Σ_cc⁻¹ Σ_ct (here computed with the true Σ); the given
    columns come back bit for bit."""
    sigma = np.array([[1.0, 0.3, 0.6], [0.3, 1.0, -0.4], [0.6, -0.4, 1.0]])  # p, eta, log(dll)
    values = np.random.default_rng(5).multivariate_normal(np.zeros(3), sigma, size=ROWS)
    frame = pd.DataFrame({"p": values[:, 0], "eta": values[:, 1], "dll": np.exp(values[:, 2])})
    given = pd.DataFrame({"eta": np.full(5000, -0.5), "p": np.full(5000, 1.2)})  # another order
    drawn = GaussianCopula().fit(frame).sample(5000, seed=6, given=given)
    regression = np.linalg.solve(sigma[:2, :2], sigma[:2, 2])
    mean, sd = regression @ [1.2, -0.5], np.sqrt(sigma[2, 2] - sigma[:2, 2] @ regression)
    assert np.log(drawn["dll"]).mean() == pytest.approx(mean, abs=0.04)
    assert np.log(drawn["dll"]).std() == pytest.approx(sd, rel=0.05)
    assert list(drawn.columns) == ["p", "eta", "dll"]
    assert (drawn["p"].to_numpy() == 1.2).all() and (drawn["eta"].to_numpy() == -0.5).all()


def test_given_a_discrete_condition_the_targets_marginal_is_kept():
    """A discrete condition's tied values get scores drawn within their share of the CDF, as ``fit``
    broke the ties: given the MC's own conditions the target's marginal is the MC's, and the
    response follows the condition."""
    rng = np.random.default_rng(7)
    species = rng.integers(0, 3, ROWS)
    frame = pd.DataFrame({"species": species, "dll": species + rng.normal(size=ROWS)})
    copula = GaussianCopula().fit(frame)
    drawn = copula.sample(ROWS, seed=8, given=frame[["species"]])
    assert ks_statistic(frame["dll"], drawn["dll"]) < ks_floor(ROWS, ROWS, 0.99)
    means = drawn.groupby(frame["species"])["dll"].mean()
    assert means.is_monotonic_increasing and means[2] - means[0] > 1
    assert drawn["species"].to_numpy().tobytes() == frame["species"].to_numpy().tobytes()
