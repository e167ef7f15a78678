"""The ``recogan`` command: a tiny train → generate, and every bad input refused with exit 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uproot

from recogan_app.cli import main

TINY = {"max_epochs": 2, "batch_size": 128, "snapshot_rows": 200, "latent_dim": 8,
        "generator_widths": [16, 16, 16], "discriminator_widths": [16, 16]}


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_parquet, tiny_json):
    out = tmp_path_factory.mktemp("runs") / "xic"
    assert main(["train", "--data", str(toy_parquet), "--config", str(tiny_json), "--out", str(out),
                 "--seed", "1", "--transform", "pt=log1p+quantile", "--set", "lambda_ks=0.5"]) == 0
    return out


def test_train_writes_a_run_with_the_requested_settings(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["seed"] == 1 and config["lambda_ks"] == 0.5 and config["max_epochs"] == 2
    specs = json.loads((trained / "preprocessing.json").read_text())
    assert "log1p" in json.dumps(specs) and (trained / "metrics.json").is_file()
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in trained.iterdir() if p.is_file()}
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)  # preprocessing.json was 0600


def test_generate_exact_rows_names_and_dtypes(trained, toy_frame, tmp_path, capsys):
    out = tmp_path / "syn.parquet"
    assert main(["generate", "--run", str(trained), "--n", "2345", "--out", str(out), "--seed", "3",
                 "--chunk-rows", "1000"]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 2345 and list(frame.columns) == list(toy_frame.columns)
    assert (frame.dtypes == toy_frame.dtypes).all()
    assert pq.ParquetFile(out).metadata.num_rows == 2345
    assert "2,345" in capsys.readouterr().out


def test_data_toy_xic(tmp_path):
    out = tmp_path / "t.parquet"
    assert main(["data", "toy-xic", "--n", "500", "--features", "12", "--out", str(out)]) == 0
    assert pd.read_parquet(out).shape == (500, 12)


def bad_files(tmp, toy_frame):
    """(name, path, extra args, expected words in the message) for every refused input."""
    df = toy_frame.head(400).copy()
    cases = []

    def parquet(name, frame):
        path = tmp / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        return path

    root = tmp / "mc.root"
    with uproot.recreate(root) as f:
        f.mktree("Candidates", {"pt": np.float32})
        f["Candidates"].extend({"pt": df["pt"].to_numpy()})
    cases.append(("missing file", tmp / "nope.parquet", [], ["nope.parquet", "does not exist"]))
    cases.append(("missing tree", root, ["--tree", "Candidate"], ["mc.root", "Candidate", "Candidates"]))
    cases.append(("missing column", parquet("ok", df), ["--features", "pt,decay_lenght"],
                  ["ok.parquet", "decay_lenght", "decay_length"]))
    text = df.assign(label=["a"] * len(df))
    cases.append(("non-numeric column", parquet("text", text), ["--features", "pt,label"],
                  ["text.parquet", "label", "numeric"]))
    nan = df.copy()
    nan.loc[[3, 7, 9], "cos_pa"] = np.nan
    nan.loc[5, "pt"] = np.inf
    cases.append(("NaN/inf", parquet("nan", nan), [], ["nan.parquet", "cos_pa", "3", "--drop-invalid"]))
    cases.append(("empty file", parquet("empty", df.head(0)), [], ["empty.parquet", "0 rows"]))
    cases.append(("too few rows", parquet("few", df.head(30)), [], ["few.parquet", "30 rows", "at least"]))
    cases.append(("constant column", parquet("const", df.assign(pt=1.5)), ["--features", "pt,cos_pa"],
                  ["const.parquet", "pt", "constant"]))
    corrupt = tmp / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    cases.append(("corrupt file", corrupt, [], ["corrupt.parquet", "could not be read"]))
    return cases


def test_every_bad_input_exits_2_with_one_clear_message(tmp_path, toy_frame, tiny_json, capsys):
    for name, path, extra, words in bad_files(tmp_path, toy_frame):
        out = tmp_path / f"run-{name.replace(' ', '-').replace('/', '')}"
        code = main(["train", "--data", str(path), "--config", str(tiny_json), "--out", str(out), *extra])
        err = capsys.readouterr().err
        assert code == 2, name
        assert "Traceback" not in err and err.count("\n") == 1, (name, err)
        for word in words:
            assert word in err, (name, word, err)
        assert not out.exists(), name


def test_drop_invalid_and_left_out_columns_are_reported(tmp_path, toy_frame, tiny_json, capsys):
    frame = toy_frame.head(600).copy()
    frame.loc[[1, 2], "cos_pa"] = np.nan
    frame["label"] = "Xic"  # a text column and a constant one: left out, and said so
    frame["run_number"] = 302000
    path = tmp_path / "nan.parquet"
    frame.to_parquet(path, index=False)
    assert main(["train", "--data", str(path), "--config", str(tiny_json), "--out", str(tmp_path / "r"),
                 "--drop-invalid"]) == 0
    err = capsys.readouterr().err
    assert "dropped 2 rows" in err and "cos_pa: 2" in err
    assert "left out column 'label' " in err and "column 'run_number' is constant (value 302000)" in err
    assert json.loads((tmp_path / "r" / "run.json").read_text())["data"]["n_dropped_invalid"] == 2


def test_bad_options_exit_2(trained, tmp_path, tiny_json, toy_parquet, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a run")
    cases = [
        (["generate", "--run", str(tmp_path / "none"), "--n", "5", "--out", str(tmp_path / "a.parquet")], "run directory not found"),
        (["generate", "--run", str(trained), "--n", "5", "--out", str(tmp_path / "a.csv")], ".parquet"),
        (["generate", "--run", str(trained), "--conditions", "c.csv", "--n", "5", "--out", str(tmp_path / "a.npz")],
         "is a tabular run; --conditions is for ZDC runs"),
        (["generate", "--run", str(trained), "--out", str(tmp_path / "a.parquet")], "--n (rows to generate) is required"),
        (["generate", "--run", str(trained), "--n", "0", "--out", str(tmp_path / "a.parquet")], "--n"),
        (["generate", "--run", str(trained), "--n", "5", "--out", str(tmp_path / "a.parquet"), "--chunk-rows", "0"],
         "--chunk-rows must be at least 1, got 0"),
        (["generate", "--run", str(trained), "--n", "5", "--out", str(tmp_path / "a.parquet"), "--chunk-rows", "-5"],
         "--chunk-rows must be at least 1, got -5"),
        (["train", "--data", str(toy_parquet), "--config", str(tiny_json), "--out", str(trained)], "exists"),
        (["train", "--data", str(toy_parquet), "--out", str(afile), "--overwrite"], "afile: is a file, not a run directory"),
        (["train", "--data", str(toy_parquet), "--time-limit", "0", "--out", str(tmp_path / "f")], "time_limit"),
        (["train", "--data", str(toy_parquet), "--set", "lamda_ks=1", "--out", str(tmp_path / "b")], "lambda_ks"),
        (["train", "--data", str(toy_parquet), "--set", "batch_size=-4", "--out", str(tmp_path / "c")], "batch_size"),
        (["train", "--data", str(toy_parquet), "--transform", "pt=logg", "--out", str(tmp_path / "d")], "logg"),
        (["train", "--data", str(toy_parquet), "--config", str(tmp_path / "no.json"), "--out", str(tmp_path / "e")], "no.json"),
    ]
    for argv, word in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert word in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "a.parquet").exists() and afile.read_text() == "not a run"
    assert main(["train", "--out", "x"]) == 2 and "train needs --data and --out" in capsys.readouterr().err
    for argv in (["serve", "--port", "99999"], ["serve", "--port", "-1"]):  # argparse
        with pytest.raises(SystemExit) as usage:
            main(argv)
        assert usage.value.code == 2
    assert "a TCP port is a whole number from 1 to 65535, not '-1'" in capsys.readouterr().err


def test_help_is_plain_text():
    from recogan_app.cli import build_parser

    assert "The recogan command" in build_parser().format_help()  # not the docstring's RST ``recogan``


def test_console_entry_point_exit_codes(tmp_path):
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", str(tmp_path / "x.root"),
                           "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert done.returncode == 2 and "x.root" in done.stderr and "Traceback" not in done.stderr


def test_a_single_feature_trains_validates_and_exports(tmp_path, toy_parquet, tiny_json, capsys):
    """One feature has no correlation pairs: the penalty is zero instead of a crash."""
    run = tmp_path / "runs" / "single"
    assert main(["train", "--data", str(toy_parquet), "--features", "pt", "--config", str(tiny_json),
                 "--out", str(run)]) == 0
    assert sorted(p.name for p in run.parent.iterdir()) == ["single"]  # no .single.partial left
    assert main(["validate", "--reference", str(run / "heldout.parquet"), "--run", str(run)]) == 0
    out = tmp_path / "single.parquet"
    assert main(["export", "--run", str(run), "--n", "500", "--out", str(out), "--require", "none"]) == 0
    assert list(pd.read_parquet(out).columns) == ["pt"]
    assert "Traceback" not in capsys.readouterr().err


def test_references_the_gate_refuses_and_the_one_it_records(trained, toy_parquet, tmp_path, capsys):
    """The training file would judge the model on its own training events; 5 rows judge nothing."""
    from recogan_app.data import toy_xic
    from recogan_app.files import file_sha256

    out = tmp_path / "x.parquet"
    five = tmp_path / "five.parquet"
    toy_xic.generate(n=5, seed=9, n_features=12).to_parquet(five, index=False)
    export = ["export", "--run", str(trained), "--n", "200", "--out", str(out), "--require", "none"]
    for argv, words in (
        ([*export, "--reference", str(toy_parquet)], ["xic.parquet: is the file this run was trained on (80% ",
                                                       "omit --reference"]),
        (["validate", "--run", str(trained), "--reference", str(toy_parquet)], ["xic.parquet: is the file this run"]),
        ([*export, "--reference", str(five)], ["five.parquet: has 5 rows", "at least 100"]),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(word in err for word in words), err
    assert not out.exists()

    independent = tmp_path / "independent.parquet"
    toy_xic.generate(n=300, seed=9, n_features=12).to_parquet(independent, index=False)
    assert main([*export, "--reference", str(independent)]) == 0
    provenance = json.loads((tmp_path / "x.parquet.provenance.json").read_text())
    assert provenance["validation"]["reference_sha256"] == file_sha256(independent)
