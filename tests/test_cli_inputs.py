"""``recogan train`` / ``validate`` on real analysis inputs: a glob of ROOT files, a selection
(``--cut``) recorded in the run and applied again when the run re-reads its data, identifier
columns left out, and cuts that try to run code refused by a real process."""

import hashlib
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
from recogan_app.families.tabular import TabularRun
from recogan_app.splits import Split

REPO = str(Path(__file__).resolve().parents[1])
TINY = {"max_epochs": 2, "batch_size": 128, "snapshot_rows": 100, "latent_dim": 8,
        "generator_widths": [16, 16, 16], "discriminator_widths": [16, 16], "device": "cpu"}
CUT = "pt > 1 and abs(eta) < 2"


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """Three ROOT files of one tree with an event number, and the events they hold together."""
    folder = tmp_path_factory.mktemp("mc")
    parts = []
    for k, n in enumerate((500, 300, 400)):
        rng = np.random.default_rng(k)
        columns = {"event": np.arange(n, dtype=np.int64) + 1000 * k, "pt": rng.exponential(3.0, n),
                   "eta": rng.normal(0.0, 1.2, n), "mass": rng.normal(2.47, 0.01, n)}
        with uproot.recreate(folder / f"run_{k}.root") as file:
            file["events"] = columns
        parts.append(pd.DataFrame(columns))
    (folder / "tiny.json").write_text(json.dumps(TINY))
    return folder, pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def trained(production, tmp_path_factory):
    folder, _ = production
    out = tmp_path_factory.mktemp("runs") / "cut"
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", str(folder / "run_*.root"),
                           "--features", "pt,mass", "--cut", CUT, "--config", str(folder / "tiny.json"),
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr
    return out, done.stderr


def test_the_cut_and_every_file_are_recorded_in_the_run(production, trained):
    folder, events = production
    out, err = trained
    kept = int(((events["pt"] > 1) & (events["eta"].abs() < 2)).sum())
    data = json.loads((out / "run.json").read_text())["data"]
    assert (data["cut"], data["n_before_cut"], data["n_after_cut"], data["n_rows"]) == (CUT, 1200, kept, kept)
    assert data["features"] == ["pt", "mass"] and data["sha256"] is None
    assert data["sources"] == [{"path": str((folder / f"run_{k}.root").resolve()),
                                "sha256": hashlib.sha256((folder / f"run_{k}.root").read_bytes()).hexdigest()}
                               for k in range(3)]
    assert f"(3 files): the cut '{CUT}' kept {kept:,} of 1,200 rows ({kept / 1200:.1%})" in err
    assert json.loads((out / "config.json").read_text())["cut"] == CUT


def test_the_run_reads_every_file_again_with_its_cut(production, trained):
    _, events = production
    out, _ = trained
    selected = events[(events["pt"] > 1) & (events["eta"].abs() < 2)].reset_index(drop=True)
    run = TabularRun.load(out)
    split = Split.rebuild(run.info["split"], len(selected), "test")
    train, note = run.training_rows()
    pd.testing.assert_frame_equal(train, selected[["pt", "mass"]].iloc[split.train].reset_index(drop=True))
    assert note.endswith(f"({len(split.train):,} rows)")


def test_an_event_number_is_left_out_and_said(production, tmp_path, capsys):
    folder, _ = production
    code = main(["train", "--data", str(folder / "run_0.root"), "--data", str(folder / "run_1.root"),
                 "--cut", "pt > 8", "--config", str(folder / "tiny.json"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "r").exists()
    assert "left out column 'event' looks like an identifier (integers named like a run, event" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"recogan: error: {folder / 'run_0.root'}, {folder / 'run_1.root'}: has ")
    assert "; the cut 'pt > 8' kept " in last and " of 800 rows " in last and "; training needs at least 67" in last


@pytest.mark.parametrize(("cut", "words"), [
    ("pt > 1 and etaa < 2", "column 'etaa': is read by the cut 'pt > 1 and etaa < 2' but is not a column "
                            "(closest: 'eta'"),
    ("pt > 1 and (eta < 2", "is not a valid expression ('(' was never closed at character 12)"),
    ("__import__('os').system('touch {marker}') > 0", "calls '__import__('os').system', which is not allowed"),
    ("pt.__class__.__init__.__globals__ > 0", "uses attribute access"),
])
def test_a_bad_cut_exits_2_naming_the_problem_and_runs_nothing(production, tmp_path, cut, words):
    folder, _ = production
    marker = tmp_path / "CUT_RAN"
    cut = cut.format(marker=marker)
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", str(folder / "run_*.root"),
                           "--cut", cut, "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("recogan: error: ") and words.format(marker=marker) in done.stderr, done.stderr
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_validate_applies_the_cut_to_both_files(production, tmp_path, capsys):
    _, events = production
    reference, synthetic = tmp_path / "reference.parquet", tmp_path / "synthetic.parquet"
    events.iloc[::2].to_parquet(reference, index=False)
    events.iloc[1::2].to_parquet(synthetic, index=False)
    assert main(["validate", "--reference", str(reference), "--synthetic", str(synthetic), "--cut", CUT,
                 "--features", "pt,mass", "--json", str(tmp_path / "v.json")]) == 0
    err = capsys.readouterr().err
    for path, half in ((reference, events.iloc[::2]), (synthetic, events.iloc[1::2])):
        kept = int(((half["pt"] > 1) & (half["eta"].abs() < 2)).sum())
        assert f"{path}: the cut '{CUT}' kept {kept:,} of 600 rows" in err
    assert main(["train", "--resume", str(tmp_path), "--cut", CUT]) == 2
    assert "--cut cannot go with --resume" in capsys.readouterr().err


def test_zdc_training_takes_one_file_and_no_cut(tmp_path, capsys):
    for extra, words in ((["--data", "b.npz"], "--kind zdc reads one --data file"),
                         (["--cut", "pt > 1"], "--cut is an option of tabular training, not of --kind zdc")):
        assert main(["train", "--kind", "zdc", "--data", "a.npz", *extra, "--out", str(tmp_path / "r")]) == 2
        assert words in capsys.readouterr().err
