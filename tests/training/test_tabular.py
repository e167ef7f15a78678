"""A few-step training on tiny data, end to end: split, run directory, generation, determinism."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch

from recogan_app.data.sources import MCSample
from recogan_app.families import load_run
from recogan_app.families.tabular import TabularRun as Run
from recogan_app.families.tabular import train_tabular
from recogan_app.training.background import BackgroundTraining
from recogan_app.training.events import Snapshot, StatusChange, StepEnd


def sample_of(frame):
    return MCSample(frame, source="toy", tree=None, n_dropped=0, invalid_counts={})


@pytest.fixture(scope="module")
def run(tmp_path_factory, toy_frame, tiny_config):
    return train_tabular(sample_of(toy_frame), tiny_config(), tmp_path_factory.mktemp("r") / "run")


def test_a_failed_training_leaves_no_partial_run(tmp_path, toy_frame, tiny_config):
    from recogan_app.training.callbacks import Callback

    class Crash(Callback):
        def on_snapshot(self, trainer, snapshot):
            partial, = tmp_path.glob(f".run.partial-*-{os.getpid()}-*")  # this process's own folder
            assert (partial / "checkpoints" / "best.pt").is_file()  # checkpoints land there meanwhile
            raise RuntimeError("a bug mid-training")

    with pytest.raises(RuntimeError, match="a bug"):
        train_tabular(sample_of(toy_frame), tiny_config(), tmp_path / "run", callbacks=[Crash()])
    assert list(tmp_path.iterdir()) == []


def test_a_notebook_trains_on_a_dataframe_and_validates_the_run(tmp_path, toy_parquet, toy_frame, tiny_config):
    """The library as a notebook uses it: a frame in memory (checked like a file), then one call
    that validates the run against its held-out split with the copula on its training split."""
    frame = toy_frame[["pt", "decay_length", "cos_pa"]].assign(label="Xic")  # a text column: left out
    run = train_tabular(frame, tiny_config(), tmp_path / "run")
    assert run.features == ["pt", "decay_length", "cos_pa"] and run.info["data"]["source"] == "a DataFrame"
    validation = run.validate(500, n_boot=10, c2st_rows=2000)
    assert (validation.n_reference, validation.n_synthetic) == (300, 500)
    assert validation.baseline_fitted_on.startswith("the reference itself")  # no file to rebuild the split from

    on_file = train_tabular(MCSample(pd.read_parquet(toy_parquet), source=str(toy_parquet), tree=None, n_dropped=0,
                                     invalid_counts={}), tiny_config(features=["pt", "cos_pa"]), tmp_path / "file")
    n = len(toy_frame)
    n_train = n - 2 * math.ceil(0.1 * n)  # 10 % monitor and 10 % test held out
    assert on_file.validate(n_boot=10, c2st_rows=2000).baseline_fitted_on == f"the training MC ({n_train:,} rows)"


def test_a_training_without_a_finished_epoch_saves_nothing(tmp_path, toy_frame, tiny_config):
    from recogan_app.errors import InputError
    from recogan_app.training.control import TrainingControl

    control = TrainingControl()
    control.stop()  # stopped before its first step: no epoch was ever judged
    with pytest.raises(InputError, match=r"training ended \(stopped\) before its first epoch: nothing to save"):
        train_tabular(sample_of(toy_frame), tiny_config(), tmp_path / "run", control=control)
    assert list(tmp_path.iterdir()) == []


def test_run_directory_contents(run, toy_frame):
    for name in ("run.json", "config.json", "preprocessing.json", "generator.pt", "history.parquet",
                 "steps.parquet", "heldout.parquet", "metrics.json", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run.path / name).is_file(), name
    assert not list(run.path.parent.glob(".*.partial*")) and not (run.path / "resume.json").exists()
    info = json.loads((run.path / "run.json").read_text())
    assert info["data"]["n_rows"] == len(toy_frame) and info["fit"]["epochs"] == 3
    history = run.history()
    assert len(history) == 3 and {"mean_ks", "max_ks", "ks_pt", "ws_pt", "score"} <= set(history.columns)
    metrics = run.metrics()
    assert metrics["sample_size"] == len(run.heldout()) == 300
    assert 0.0 <= metrics["mean_ks"] <= metrics["max_ks"] <= 1.0 and 0.0 <= metrics["c2st_auc"] <= 1.0
    torch.load(run.path / "generator.pt", weights_only=True)  # no code executed to load weights


def test_generate_exact_rows_names_dtypes_and_seed(run, toy_frame):
    out = run.generate(1234, seed=5)
    assert len(out) == 1234 and list(out.columns) == list(toy_frame.columns)
    assert (out.dtypes == toy_frame.dtypes).all()
    assert out["n_its_clusters_pi"].isin(range(4, 8)).all()
    pd.testing.assert_frame_equal(out, run.generate(1234, seed=5))
    assert not out.equals(run.generate(1234, seed=6))
    chunks = list(run.iter_generate(1234, seed=5, chunk_rows=500))
    assert [len(c) for c in chunks] == [500, 500, 234]
    threads = torch.get_num_threads()
    for workers in (1, 3):  # the same rows whatever the chunking and the threads
        pd.testing.assert_frame_equal(
            pd.concat(run.iter_generate(1234, seed=5, chunk_rows=300, workers=workers), ignore_index=True), out)
    assert torch.get_num_threads() == threads  # workers run torch on one thread each, then the setting is back
    assert len(run.generate(0, seed=1)) == 0


def test_reloaded_run_generates_the_same(run):
    pd.testing.assert_frame_equal(Run.load(run.path).generate(100, seed=1), run.generate(100, seed=1))


def test_a_run_written_by_recogan_0_1_still_loads(run, tmp_path):
    """0.1 wrote one ``validation_fraction`` and no split or random streams in run.json."""
    old = Path(shutil.copytree(run.path, tmp_path / "old"))
    config = json.loads((old / "config.json").read_text())
    del config["monitor_fraction"], config["test_fraction"]
    (old / "config.json").write_text(json.dumps({**config, "validation_fraction": 0.2}))
    info = json.loads((old / "run.json").read_text())
    del info["split"], info["random"]
    (old / "run.json").write_text(json.dumps({**info, "recogan_version": "0.1.0"}))
    loaded = load_run(old)
    assert isinstance(loaded, Run) and loaded.config.test_fraction == 0.1
    pd.testing.assert_frame_equal(loaded.generate(100, seed=1), run.generate(100, seed=1))
    assert loaded.training_rows() == (None, "the run was written by recogan 0.1.0, which recorded no split")


def test_determinism_under_a_fixed_seed(tmp_path, toy_frame, tiny_config):
    a = train_tabular(sample_of(toy_frame), tiny_config(max_epochs=2), tmp_path / "a")
    b = train_tabular(sample_of(toy_frame), tiny_config(max_epochs=2), tmp_path / "b")
    c = train_tabular(sample_of(toy_frame), tiny_config(max_epochs=2, seed=1), tmp_path / "c")
    pd.testing.assert_frame_equal(a.history().drop(columns="elapsed_s"), b.history().drop(columns="elapsed_s"))
    pd.testing.assert_frame_equal(a.generate(50, seed=0), b.generate(50, seed=0))
    assert not a.generate(50, seed=0).equals(c.generate(50, seed=0))


def test_existing_run_directory_is_not_overwritten_by_accident(run, toy_frame, tiny_config):
    from recogan_app.errors import InputError

    with pytest.raises(InputError, match="exists"):
        train_tabular(sample_of(toy_frame), tiny_config(), run.path)


def test_background_training_streams_events_and_stops(tmp_path, toy_frame, tiny_config):
    job = BackgroundTraining(partial(train_tabular, sample_of(toy_frame), tiny_config(max_epochs=10_000), tmp_path / "bg"))
    job.start()
    events, deadline = [], time.time() + 60
    while sum(isinstance(e, Snapshot) for e in events) < 2 and time.time() < deadline:
        events += job.drain()
        time.sleep(0.05)
    job.pause()
    job.resume()
    job.stop()
    job.join(timeout=60)
    events += job.drain()
    assert not job.running and job.error is None and job.result is not None
    assert any(isinstance(e, StepEnd) for e in events)
    snap = next(e for e in events if isinstance(e, Snapshot))
    assert set(snap.details) >= {"per_feature", "corr_residual", "reference", "synthetic"}
    assert snap.sample_size == 300
    statuses = [e.status for e in events if isinstance(e, StatusChange)]
    assert statuses[0] == "running" and statuses[-1] == "stopped"
    assert job.result.info["fit"]["reason"] == "stopped"


def test_background_training_reports_bad_input_as_a_message(tmp_path, toy_frame, tiny_config):
    job = BackgroundTraining(partial(train_tabular, sample_of(toy_frame.head(20)), tiny_config(), tmp_path / "x"))
    job.start()
    job.join(timeout=30)
    assert job.error and "training needs at least" in job.error
    assert not (tmp_path / "x").exists()


def test_background_training_in_a_killed_process_fails_visibly(tmp_path, toy_frame, tiny_config):
    job = BackgroundTraining(partial(train_tabular, sample_of(toy_frame), tiny_config(max_epochs=10_000), tmp_path / "k"))
    job.start()
    deadline = time.time() + 60
    while not any(isinstance(e, StepEnd) for e in job.drain()) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(job._process.pid, signal.SIGKILL)
    job.join(timeout=30)
    events = job.drain()
    assert not job.running and job.result is None
    assert "exit code -9" in job.error
    assert events[-1] == StatusChange("failed") and events[-2].level == "error"


PARENT = """
import sys, time
from functools import partial
from recogan_app.config import TabularConfig
from recogan_app.data import toy_xic
from recogan_app.data.sources import MCSample
from recogan_app.training.background import BackgroundTraining
from recogan_app.families.tabular import train_tabular
if __name__ == "__main__":
    sample = MCSample(toy_xic.generate(n=3000, seed=0), source="toy", tree=None, n_dropped=0, invalid_counts={})
    config = TabularConfig(max_epochs=100_000, batch_size=256, snapshot_rows=300, patience=100_000)
    job = BackgroundTraining(partial(train_tabular, sample, config, sys.argv[1]))
    job.start()
    while job._process is None or job._process.pid is None:  # started by the relay thread
        time.sleep(0.05)
    print(job._process.pid, flush=True)
    time.sleep(600)
"""


def test_training_process_ends_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(3)
    os.kill(child, 0)  # training
    parent.kill()
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the training process outlived its parent by 20 s")
