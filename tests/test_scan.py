"""Scans on a real Dask LocalCluster (2 single-threaded workers): a 2×2 grid × 2 repeats through
the command line, a rerun that trains nothing, a failing point recorded, a worker SIGKILLed
mid-training whose task is retried; bad grids and a missing Dask refused with exit 2."""

import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recogan_app import scan
from recogan_app.cli import main
from recogan_app.data import toy_xic
from recogan_app.data.sources import load_mc
from recogan_app.files import HOST

pytest.importorskip("distributed")

TINY = ["--set", "max_epochs=2", "--set", "batch_size=256", "--set", "snapshot_rows=200", "--set", "latent_dim=8",
        "--set", "generator_widths=[16,16,16]", "--set", "discriminator_widths=[16,16]", "--device", "cpu"]
BASE = {"max_epochs": 2, "batch_size": 256, "snapshot_rows": 200, "latent_dim": 8,
        "generator_widths": [16, 16, 16], "discriminator_widths": [16, 16], "device": "cpu"}


@pytest.fixture(scope="module")
def client():
    with scan.connect(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    path = tmp_path_factory.mktemp("mc") / "xic.parquet"
    toy_xic.generate(n=1500, seed=0).to_parquet(path, index=False)
    return path


def test_grid_with_repeats_completes_and_a_rerun_trains_nothing(client, mc, tmp_path, capsys):
    out = tmp_path / "scan"
    command = ["scan", "--data", str(mc), "--grid", "lambda_ks=0.5,2", "--grid", "lambda_corr=1,3", "--repeats", "2",
               "--seed", "7", *TINY, "--scheduler", client.scheduler.address, "--out", str(out)]
    assert main(command) == 0
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 8 and set(table["status"]) == {"done"}
    assert sorted(zip(table["lambda_ks"], table["lambda_corr"], table["repeat"])) == sorted(
        (ks, corr, r) for ks in (0.5, 2) for corr in (1, 3) for r in (0, 1))
    assert table["seed"].nunique() == 8  # every training its own seed
    for row in table.itertuples():
        config = json.loads((out / row.run / "config.json").read_text())
        assert (config["lambda_ks"], config["lambda_corr"], config["seed"]) == (row.lambda_ks, row.lambda_corr, row.seed)
        metrics = json.loads((out / row.run / "metrics.json").read_text())
        assert row.mean_ks == metrics["mean_ks"] and row.epochs == 2
    printed = capsys.readouterr().out
    means = table.groupby(["lambda_ks", "lambda_corr"])["score"].agg(["mean", "std"])
    (ks, corr), (mean, std) = means["mean"].idxmin(), means.loc[means["mean"].idxmin()]
    assert f"best configuration (lowest mean monitor score): lambda_ks={ks}, lambda_corr={corr}" in printed
    assert re.search(rf"score\s+{mean:.4g} ± {std:.2g} \(std over 2 repeats\)", printed)

    written = {row.run: (out / row.run / "run.json").stat().st_mtime_ns for row in table.itertuples()}
    assert main([*command[:4], "lambda_ks=0.5,2,4", *command[5:]]) == 0  # the same scan, grown by one value
    again = pd.read_parquet(out / "results.parquet")
    assert len(again) == 12 and (again["status"] == "done earlier").sum() == 8
    assert {row.run: (out / row.run / "run.json").stat().st_mtime_ns for row in again.itertuples()
            if row.run in written} == written
    assert list(again.set_index("run").loc[list(written), "seed"]) == list(table["seed"])  # same point, same seed


def test_a_failing_point_is_recorded_and_the_others_finish(client, mc, tmp_path):
    trainings = scan.plan({"time_limit": [1e-3, 120]}, base=BASE, seed=1)
    table = scan.run_scan(client, functools.partial(load_mc, str(mc)), trainings, tmp_path)
    failed, done = table.iloc[0], table.iloc[1]
    assert failed["status"] == "failed" and "before its first epoch: nothing to save" in failed["error"]
    assert not (tmp_path / failed["run"]).exists() and done["status"] == "done"
    summary = scan.summary(table, ["time_limit"])
    assert "1 failed" in summary and "best configuration (lowest mean monitor score): time_limit=120" in summary


def test_a_worker_killed_mid_training_has_its_task_retried(client, mc, tmp_path):
    trainings = scan.plan({"lambda_ks": [1.0, 2.0]}, base={**BASE, "max_epochs": 40, "patience": 40}, seed=3)
    result = {}
    thread = threading.Thread(target=lambda: result.update(table=scan.run_scan(
        client, functools.partial(load_mc, str(mc)), trainings, tmp_path)))
    thread.start()
    deadline, killed = time.monotonic() + 60, None
    while killed is None and time.monotonic() < deadline:  # a training past its first checkpoint
        for partial in tmp_path.glob(".*.partial-*"):
            if any((partial / "checkpoints").glob("*.pt")):
                killed = int(partial.name.split(f"partial-{HOST}-")[1].split("-")[0])
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.05)
    thread.join(timeout=120)
    assert killed is not None and not thread.is_alive()
    table = result["table"]
    assert list(table["status"]) == ["done", "done"] and killed not in client.run(os.getpid).values()
    assert not list(tmp_path.glob(".*.partial-*"))  # the killed worker's folder removed by the retry


@pytest.mark.parametrize("options, message", [
    (["--grid", "seed=1,2"], "'seed' cannot be a grid axis"),
    (["--grid", "lambda_kz=1,2"], "grid point lambda_kz=1: unknown setting 'lambda_kz'"),
    (["--grid", "lambda_ks=1,1"], "grid axis 'lambda_ks' needs distinct values"),
    (["--grid", "lambda_ks"], "--grid takes NAME=VALUE"),
    (["--grid", "lambda_ks=1", "--grid", "lambda_ks=2"], "--grid lambda_ks is given twice"),
    (["--grid", "lambda_ks=1", "--set", "seed=-1"], "a seed is a whole number from 0"),
    (["--grid", "model=flux"], "unknown model 'flux'"),
    (["--grid", "lambda_ks=1", "--repeats", "0"], "--repeats must be at least 1"),
    (["--grid", "lambda_ks=1", "--scheduler", "tcp://127.0.0.1:9", "--workers", "2"], "--workers sizes a cluster"),
])
def test_bad_grids_exit_2_naming_the_problem(mc, tmp_path, capsys, options, message):
    assert main(["scan", "--data", str(mc), *options, "--out", str(tmp_path / "s")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_an_unreadable_file_exits_2_before_any_training(client, tmp_path, capsys):
    bad = tmp_path / "mc.csv"
    bad.write_text("pt,eta\n1,2\n")
    assert main(["scan", "--data", str(bad), "--grid", "lambda_ks=1,2", "--scheduler", client.scheduler.address,
                 "--out", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err.splitlines()
    assert error[-1] == f"recogan: error: {bad}: has 1 rows; training needs at least 2" and len(error) == 2
    assert not list((tmp_path / "s").iterdir())


def test_each_training_is_seeded_from_the_scan_seed_and_its_grid_point():
    trainings = scan.plan({"lambda_ks": [0.5, 2], "adversarial": ["bce", "hinge"]}, base=BASE, repeats=3, seed=11)
    for t in trainings:
        digest = hashlib.sha256(json.dumps(t.point, sort_keys=True).encode()).digest()
        words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
        assert t.settings["seed"] == np.random.SeedSequence(11, spawn_key=(*words, t.repeat)).generate_state(1)[0]
    assert len({t.settings["seed"] for t in trainings}) == 12 and trainings[5].name == "lambda_ks=0.5+adversarial=hinge+r2"
    reordered = scan.plan({"adversarial": ["hinge", "bce"], "lambda_ks": [2, 0.5]}, base=BASE, repeats=3, seed=11)
    assert {json.dumps(t.point, sort_keys=True): t.settings["seed"] for t in reordered} == {
        json.dumps(t.point, sort_keys=True): t.settings["seed"] for t in trainings}
    assert not {t.settings["seed"] for t in trainings} & {t.settings["seed"] for t in scan.plan(
        {"lambda_ks": [0.5, 2], "adversarial": ["bce", "hinge"]}, base=BASE, repeats=3, seed=12)}


@pytest.mark.skipif(shutil.which("condor_submit") is not None, reason="would submit HTCondor jobs")
def test_htcondor_without_condor_submit_exits_2(mc, tmp_path, capsys):
    assert main(["scan", "--data", str(mc), "--grid", "lambda_ks=1", "--cluster", "htcondor",
                 "--out", str(tmp_path / "s")]) == 2
    assert "--cluster htcondor submits jobs with condor_submit, which is not on this machine" in capsys.readouterr().err


def test_without_dask_the_command_says_how_to_install_it(mc, tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; from recogan_app.cli import main; "
            f"sys.exit(main(['scan', '--data', {str(mc)!r}, '--grid', 'lambda_ks=1,2', '--out', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 2
    assert done.stderr.strip() == f"recogan: error: scans run on Dask, which is not installed (run: {scan.INSTALL})"


def test_ctrl_c_cancels_the_scan_and_writes_what_finished(client, mc, tmp_path):
    out = tmp_path / "scan"
    command = [sys.executable, "-m", "recogan_app.cli", "scan", "--data", str(mc), "--grid", "lambda_ks=1,2,3,4",
               *TINY, "--set", "max_epochs=30", "--scheduler", client.scheduler.address, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    for line in process.stderr:
        if line.startswith("[1/4]"):
            process.send_signal(signal.SIGINT)
            break
    assert process.wait(timeout=30) == 130 and process.stderr.read().splitlines()[-1] == "recogan: interrupted"
    statuses = pd.read_parquet(out / "results.parquet")["status"].value_counts()
    assert statuses["done"] >= 1 and statuses["cancelled"] >= 1 and statuses.sum() == 4


def test_a_stop_event_cancels_the_pending_trainings_and_the_table_grows_as_they_end(client, mc, tmp_path):
    trainings = scan.plan({"lambda_ks": [1.0, 2.0, 3.0, 4.0]}, base={**BASE, "max_epochs": 30}, seed=5)
    stop, seen = threading.Event(), []

    def report(line):
        seen.append(len(pd.read_parquet(tmp_path / "results.parquet")))  # written before the line is reported
        stop.set()

    table = scan.run_scan(client, functools.partial(load_mc, str(mc)), trainings, tmp_path, report=report, stop=stop)
    assert seen[0] == 1 and len(table) == 4
    assert (table["status"] == "cancelled").sum() >= 1 and (table["status"] == "done").sum() >= 1
    assert list(table["run"]) == [t.name for t in trainings]  # plan order


def test_along_an_axis_gives_mean_spread_and_count_over_repeats(tmp_path):
    table = pd.DataFrame({"run": list("abcdef"), "status": ["done", "done", "done earlier", "done", "failed", "done"],
                          "lambda_ks": [0.5, 0.5, 2.0, 2.0, 2.0, 4.0], "mean_ks": [0.1, 0.3, 0.2, 0.6, np.nan, 0.05]})
    found = scan.along(table, "lambda_ks", "mean_ks")
    assert list(found.index) == [0.5, 2.0, 4.0] and list(found["count"]) == [2, 2, 1]
    assert np.allclose(found["mean"], [0.2, 0.4, 0.05])
    assert np.allclose(found["std"].iloc[:2], [np.sqrt(0.02), np.sqrt(0.08)]) and np.isnan(found["std"].iloc[2])


def test_the_results_page_escapes_what_the_user_and_the_data_wrote(tmp_path):
    trainings = scan.plan({"lambda_ks": [1.0]}, base=BASE)
    rows = {trainings[0].name: {"run": trainings[0].name, "kind": "tabular", "lambda_ks": 1.0, "repeat": 0, "seed": 1,
                                "status": "failed", "error": "column '<img src=x onerror=alert(1)>' is bad"}}
    (tmp_path / "scan<b>").mkdir()
    scan._write(tmp_path / "scan<b>", rows, trainings)
    page = (tmp_path / "scan<b>" / "results.html").read_text()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page and "Scan scan&lt;b&gt;" in page


def test_a_cut_given_to_the_scan_selects_the_rows_of_every_training(client, mc, tmp_path):
    out = tmp_path / "scan"
    assert main(["scan", "--data", str(mc), "--grid", "lambda_ks=1,2", *TINY, "--set", "cut=pt > 2",
                 "--scheduler", client.scheduler.address, "--out", str(out)]) == 0
    selected = int((pd.read_parquet(mc)["pt"] > 2).sum())
    table = pd.read_parquet(out / "results.parquet")
    assert set(table["status"]) == {"done"}
    for row in table.itertuples():
        info = json.loads((out / row.run / "run.json").read_text())
        assert info["data"]["n_train"] + info["data"]["n_monitor"] + info["data"]["n_test"] == selected
