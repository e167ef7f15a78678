"""The ``recogan`` command: a tiny train → generate, and bad options refused with exit 2 (bad files:
test_cli_bad_inputs.py)."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

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


def test_bad_options_exit_2(trained, tmp_path, tiny_json, toy_parquet, capsys, busy_port):
    afile = tmp_path / "afile"
    afile.write_text("not a run")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    cases = [
        (["generate", "--run", str(tmp_path / "none"), "--n", "5", "--out", str(tmp_path / "a.parquet")], "run directory not found"),
        (["generate", "--run", str(trained), "--n", "5", "--out", str(tmp_path / "a.csv")], ".parquet"),
        (["generate", "--run", str(trained), "--conditions", "c.csv", "--n", "5", "--out", str(tmp_path / "a.npz")],
         "is an unconditional tabular run: --n (rows to generate) is required, --conditions is not taken"),
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
        (["train", "--data", str(toy_parquet), "--time-limit", "inf", "--out", str(tmp_path / "g")],
         "setting 'time_limit' must be a finite number, not inf"),
        (["train", "--data", str(toy_parquet), "--time-limit", "nan", "--out", str(tmp_path / "g")], "time_limit"),
        (["train", "--data", str(toy_parquet), "--set", "time_limit=Infinity", "--out", str(tmp_path / "g")],
         "setting 'time_limit' must be a finite number"),
        (["train", "--data", str(toy_parquet), "--set", "seed=-1", "--seed", "3", "--time-limit", "9", "--set",
          "batch_size=0", "--out", str(tmp_path / "g")], "batch_size"),  # --seed beats --set seed=, no clash
        (["train", "--data", str(toy_parquet), "--set", "seed=-1", "--out", str(tmp_path / "g")], "seed"),
        (["train", "--data", str(toy_parquet), "--set", "generator_widths=[0]", "--out", str(tmp_path / "g")],
         "setting 'generator_widths' takes whole numbers of at least 1, not [0]"),
        (["train", "--data", str(toy_parquet), "--config", str(toy_parquet), "--out", str(tmp_path / "g")],
         "xic.parquet: could not be parsed: 'utf-8' codec can't decode"),
        (["train", "--data", str(toy_parquet), "--config", str(fifo), "--out", str(tmp_path / "g")],
         "fifo.json: is not a regular file"),
        (["train", "--data", str(toy_parquet), "--out", "/dev/null/run"], "/dev/null/run: cannot be created in "
                                                                          "/dev/null: Not a directory"),
        (["train", "--data", str(toy_parquet), "--out", "/proc/run"], "/proc/run: cannot be created in /proc: "),
        (["serve", "--port", str(busy_port), "--address", "127.0.0.1"], f"cannot listen on 127.0.0.1:{busy_port}"),
    ]
    for argv, word in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert word in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "a.parquet").exists() and afile.read_text() == "not a run"
    assert not (tmp_path / "g").exists()
    assert main(["train", "--out", "x"]) == 2 and "train needs --data and --out" in capsys.readouterr().err
    for argv in (["serve", "--port", "99999"], ["serve", "--port", "-1"],
                 ["generate", "--run", str(trained), "--n", "5", "--out", "a.parquet", "--seed", "-1"],
                 ["validate", "--run", str(trained), "--reference", "r.parquet", "--seed", str(2**32)]):  # argparse
        with pytest.raises(SystemExit) as usage:
            main(argv)
        assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "a TCP port is a whole number from 1 to 65535, not '-1'" in err
    assert "a seed is a whole number from 0 to 4294967295, not '-1'" in err and "not '4294967296'" in err


@pytest.fixture
def busy_port():
    """A port another program listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


EDITS = [  # (file, new content, words of the refusal): a run directory edited by hand or damaged
    ("run.json", "{not json", "run.json: could not be read: Expecting property name"),
    ("run.json", "[]", "run.json: holds list, not the object a run writes"),
    ("run.json", "null", "run.json: holds NoneType"),
    ("run.json", '{"kind": "image"}', "run.json: unknown run kind 'image'"),
    ("run.json", '{"kind": "tabular"}', "run.json: has no 'recogan_version' entry"),
    ("run.json", "MISSING_N_TRAIN", "run.json: has no 'data.n_train' entry"),
    ("run.json", "FEATURES_AS_TEXT", "run.json: entry 'data.features' has the wrong type (str)"),
    ("config.json", "{not json", "could not be read"),
    ("config.json", "[]", "config.json: holds list where settings (NAME: VALUE) are expected"),
    ("config.json", '{"latnt_dim": 8}', "config.json: unknown setting 'latnt_dim' (closest: 'latent_dim'"),
    ("config.json", '{"latent_dim": "eight"}', "config.json: invalid setting"),
    ("config.json", '{"seed": -1}', "config.json: invalid setting"),
    ("config.json", "{}", "run directory could not be read: Error(s) in loading state_dict"),  # defaults: wrong shapes
    ("preprocessing.json", "[]", "preprocessing.json"),
    ("generator.pt", "truncated", "run directory could not be read"),
]


@pytest.mark.parametrize(("name", "content", "words"), EDITS, ids=[f"{n}:{c}" for n, c, _ in EDITS])
def test_an_edited_run_directory_is_refused_by_every_command(trained, tmp_path, capsys, name, content, words):
    run = shutil.copytree(trained, tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    if content == "MISSING_N_TRAIN":
        del info["data"]["n_train"]
        content = json.dumps(info)
    elif content == "FEATURES_AS_TEXT":
        info["data"]["features"] = "pt"
        content = json.dumps(info)
    elif content == "truncated":
        content = (run / name).read_bytes()[:100]
    (run / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    for argv in (["generate", "--n", "5", "--out", str(tmp_path / "g.parquet")],
                 ["validate", "--reference", str(run / "heldout.parquet"), "--n", "50"],
                 ["export", "--n", "5", "--out", str(tmp_path / "e.parquet"), "--require", "none"]):
        assert main([argv[0], "--run", str(run), *argv[1:]]) == 2, argv
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_checkpoint_carrying_code_is_refused_unread(trained, tmp_path, capsys, payload):
    run = shutil.copytree(trained, tmp_path / "run")
    state = torch.load(run / "generator.pt", weights_only=True)
    torch.save({**state, "extra": payload}, run / "generator.pt")
    assert main(["generate", "--run", str(run), "--n", "5", "--out", str(tmp_path / "g.parquet")]) == 2
    assert "generator.pt: holds Python objects besides tensors, which are never loaded" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")  # "PyTables will pickle"
def test_validate_rereads_the_training_file_without_unpickling(trained, tmp_path, payload):
    """``validate --run`` re-reads the file named in run.json: a pickled object column there stays unread."""
    from recogan_app.families.tabular import TabularRun

    run = shutil.copytree(trained, tmp_path / "run")
    evil = tmp_path / "mc.h5"
    frame = pd.read_parquet(run / "heldout.parquet")
    frame["obj"] = [payload] * len(frame)
    frame.to_hdf(evil, key="events", format="fixed")
    info = json.loads((run / "run.json").read_text())
    info["data"].update(source=str(evil), tree="events",
                        sources=[{"path": str(evil), "sha256": info["data"]["sha256"]}])
    (run / "run.json").write_text(json.dumps(info))
    train, note = TabularRun.load(run).training_rows()
    assert train is None and "mc.h5 has changed since training" in note


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
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err
    no_pair = "not computable (one feature: no pair to correlate)"  # never a 0.000 that reads as agreement
    assert f"max |Pearson residual| {no_pair}" in printed.out and f"max |Δρ pearson| {no_pair}" in printed.out


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
