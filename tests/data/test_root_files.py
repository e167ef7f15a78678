"""ROOT files as physicists have them: a NanoAOD branch never filled, a split object's members,
Double32_t and Float16_t branches (public test files in tests/data/files, see their README)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from recogan_app.data.sources import load_mc
from recogan_app.errors import InputError

FILES = Path(__file__).parent / "files"


@pytest.fixture
def nanoaod(tmp_path):
    """A NanoAOD-like Events tree: flat MET and counts, a jagged jet pT, and a branch NaN in every event."""
    rng = np.random.default_rng(0)
    n_jet = rng.poisson(2, 300).astype(np.int32)
    path = tmp_path / "nano.root"
    with uproot.recreate(path) as file:
        file["Events"] = {"MET_pt": rng.exponential(30.0, 300).astype(np.float32), "nJet": n_jet,
                          "Jet_pt": ak.unflatten(rng.exponential(40.0, int(n_jet.sum())), n_jet),
                          "Photon_mvaID_empty": np.full(300, np.nan, dtype=np.float32)}
    return path


def test_a_branch_nan_in_every_event_is_left_out_and_named(nanoaod):
    sample = load_mc(nanoaod)
    assert list(sample.frame.columns) == ["MET_pt", "nJet"] and len(sample.frame) == 300
    assert sample.skipped["Photon_mvaID_empty"] == "is NaN/inf in every row (a branch never filled)"
    assert "column 'Photon_mvaID_empty' is NaN/inf in every row" in sample.left_out()
    assert not sample.invalid_counts and sample.n_dropped == 0  # no event refused or dropped for it


def test_a_branch_nan_in_every_event_named_as_a_feature_is_refused_by_name(nanoaod):
    with pytest.raises(InputError, match=r"nano.root: column 'Photon_mvaID_empty': is NaN/inf in every row"):
        load_mc(nanoaod, features=["MET_pt", "Photon_mvaID_empty"])


def test_a_split_object_is_read_by_its_members():
    """A TTree of one split object (no top-level number at all) was 'no numeric columns'."""
    path = FILES / "uproot-small-evnt-tree-fullsplit.root"
    sample = load_mc(path)
    tree = uproot.open(path)["tree"]
    assert {"evt/F64", "evt/P3/P3.Py", "evt/N"} <= set(sample.frame.columns)  # a nested object's member too
    for name in sample.frame.columns:
        np.testing.assert_array_equal(sample.frame[name].to_numpy(), tree[name].array(library="np"))
    assert "column 'evt/StdStr' is not a flat numeric branch (type std::string)" in sample.left_out()
    assert "column 'evt/StlVecF64' is not a flat numeric branch" in sample.left_out()
    chosen = load_mc(path, features=["evt/P3/P3.Py", "evt/F32"])
    assert list(chosen.frame.columns) == ["evt/P3/P3.Py", "evt/F32"]


def test_double32_and_float16_branches_are_read_at_their_stored_precision():
    path = FILES / "uproot-double32-float16.root"
    sample = load_mc(path)
    tree = uproot.open(path)["tree"]
    assert {"double32_3", "double32_32", "float16_3", "float16_16"} <= set(sample.frame.columns)
    for name in ("double32_3", "float16_16"):
        np.testing.assert_array_equal(sample.frame[name].to_numpy(), tree[name].array(library="np"))
    assert "column 'array_30' is not a flat numeric branch (type Double32_t[3])" in sample.left_out()
