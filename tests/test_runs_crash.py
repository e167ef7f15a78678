"""Crash-safe runs: SIGKILL of `train` at random moments then `--resume`, `--overwrite` of runs
only, per-process partial folders, stale leftovers of dead processes, and `--time-limit` as a
deadline for the whole command. Real subprocesses, real files, tiny data."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from recogan_app.cli import main
from recogan_app.config import TabularConfig
from recogan_app.data import toy_xic, toy_zdc
from recogan_app.data.sources import load_mc
from recogan_app.errors import InputError
from recogan_app.files import HOST, write_atomic
from recogan_app.families import load_run
from recogan_app.run import building, check_destination, clean_stale
from recogan_app.families.tabular import train_tabular

TINY = {"max_epochs": 12, "batch_size": 128, "snapshot_rows": 200, "latent_dim": 8, "generator_widths": [16, 16, 16],
        "discriminator_widths": [16, 16], "device": "cpu", "patience": 100}
ZDC_TINY = {"generator_channels": 4, "batch_size": 32, "max_epochs": 100_000, "aux_epochs": 400, "snapshot_rows": 50,
            "eval_draws": 50, "device": "cpu"}


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "recogan_app.cli", *map(str, args)]


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}
"""For the subprocesses: on 2 busy cores, torch's default 2 threads each ran ZDC steps 10 times slower."""


@pytest.fixture(autouse=True)
def one_thread():
    """The same in this process, and the same sums in the same order as in the subprocesses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dead_pid() -> int:
    """The pid of a process that has ended (not reused this soon)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash")
    toy_xic.generate(n=2000, seed=0).to_parquet(folder / "mc.parquet", index=False)
    (folder / "tiny.json").write_text(json.dumps(TINY))
    return folder


def partials(out):
    return sorted(out.parent.glob(f".{out.name}.partial-*"))


def kill_after_a_checkpoint(process, out, delay: float) -> None:
    """SIGKILL ``process`` ``delay`` seconds after it wrote its first checkpoint (so that every kill
    comes after some progress: mid-epoch, mid-snapshot, while checkpointing or writing the run)."""
    started, deadline = time.time(), time.monotonic() + 120

    def checkpointed() -> bool:
        return any(f"-{process.pid}-" in p.name and (p / "checkpoints" / "last.pt").is_file()
                   and (p / "checkpoints" / "last.pt").stat().st_mtime > started for p in partials(out))

    while not checkpointed():
        if process.poll() is not None:
            return
        assert time.monotonic() < deadline, "the training never wrote a checkpoint"
        time.sleep(0.005)
    time.sleep(delay)
    process.kill()
    process.wait()


def last_epoch(out) -> int | None:
    """The epoch of the newest checkpoint a resume would start from."""
    found = [p / "checkpoints" / "last.pt" for p in partials(out) if (p / "checkpoints" / "last.pt").is_file()]
    return torch.load(max(found, key=os.path.getmtime), weights_only=True)["epoch"] if found else None


def test_train_killed_at_random_moments_resumes_to_the_uninterrupted_run(mc, tmp_path):
    out, logs = tmp_path / "run", tmp_path / "logs"
    logs.mkdir()
    rng = np.random.default_rng(13)
    command, expected = cli("train", "--data", mc / "mc.parquet", "--config", mc / "tiny.json", "--out", out), None
    kills = 0
    for attempt, delay in enumerate([*rng.uniform(0.0, 0.12, size=3), None]):  # 3 seeded kills, then to the end
        log = logs / f"{attempt}.err"
        with open(log, "w") as err:
            process = subprocess.Popen(command, stdout=err, stderr=err, env=ONE_THREAD)
            if delay is None:
                assert process.wait(timeout=300) == 0, log.read_text()
            else:
                kill_after_a_checkpoint(process, out, delay)
        said = log.read_text()
        if expected is not None and ("resumed after epoch" in said or process.returncode == 0):
            assert f"resumed after epoch {expected + 1} " in said  # counted from 1; from the last checkpoint
        if process.returncode == 0:
            break
        assert process.returncode == -signal.SIGKILL and len(partials(out)) == 1
        kills += 1
        command, expected = cli("train", "--resume", out), last_epoch(out)
    assert kills == 3 and attempt == 3
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial, no temporary file
    assert not list(out.rglob("*.tmp")) and not (out / "resume.json").exists()
    assert main(["train", "--resume", str(out)]) == 0  # a finished run: nothing to do, not an error

    reference = train_tabular(load_mc(mc / "mc.parquet"), TabularConfig(**TINY), tmp_path / "reference")
    run = load_run(out)
    history = run.history()
    assert list(history["epoch"]) == list(range(TINY["max_epochs"]))  # no gap, no duplicate
    pd.testing.assert_frame_equal(history.drop(columns="elapsed_s"), reference.history().drop(columns="elapsed_s"))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "steps.parquet"),
                                  pd.read_parquet(reference.path / "steps.parquet"))
    pd.testing.assert_frame_equal(run.generate(500, seed=3), reference.generate(500, seed=3))
    assert {"mean_ks", "max_ks", "c2st_auc"} <= set(run.metrics())


def wait_for(path, process, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while not path():
        assert process.poll() is None and time.monotonic() < deadline, f"{process.args}: never got there"
        time.sleep(0.005)


def start_up_seconds() -> float:
    """Wall time of starting the CLI and doing nothing: the part of a call before its deadline starts."""
    started = time.monotonic()
    subprocess.run(cli("--version"), check=True, capture_output=True, env=ONE_THREAD)
    return time.monotonic() - started


SLACK = 3.0  # seconds for the interpreter to end (1.3 s measured on 2 busy cores) and for a step or snapshot under way


def timed(command, limit: float) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=limit + 120, env=ONE_THREAD)
    return done, time.monotonic() - started


def test_tabular_time_limit_bounds_the_command_and_a_kill_while_writing_the_run_resumes(mc, tmp_path):
    out, limit = tmp_path / "run", 10
    command = cli("train", "--data", mc / "mc.parquet", "--config", mc / "tiny.json", "--set", "max_epochs=100000",
                  "--out", out, "--time-limit", limit)
    done, wall = timed(command, limit)
    assert done.returncode == 0 and "stopped by time_limit" in done.stdout, done.stderr
    assert wall < limit + start_up_seconds() + SLACK, wall
    epochs = load_run(out).info["fit"]["epochs"]

    process = subprocess.Popen(cli("train", "--data", mc / "mc.parquet", "--config", mc / "tiny.json", "--out", out,
                                   "--set", "max_epochs=2", "--overwrite"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD)
    wait_for(lambda: any((p / "run.json").exists() for p in partials(out)), process)  # writing the new run
    process.kill()
    process.wait()
    assert load_run(out).info["fit"]["epochs"] == epochs  # the old run is still there, whole
    assert main(["train", "--resume", str(out)]) == 0  # the new run, swapped in
    history = load_run(out).history()
    assert list(history["epoch"]) == [0, 1] and not partials(out)
    assert not list(tmp_path.glob(".run.old-*"))


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_zdc_time_limit_bounds_the_whole_command_with_the_cli_defaults(tmp_path, model):
    """Each model as a user gets it (the GAN: its CPU profile, the pretraining asked for far more
    than the limit holds, so that it must be cut), the evaluation asked for 50 draws (cut when they
    do not fit)."""
    data, out, limit = tmp_path / "zdc.npz", tmp_path / "zdc", 15
    toy_zdc.generate(6000, seed=1).save(data)  # 1,200 test events a draw: 50 draws do not fit
    asked = ["--set", "eval_draws=50"] + (["--model", "gan", "--set", "aux_epochs=400"] if model == "gan" else [])
    done, wall = timed(cli("train", "--kind", "zdc", "--data", data, "--out", out, "--time-limit", limit, *asked), limit)
    assert done.returncode == 0 and "stopped by time_limit" in done.stdout, done.stderr
    assert wall < limit + start_up_seconds() + SLACK, wall
    run = load_run(out)
    assert run.kind == {"vae": "zdc-vae", "gan": "zdc"}[model] and 1 <= run.metrics()["draws"] <= 50
    if model == "gan":
        assert run.info["profile"]["name"] == "cpu" and run.info["aux_regressor"]["epochs"] < 400


def test_zdc_killed_in_pretraining_resumes_within_its_time_limit(tmp_path):
    data, out, limit = tmp_path / "zdc.npz", tmp_path / "zdc", 10
    toy_zdc.generate(300, seed=1).save(data)
    sets = [arg for k, v in ZDC_TINY.items() for arg in ("--set", f"{k}={json.dumps(v)}")]  # device too
    process = subprocess.Popen(cli("train", "--kind", "zdc", "--model", "gan", "--data", data, "--out", out,
                                   "--time-limit", limit, *sets), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=ONE_THREAD)
    wait_for(lambda: partials(out), process)
    time.sleep(0.3)
    process.kill()
    process.wait()
    partial, = partials(out)
    assert not (partial / "aux.pt").exists() and not (partial / "checkpoints").exists()  # killed in pretraining

    done, wall = timed(cli("train", "--resume", out), limit)
    assert done.returncode == 0, done.stderr
    assert wall < limit + start_up_seconds() + SLACK, wall  # 400 aux epochs and 50 draws asked: both cut
    assert "of 400 epochs (its share of the time limit ran out)" in done.stdout
    run = load_run(out)
    assert run.info["aux_regressor"]["epochs"] < 400 and 1 <= run.metrics()["draws"] <= 50
    history = run.history()
    assert list(history["epoch"]) == list(range(len(history))) and len(history) >= 1
    assert run.generate(run.heldout().conditions[:3], seed=1).shape == (3, 56, 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zdc", "zdc.npz"]


def test_overwrite_replaces_only_runs_and_swaps_them_in(mc, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("years of work")
    base = ["train", "--data", str(mc / "mc.parquet"), "--config", str(mc / "tiny.json"), "--set", "max_epochs=1"]
    assert main([*base, "--out", str(notes), "--overwrite"]) == 2
    assert "notes: is not a recogan run directory" in capsys.readouterr().err
    assert (notes / "thesis.tex").read_text() == "years of work"

    run = tmp_path / "run"
    assert main([*base, "--out", str(run)]) == 0
    first = (run / "run.json").stat().st_ino
    assert main([*base, "--seed", "1", "--out", str(run), "--overwrite"]) == 0
    assert load_run(run).config.seed == 1 and (run / "run.json").stat().st_ino != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "run"]  # nothing set aside is left


def test_each_training_builds_in_its_own_folder_and_the_second_to_finish_is_refused(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(InputError, match="run: exists already: another training wrote it meanwhile"):
        with building(out) as first:
            with building(out) as second:
                assert first != second and first.name.startswith(f".run.partial-{HOST}-{os.getpid()}-")
                (second / "run.json").write_text(json.dumps({"recogan_version": "second"}))
            (first / "run.json").write_text(json.dumps({"recogan_version": "first"}))
    assert json.loads((out / "run.json").read_text())["recogan_version"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the refused one removed its folder


def test_leftovers_of_dead_processes_are_cleaned_and_live_ones_kept(tmp_path):
    out, dead, alive = tmp_path / "run", dead_pid(), os.getpid()
    stale = tmp_path / f".run.partial-{HOST}-{dead}-0a0a0a0a"
    live = tmp_path / f".run.partial-{HOST}-{alive}-0b0b0b0b"
    elsewhere = tmp_path / f".run.partial-otherhost-{dead}-0c0c0c0c"  # a shared disk: its pid means nothing here
    legacy = tmp_path / ".run.partial"  # left by recogan before per-process names
    for folder in (stale, live, elsewhere, legacy):
        folder.mkdir()
    old = tmp_path / f".run.old-{HOST}-{dead}-0d0d0d0d"  # --overwrite killed between its two renames
    old.mkdir()
    (old / "run.json").write_text(json.dumps({"recogan_version": "old"}))
    clean_stale(out)
    assert not stale.exists() and not legacy.exists() and live.is_dir() and elsewhere.is_dir() and not old.exists()
    assert json.loads((out / "run.json").read_text())["recogan_version"] == "old"  # put back, not lost
    with pytest.raises(InputError, match="exists and is not empty"):
        check_destination(out, overwrite=False)

    target = tmp_path / "x.parquet"
    half = tmp_path / f".x.parquet.{HOST}-{dead}-0e0e0e0e.tmp"  # a writer killed mid-file
    mine = tmp_path / f".x.parquet.{HOST}-{alive}-0f0f0f0f.tmp"  # a writer still at work
    half.write_bytes(b"half")
    mine.write_bytes(b"busy")
    write_atomic(target, lambda tmp: open(tmp, "w").write("whole"))
    assert target.read_text() == "whole" and not half.exists() and mine.exists()


def test_resume_refuses_changed_data_and_new_settings(mc, tmp_path, capsys):
    data, out = tmp_path / "mc.parquet", tmp_path / "run"
    data.write_bytes((mc / "mc.parquet").read_bytes())
    record = {"kind": "tabular", "config": TabularConfig(**TINY).to_dict(), "overwrite": False,
              "origin": {"kind": "tabular", "data": [str(data)], "conditions": None, "tree": None,
                         "drop_invalid": False, "sha256": {str(data): "0" * 64}}}
    partial = tmp_path / f".run.partial-{HOST}-{dead_pid()}-00000000"  # as a training killed early leaves it
    partial.mkdir()
    (partial / "resume.json").write_text(json.dumps(record))
    assert main(["train", "--resume", str(out), "--seed", "3"]) == 2
    assert "--seed cannot go with --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(out)]) == 2
    assert "mc.parquet: has changed since the training started" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "never")]) == 2
    assert "never: has no interrupted training to resume" in capsys.readouterr().err
    taken, = partials(out)  # the refused resume had taken it over: named by this (live) process now
    assert f"-{os.getpid()}-" in taken.name
    assert main(["train", "--resume", str(out)]) == 2
    assert "run: is being trained by another process" in capsys.readouterr().err
