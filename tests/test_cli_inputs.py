"""``recogan train`` / ``validate`` on real analysis inputs: a glob of ROOT files, a selection
(``--cut``) recorded in the run and applied again when the run re-reads its data, identifier
columns left out, and cuts that try to run code refused by a real process."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.cli import main
from recogan_app.data.sources import load_mc
from recogan_app.families import load_run
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


def test_an_rntuple_trains_on_its_flat_fields_and_says_what_it_left_out(tmp_path, capsys):
    """uproot 5.7 writes RNTuples (``file[name] = {...}``): flat fields of three types are modelled, a
    jagged field (a list per event) is left out and said."""
    rng = np.random.default_rng(3)
    n = 600
    path = tmp_path / "ntuple.root"
    with uproot.recreate(path) as file:
        file["ntuple"] = {"pt": rng.exponential(3.0, n), "eta": rng.normal(0, 1, n).astype(np.float32),
                          "n_tracks": rng.poisson(4, n).astype(np.int32),
                          "hits": ak.Array([list(rng.normal(size=k)) for k in rng.integers(0, 4, n)])}
    assert uproot.open(path).classnames() == {"ntuple;1": "ROOT::RNTuple"}
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    assert main(["train", "--data", str(path), "--config", str(tmp_path / "tiny.json"), "--out",
                 str(tmp_path / "run")]) == 0
    assert "left out column 'hits' is not a flat numeric branch (type std::vector<double>)" in capsys.readouterr().err
    data = json.loads((tmp_path / "run" / "run.json").read_text())["data"]
    assert sorted(data["features"]) == ["eta", "n_tracks", "pt"] and data["tree"] == "ntuple" and data["n_rows"] == n


def test_a_url_needs_the_remote_extra_and_a_root_file(monkeypatch, tmp_path, capsys):
    for module in ("aiohttp", "fsspec_xrootd", "XRootD"):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra [remote] were not installed
    for url, words in (("https://eospublic.cern.ch/mc.root", "is a https:// URL, which needs aiohttp (not installed)"),
                       ("root://eosuser.cern.ch//eos/user/p/phys/mc.root",
                        "is a root:// URL, which needs fsspec_xrootd and XRootD (not installed)"),
                       ("https://example.org/mc.parquet",
                        "is a URL of a file that is not ROOT: only ROOT files are read remotely")):
        assert main(["train", "--data", url, "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err == f"recogan: error: {url}: {words}" + (
            " (pip install 'recogan_app[remote]')\n" if "needs" in err else
            " (copy the file to a local disk and give its path)\n")
    assert not (tmp_path / "run").exists()


def test_a_root_file_over_http_trains_and_the_run_records_its_url(production, tmp_path, web_folder):
    folder, events = production
    url = f"{web_folder(folder)}/run_1.root"
    path = os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])  # where aiohttp was found
    remote = load_mc(url, features="pt,eta,mass")
    pd.testing.assert_frame_equal(remote.frame, load_mc(folder / "run_1.root", features="pt,eta,mass").frame)
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", url, "--features", "pt,mass",
                           "--cut", CUT, "--config", str(folder / "tiny.json"), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "run" / "run.json").read_text())["data"]
    kept = int(((events["pt"] > 1) & (events["eta"].abs() < 2)).iloc[500:800].sum())
    assert (data["source"], data["sha256"], data["cut"], data["n_after_cut"]) == (url, None, CUT, kept)
    assert data["sources"] == [{"path": url, "sha256": None}]


def test_a_run_on_a_glob_and_urls_records_every_source_and_reads_them_again(production, tmp_path, web_folder):
    """A local glob and two URLs: every one recorded in order (a URL without SHA-256), and the run's
    training rows (the copula baseline's) rebuilt from all three with the cut."""
    folder, events = production
    base = web_folder(folder)
    urls = [f"{base}/run_1.root", f"{base}/run_2.root"]
    out = tmp_path / "mixed"
    assert main(["train", "--data", str(folder / "run_[0].root"), "--data", urls[0], "--data", urls[1], "--features",
                 "pt,mass", "--cut", CUT, "--config", str(folder / "tiny.json"), "--out", str(out)]) == 0
    local = folder / "run_0.root"
    data = json.loads((out / "run.json").read_text())["data"]
    assert data["sources"] == [{"path": str(local.resolve()), "sha256": hashlib.sha256(local.read_bytes()).hexdigest()},
                               *({"path": url, "sha256": None} for url in urls)]
    selected = events[(events["pt"] > 1) & (events["eta"].abs() < 2)].reset_index(drop=True)
    run = TabularRun.load(out)
    train, note = run.training_rows()
    split = Split.rebuild(run.info["split"], len(selected), "test")
    pd.testing.assert_frame_equal(train, selected[["pt", "mass"]].iloc[split.train].reset_index(drop=True))
    assert note.endswith(f"({len(split.train):,} rows)")


def test_serve_reads_a_url_as_train_does(production, monkeypatch, capsys, web_folder):
    """``recogan serve --data URL``: the dashboard reads the URL (not a local path named like it), and
    a URL the installed extras cannot read exits 2 with train's words before any server starts."""
    from recogan_app.ui.dashboard import Dashboard

    folder, events = production
    url = f"{web_folder(folder)}/run_2.root"
    state = Dashboard(url).state  # what each page of recogan serve --data URL builds (in a notebook: loaded at once)
    assert state.source == url and state.notice.startswith(f"loaded 400 rows × 3 features from {url}")
    pd.testing.assert_frame_equal(state.sample.frame, load_mc(folder / "run_2.root").frame)  # the event number left out
    assert state.count_cut(CUT) == (400, int(((events["pt"] > 1) & (events["eta"].abs() < 2)).iloc[800:].sum()))
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    for command in ("train", "serve"):
        assert main([command, "--data", url, *(["--out", "unused"] if command == "train" else [])]) == 2
        assert capsys.readouterr().err == (f"recogan: error: {url}: is a http:// URL, which needs aiohttp (not "
                                           "installed) (pip install 'recogan_app[remote]')\n")


def test_generate_counts_the_rows_that_fail_the_training_cut(production, tmp_path):
    """A model puts some rows where the selected MC has none (a cut that is no box in the features: each
    feature stays in its range): generate says how many fail the cut (counted here with pandas on the
    written file), so that the analysis applies it to them too."""
    folder, _ = production
    out, cut = tmp_path / "run", "pt > 1 + abs(eta)"
    assert main(["train", "--data", str(folder / "run_*.root"), "--features", "pt,eta,mass", "--cut", cut,
                 "--model", "flow", "--set", "max_epochs=5", "--out", str(out)]) == 0
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "generate", "--run", str(out), "--n", "3000",
                           "--seed", "1", "--out", str(tmp_path / "s.parquet")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr
    synthetic = pd.read_parquet(tmp_path / "s.parquet")
    failing = int((synthetic["pt"] <= 1 + synthetic["eta"].abs()).sum())
    assert failing > 0  # five epochs of a flow do not learn the cut's edge
    assert (f"WARNING: {failing:,} of the 3,000 rows ({failing / 3000:.1%}) fail the training's cut '{cut}' (the MC "
            "had none): apply it to the synthetic rows as to the MC") in done.stdout
    run = load_run(out)
    assert run.outside_cut(synthetic[["pt", "mass"]]) is None  # a column of the cut not generated
    # export says it too, before writing: counted on its validation sample (the gate's stream), as many rows
    # as an independent MC file holds after the training's cut (its tree the run's, found without --tree)
    rng = np.random.default_rng(7)
    with uproot.recreate(tmp_path / "independent.root") as file:
        file["events"] = {"pt": rng.exponential(3.0, 1000), "eta": rng.normal(0.0, 1.2, 1000),
                          "mass": rng.normal(2.47, 0.01, 1000)}
    reference = uproot.open(tmp_path / "independent.root")["events"].arrays(library="pd")
    n = int((reference["pt"] > 1 + reference["eta"].abs()).sum())
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "export", "--run", str(out), "--n", "500",
                           "--reference", str(tmp_path / "independent.root"), "--require", "none",
                           "--out", str(tmp_path / "e.parquet")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr
    assert f"kept {n:,} of 1,000" in done.stderr  # the reference selected as the training MC was
    validation = run.generate(n, seed=run.stream_seed("gate"))
    failing = int((validation["pt"] <= 1 + validation["eta"].abs()).sum())
    assert failing > 0
    assert (f"WARNING: {failing:,} of the validation sample's {n:,} rows ({failing / n:.1%}) fail the training's "
            f"cut '{cut}'") in done.stdout
    sidecar = json.loads((tmp_path / "e.parquet.provenance.json").read_text())
    assert sidecar["validation"]["outside_cut"] == failing
