"""Export: round trips through each format's standard reader, the validation gate, atomicity."""

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uproot

from recogan_app.cli import main
from recogan_app.config import TabularConfig
from recogan_app.data import toy_xic
from recogan_app.data.sources import MCSample, load_mc
from recogan_app.errors import InputError
from recogan_app.export import PROVENANCE_KEY, SAMPLE_NAME, export, gate, provenance_path
from recogan_app.files import write_atomic
from recogan_app.families.tabular import train_tabular


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny, barely trained run on the 12-feature toy (it has the integer column n_its_clusters_pi)."""
    frame = toy_xic.generate(n=2000, seed=0, n_features=12)
    config = TabularConfig(max_epochs=3, batch_size=256, snapshot_rows=500, generator_widths=[32, 32, 32],
                           discriminator_widths=[32, 32])
    sample = MCSample(frame, source="toy-xic-12", tree=None, n_dropped=0, invalid_counts={})
    return train_tabular(sample, config, tmp_path_factory.mktemp("export") / "run")


def read_back(path) -> tuple[pd.DataFrame, dict]:
    """The sample and its embedded provenance, through each format's standard reader."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path), json.loads(pq.read_schema(path).metadata[PROVENANCE_KEY.encode()])
    if path.suffix == ".h5":
        with h5py.File(path) as file:
            embedded = json.loads(file[SAMPLE_NAME].attrs[PROVENANCE_KEY])
            assert file[SAMPLE_NAME]["table"]["n_its_clusters_pi"].dtype == "int8"
        return pd.read_hdf(path), embedded
    with uproot.open(path) as file:
        assert isinstance(file.file.compression, uproot.ZSTD)  # 5× faster to write than uproot's ZLIB
        return file[SAMPLE_NAME].arrays(library="pd"), json.loads(str(file[PROVENANCE_KEY]))


@pytest.mark.parametrize("suffix", [".parquet", ".h5", ".root"])
def test_round_trip(run, tmp_path, suffix):
    out = tmp_path / f"sample{suffix}"
    written = export(run, out, 2500, require="none", seed=1, chunk_rows=1000)
    expected = pd.concat(run.iter_generate(2500, seed=1, chunk_rows=1000), ignore_index=True)
    frame, embedded = read_back(out)
    pd.testing.assert_frame_equal(frame, expected)
    ours = load_mc(out)  # our own reader, which unpickles nothing, leaves out what a barely trained model made constant
    constant = [name for name in expected if expected[name].nunique() == 1]
    assert sorted(ours.skipped) == constant
    pd.testing.assert_frame_equal(ours.frame, expected.drop(columns=constant))
    assert frame["n_its_clusters_pi"].dtype == "int8"
    sidecar = json.loads(provenance_path(out).read_text())
    assert embedded == sidecar == json.loads(json.dumps(written, default=float))
    assert sidecar["rows"] == 2500 and sidecar["forced"] is False
    assert sidecar["training_data"]["n_train"] == 1600
    assert sidecar["seeds"] == {"training": 0, "sample": 1, "validation": run.stream_seed("gate")}
    assert sidecar["validation"]["n_reference"] == len(run.heldout())
    assert "trained on 1,600 MC events" in sidecar["statement"]
    assert sidecar["config"]["generator_widths"] == [32, 32, 32]
    assert not list(tmp_path.glob(".*.tmp"))


def test_gate_passes_a_sample_of_the_run_itself(run):
    result = gate(run, run.generate(300, seed=5), "excellent", seed=5)  # the same rows: KS = 0
    assert result.passed and result.verdict == "excellent" and result.failing == {}


def test_a_file_written_meanwhile_by_another_job_is_not_replaced(run, tmp_path, capsys):
    out = tmp_path / "sample.parquet"

    def other_job_finishes_first(tmp):
        Path(tmp).write_text("mine")
        out.write_text("the other job's file")

    with pytest.raises(InputError, match="exists already: another job wrote it meanwhile"):
        write_atomic(out, other_job_finishes_first, overwrite=False)
    assert out.read_text() == "the other job's file" and list(tmp_path.iterdir()) == [out]
    write_atomic(out, lambda tmp: Path(tmp).write_text("replaced"))  # overwrite (the default) replaces
    assert out.read_text() == "replaced"


def test_the_gate_gives_one_run_one_verdict_whatever_is_exported(run, tmp_path):
    first = export(run, tmp_path / "a.parquet", 100, require="none", seed=1)["validation"]
    second = export(run, tmp_path / "b.parquet", 100, require="none")["validation"]  # a fresh sample seed
    assert first == second and first["seed"] == run.stream_seed("gate") != 1


def test_gate_refuses_then_force_is_recorded(run, tmp_path, capsys):
    # 200 held-out rows put the KS noise floor near 0.1, above the 0.08 max-KS bar of 'excellent'.
    out = tmp_path / "sample.parquet"
    args = ["export", "--run", str(run.path), "--n", "500", "--out", str(out), "--require", "excellent", "--seed", "1"]
    assert main(args) == 3
    message = capsys.readouterr().err
    assert "failing features" in message and "KS=" in message and "--force" in message and "Traceback" not in message
    assert not out.exists() and not provenance_path(out).exists()

    assert main([*args, "--force"]) == 0
    provenance = json.loads(provenance_path(out).read_text())
    assert provenance["forced"] is True and provenance["validation"]["passed"] is False
    assert provenance["validation"]["failing"]
    printed = capsys.readouterr().out  # the summary says it was forced and shows the MC's own KS noise
    assert "FORCED" in printed and f"KS {provenance['validation']['ks_noise_floor']:.4f} at 68 %" in printed
    share = provenance["validation"]["ks_noise_floor"] / 0.035  # 200 rows: the noise is most of the bar, and said so
    assert share > 2 and f"MC noise alone is {share:.0%} of the 'excellent' mean-KS bar 0.035" in printed
    assert json.loads(pq.read_schema(out).metadata[PROVENANCE_KEY.encode()])["forced"] is True


def test_existing_destination_needs_overwrite(run, tmp_path):
    out = tmp_path / "sample.root"
    out.write_text("old")
    provenance_path(out).write_text("{}")
    args = ["export", "--run", str(run.path), "--n", "100", "--out", str(out), "--require", "none"]
    assert main(args) == 2
    assert out.read_text() == "old"
    assert main([*args, "--overwrite"]) == 0
    assert json.loads(provenance_path(out).read_text())["rows"] == 100
    with pytest.raises(InputError, match="unknown export format"):
        export(run, tmp_path / "sample.csv", 10)


def test_bad_counts_are_refused_before_any_work(run, tmp_path, capsys):
    for n, chunk_rows, flag in ((-5, 10, "--n"), (10, 0, "--chunk-rows")):
        with pytest.raises(ValueError, match=f"n={n}, chunk_rows={chunk_rows}"):
            run.iter_generate(n, chunk_rows=chunk_rows)  # at the call, not at the first chunk
        out = tmp_path / "x.parquet"
        assert main(["export", "--run", str(run.path), "--n", str(n), "--chunk-rows", str(chunk_rows),
                     "--out", str(out)]) == 2
        assert f"({flag}) must be at least 1" in capsys.readouterr().err and not out.exists()
    with pytest.raises(ValueError, match="n=-5"):
        run.generate(-5)
    assert len(run.generate(0)) == 0


def test_destination_and_held_out_split_are_checked_before_any_generation(run, tmp_path, capsys, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("generated before the inputs were checked")

    monkeypatch.setattr(type(run), "iter_generate", no_generation)
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    gone = tmp_path / "gone"
    shutil.copytree(run.path, gone)
    (gone / "heldout.parquet").unlink()
    for argv, words in (
        (["--run", str(run.path), "--out", str(folder), "--overwrite"], ["folder.parquet: is a directory"]),
        (["--run", str(gone), "--out", str(tmp_path / "x.parquet")], ["gone/heldout.parquet: is missing", "--reference"]),
    ):
        assert main(["export", "--n", "100", "--require", "none", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(word in err for word in words), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.parquet", "gone"]


def test_killed_export_leaves_nothing(run, tmp_path):
    out = tmp_path / "big.parquet"
    process = subprocess.Popen(
        [sys.executable, "-m", "recogan_app.cli", "export", "--run", str(run.path), "--n", "100000000",
         "--out", str(out), "--require", "none", "--chunk-rows", "20000", "--device", "cpu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size > 100_000 for p in tmp_path.glob(".big.parquet.*.tmp")):
            assert process.poll() is None and time.monotonic() < deadline, "export never started writing"
            time.sleep(0.05)
    finally:
        process.kill()  # SIGKILL: no handler, no cleanup runs
        process.wait()
    assert not out.exists() and not provenance_path(out).exists()
    left, = tmp_path.glob(f".big.parquet.*-{process.pid}-*.tmp")  # named by its dead writer…
    assert main(["export", "--run", str(run.path), "--n", "100", "--out", str(out), "--require", "none"]) == 0
    assert not left.exists() and len(pd.read_parquet(out)) == 100  # …so the next export there removes it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.parquet", "big.parquet.provenance.json"]


def test_unwritable_destination_is_one_clear_message_and_leaves_nothing(run, tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output folder should be")
    args = ["export", "--run", str(run.path), "--n", "100", "--out", str(blocker / "x.root"), "--require", "none"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "results/x.root: could not be written" in error and "Traceback" not in error

    def disk_full(tmp: str) -> None:
        Path(tmp).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(InputError, match="could not be written: No space left on device"):
        write_atomic(tmp_path / "full.parquet", disk_full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_float16_columns_go_to_root_as_float32(tmp_path, capsys):
    """ROOT has no half precision: uproot refused float16 after the whole generation."""
    frame = toy_xic.generate(n=1000, seed=0)[["pt", "cos_pa"]].astype({"pt": "float16"})
    config = TabularConfig(max_epochs=1, batch_size=256, snapshot_rows=200, generator_widths=[16, 16, 16],
                           discriminator_widths=[16, 16])
    f16 = train_tabular(MCSample(frame, source="f16", tree=None, n_dropped=0, invalid_counts={}), config,
                        tmp_path / "run")
    for suffix in (".root", ".parquet"):
        out = tmp_path / f"f16{suffix}"
        assert main(["export", "--run", str(f16.path), "--n", "300", "--out", str(out), "--require", "none"]) == 0
        written, provenance = read_back(out)
        assert str(written["pt"].dtype) == ("float32" if suffix == ".root" else "float16")
        assert ("stored_as_float32" in provenance) == (suffix == ".root")
    assert json.loads(provenance_path(tmp_path / "f16.root").read_text())["stored_as_float32"]["columns"] == ["pt"]
