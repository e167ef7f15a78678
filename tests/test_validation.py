"""validate(): floors, histograms, residuals, C2ST, discrete features and the copula verdict, on tiny seeded data."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recogan_app.errors import InputError
from recogan_app.metrics import feature_metrics, ks_floor, ks_statistic, noise_floor
from recogan_app.metrics.verdict import ks_verdict
from recogan_app.validation import INDISTINGUISHABLE, compare_histograms, ks_interval, validate

ROWS = 2000
FAST = {"c2st_options": {"n_estimators": 30, "max_depth": 3}, "n_boot": 50}


def sample(n, seed, shift=0.0, hits_noise=0.0):
    """x, y = x² + x + noise (a dependence a Gaussian copula gets wrong: Pearson 0.57, copula 0.43),
    an exponential z and an integer hit count."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    hits = rng.binomial(7, 0.6, n).astype(np.int16)
    return pd.DataFrame({"x": x, "y": x**2 + x + 0.3 * rng.normal(size=n), "z": rng.exponential(size=n) + shift,
                         "hits": hits + rng.normal(0, hits_noise, n) if hits_noise else hits})


@pytest.fixture(scope="module")
def same():
    """The 'model' is an independent MC sample, with tiny continuous noise on the integer feature."""
    return validate(sample(ROWS, 0), sample(ROWS, 1, hits_noise=0.15), baseline_train=sample(ROWS, 2), **FAST)


@pytest.fixture(scope="module")
def shifted():
    return validate(sample(ROWS, 0), sample(ROWS, 1, shift=3.0), baseline_train=sample(ROWS, 2), **FAST)


def test_floors_cover_the_metrics_of_two_samples_of_one_distribution():
    """Over many MC-vs-MC pairs, KS falls below its 68 % floor about 68 % of the time and WS below
    the half-vs-half WS at least as often (the halves are smaller, so that floor is the looser)."""
    ks_in, ws_in = [], []
    for seed in range(60):
        a, b = sample(500, 2 * seed), sample(500, 2 * seed + 1)
        metrics, floor = feature_metrics(a, b), noise_floor(a, len(b), seed)
        ks_in += list(metrics["ks"] <= ks_floor(len(a), len(b)))
        ws_in += list(metrics["wasserstein"] <= floor["wasserstein"])
    assert np.mean(ks_in) == pytest.approx(0.68, abs=0.08)
    assert np.mean(ws_in) >= 0.6


def test_same_distribution_lies_within_the_floor(same):
    t = same.table
    assert (t["ks_floor"] == ks_floor(ROWS, ROWS)).all()
    assert (t["ks"] <= 2 * t["ks_floor"]).all()  # 2 × the 68 % quantile is beyond its 99.9 % quantile
    assert (t["wasserstein"] <= 3 * t["ws_floor"]).all()
    assert same.n_indistinguishable >= 2
    within = (t["ks"] <= t["ks_floor"]) & (t["wasserstein"] <= t["ws_floor"])
    assert ((t["label"] == INDISTINGUISHABLE) == within).all()
    width = t["ks_hi"] - t["ks_lo"]  # the statistic's spread: about the floor's scale
    assert ((width > 0.2 * t["ks_floor"]) & (width < 2 * t["ks_floor"])).all()
    assert same.model.ks["verdict"] == "excellent"


def test_ks_interval_from_subsets_matches_the_full_bootstrap():
    """Bootstrapping subsets and narrowing by √(effective size) reproduces the full bootstrap's width."""
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=20_000), rng.normal(0.05, 1, 20_000)
    ks = ks_statistic(a, b)
    full = ks_interval(a, b, ks, 100, 20_000, np.random.default_rng(0))
    subset = ks_interval(a, b, ks, 100, 4_000, np.random.default_rng(0))
    assert subset[1] - subset[0] == pytest.approx(full[1] - full[0], rel=0.3)
    assert subset[0] < ks < subset[1] and full[0] < ks < full[1]


def test_ks_interval_of_a_distance_stays_at_or_above_zero():
    """KS 0 (a copied column): the replicas' spread placed on 0 would reach below it; it is clipped."""
    a = np.random.default_rng(8).normal(size=3000)
    lo, hi = ks_interval(a, a.copy(), 0.0, 50, 20_000, np.random.default_rng(0))
    assert lo == 0.0 and hi > 0.0


def test_shifted_feature_is_beyond_the_floor(shifted):
    row = shifted.table.loc["z"]
    assert row["ks"] > 0.9 and row["label"] == "KS and WS beyond the MC floor"
    assert shifted.table.loc["x", "ks"] < 2 * shifted.table.loc["x", "ks_floor"]
    assert shifted.model.ks["verdict"] == "poor"


def test_c2st_near_one_half_for_one_distribution_and_high_when_shifted(same, shifted):
    assert same.model.c2st.auc == pytest.approx(0.5, abs=0.04)
    assert shifted.model.c2st.auc > 0.9
    assert max(shifted.model.c2st.feature_importance, key=shifted.model.c2st.feature_importance.get) == "z"


def test_copula_verdict(same, shifted):
    """The copula cannot express y(x): a faithful sample beats it, a shifted one has not earned its time."""
    assert same.baseline.c2st.auc > same.model.c2st.auc + 0.1
    assert same.beats_baseline and "beats the copula baseline on AUC and correlation residuals" in same.baseline_verdict
    assert not shifted.beats_baseline and "has not earned its training time" in shifted.baseline_verdict
    assert "training MC (2,000 rows)" in same.baseline_fitted_on


def test_integer_features_are_compared_on_their_exact_values(same):
    """Continuous noise on a hit count is rounded away before any metric: no accidental reward or penalty."""
    reference, synthetic = sample(ROWS, 0), sample(ROWS, 1, hits_noise=0.15)
    assert same.integer_features == ["hits"] and bool(same.table.loc["hits", "discrete"])
    assert same.table.loc["hits", "ks"] == ks_statistic(reference["hits"], np.rint(synthetic["hits"]))
    assert same.model.c2st.per_feature_auc["hits"] == pytest.approx(0.5, abs=0.04)
    h = same.histograms["hits"]
    assert h.integer and np.allclose(np.diff(h.edges), 1) and np.allclose(h.edges % 1, 0.5)
    assert h.reference.sum() == ROWS and h.synthetic.sum() == ROWS


def test_residual_matrix_is_exact_on_constructed_data():
    """Orthonormal zero-mean columns u, v: corr(u, ρu + √(1−ρ²)v) is exactly ρ."""
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(400, 2))
    u, v = np.linalg.qr(raw - raw.mean(axis=0))[0].T

    def frame(rho):
        return pd.DataFrame({"a": u, "b": rho * u + np.sqrt(1 - rho**2) * v})

    result = validate(frame(0.6), frame(0.5), baseline_train=None, **FAST)
    residual = result.model.residual["pearson"]
    assert residual.loc["a", "b"] == pytest.approx(-0.1, abs=1e-12)
    assert np.allclose(np.diag(residual), 0)
    assert result.model.flagged["pearson"][["feature_a", "feature_b"]].values.tolist() == [["a", "b"]]
    spearman = stats.spearmanr(frame(0.5)).statistic - stats.spearmanr(frame(0.6)).statistic
    assert result.model.residual["spearman"].loc["a", "b"] == pytest.approx(spearman, abs=1e-12)
    assert "reference itself" in result.baseline_fitted_on


def test_histogram_chi2_per_ndf_is_about_one_for_one_distribution():
    rng = np.random.default_rng(4)
    values = [compare_histograms(rng.normal(size=5000), rng.normal(size=15000)).chi2_ndf for _ in range(20)]
    assert np.mean(values) == pytest.approx(1.0, abs=0.12)
    assert compare_histograms(rng.normal(size=5000), rng.normal(0.3, 1, 5000)).chi2_ndf > 3


def test_histogram_poisson_errors_by_hand():
    h = compare_histograms([0, 1, 1, 2], [0, 1, 2, 2, 2, 2], integer=True)
    assert h.edges.tolist() == [-0.5, 0.5, 1.5, 2.5]
    assert h.reference.tolist() == [1, 2, 1] and h.synthetic.tolist() == [1, 1, 4]
    k = 4 / 6
    assert h.scale == pytest.approx(k)
    assert np.allclose(h.reference_error, [1, np.sqrt(2), 1])
    assert np.allclose(h.synthetic_error, k * np.sqrt([1, 1, 4]))
    assert h.synthetic_scaled.sum() == pytest.approx(h.reference.sum())
    r, s = np.array([1, 2, 1]), np.array([1, 1, 4])
    assert h.chi2 == pytest.approx(np.sum((r - k * s) ** 2 / (r + k**2 * s))) and h.ndf == 2
    ratio = k * s / r
    assert np.allclose(h.ratio, ratio)
    assert np.allclose(h.ratio_error, ratio * np.sqrt(1 / s + 1 / r))


def test_histogram_counts_tails_in_the_edge_bins():
    rng = np.random.default_rng(5)
    h = compare_histograms(rng.normal(size=1000), np.append(rng.normal(size=990), [50.0] * 10))
    assert h.reference.sum() == 1000 and h.synthetic.sum() == 1000
    assert h.synthetic[-1] >= 10


def test_json_holds_every_number_and_parses(same):
    data = json.loads(same.to_json())
    assert set(data["per_feature"]) == {"x", "y", "z", "hits"}
    assert data["per_feature"]["z"]["ks"] == pytest.approx(same.table.loc["z", "ks"])
    assert data["model"]["c2st"]["auc"] == pytest.approx(same.model.c2st.auc)
    assert len(data["model"]["c2st"]["roc"]["tpr"]) == 201
    assert sum(data["model"]["c2st"]["scores"]["reference"]) == same.model.c2st.n_test // 2
    assert data["histograms"]["x"]["chi2_ndf"] == pytest.approx(same.histograms["x"].chi2_ndf)
    assert data["baseline"]["ks"]["verdict"] in {"excellent", "good", "poor"}
    assert np.array(data["residual_floor"]["pearson"]["values"]).shape == (4, 4)
    assert data["beats_baseline"] is True
    assert "x" in same.summary() and "classifier AUC" in same.summary()


def test_bad_input_names_the_sample_and_column():
    with pytest.raises(InputError, match="'z': synthetic sample has no such column"):
        validate(sample(100, 0), sample(100, 1).drop(columns="z"), baseline_train=None, **FAST)
    with pytest.raises(InputError, match="'hits': baseline training MC has no such column"):
        validate(sample(100, 0), sample(100, 1), baseline_train=sample(100, 2).drop(columns="hits"), **FAST)


def given_x(mc: pd.DataFrame, seed: int, spread: float = 0.3) -> pd.DataFrame:
    """A conditional model's sample for the conditions x and hits of ``mc``, row by row: y given x
    with the noise ``spread`` (the truth at 0.3) and a fresh z."""
    rng = np.random.default_rng(seed)
    return mc.assign(y=mc["x"] ** 2 + mc["x"] + spread * rng.normal(size=len(mc)), z=rng.exponential(size=len(mc)))


@pytest.fixture(scope="module")
def conditional():
    mc = sample(ROWS, 0)
    return mc, {spread: validate(mc, given_x(mc, 1, spread), baseline_train=sample(ROWS, 2), conditions=["x", "hits"],
                                 **FAST) for spread in (0.3, 0.6)}


def test_a_conditional_sample_is_scored_on_its_targets_given_the_conditions(conditional):
    """The copied conditions are no features (a KS of 0 each would flatter the verdict); the verdict
    is the one of the targets' KS (scipy's here); the classifier, twins in one fold, finds the truth
    at chance and a too-wide response above it; the copula draws the targets given the conditions."""
    mc, by_spread = conditional
    truth, wide = by_spread[0.3], by_spread[0.6]
    assert truth.features == ["y", "z"] and list(truth.table.index) == ["y", "z"] and set(truth.histograms) == {"y", "z"}
    assert truth.conditions == ["x", "hits"] and list(truth.reference_correlation["pearson"].columns) == ["y", "z"]
    synthetic = given_x(mc, 1)
    ks = [stats.ks_2samp(mc[f], synthetic[f]).statistic for f in ("y", "z")]
    assert truth.table["ks"].tolist() == pytest.approx(ks)
    assert truth.model.ks["verdict"] == ks_verdict(np.mean(ks), np.max(ks))
    half = truth.model.c2st.n_test // 2
    null_sd = np.sqrt((2 * half + 1) / (12 * half**2))
    assert abs(truth.model.c2st.auc - 0.5) < 3 * null_sd and wide.model.c2st.auc > 0.5 + 3 * null_sd
    assert truth.baseline.c2st.auc > truth.model.c2st.auc  # a Gaussian copula cannot draw y = x² + x given x
    assert (truth.table["ks_lo"] >= 0).all() and truth.conditional is not None
    assert "targets scored given the conditions x, hits" in truth.summary()
    assert json.loads(truth.to_json())["conditions"] == ["x", "hits"]


def test_a_conditional_sample_must_copy_the_mc_rows_conditions():
    mc = sample(200, 0)
    with pytest.raises(InputError, match="does not copy the MC rows' conditions row by row"):
        validate(mc, given_x(mc, 1).iloc[::-1], baseline_train=None, conditions=["x", "hits"], **FAST)
    with pytest.raises(InputError, match="not one per MC row"):
        validate(mc, given_x(mc, 1).iloc[1:], baseline_train=None, conditions=["x", "hits"], **FAST)
