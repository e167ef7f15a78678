"""Tests of the embedded Ξc+ → Ξ− π+ π+ toy MC."""

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recogan_app.data.toy_xic import DEFAULT_N, FEATURES_8, FEATURES_12, UNITS, generate
from recogan_app.errors import InputError

M_XIC_PDG = 2.46771  # GeV/c^2


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate(20_000, seed=7, n_features=12)


def test_public_constants():
    assert DEFAULT_N == 531_548
    assert FEATURES_8 == [
        "pt",
        "decay_length",
        "cos_pa",
        "dca_daughters",
        "xi_radius",
        "xi_cos_pa",
        "pi_impact_parameter",
        "inv_mass",
    ]
    assert FEATURES_12[:8] == FEATURES_8 and len(FEATURES_12) == len(set(FEATURES_12)) == 12
    assert set(UNITS) == set(FEATURES_12)


@pytest.mark.parametrize("n_features, names", [(8, FEATURES_8), (12, FEATURES_12)])
def test_shape_columns_dtypes(n_features, names):
    df = generate(1_234, seed=1, n_features=n_features)
    assert df.shape == (1_234, n_features)
    assert list(df.columns) == names
    for name in names:
        if name == "n_its_clusters_pi":
            assert pd.api.types.is_integer_dtype(df[name])
        else:
            assert df[name].dtype == np.float32, name
    assert np.isfinite(df.to_numpy(dtype=float)).all()


def test_single_row_and_numpy_integer():
    assert generate(1, seed=3).shape == (1, 8)
    assert len(generate(np.int64(10), seed=3)) == 10


def test_deterministic_for_a_seed():
    pd.testing.assert_frame_equal(generate(3_000, seed=11), generate(3_000, seed=11))


def test_prefix_of_a_larger_sample():
    small = generate(1_000, seed=5, n_features=12)
    pd.testing.assert_frame_equal(small, generate(25_000, seed=5, n_features=12).head(1_000))


def test_seeds_give_independent_samples_of_one_distribution():
    a, b = generate(5_000, seed=1), generate(5_000, seed=2)
    assert a.merge(b, how="inner").empty  # no candidate in common
    for name in ("pt", "decay_length", "inv_mass"):
        assert stats.ks_2samp(a[name], b[name]).pvalue > 1e-3, name


def test_pointing_angles(sample):
    for name in ("cos_pa", "xi_cos_pa"):
        assert (sample[name] <= 1.0).all(), name
    assert (sample["cos_pa"] > 0.9).all()  # candidate selection
    assert sample["cos_pa"].median() > 0.99
    assert sample["xi_cos_pa"].median() > 0.999
    # Long tail towards low cos: the mean sits well below the median.
    assert sample["cos_pa"].mean() < sample["cos_pa"].median() - 0.005


def test_decay_length_grows_with_pt_through_the_boost(sample):
    assert (sample["decay_length"] > 0).all()
    assert stats.pearsonr(sample["pt"], sample["decay_length"])[0] > 0.2
    low, high = np.quantile(sample["pt"], [1 / 3, 2 / 3])
    mean_low = sample.loc[sample["pt"] < low, "decay_length"].mean()
    mean_high = sample.loc[sample["pt"] > high, "decay_length"].mean()
    assert mean_high > 1.5 * mean_low
    # Exponential flight: a long tail, skewed to the right.
    assert stats.skew(sample["decay_length"]) > 1.0


def test_cos_pa_improves_with_decay_length(sample):
    assert stats.spearmanr(sample["decay_length"], sample["cos_pa"])[0] > 0.2


def test_proper_decay_length(sample):
    # ct = L m / p <= L m / pT, and its mean is of the order of cτ(Ξc+) = 136 µm.
    bound = sample["decay_length"] * M_XIC_PDG / sample["pt"]
    assert (sample["ct"] <= bound * (1 + 1e-5)).all()
    assert 0.010 < sample["ct"].mean() < 0.030


def _resolution(x: pd.Series) -> float:
    q16, q84 = np.quantile(x, [0.16, 0.84])
    return 0.5 * (q84 - q16)


def test_mass_peak_and_resolution_growing_with_pt(sample):
    mass = sample["inv_mass"]
    assert abs(mass.median() - M_XIC_PDG) < 0.003
    assert 0.004 < _resolution(mass) < 0.015
    low, high = np.quantile(sample["pt"], [1 / 3, 2 / 3])
    assert _resolution(mass[sample["pt"] > high]) > 1.1 * _resolution(mass[sample["pt"] < low])


def test_selection_and_track_features(sample):
    assert (sample["xi_radius"] > 0.5).all()
    assert (sample["lambda_radius"] > 1.1).all()
    assert (sample["pi_pt_min"] > 0.1).all()
    assert sample["dca_daughters"].min() >= 0
    clusters = sample["n_its_clusters_pi"].to_numpy()
    assert set(np.unique(clusters)) <= {4, 5, 6, 7}
    assert np.median(clusters) == 7
    # Lifetime-signed impact parameter: mostly positive for a displaced decay.
    assert (sample["pi_impact_parameter"] > 0).mean() > 0.7


@pytest.mark.parametrize(
    "kwargs",
    [{"n": 0}, {"n": -3}, {"n": 2.5}, {"n": True}, {"n": 10, "n_features": 10}, {"n_features": 0}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(InputError):
        generate(**kwargs)


def test_speed():
    start = time.process_time()
    df = generate(100_000, seed=0)
    assert len(df) == 100_000
    assert time.process_time() - start < 5.0

