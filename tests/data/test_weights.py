"""Event weights read beside the features (``load_mc(..., weights=COLUMN)``), never modelled: a column
named like a weight is left out of the default features and said; bad weights get one clear message."""

import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.data.sources import load_mc
from recogan_app.errors import InputError


@pytest.fixture(scope="module")
def weighted_root(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 400
    columns = {"pt": rng.exponential(3.0, n), "eta": rng.normal(0, 1.2, n), "genWeight": rng.uniform(0.5, 2.0, n)}
    path = tmp_path_factory.mktemp("mc") / "weighted.root"
    with uproot.recreate(path) as file:
        file["events"] = columns
    return path, pd.DataFrame(columns)


def test_weights_are_read_beside_the_features_and_follow_the_cut(weighted_root):
    path, truth = weighted_root
    sample = load_mc(path, weights="genWeight", cut="pt > 1")
    kept = truth[truth.pt > 1]
    assert sorted(sample.frame.columns) == ["eta", "pt"]
    np.testing.assert_array_equal(sample.weights, kept["genWeight"].to_numpy())
    assert sample.weighting() == {"column": "genWeight", "sum": pytest.approx(kept["genWeight"].sum()),
                                  "n_effective": pytest.approx(kept["genWeight"].sum() ** 2
                                                               / (kept["genWeight"] ** 2).sum())}
    rows = np.array([3, 0, 7])
    part = sample.subset(rows)  # what a split's part holds
    np.testing.assert_array_equal(part.weights, sample.weights[rows])
    np.testing.assert_array_equal(part.frame["pt"], sample.frame["pt"].to_numpy()[rows])


def test_a_column_named_like_a_weight_is_never_modelled_silently(weighted_root):
    path, _ = weighted_root
    sample = load_mc(path)
    assert sorted(sample.frame.columns) == ["eta", "pt"] and sample.weights is None
    assert "--weights genWeight" in sample.skipped["genWeight"]
    assert list(load_mc(path, features="pt,genWeight").frame.columns) == ["pt", "genWeight"]  # named: the user's call


@pytest.mark.parametrize("options, words", [
    ({"weights": "genWieght"}, ["'genWieght'", "not found", "genWeight"]),
    ({"weights": "pt", "features": "pt,eta"}, ["'pt'", "both a feature and the weights"]),
])
def test_bad_weight_columns_are_refused_by_name(weighted_root, options, words):
    path, _ = weighted_root
    with pytest.raises(InputError) as caught:
        load_mc(path, **options)
    assert all(word in str(caught.value) for word in [str(path), *words])


def test_non_finite_weights_are_refused_or_dropped(tmp_path):
    frame = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0) ** 2, "w": [1.0] * 8 + [np.nan, np.inf]})
    path = tmp_path / "mc.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError, match=r"column 'w': has 2 NaN/inf values"):
        load_mc(path, weights="w")
    sample = load_mc(path, weights="w", drop_invalid=True)
    assert len(sample) == 8 and sample.n_dropped == 2 and np.isfinite(sample.weights).all()


def test_negative_weights_are_refused_for_training_only(tmp_path):
    frame = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0) ** 2,
                          "sWeight": [1.0, -0.5, 2.0, -1.0] + [1.0] * 6})
    path = tmp_path / "mc.csv"
    frame.to_csv(path, index=False)
    sample = load_mc(path, weights="sWeight")  # validation takes them
    assert sample.weights.min() == -1.0
    with pytest.raises(InputError) as caught:
        sample.check_trainable_weights()
    message = str(caught.value)
    assert all(word in message for word in [str(path), "'sWeight'", "2 rows with negative weights", "of 10"])
