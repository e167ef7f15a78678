"""What the command says to a new user: summaries whose counts add up, epochs counted from 1, a
weighted run's statement at its effective size, ``validate`` without ``--reference`` (the run's
held-out split) and with the run's tree, refusals in one line, suggestions that can be used."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.cli import main
from recogan_app.data import toy_pid

REPO = str(Path(__file__).resolve().parents[1])
TINY = ["--set", "batch_size=128", "--set", "snapshot_rows=100", "--set", "latent_dim=8", "--set",
        "generator_widths=[16,16,16]", "--set", "discriminator_widths=[16,16]", "--device", "cpu"]


def write_events(path, seed: int, n: int = 1200) -> None:
    """A NanoAOD-like file: the tree Events (momenta, a positive weight, a signed charge, a jagged
    jet pT) beside a second tree, Runs, so that a reader must be told which."""
    rng = np.random.default_rng(seed)
    n_jet = rng.integers(0, 3, n)
    px, py = rng.normal(0, 3, n), rng.normal(0, 3, n)
    with uproot.recreate(path) as file:
        file["Events"] = {"px": px, "py": py, "eta": rng.normal(0, 1.5, n), "evtWeight": rng.uniform(0.2, 3.0, n),
                          "charge": rng.choice([-1.0, 1.0], n), "nJet": n_jet,
                          "Jet_pt": ak.unflatten(rng.exponential(40.0, int(n_jet.sum())), n_jet)}
        file["Runs"] = {"run": np.arange(3, dtype=np.int64)}


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    """A weighted run trained on real.root's tree Events (2 epochs), another file of the same
    production, and what the training printed."""
    folder = tmp_path_factory.mktemp("words")
    write_events(folder / "real.root", seed=1)
    write_events(folder / "other.root", seed=2)
    out = folder / "run"
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", str(folder / "real.root"),
                           "--tree", "Events", "--features", "px,py,eta", "--weights", "evtWeight",
                           "--set", "max_epochs=2", *TINY, "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr
    return folder, out, done.stdout


def test_the_training_summary_counts_epochs_from_1_and_its_steps_add_up(weighted):
    _, out, said = weighted
    info = json.loads((out / "run.json").read_text())
    fit, per_epoch = info["fit"], info["schedule"]["steps_per_epoch"]
    assert fit["epochs"] == 2 and fit["steps"] == 2 * per_epoch  # max_epochs: both epochs whole
    assert (f"stopped by max_epochs after 2 epochs ({2 * per_epoch:,} steps); best epoch {fit['best_epoch'] + 1};"
            in said), said
    assert f"({per_epoch:,} steps an epoch)" in said


def test_a_fit_cut_short_says_what_its_last_epoch_did():
    from recogan_app.training.schedule import describe_fit

    for epochs, steps, per_epoch in ((5, 109, 25), (1, 9, 207), (2, 10, 8), (1, 8, 8)):
        text = describe_fit({"reason": "time_limit", "epochs": epochs, "steps": steps, "best_epoch": 0}, per_epoch)
        numbers = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+\d|\d", text.split(";")[0])]
        if steps == epochs * per_epoch:
            assert text.startswith(f"stopped by time_limit after {epochs} epoch") and numbers == [epochs, steps]
        else:  # the whole epochs and the steps of the last add up to the steps
            whole, last = (numbers[1], numbers[2]) if epochs > 1 else (0, numbers[1])
            assert whole * per_epoch + last == steps and numbers[-1] == epochs and f"of the {per_epoch}" in text
        assert "1 epochs" not in text and text.endswith("best epoch 1")
    stopped = describe_fit({"reason": "stopped", "epochs": 3, "steps": 20, "best_epoch": 1}, 8)  # Stop pressed
    assert stopped == "stopped on request after 20 steps: 2 full epochs and 4 of the 8 of epoch 3; best epoch 2"


def test_a_weighted_runs_statement_counts_its_effective_training_events(weighted, tmp_path, capsys):
    _, out, _ = weighted
    n_effective = json.loads((out / "run.json").read_text())["data"]["weights"]["n_effective_train"]
    n_train = json.loads((out / "run.json").read_text())["data"]["n_train"]
    assert n_effective < n_train - 50  # weights from 0.2 to 3: far fewer effective events than rows
    exported = tmp_path / "x.parquet"
    assert main(["export", "--run", str(out), "--n", "500", "--out", str(exported), "--require", "none"]) == 0
    statement = json.loads(exported.with_name("x.parquet.provenance.json").read_text())["statement"]
    assert f"{n_train:,} weighted MC events, as many as {round(n_effective):,} unweighted" in statement
    assert f"1/sqrt({round(n_effective)}*p)" in statement and f"1/sqrt({n_train}*p)" not in statement
    assert statement in capsys.readouterr().out


def test_validate_defaults_to_the_held_out_split_and_to_the_runs_tree(weighted, tmp_path, capsys):
    folder, out, _ = weighted
    report = tmp_path / "v.json"
    assert main(["validate", "--run", str(out), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["n_reference"] == json.loads((out / "run.json").read_text())["data"]["n_test"]
    capsys.readouterr()
    # other.root holds Events and Runs: the run's tree is read without --tree
    assert main(["validate", "--run", str(out), "--reference", str(folder / "other.root"), "--json",
                 str(report), "--overwrite"]) == 0
    assert json.loads(report.read_text())["n_reference"] == 1200
    capsys.readouterr()
    # the training file itself is refused, and the way out it names works
    assert main(["validate", "--run", str(out), "--reference", str(folder / "real.root")]) == 2
    err = capsys.readouterr().err
    assert "omit --reference to use the run's held-out split" in err and err.count("\n") == 1, err
    assert main(["export", "--run", str(out), "--n", "100", "--reference", str(folder / "real.root"),
                 "--out", str(tmp_path / "e.parquet")]) == 2  # refused before the weights notice
    err = capsys.readouterr().err
    assert "is the file this run was trained on" in err and err.count("\n") == 1, err
    assert main(["validate", "--synthetic", str(folder / "other.root")]) == 2
    assert "--synthetic needs --reference" in capsys.readouterr().err
    assert main(["validate", "--run", str(out), "--tree", "Events"]) == 2
    assert "--tree goes with --reference" in capsys.readouterr().err


@pytest.mark.parametrize("options, words", [
    (["--weights", "charge"], ["column 'charge': has 600", "negative weights"]),
    (["--transform", "px=bogus"], ["column 'px': unknown transform 'bogus'"]),
    (["--transform", "nope=log1p"], ["column 'nope': has a --transform but is not a modelled column"]),
    (["--weights", "evtWieght"], ["column 'evtWieght': not found", "closest: 'evtWeight'"]),
    ([], ["r: run directory exists and is not empty"]),
])
def test_a_refused_training_says_one_line_and_nothing_before_it(weighted, tmp_path, options, words):
    folder, _, _ = weighted
    if not options:  # a folder of other files as --out
        (tmp_path / "r").mkdir()
        (tmp_path / "r" / "thesis.tex").write_text("years of work")
    if options == ["--weights", "charge"]:
        events = uproot.open(folder / "real.root")["Events"].arrays(["charge"], library="np")
        words[0] = f"column 'charge': has {int((events['charge'] < 0).sum()):,} rows"
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", str(folder / "real.root"),
                           "--tree", "Events", *options, "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("recogan: error:"), (
        done.stderr)
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    assert "Jet_pt" not in done.stderr and [p.name for p in tmp_path.glob("r/*")] == ([] if options else ["thesis.tex"])


def test_conditions_missing_a_column_are_refused_naming_the_runs_conditions(tmp_path, capsys):
    data, out = tmp_path / "pid.parquet", tmp_path / "pid"
    toy_pid.generate(n=1200, seed=0).to_parquet(data, index=False)
    assert main(["train", "--data", str(data), "--targets", "dll_e,dll_p", "--conditions", "species,p,eta,n_tracks",
                 "--set", "max_epochs=1", *TINY, "--out", str(out)]) == 0
    tracks = tmp_path / "tracks.csv"
    pd.read_parquet(data, columns=["species", "p", "eta"]).to_csv(tracks, index=False)
    capsys.readouterr()
    assert main(["generate", "--run", str(out), "--conditions", str(tracks), "--out", str(tmp_path / "s.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tracks.csv: column 'n_tracks': not found" in err
    assert "a condition of the run, which generates given species, p, eta, n_tracks" in err
    assert not (tmp_path / "s.parquet").exists()
