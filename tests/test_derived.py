"""Derived columns (issue 19): on a CMS-dimuon-like file (E, px, py, pz, pt, eta, phi and charge of two
muons and their invariant mass M, rounded to 4 decimals as the public CSV prints them), ``recogan
train --derive`` models the free columns only and every output holds pt and M exactly as the formulas
give them from the generated four-vectors; without ``--derive`` train suggests the identities the data
satisfy; bad formulas are refused with exit 2 naming the problem."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.cli import main
from recogan_app.data.derived import Derivations, disagreements, suggest
from recogan_app.data.selection import mass
from recogan_app.data.sources import load_mc
from recogan_app.families.tabular import TabularRun

REPO = str(Path(__file__).resolve().parents[1])
TINY = {"max_epochs": 1, "batch_size": 256, "snapshot_rows": 100, "latent_dim": 4, "generator_widths": [16],
        "discriminator_widths": [16], "device": "cpu"}
PAIR_MASS = "mass(E1 + E2, px1 + px2, py1 + py2, pz1 + pz2)"
DERIVE = ["pt1 = hypot(px1, py1)", "pt2 = hypot(px2, py2)", f"M = {PAIR_MASS}"]


def dimuons(n: int, seed: int = 0) -> pd.DataFrame:
    """Two muons per event from random momenta, every column rounded to 4 decimals after computing
    the exact kinematics (as in the CMS open-data CSV); run and event numbers first."""
    rng = np.random.default_rng(seed)
    columns = {"Run": np.full(n, 146436), "Event": np.arange(n) * 7 + 90_000}
    for i in (1, 2):
        px, py, pz = rng.normal(0.0, 15.0, (3, n))
        pt = np.hypot(px, py)
        columns |= {f"E{i}": np.sqrt(px**2 + py**2 + pz**2 + 0.10566**2), f"px{i}": px, f"py{i}": py,
                    f"pz{i}": pz, f"pt{i}": pt, f"eta{i}": np.arcsinh(pz / pt), f"phi{i}": np.arctan2(py, px),
                    f"Q{i}": rng.choice([-1, 1], n)}
    frame = pd.DataFrame(columns)
    frame["M"] = mass(frame.E1 + frame.E2, frame.px1 + frame.px2, frame.py1 + frame.py2, frame.pz1 + frame.pz2)
    return frame.round(4)


def recogan(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "recogan_app.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": REPO})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dimuon")
    dimuons(2000).to_csv(folder / "dimuon.csv", index=False)
    (folder / "tiny.json").write_text(json.dumps(TINY))
    return folder


@pytest.fixture(scope="module")
def trained(folder):
    derive = [arg for formula in DERIVE for arg in ("--derive", formula)]
    done = recogan("train", "--data", folder / "dimuon.csv", *derive, "--config", folder / "tiny.json",
                   "--out", folder / "run")
    assert done.returncode == 0, done.stderr
    return folder / "run", done.stderr


def check_exact(frame: pd.DataFrame) -> None:
    """pt and M of ``frame`` are what the formulas give from its own px, py, pz, E (float rounding only)."""
    for i in (1, 2):
        np.testing.assert_allclose(frame[f"pt{i}"], np.hypot(frame[f"px{i}"], frame[f"py{i}"]), rtol=1e-12)
    f = frame
    np.testing.assert_allclose(f.M, mass(f.E1 + f.E2, f.px1 + f.px2, f.py1 + f.py2, f.pz1 + f.pz2), rtol=1e-12)


def test_generated_file_holds_the_derived_columns_exactly_in_the_files_order(folder, trained):
    run, err = trained
    assert "column 'Event' looks like an identifier" in err
    assert "pass --derive 'eta1 = arcsinh(pz1 / hypot(px1, py1))'" in err
    assert "pt1 = hypot" not in err and "WARNING" not in err  # derived already; the MC agrees with every formula
    done = recogan("generate", "--run", run, "--n", 3000, "--seed", 1, "--out", folder / "generated.parquet")
    assert done.returncode == 0, done.stderr
    generated = pd.read_parquet(folder / "generated.parquet")
    mc = pd.read_csv(folder / "dimuon.csv").drop(columns=["Run", "Event"])
    assert list(generated.columns) == list(mc.columns) and (generated.dtypes == mc.dtypes).all()
    check_exact(generated)
    # the free columns are generated, not copied: a generator of independent columns breaks pt = hypot(px, py)
    assert not np.allclose(generated.eta1, np.arcsinh(generated.pz1 / generated.pt1), rtol=1e-3)


def test_the_derivations_are_recorded_and_validated_against_the_mc(trained):
    run, _ = trained
    info, config = (json.loads((run / name).read_text()) for name in ("run.json", "config.json"))
    assert info["data"]["derived"] == {
        "pt1": {"expression": "hypot(px1, py1)", "dtype": "float64"},
        "pt2": {"expression": "hypot(px2, py2)", "dtype": "float64"},
        "M": {"expression": PAIR_MASS, "dtype": "float64"}}
    assert config["derive"] == {"pt1": "hypot(px1, py1)", "pt2": "hypot(px2, py2)", "M": PAIR_MASS}
    modelled = TabularRun.load(run).pipeline.columns_
    assert len(modelled) == 14 and not {"pt1", "pt2", "M"} & set(modelled)
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"ks_M", "ks_pt1", "ks_px1"} <= set(metrics)  # the derived mass is judged against the MC's


def test_export_to_root_keeps_them_exact(folder, trained):
    run, _ = trained
    done = recogan("export", "--run", run, "--n", 2000, "--seed", 2, "--force", "--out", folder / "mumu.root")
    assert done.returncode == 0, done.stderr
    with uproot.open(folder / "mumu.root") as file:
        tree = file[file.keys(cycle=False, filter_classname="TTree")[0]]
        check_exact(tree.arrays(library="pd"))


def test_train_without_derive_suggests_the_identities(folder):
    done = recogan("train", "--data", folder / "dimuon.csv", "--config", folder / "tiny.json",
                   "--features", "px1,py1,pt1,pz1,eta1,E1,E2,px2,py2,pz2,M", "--out", folder / "free")
    assert done.returncode == 0, done.stderr
    found = {line.split(": ", 1)[1].split(" = ")[0]: line for line in done.stderr.splitlines()
             if "holds in every event" in line}
    assert set(found) == {"pt1", "eta1", "E1", "E2", "M"}  # px2, py2 without pt2: no pt2 to suggest
    assert found["pt1"] == (f"{folder / 'dimuon.csv'}: pt1 = hypot(px1, py1) holds in every event: pass --derive "
                            "'pt1 = hypot(px1, py1)' to keep it exact (it is modelled as a free column otherwise)")
    assert f"pass --derive 'M = {PAIR_MASS}'" in found["M"]
    assert "pass --derive 'E1 = sqrt(px1**2 + py1**2 + pz1**2 + 0.1" in found["E1"]  # the muon mass, from the data
    assert json.loads((folder / "free" / "run.json").read_text())["data"]["derived"] == {}  # a notice, not applied


def test_suggestions_follow_names_and_numbers():
    frame = dimuons(1000, seed=3).drop(columns=["Run", "Event"])
    found = {s.name: s.formula for s in suggest(frame)}
    energies = {name: found.pop(name) for name in ("E1", "E2")}
    assert found == {"pt1": "hypot(px1, py1)", "pt2": "hypot(px2, py2)", "phi1": "arctan2(py1, px1)",
                     "phi2": "arctan2(py2, px2)", "eta1": "arcsinh(pz1 / hypot(px1, py1))",
                     "eta2": "arcsinh(pz2 / hypot(px2, py2))", "M": PAIR_MASS}
    for i in (1, 2):  # the muon mass, 0.10566 GeV, estimated from E² - p² of the rounded values
        formula, squared = energies[f"E{i}"].rsplit(" + ", 1)
        assert formula == f"sqrt(px{i}**2 + py{i}**2 + pz{i}**2" and abs(float(squared[:-4]) - 0.10566) < 0.002
    renamed = frame.rename(columns=lambda c: f"Muon_{c[:-1]}_{c[-1]}" if c[-1] in "12" else c)
    assert {s.derive for s in suggest(renamed)} >= {"Muon_pt_1 = hypot(Muon_px_1, Muon_py_1)"}
    dotted = frame.rename(columns=lambda c: f"Muon.{c}")  # no Python names: quoted as the cut language wants
    assert {s.derive for s in suggest(dotted)} >= {"Muon.pt1 = hypot(`Muon.px1`, `Muon.py1`)"}
    assert disagreements(frame, {"pt1": "hypot(px1, py1)", "M": PAIR_MASS}) == []
    frame["pt1"] *= 1.001  # off by 0.1 %: no identity
    frame["M"] = frame["M"].sample(frac=1, random_state=0).to_numpy()  # another event's mass
    assert {s.name for s in suggest(frame)} == {"pt2", "phi1", "phi2", "eta1", "eta2", "E1", "E2"}
    assert suggest(frame, derived=["pt2"]) == [s for s in suggest(frame) if s.name != "pt2"]
    assert disagreements(frame, {"pt1": "hypot(px1, py1)", "M": PAIR_MASS, "pt2": "hypot(px2, py2)"}) == [
        "the MC's pt1 differs from hypot(px1, py1) in 99.0% of the events (beyond a relative 0.0001): the "
        "generated pt1 follows the formula, not the MC",
        f"the MC's M differs from {PAIR_MASS} in 99.8% of the events (beyond a relative 0.0001): the "
        "generated M follows the formula, not the MC"]


def test_a_derived_column_may_read_another_in_any_order(folder):
    sample = load_mc(folder / "dimuon.csv", features="px1,py1,pz1",
                     derive={"E1": "sqrt(pt1**2 + pz1**2 + 0.10566**2)", "pt1": "hypot(px1, py1)"})
    assert list(sample.frame.columns) == ["px1", "py1", "pz1", "E1", "pt1"] and list(sample.derived) == ["pt1", "E1"]
    frame = Derivations(sample.derived).complete(pd.DataFrame({"px1": [3.0], "py1": [4.0], "pz1": [12.0]}),
                                                 {"pt1": "float64", "E1": "float32"})
    assert frame["pt1"].tolist() == [5.0] and frame["E1"].dtype == np.float32
    assert frame["E1"].iloc[0] == np.float32(np.sqrt(169 + 0.10566**2))


@pytest.mark.parametrize("args, words", [
    (["--derive", "pt1 = hypot(px1, pyy1)"], ["column 'pyy1'", "derived column 'pt1'", "not a column",
                                              "py1"]),
    (["--derive", "pt1 = hypot(px1, py1"], ["derived column 'pt1'", "not a valid expression"]),
    (["--derive", "pt1 = __import__('os')"], ["calls '__import__', which is not allowed"]),
    (["--derive", "pT1 = hypot(px1, py1)"], ["column 'pT1'", "is derived but is not a column"]),
    (["--derive", "a = b + 1", "--derive", "b = 2 * a"], ["cycle (a -> b -> a"]),
    (["--derive", "pt1 = hypot(px1, py1)", "--features", "px1,py1,pt1"],
     ["column 'pt1'", "both a feature and derived"]),
    (["--derive", "pt1 = hypot(px1, py1)", "--features", "px1,pz1"], ["column 'py1'", "not a modelled column"]),
    (["--derive", "pt1 hypot(px1, py1)"], ["--derive takes NAME = FORMULA"]),
    (["--derive", "pt1 = hypot(px1, py1)", "--derive", "pt1 = px1"], ["column 'pt1'", "derived twice"]),
])
def test_bad_derivations_are_refused_before_training(folder, args, words, capsys, tmp_path):
    code = main(["train", "--data", str(folder / "dimuon.csv"), *args, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "run").exists()
