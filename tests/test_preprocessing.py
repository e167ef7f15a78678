"""Tests of recogan_app.preprocessing: one shared suite every transform passes, then specifics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from recogan_app import preprocessing
from recogan_app.errors import InputError, NotFittedError
from recogan_app.preprocessing import (
    TRANSFORMS,
    Arccos,
    Chain,
    FeaturePipeline,
    FlatQuantile,
    Identity,
    Integer,
    Log1p,
    Logit,
    Quantile,
    Standardise,
    Transform,
    parse_spec,
    suggest_transform,
)

SETTINGS = settings(max_examples=50, deadline=None)


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _arrays(elements, max_size=60):
    return st.lists(elements, min_size=1, max_size=max_size).map(lambda v: np.asarray(v, dtype=np.float64))


# (id, factory, strategy of training arrays, exact round trip?, deterministic sample for non-hypothesis checks)
_rng = np.random.default_rng(42)
_wide = _rng.normal(3.0, 2.0, 500)
_positive = _rng.exponential(2.0, 500) ** 2
_cosines = np.cos(_rng.uniform(0.0, np.pi, 500))
_counts = _rng.poisson(4.0, 500).astype(np.float64)

CASES = [
    ("identity", Identity, _arrays(_floats(-1e6, 1e6)), False, _wide),
    ("standardise", Standardise, _arrays(_floats(-1e6, 1e6)), False, _wide),
    ("log1p", Log1p, _arrays(_floats(0.0, 1e6)), False, _positive),
    ("arccos", Arccos, _arrays(_floats(-1.0, 1.0)), False, _cosines),
    ("logit", Logit, _arrays(_floats(-1e3, 1e3)), False, _wide),
    ("quantile", Quantile, _arrays(_floats(-1e6, 1e6)), False, _wide),
    ("flatquantile", FlatQuantile, _arrays(_floats(-1e6, 1e6)), False, _wide),
    ("integer", lambda: Integer(random_state=3), _arrays(st.integers(-1000, 1000).map(float)), True, _counts),
    ("log1p+quantile", lambda: parse_spec("log1p+quantile"), _arrays(_floats(0.0, 1e6)), False, _positive),
    ("arccos+quantile", lambda: parse_spec("arccos+quantile"), _arrays(_floats(-1.0, 1.0)), False, _cosines),
    ("arccos+standardise", lambda: parse_spec("arccos+standardise"), _arrays(_floats(-1.0, 1.0)), False, _cosines),
    ("integer+quantile", lambda: parse_spec("integer+quantile", random_state=7),
     _arrays(st.integers(-1000, 1000).map(float)), True, _counts),
]
IDS = [c[0] for c in CASES]


def _assert_round_trip(x, back, exact):
    if exact:
        np.testing.assert_array_equal(back, x)
    else:
        scale = max(1.0, float(np.max(np.abs(x))))
        np.testing.assert_allclose(back, x, rtol=1e-9, atol=1e-9 * scale)


# ------------------------------------------------------------------------------------------
# The shared suite (cf. sklearn/preprocessing/tests/test_common.py)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("factory", "data", "exact"), [c[1:4] for c in CASES], ids=IDS)
def test_round_trip_property(factory, data, exact):
    @SETTINGS
    @given(data)
    def check(x):
        t = factory().fit(x)
        z = t.transform(x)
        assert z.dtype == np.float64 and z.shape == x.shape
        assert np.isfinite(z).all()
        _assert_round_trip(x, t.inverse_transform(z), exact)

    check()


@pytest.mark.parametrize(("factory", "exact", "sample"), [(c[1], c[3], c[4]) for c in CASES], ids=IDS)
def test_round_trip_on_sample(factory, exact, sample):
    t = factory().fit(sample)
    z = t.transform(sample)
    assert z.dtype == np.float64 and np.isfinite(z).all()
    _assert_round_trip(sample, t.inverse_transform(z), exact)
    # inverse of arbitrary network outputs is finite too (a generator can produce anything)
    wild = np.linspace(-8, 8, 101)
    assert np.isfinite(t.inverse_transform(wild)).all()


@pytest.mark.parametrize(("factory", "sample"), [(c[1], c[4]) for c in CASES], ids=IDS)
def test_not_fitted_raises(factory, sample):
    t = factory()
    assert not t.is_fitted()
    with pytest.raises(NotFittedError, match="not fitted"):
        t.transform(sample)
    with pytest.raises(NotFittedError):
        t.inverse_transform(sample)
    assert isinstance(NotFittedError("x"), ValueError)


@pytest.mark.parametrize(("factory", "sample"), [(c[1], c[4]) for c in CASES], ids=IDS)
def test_dict_round_trip_is_bit_identical(factory, sample):
    t = factory().fit(sample)
    data = json.loads(json.dumps(t.to_dict()))
    u = Transform.from_dict(data)
    assert type(u) is type(t) and u.spec == t.spec
    z = t.transform(sample)
    np.testing.assert_array_equal(u.transform(sample), z)
    np.testing.assert_array_equal(u.inverse_transform(z), t.inverse_transform(z))
    # an unfitted transform round-trips to an unfitted one
    assert not Transform.from_dict(json.loads(json.dumps(factory().to_dict()))).is_fitted()


@pytest.mark.parametrize(("factory", "sample"), [(c[1], c[4]) for c in CASES], ids=IDS)
def test_nan_and_shape_are_refused(factory, sample):
    bad = sample.copy()
    bad[3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        factory().fit(bad)
    t = factory().fit(sample)
    with pytest.raises(InputError, match="NaN"):
        t.transform(bad)
    with pytest.raises(InputError, match="1-D"):
        factory().fit(sample.reshape(-1, 5))
    with pytest.raises(InputError, match="no values"):
        factory().fit(np.array([]))


@pytest.mark.parametrize(("factory", "sample"), [(c[1], c[4]) for c in CASES], ids=IDS)
def test_fit_does_not_modify_input_and_accepts_float32(factory, sample):
    x = sample.astype(np.float32)
    copy = x.copy()
    t = factory().fit(x)
    t.transform(x)
    np.testing.assert_array_equal(x, copy)
    assert t.transform(x).dtype == np.float64


def test_registry_names():
    assert list(TRANSFORMS) == ["identity", "standardise", "log1p", "arccos", "logit", "quantile", "flatquantile",
                              "integer"]
    for name, klass in TRANSFORMS.items():
        assert klass.name == name


# ------------------------------------------------------------------------------------------
# Quantile
# ------------------------------------------------------------------------------------------


def test_quantile_maps_skewed_sample_to_standard_normal():
    x = np.random.default_rng(1).lognormal(0.0, 1.5, 20_000)
    z = Quantile().fit_transform(x)
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.02
    assert stats.kstest(z, "norm").statistic < 0.005
    assert Quantile().fit(x).quantiles_.size == 2000


def test_quantile_small_sample_uses_fewer_levels():
    q = Quantile().fit(np.array([3.0, 1.0, 2.0]))
    np.testing.assert_array_equal(q.quantiles_, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(q.references_, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(q.transform(np.array([2.0])), [0.0], atol=1e-15)


def test_quantile_ties_stay_monotone_and_invertible():
    rng = np.random.default_rng(2)
    x = np.where(rng.random(5000) < 0.4, 0.0, rng.exponential(1.0, 5000))  # 40 % point mass at 0
    x[:300] = 1.0  # a second point mass inside the range
    q = Quantile(n_quantiles=500).fit(x)
    assert np.all(np.diff(q.quantiles_) >= 0)
    grid = np.linspace(-0.5, x.max() + 1, 20_001)
    grid = np.sort(np.r_[grid, 0.0, 1.0])
    z = q.transform(grid)
    assert np.all(np.diff(z) >= 0)
    # the point masses map inside the normal and come back exactly
    z0, z1 = q.transform(np.array([0.0, 1.0]))
    assert -1.0 < z0 < 0.0 < z1
    np.testing.assert_array_equal(q.inverse_transform(np.array([z0, z1])), [0.0, 1.0])
    # levels inside the mass also give the mass: the generator reproduces it
    assert q.inverse_transform(np.array([stats.norm.ppf(0.1), stats.norm.ppf(0.3)])).tolist() == [0.0, 0.0]


def test_flat_quantile_levels_follow_the_square_root_of_the_density():
    # 80 % of the data evenly in [0, 0.1] (density 8), 20 % evenly in [0.1, 1.1] (density 0.2): the
    # square roots integrate to √8·0.1 and √0.2·1, so 0.1 sits at level 0.2828 / (0.2828 + 0.4472)
    x = np.r_[np.linspace(0.0, 0.1, 80_001)[:-1], np.linspace(0.1, 1.1, 20_000)]
    flat, plain = FlatQuantile().fit(x), Quantile().fit(x)
    expected = np.sqrt(8) * 0.1 / (np.sqrt(8) * 0.1 + np.sqrt(0.2))
    np.testing.assert_allclose(stats.norm.cdf(flat.transform(np.array([0.1]))), [expected], atol=2e-3)
    np.testing.assert_allclose(stats.norm.cdf(plain.transform(np.array([0.1]))), [0.8], atol=2e-3)
    # linear inside each piece, as the level's share of it
    np.testing.assert_allclose(stats.norm.cdf(flat.transform(np.array([0.05, 0.6]))),
                               [expected / 2, (1 + expected) / 2], atol=2e-3)
    z = np.linspace(-4, 4, 1001)
    np.testing.assert_allclose(flat.transform(flat.inverse_transform(z)), z, atol=1e-6)


def test_flat_quantile_gives_a_point_mass_the_levels_of_the_denser_data_beside_it():
    """Eight values stored as they are: steps 1, 1, 1 up to a point mass of four zeros (three tied
    intervals), then 4 to the maximum; √step grows 1, 1, 1, (the tied ones: the denser side's 1), 2,
    so the levels are 0, 1, 2, 3, 4, 5, 6, 8 over 8 and 0 maps to the middle of its run, 4.5/8.
    Saved before ``point_masses`` existed (share): each tied interval keeps its 1/7 of the data,
    the continuous ones share the other 4/7 as 1, 1, 1, 2 (levels 0, 4, 8, 12, 17, 22, 27, 35 over 35)."""
    x = np.array([-3.0, -2.0, -1.0, 0.0, 0.0, 0.0, 0.0, 4.0])
    flat = FlatQuantile().fit(x)
    np.testing.assert_allclose(flat.references_, np.array([0, 1, 2, 3, 4, 5, 6, 8]) / 8, rtol=1e-12)
    np.testing.assert_allclose(flat.transform(np.array([-2.0, 0.0, 2.0])), stats.norm.ppf([1 / 8, 4.5 / 8, 7 / 8]),
                               rtol=1e-9)
    assert flat.inverse_transform(stats.norm.ppf([0.4, 0.7, 7 / 8])).tolist() == [0.0, 0.0, pytest.approx(2.0)]
    saved = flat.to_dict()
    assert saved["params"]["point_masses"] == "dense"
    del saved["params"]["point_masses"]
    before = Transform.from_dict(saved)
    assert before.point_masses == "share"
    np.testing.assert_allclose(before.references_, np.array([0, 4, 8, 12, 17, 22, 27, 35]) / 35, rtol=1e-12)
    np.testing.assert_allclose(before.transform(np.array([0.0])), stats.norm.ppf([19.5 / 35]), rtol=1e-9)
    # share: a point mass of 30 % comes back as 30 % of evenly spread levels
    rng = np.random.default_rng(5)
    x = np.where(rng.random(20_000) < 0.3, 0.0, rng.normal(0.0, 1.0, 20_000))
    share = FlatQuantile(point_masses="share").fit(x)
    z = stats.norm.ppf((np.arange(100_000) + 0.5) / 100_000)
    assert abs(np.mean(share.inverse_transform(z) == 0.0) - 0.3) < 0.01
    for transform in (share, FlatQuantile().fit(x)):
        assert transform.inverse_transform(transform.transform(np.array([0.0]))).tolist() == [0.0]
    with pytest.raises(InputError, match="point_masses"):
        FlatQuantile(point_masses="even").fit(x)


def test_quantile_constant_column():
    q = Quantile().fit(np.full(10, 4.5))
    np.testing.assert_array_equal(q.transform(np.array([4.5])), [0.0])
    np.testing.assert_array_equal(q.inverse_transform(np.array([-3.0, 0.0, 3.0])), [4.5, 4.5, 4.5])


def test_quantile_clips_outside_training_range():
    x = np.random.default_rng(3).normal(size=3000)
    q = Quantile().fit(x)
    out = q.inverse_transform(np.array([-50.0, -6.0, 6.0, 50.0]))
    np.testing.assert_array_equal(out, [x.min(), x.min(), x.max(), x.max()])
    z = q.transform(np.array([x.min() - 10, x.max() + 10]))
    np.testing.assert_allclose(z, [-5.199337582, 5.199337582], rtol=1e-8)


def test_quantile_round_trip_on_large_continuous_sample():
    x = np.random.default_rng(4).standard_t(3, 100_000)
    q = Quantile().fit(x)
    back = q.inverse_transform(q.transform(x))
    np.testing.assert_allclose(back, x, rtol=0, atol=1e-9 * np.ptp(x))
    assert back.min() == x.min() and back.max() == x.max()


def test_float32_generator_output_is_inverted_in_float32_to_float64_accuracy():
    """The export's fast path (float32 columns) agrees with the float64 one to a thousandth of the
    local quantile spacing, clips exactly, and resolves the outermost bins as finely."""
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"ct": (rng.exponential(1.0, 50_000) ** 2).astype(np.float32),
                          "n_hits": rng.integers(0, 9, 50_000).astype(np.int16),
                          "weight": rng.normal(size=50_000)})  # float64: stays on the exact path
    pipe = FeaturePipeline({"ct": "log1p+quantile"}, random_state=0).fit(frame)
    y = np.r_[rng.normal(0, 1.7, (100_000, 3)), np.full((4, 3), [[0.0], [-8.0], [8.0], [5.1993]])].astype(np.float32)
    fast, exact = pipe.inverse_transform(y), pipe.inverse_transform(y.astype(np.float64))
    assert list(fast.dtypes) == [np.float32, np.int16, np.float64]
    q = pipe.steps_["ct"].steps[-1].quantiles_
    spacing = np.expm1(q[1:]) - np.expm1(q[:-1])
    bin_of = np.clip(np.searchsorted(np.expm1(q), exact["ct"]) - 1, 0, spacing.size - 1)
    assert np.all(np.abs(fast["ct"] - exact["ct"]) <= 1e-3 * spacing[bin_of] + 4e-7 * exact["ct"])
    pd.testing.assert_series_equal(fast["n_hits"], exact["n_hits"])
    pd.testing.assert_series_equal(fast["weight"], exact["weight"])
    assert fast["ct"].iloc[-3] == frame["ct"].min() and fast["ct"].iloc[-2] == frame["ct"].max()
    top = np.linspace(4.5, 5.19, 2000, dtype=np.float32)[:, None].repeat(3, axis=1)
    distinct = [pipe.inverse_transform(t)["ct"].nunique() for t in (top, top.astype(np.float64))]
    assert distinct[0] >= 0.95 * distinct[1]


def test_long_columns_are_inverted_in_slices_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"ct": rng.exponential(1.0, 5000).astype(np.float32),
                          "n_hits": rng.integers(0, 9, 5000).astype(np.int16)})
    pipe = FeaturePipeline({"ct": "log1p+quantile"}, random_state=0).fit(frame)
    y = rng.normal(size=(10_001, 2)).astype(np.float32)
    whole = pipe.inverse_transform(y)
    monkeypatch.setattr(preprocessing, "INVERSE_ROWS", 1000)
    pd.testing.assert_frame_equal(pipe.inverse_transform(y), whole)
    pd.testing.assert_frame_equal(pipe.inverse_transform(np.asfortranarray(y)), whole)


def test_quantile_search_matches_bisection_on_awkward_data():
    rng = np.random.default_rng(5)
    for x in (np.r_[rng.normal(size=5000), 1e9], rng.lognormal(0, 3, 5000), np.round(rng.normal(size=5000), 1)):
        q = Quantile().fit(x)
        probe = np.r_[x, rng.uniform(x.min() - 1, x.max() + 1, 5000), q.quantiles_]
        expected = np.maximum(np.searchsorted(q._knots, probe, side="right") - 1, 0)
        np.testing.assert_array_equal(q._knot_index(probe), expected)


# ------------------------------------------------------------------------------------------
# Integer, logit, log1p, arccos
# ------------------------------------------------------------------------------------------


def test_integer_dequantises_reproducibly_and_restores_exactly():
    x = np.random.default_rng(6).integers(-3, 40, 10_000).astype(np.float64)
    t = Integer(random_state=11).fit(x)
    y = t.transform(x)
    noise = y - x
    assert noise.min() >= -0.5 and noise.max() < 0.5
    assert np.unique(y).size > 9000  # continuous, not integral
    np.testing.assert_array_equal(t.transform(x), y)  # the same every call
    assert not np.array_equal(Integer(random_state=12).fit(x).transform(x), y)
    np.testing.assert_array_equal(t.inverse_transform(y), x)
    np.testing.assert_array_equal(t.inverse_transform(np.array([-100.0, 2.4, 2.6, 100.0])), [-3, 2, 3, 39])


def test_integer_refuses_non_integers():
    with pytest.raises(InputError, match="non-integer"):
        Integer().fit(np.array([1.0, 2.5]))


def test_logit_stays_within_bounds():
    x = np.random.default_rng(7).uniform(2.0, 5.0, 1000)
    t = Logit().fit(x)
    assert t.lo_ < x.min() and t.hi_ > x.max()
    assert np.isclose(t.hi_ - t.lo_, (x.max() - x.min()) * 1.002)
    z = t.transform(x)
    assert np.isfinite(z).all() and np.abs(z).max() < 8
    out = t.inverse_transform(np.array([-1e6, -40.0, -5.0, 0.0, 5.0, 40.0, 1e6, np.inf, -np.inf]))
    assert np.all(out > t.lo_) and np.all(out < t.hi_)
    assert np.isfinite(t.transform(np.array([-100.0, 100.0]))).all()  # new data beyond the range


def test_log1p_shifts_small_negatives_and_refuses_large_ones():
    x = np.r_[np.random.default_rng(8).exponential(1.0, 1000), -0.01]
    t = Log1p().fit(x)
    assert t.offset_ == 0.01
    z = t.transform(x)
    assert z.min() == 0.0 and np.isfinite(z).all()
    np.testing.assert_allclose(t.inverse_transform(z), x, rtol=1e-12, atol=1e-15)
    assert np.isfinite(t.transform(np.array([-5.0]))).all()
    with pytest.raises(InputError, match="non-negative"):
        Log1p().fit(np.array([-3.0, 0.0, 1.0]))


def test_arccos_accepts_round_off_and_refuses_non_cosines():
    x = np.array([1.0 + 1.2e-7, 0.5, -1.0 - 1e-7])
    z = Arccos().fit(x).transform(x)
    np.testing.assert_allclose(z, [0.0, np.pi / 3, np.pi])
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        Arccos().fit(np.array([0.0, 1.5]))


def test_chain_fits_each_step_on_the_previous_output():
    x = np.random.default_rng(9).exponential(1.0, 1000)
    chain = parse_spec("log1p+standardise")
    chain.fit(x)
    assert chain.spec == "log1p+standardise"
    assert chain.steps[1].mean_ == pytest.approx(np.log1p(x).mean())
    z = chain.transform(x)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    assert isinstance(Transform.from_dict(chain.to_dict()), Chain)


def test_parse_spec_errors():
    with pytest.raises(InputError, match="unknown transform 'logg1p'.*closest: 'log1p'"):
        parse_spec("logg1p+quantile", column="dl")
    with pytest.raises(InputError, match="empty transform"):
        parse_spec("log1p+")
    assert parse_spec(" Log1p + QUANTILE ").spec == "log1p+quantile"


# ------------------------------------------------------------------------------------------
# suggest_transform
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cos_pa", "arccos+quantile"),
        ("CosPointingAngle", "arccos+quantile"),
        ("decay_length", "log1p+quantile"),
        ("DecayLengthXY", "log1p+quantile"),
        ("dca_xi", "log1p+quantile"),
        ("ip_pi1", "log1p+quantile"),
        ("chi2_topo", "log1p+quantile"),
        ("n_its_clusters", "integer+quantile"),
        ("pt", "quantile"),
        ("eta", "quantile"),
    ],
)
def test_suggest_transform(name, expected):
    rng = np.random.default_rng(10)
    values = {
        "arccos+quantile": np.cos(rng.uniform(0, 0.2, 2000)),
        "log1p+quantile": rng.exponential(0.05, 2000) ** 2,
        "integer+quantile": rng.integers(0, 7, 2000).astype("int16"),
        "quantile": rng.lognormal(0.5, 0.5, 2000) if name == "pt" else rng.normal(0, 1.5, 2000),
    }[expected]
    assert suggest_transform(name, values) == expected


def test_suggest_transform_edge_rules():
    rng = np.random.default_rng(11)
    assert suggest_transform("charge", np.array([-1.0, 1.0, 1.0])) == "integer+quantile"
    assert suggest_transform("flag", np.array([True, False])) == "integer+quantile"
    assert suggest_transform("cos_like", rng.normal(0, 3, 100)) == "quantile"  # not in [-1, 1]
    assert suggest_transform("decay_length", rng.normal(5, 1, 1000)) == "quantile"  # no long tail
    assert suggest_transform("impact_parameter", rng.normal(0, 1, 1000) ** 3) == "quantile"  # signed
    assert suggest_transform("mass", rng.exponential(1, 1000) ** 2) == "quantile"  # tail but not a length


# ------------------------------------------------------------------------------------------
# FeaturePipeline
# ------------------------------------------------------------------------------------------


@pytest.fixture
def mc_frame():
    rng = np.random.default_rng(12)
    n = 5000
    return pd.DataFrame(
        {
            "pt": rng.lognormal(0.5, 0.6, n).astype("float32"),
            "cos_pa": np.cos(rng.uniform(0, 0.3, n)).astype("float32"),
            "decay_length": rng.exponential(0.05, n) ** 2,
            "n_its_clusters": rng.integers(2, 8, n).astype("int16"),
            "eta": rng.normal(0, 0.8, n),
        }
    )


def test_pipeline_fit_transform_inverse(mc_frame):
    pipe = FeaturePipeline(random_state=1)
    z = pipe.fit_transform(mc_frame)
    assert pipe.columns_ == list(mc_frame.columns)
    assert pipe.specs_ == {
        "pt": "quantile",
        "cos_pa": "arccos+quantile",
        "decay_length": "log1p+quantile",
        "n_its_clusters": "integer+quantile",
        "eta": "quantile",
    }
    assert z.dtype == np.float32 and z.shape == (5000, 5) and z.flags.c_contiguous
    assert np.all(np.abs(z.mean(axis=0)) < 0.02) and np.all(np.abs(z.std(axis=0) - 1) < 0.03)
    back = pipe.inverse_transform(z)
    assert list(back.columns) == list(mc_frame.columns)
    assert back.dtypes.to_dict() == mc_frame.dtypes.to_dict()
    for col in ("pt", "cos_pa", "decay_length", "eta"):  # float32 matrix: float32 precision
        np.testing.assert_allclose(back[col], mc_frame[col], rtol=1e-4, atol=1e-5 * np.ptp(mc_frame[col]))
    diff = back["n_its_clusters"].to_numpy() - mc_frame["n_its_clusters"].to_numpy()
    assert np.abs(diff).max() <= 1 and np.mean(diff == 0) > 0.999


def test_pipeline_json_round_trip_is_exact(mc_frame, tmp_path):
    pipe = FeaturePipeline({"eta": "logit", "pt": "log1p+quantile"}, random_state=5).fit(mc_frame)
    assert pipe.specs_["eta"] == "logit"
    text = pipe.to_json()
    json.loads(text)  # plain JSON, no NaN
    again = FeaturePipeline.from_json(text)
    z = pipe.transform(mc_frame)
    np.testing.assert_array_equal(again.transform(mc_frame), z)
    pd.testing.assert_frame_equal(again.inverse_transform(z), pipe.inverse_transform(z))
    assert again.to_json() == text

    path = pipe.save(tmp_path / "features.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.json"]  # no temp file left
    loaded = FeaturePipeline.load(path)
    np.testing.assert_array_equal(loaded.transform(mc_frame), z)
    assert loaded.specs_ == pipe.specs_ and loaded.dtypes_ == pipe.dtypes_


def test_pipeline_is_reproducible_and_seeded(mc_frame):
    a = FeaturePipeline(random_state=3).fit_transform(mc_frame)
    b = FeaturePipeline(random_state=3).fit_transform(mc_frame)
    c = FeaturePipeline(random_state=4).fit_transform(mc_frame)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, 3], c[:, 3])  # integer noise depends on the seed
    np.testing.assert_array_equal(a[:, 0], c[:, 0])  # continuous columns do not


def test_pipeline_ignores_extra_columns_and_reorders(mc_frame):
    pipe = FeaturePipeline().fit(mc_frame)
    shuffled = mc_frame[list(reversed(mc_frame.columns))].assign(extra=1.0)
    np.testing.assert_array_equal(pipe.transform(shuffled), pipe.transform(mc_frame))


def test_pipeline_bad_spec_and_bad_data(mc_frame):
    with pytest.raises(InputError, match=r"column 'pt'.*unknown transform 'quantil'.*closest: 'quantile'") as err:
        FeaturePipeline({"pt": "quantil"}).fit(mc_frame)
    assert err.value.column == "pt"
    with pytest.raises(InputError, match=r"column 'eta'.*arccos"):
        FeaturePipeline({"eta": "arccos+quantile"}).fit(mc_frame)
    with pytest.raises(InputError, match=r"column 'eta'.*non-negative"):
        FeaturePipeline({"eta": "log1p"}).fit(mc_frame)
    with pytest.raises(InputError, match=r"column 'pt'.*non-integer"):
        FeaturePipeline({"pt": "integer"}).fit(mc_frame)
    with pytest.raises(InputError, match=r"column 'p_t'.*not in the data.*closest: 'pt'"):
        FeaturePipeline({"p_t": "quantile"}).fit(mc_frame)
    with pytest.raises(InputError, match=r"column 'label'.*not numeric"):
        FeaturePipeline().fit(mc_frame.assign(label="xi"))
    nan = mc_frame.copy()
    nan.loc[3, "eta"] = np.nan
    with pytest.raises(InputError, match=r"column 'eta'.*1 missing"):
        FeaturePipeline().fit(nan)
    with pytest.raises(InputError, match="no rows"):
        FeaturePipeline().fit(mc_frame.iloc[:0])


def test_pipeline_transform_and_inverse_errors(mc_frame):
    with pytest.raises(NotFittedError):
        FeaturePipeline().transform(mc_frame)
    pipe = FeaturePipeline().fit(mc_frame)
    with pytest.raises(InputError, match=r"column 'decay_length'.*missing"):
        pipe.transform(mc_frame.drop(columns="decay_length"))
    with pytest.raises(InputError, match=r"shape \(n, 5\)"):
        pipe.inverse_transform(np.zeros((10, 4), dtype=np.float32))
    bad = np.zeros((10, 5), dtype=np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match=r"column 'cos_pa'.*NaN"):
        pipe.inverse_transform(bad)


def test_pipeline_load_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        FeaturePipeline.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="broken.json: is not valid JSON"):
        FeaturePipeline.load(broken)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a saved feature pipeline"):
        FeaturePipeline.load(other)


def test_pipeline_other_dtypes():
    frame = pd.DataFrame(
        {
            "flag": np.array([True, False, True, True]),
            "hits": pd.array([1, 5, 3, 2], dtype="Int32"),
            "u8": np.array([0, 255, 7, 9], dtype=np.uint8),
            "x": np.array([0.5, 1.5, 2.5, -1.0], dtype=np.float32),
        }
    )
    pipe = FeaturePipeline().fit(frame)
    back = pipe.inverse_transform(pipe.transform(frame))
    pd.testing.assert_frame_equal(back, frame)
    # generated values beyond an integer dtype's range are clipped to it, not wrapped
    forced = FeaturePipeline({"u8": "identity"}).fit(frame)
    z = forced.transform(frame)
    z[:, 2] = [-5.0, 300.0, 7.4, 8.6]
    assert forced.inverse_transform(z)["u8"].tolist() == [0, 255, 7, 9]


def test_unfitted_pipeline_json_round_trip():
    pipe = FeaturePipeline({"a": "quantile"}, random_state=9)
    again = FeaturePipeline.from_json(pipe.to_json())
    assert again.transforms == {"a": "quantile"} and again.random_state == 9 and not again.is_fitted()


# ------------------------------------------------------------------------------------------
# Choosing specs before a training (the Preprocessing tab's engine, callable from a notebook)
# ------------------------------------------------------------------------------------------


def test_suggest_transforms_covers_every_column_in_order(mc_frame):
    assert list(preprocessing.suggest_transforms(mc_frame).items()) == [
        ("pt", "quantile"), ("cos_pa", "arccos+quantile"), ("decay_length", "log1p+quantile"),
        ("n_its_clusters", "integer+quantile"), ("eta", "quantile")]


def test_check_transforms_fits_on_the_preview_rows_and_names_a_misfit_column(monkeypatch):
    monkeypatch.setattr(preprocessing, "PREVIEW_ROWS", 1000)
    x = np.arange(4000.0)
    frame = pd.DataFrame({"pt": x, "cos_pa": np.cos(x)})
    rows = preprocessing.preview_rows(frame)
    assert len(rows) == 1000 and rows["pt"].isin(x).all() and rows.equals(preprocessing.preview_rows(frame))
    step = preprocessing.check_transforms(frame, {"pt": "standardise", "cos_pa": "arccos"}).steps_["pt"].steps[0]
    assert step.mean_ == pytest.approx(rows["pt"].mean()) and step.mean_ != pytest.approx(x.mean())
    with pytest.raises(InputError, match="column 'pt'.*arccos"):  # a momentum is no cosine
        preprocessing.check_transforms(frame, {"pt": "arccos"})


def test_preview_transform_shows_the_spec_fitted_on_the_column(mc_frame):
    raw, z = preprocessing.preview_transform(mc_frame["eta"], "standardise")
    np.testing.assert_array_equal(raw, mc_frame["eta"].to_numpy())  # fewer rows than a preview: all of them
    np.testing.assert_allclose(z, (raw - raw.mean()) / raw.std(), atol=1e-6)
    with pytest.raises(InputError, match="column 'eta'"):
        preprocessing.preview_transform(mc_frame["eta"], "arccos")
