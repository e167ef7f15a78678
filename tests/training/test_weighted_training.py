"""Weighted training undoes a known bias: MC events kept with probability f(x), weighted 1/f(x),
train a generator whose sample matches the unbiased truth within its noise floor, where the same
training without the weights learns the bias. And the command line's side of weights: negative
weights refused for training by a real process, accepted by ``recogan validate``."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recogan_app.config import FlowConfig
from recogan_app.data.sources import load_mc
from recogan_app.families.flow import train_flow
from recogan_app.metrics import ks_floor, ks_statistic

REPO = str(Path(__file__).resolve().parents[2])
COVARIANCE = [[1.0, 0.5], [0.5, 1.0]]
GENERATED = 20_000
SETTINGS = dict(max_epochs=40, batch_size=256, hidden_widths=[32], coupling_transforms=2, seed=1, patience=1000,
                device="cpu")  # 240 steps on ~1,800 training rows


def keep_probability(x: np.ndarray) -> np.ndarray:
    """The bias: events with large x kept up to ten times as often as those with small x."""
    return 0.1 + 0.9 / (1 + np.exp(-2.5 * x))


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    """A 2-D Gaussian (ρ = 0.5) of which each event was kept with probability f(x), weighted 1/f(x)."""
    rng = np.random.default_rng(7)
    events = rng.multivariate_normal([0, 0], COVARIANCE, size=4000)
    f = keep_probability(events[:, 0])
    kept = rng.random(len(events)) < f
    path = tmp_path_factory.mktemp("mc") / "biased.parquet"
    pd.DataFrame({"x": events[kept, 0], "y": events[kept, 1], "weight": 1 / f[kept]}).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def runs(biased, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    return {weights: train_flow(load_mc(biased, weights=weights), FlowConfig(**SETTINGS), folder / str(weights))
            for weights in ("weight", None)}


def test_weights_undo_the_bias_within_the_noise_floor(runs):
    truth = np.random.default_rng(8).multivariate_normal([0, 0], COVARIANCE, size=GENERATED)
    record = runs["weight"].info["data"]
    floor = ks_floor(record["weights"]["n_effective_train"], GENERATED, cl=0.95)  # two samples of one distribution: 95 % lie below
    ks = {weights: [ks_statistic(run.generate(GENERATED, seed=3)[c], truth[:, j]) for j, c in enumerate("xy")]
          for weights, run in runs.items()}
    assert max(ks["weight"]) < floor, ks
    assert ks[None][0] > 3 * floor, ks  # unweighted, the generator learns the biased x
    assert record["weights"]["column"] == "weight" and record["weights"]["sum"] > record["n_rows"]
    assert record["n_train"] > record["weights"]["n_effective_train"] > 0.5 * record["n_train"]
    assert runs[None].info["data"]["weights"] is None


def test_validate_weighs_the_reference_and_says_its_effective_size(runs, tmp_path):
    run = runs["weight"]
    out = tmp_path / "metrics.json"
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "validate", "--run", str(run.path), "--reference",
                           str(run.path / "heldout.parquet"), "--json", str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    weights = run.heldout_weights()
    n_effective = weights.sum() ** 2 / (weights**2).sum()
    assert f"effective size N_eff {n_effective:,.0f}" in done.stdout
    assert json.loads(out.read_text())["n_effective"] == pytest.approx(n_effective)


def weighted_ks(a: np.ndarray, weights: np.ndarray, b: np.ndarray) -> float:
    """max |F_w(x) − G(x)| over every value of either sample, by numpy: the weighted ECDF of ``a``
    against the plain ECDF of ``b`` (continuous values: no ties)."""
    at = np.sort(np.concatenate([a, b]))
    order = np.argsort(a)
    f = np.concatenate([[0.0], np.cumsum(weights[order]) / weights.sum()])[np.searchsorted(a[order], at, "right")]
    g = np.searchsorted(np.sort(b), at, "right") / len(b)
    return float(np.abs(f - g).max())


def test_the_export_gate_weighs_the_heldout_mc(runs, tmp_path):
    """A weighted run reproduces the weighted MC: its gate compares with the weighted held-out split
    (unweighted, it measured the sampling bias and refused a good model), and says so."""
    from recogan_app.export import export

    run = runs["weight"]
    provenance = export(run, tmp_path / "out.parquet", 500, require="none", seed=4)
    gate = provenance["validation"]
    heldout, weights = run.heldout(), run.heldout_weights()
    generated = run.generate(len(heldout), seed=run.stream_seed("gate"))
    for column in "xy":
        assert gate["ks"][column] == pytest.approx(
            weighted_ks(heldout[column].to_numpy(), weights, generated[column].to_numpy()), abs=1e-9)
    assert "weighted by its column 'weight'" in gate["reference"]
    biased = ks_statistic(heldout["x"].to_numpy(), generated["x"].to_numpy())  # what the gate measured before
    assert biased > 2 * gate["ks"]["x"] and biased > 2 * ks_floor(len(heldout), len(heldout))
    assert gate["ks_noise_floor"] > ks_floor(len(heldout), len(heldout))  # the effective size's floor


def test_negative_weights_are_refused_for_training_and_accepted_for_validation(runs, tmp_path):
    rng = np.random.default_rng(9)
    mc = tmp_path / "signed.csv"
    pd.DataFrame({"x": rng.normal(size=600), "y": rng.normal(size=600),
                  "sWeight": np.where(np.arange(600) % 10 == 0, -0.4, 1.2)}).to_csv(mc, index=False)
    command = [sys.executable, "-m", "recogan_app.cli"]
    train = subprocess.run([*command, "train", "--data", str(mc), "--weights", "sWeight", "--out",
                            str(tmp_path / "run")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert train.returncode == 2
    assert f"{mc}: column 'sWeight': has 60 rows with negative weights (of 600)" in train.stderr
    assert "Traceback" not in train.stderr and not (tmp_path / "run").exists()
    validate = subprocess.run([*command, "validate", "--run", str(runs["weight"].path), "--reference", str(mc),
                               "--weights", "sWeight"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert validate.returncode == 0, validate.stderr
    assert "MC reference: 600 rows, weighted: effective size N_eff" in validate.stdout
