"""The bad-input corpus: every file below is written at test time, handed to the real ``recogan
train`` and refused with exit 2 and one line naming the file and the problem, with no traceback and
nothing left in ``--out``; where only some columns are unusable, a notice names them and training
proceeds. The dashboard's Data tab shows the very same text.
"""

import asyncio
import gzip
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")  # "PyTables will pickle"
REPO = str(Path(__file__).resolve().parents[1])  # the code under test, in the CLI's own process too
N = 120
RNG = np.random.default_rng(7)
GOOD = pd.DataFrame({"pt": RNG.gamma(2.0, 1.5, N), "eta": RNG.normal(0, 1, N)})
TINY = {"max_epochs": 1, "batch_size": 32, "snapshot_rows": 100, "latent_dim": 4, "generator_widths": [8],
        "discriminator_widths": [8], "device": "cpu"}
CASES = []


def bad(name, *words, args=(), notice=None):
    """Register a writer of one corpus file: ``words`` must appear in the one-line refusal, or,
    with ``notice``, the notice names that left-out column and training goes on."""
    def register(write):
        CASES.append(pytest.param(name, write, list(args), words, notice, id=name))
        return write
    return register


def csv_text(frame=GOOD, sep=","):
    return frame.to_csv(index=False, sep=sep)


def write(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def parquet(path, frame):
    frame.to_parquet(path, index=False)
    return path


def h5py_file(path, fill):
    with h5py.File(path, "w") as h5:
        fill(h5)
    return path


def root_file(path, fill):
    with uproot.recreate(path) as file:
        fill(file)
    return path


def truncated(path, write_whole):
    write_whole(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


# --- CSV ----------------------------------------------------------------------------------------
for suffix in (".csv", ".parquet", ".h5", ".root", ".npz"):
    bad(f"empty{suffix}", "is empty (0 bytes)")(lambda d, s=suffix: write(d / f"empty{s}", b""))
bad("header-only.csv", "is empty (0 rows)")(lambda d: write(d / "header-only.csv", "pt,eta\n"))
bad("truncated.csv", "column 'eta': has 1 NaN/inf values", "--drop-invalid")(
    lambda d: write(d / "truncated.csv", csv_text().rstrip("\n").rsplit(",", 1)[0] + "\n"))
bad("semicolons.csv", "is separated by ';', not by commas")(lambda d: write(d / "semicolons.csv", csv_text(sep=";")))
bad("tabs.csv", "is separated by '\\t', not by commas")(lambda d: write(d / "tabs.csv", csv_text(sep="\t")))
bad("gzip.csv", "is gzip-compressed", "gunzip")(lambda d: write(d / "gzip.csv", gzip.compress(csv_text().encode())))
bad("repeated-name.csv", "column 'pt': appears twice in the header")(
    lambda d: write(d / "repeated-name.csv", "pt,pt\n" + "".join(f"{i},{i * 2}\n" for i in range(N))))
bad("names-differ-by-a-space.csv", "column 'pt ': differs from column 'pt' only by spaces")(
    lambda d: write(d / "names-differ-by-a-space.csv", csv_text(GOOD.assign(**{"pt ": GOOD.eta}))))
bad("latin1-name.csv", "could not be read as CSV", "utf-8")(
    lambda d: write(d / "latin1-name.csv", csv_text().replace("eta", "\u03b7\u00e9").encode("latin-1", "replace")))
bad("text-only.csv", "has no numeric columns (found: 'a', 'b')")(lambda d: write(d / "text-only.csv", "a,b\nx,y\nz,w\n"))
bad("one-row.csv", "has 1 rows; training needs at least 2")(lambda d: write(d / "one-row.csv", "pt,eta\n1,2\n"))
bad("nullable-boolean.csv", notice="flag")(
    lambda d: write(d / "nullable-boolean.csv", csv_text(GOOD.assign(flag=([True, None, False] * N)[:N]))))
bad("1e308.csv", "column 'big': has values up to 1e+308, beyond float32's range", args=["--features", "pt,big"])(
    lambda d: write(d / "1e308.csv", csv_text(GOOD.assign(big=np.r_[1e308, -1e308, RNG.normal(size=N - 2)]))))
bad("1e308-unnamed.csv", notice="big")(
    lambda d: write(d / "1e308-unnamed.csv", csv_text(GOOD.assign(big=np.r_[1e308, RNG.normal(size=N - 1)]))))
bad("int64-extremes.csv", "column 'n': has integers beyond 2**52")(
    lambda d: write(d / "int64-extremes.csv", csv_text(GOOD.assign(
        n=np.r_[np.iinfo(np.int64).max, np.iinfo(np.int64).min, RNG.integers(0, 9, N - 2)]))))
bad("inf.csv", "column 'eta': has 2 NaN/inf values")(
    lambda d: write(d / "inf.csv", csv_text(GOOD.assign(eta=np.r_[np.inf, -np.inf, GOOD.eta[2:]]))))
bad("constant.csv", "column 'c': is constant", args=["--features", "pt,c"])(
    lambda d: write(d / "constant.csv", csv_text(GOOD.assign(c=1.5))))
bad("typo.csv", "column 'decay_lenght': not found", "closest: 'decay_length'", args=["--features", "decay_lenght"])(
    lambda d: write(d / "typo.csv", csv_text(GOOD.rename(columns={"pt": "decay_length"}))))
bad("case.csv", "column 'PT': not found", "closest: 'pt'", args=["--features", "PT"])(  # case aside
    lambda d: write(d / "case.csv", csv_text(GOOD.assign(ptx=1.0, phi=GOOD.eta))))

# --- Parquet ------------------------------------------------------------------------------------
bad("truncated.parquet", "could not be read as Parquet")(
    lambda d: truncated(d / "truncated.parquet", lambda p: parquet(p, GOOD)))
bad("csv-inside.parquet", "could not be read as Parquet")(lambda d: write(d / "csv-inside.parquet", csv_text()))
bad("zero-rows.parquet", "is empty (0 rows)")(lambda d: parquet(d / "zero-rows.parquet", GOOD.head(0)))
bad("too-few-rows.parquet", "has 30 rows; training needs at least")(lambda d: parquet(d / "too-few-rows.parquet", GOOD.head(30)))
bad("nullable-boolean.parquet", "column 'flag': has 40 NaN/inf values", "--drop-invalid")(
    lambda d: parquet(d / "nullable-boolean.parquet",
                      GOOD.assign(flag=pd.array(([True, None, False] * N)[:N], dtype="boolean"))))
bad("nullable-int.parquet", "column 'k': has 40 NaN/inf values")(
    lambda d: parquet(d / "nullable-int.parquet", GOOD.assign(k=pd.array(([1, None, 3] * N)[:N], dtype="Int64"))))
bad("text-column.parquet", "column 'label': is not numeric", args=["--features", "pt,label"])(
    lambda d: parquet(d / "text-column.parquet", GOOD.assign(label="Xic")))

# --- HDF5 ---------------------------------------------------------------------------------------
bad("truncated.h5", "could not be read as HDF5")(
    lambda d: truncated(d / "truncated.h5", lambda p: GOOD.to_hdf(p, key="events", format="table")))
bad("text.h5", "could not be read as HDF5")(lambda d: write(d / "text.h5", csv_text()))
bad("no-table.h5", "holds no key to read")(lambda d: h5py_file(d / "no-table.h5", lambda h5: h5.create_dataset(
    "matrix", data=np.zeros((N, 2)))))
bad("series.h5", "node '/events' is a pandas 'series', not a DataFrame")(
    lambda d: GOOD.pt.to_hdf(d / "series.h5", key="events") or d / "series.h5")
bad("object-column.h5", notice="obj")(
    lambda d: GOOD.assign(obj=[{"a": 1}] * N).to_hdf(d / "object-column.h5", key="events", format="fixed")
    or d / "object-column.h5")


def _pickled_attribute(h5):
    h5["events/pt"] = GOOD.pt
    h5["events"].attrs["note"] = np.bytes_(pickle.dumps(print, protocol=0))  # a GLOBAL: would import


bad("pickled-attribute.h5", "node '/events' attribute 'note' is a pickled Python object")(
    lambda d: h5py_file(d / "pickled-attribute.h5", _pickled_attribute))
bad("external-link.h5", "node '/events' is an external link to '/etc/passwd'")(
    lambda d: h5py_file(d / "external-link.h5", lambda h5: h5.__setitem__("events", h5py.ExternalLink(
        "/etc/passwd", "/"))))
bad("external-storage.h5", "node '/pt' keeps its data in the external file(s) '/dev/zero'")(
    lambda d: h5py_file(d / "external-storage.h5", lambda h5: h5.create_dataset(
        "pt", shape=(N,), dtype="f8", external=[("/dev/zero", 0, N * 8)])))


def _virtual(h5):
    layout = h5py.VirtualLayout(shape=(N,), dtype="f8")
    layout[:] = h5py.VirtualSource("elsewhere.h5", "pt", shape=(N,))
    h5.create_virtual_dataset("pt", layout, fillvalue=1.0)


bad("virtual.h5", "node '/pt' is a virtual dataset")(lambda d: h5py_file(d / "virtual.h5", _virtual))
bad("dangling-soft-link.h5", "node '/alias' is a soft link to '/gone', which is not in the file")(
    lambda d: h5py_file(d / "dangling-soft-link.h5", lambda h5: (h5.create_dataset("pt", data=GOOD.pt),
                                                                 h5.__setitem__("alias", h5py.SoftLink("/gone")))))
bad("opaque.h5", "node '/events/blob' holds opaque binary data")(
    lambda d: h5py_file(d / "opaque.h5", lambda h5: (h5.create_dataset("events/pt", data=GOOD.pt),
                                                     h5.create_dataset("events/blob", data=np.zeros(N, "V4")))))
bad("text-dataset.h5", notice="name")(
    lambda d: h5py_file(d / "text-dataset.h5", lambda h5: (
        h5.create_dataset("events/pt", data=GOOD.pt), h5.create_dataset("events/eta", data=GOOD.eta),
        h5.create_dataset("events/name", data=["p"] * N, dtype=h5py.string_dtype()))))

# --- ROOT ---------------------------------------------------------------------------------------
bad("truncated.root", "could not be read as ROOT")(
    lambda d: truncated(d / "truncated.root", lambda p: root_file(p, lambda f: f.__setitem__("t", dict(GOOD)))))
bad("text.root", "could not be read as ROOT")(lambda d: write(d / "text.root", csv_text()))
bad("jagged-only.root", "has no numeric columns in tree 't' (found: 'jag')")(
    lambda d: root_file(d / "jagged-only.root", lambda f: f.__setitem__(
        "t", {"jag": ak.Array([[1.0] * (i % 3) for i in range(N)])})))
bad("string-branch.root", "column 's': is not a flat numeric branch (type std::string)", args=["--features", "pt,s"])(
    lambda d: root_file(d / "string-branch.root", lambda f: f.__setitem__(
        "t", {"pt": GOOD.pt.to_numpy(), "s": ak.Array(["pi+"] * N)})))
bad("zero-entries-ttree.root", "is empty (0 rows in tree 't')")(
    lambda d: root_file(d / "zero-entries-ttree.root", lambda f: f.mktree("t", {"pt": "f8"})))
bad("zero-entries-rntuple.root", "is empty (0 rows in tree 't')")(
    lambda d: root_file(d / "zero-entries-rntuple.root", lambda f: f.__setitem__("t", {"pt": np.zeros(0)})))
bad("tree-typo.root", "has no tree 'Candidate' (closest: 'Candidates'", args=["--tree", "Candidate"])(
    lambda d: root_file(d / "tree-typo.root", lambda f: f.__setitem__("Candidates", dict(GOOD))))

# --- npz ----------------------------------------------------------------------------------------
bad("truncated.npz", "could not be read as npz")(
    lambda d: truncated(d / "truncated.npz", lambda p: np.savez(p, **dict(GOOD))))
bad("text.npz", "could not be read as npz: not a zip archive")(lambda d: write(d / "text.npz", csv_text()))
bad("object-array.npz", "array 'meta' holds pickled Python objects")(
    lambda d: np.savez(d / "object-array.npz", pt=GOOD.pt, meta=np.array([{"a": 1}], dtype=object))
    or d / "object-array.npz")
bad("matrix-without-names.npz", "no 'columns' or 'feature_names' array")(
    lambda d: np.savez(d / "matrix-without-names.npz", X=GOOD.to_numpy()) or d / "matrix-without-names.npz")
bad("names-mismatch.npz", "'X' has 2 columns but 3 column names")(
    lambda d: np.savez(d / "names-mismatch.npz", X=GOOD.to_numpy(), columns=np.array(["a", "b", "c"]))
    or d / "names-mismatch.npz")

# --- not data files -----------------------------------------------------------------------------
bad("pickle.pkl", "is a pickle file, which is never read")(
    lambda d: GOOD.to_pickle(d / "pickle.pkl") or d / "pickle.pkl")
bad("fifo.csv", "is a FIFO (named pipe), not a regular file")(lambda d: os.mkfifo(d / "fifo.csv") or d / "fifo.csv")
bad("folder.parquet", "is a folder without MC files")(lambda d: (d / "folder.parquet").mkdir() or d / "folder.parquet")
bad("loop.csv", "is a symbolic link that leads nowhere")(lambda d: os.symlink(d / "loop.csv", d / "loop.csv") or d / "loop.csv")
bad("broken-link.csv", "is a symbolic link that leads nowhere")(
    lambda d: os.symlink(d / "gone.csv", d / "broken-link.csv") or d / "broken-link.csv")
bad("notes.txt", "has an unsupported extension '.txt'")(lambda d: write(d / "notes.txt", csv_text()))
bad("no-extension", "has an unsupported extension ''")(lambda d: write(d / "no-extension", csv_text()))
bad("missing.parquet", "does not exist")(lambda d: d / "missing.parquet")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Folder with every corpus file, and each case's path."""
    folder = tmp_path_factory.mktemp("bad")
    paths = {case.values[0]: case.values[1](folder) for case in CASES}
    (folder / "tiny.json").write_text(json.dumps(TINY))
    return folder, paths


def test_the_corpus_holds_at_least_40_files(corpus):
    folder, paths = corpus
    assert len(CASES) >= 40 and len({p.name for p in paths.values()}) == len(CASES)
    assert sum(1 for p in folder.iterdir() if p.is_symlink() or p.exists()) >= 40


@pytest.mark.parametrize(("name", "write", "args", "words", "notice"), CASES)
def test_each_bad_file_gets_one_line(corpus, tmp_path, capsys, name, write, args, words, notice):
    folder, paths = corpus
    path, out = paths[name], tmp_path / "run"
    code = main(["train", "--data", str(path), "--config", str(folder / "tiny.json"), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if notice:  # the rest is usable: a notice naming the column left out, and a run
        assert code == 0 and f"{path}: left out column '{notice}' " in err and (out / "run.json").is_file()
        return
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"recogan: error: {path}: "), err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_real_process_refuses_a_fifo_without_hanging(corpus, tmp_path):
    """A FIFO is never opened: reading one would block until something writes to it."""
    folder, paths = corpus
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", str(paths["fifo.csv"]), "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 2 and done.stderr.startswith(f"recogan: error: {paths['fifo.csv']}: is a FIFO")
    assert done.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


def test_the_data_tab_shows_the_same_message(corpus, tmp_path, capsys):
    from recogan_app.ui import Session
    from recogan_app.ui.data import DataView

    folder, paths = corpus
    name = "pickled-attribute.h5"
    main(["train", "--data", str(paths[name]), "--out", str(tmp_path / "run")])
    cli_message = capsys.readouterr().err.removeprefix("recogan: error: ").strip()
    session = Session(data_root=folder, workdir=tmp_path / "work")
    view = DataView(state=session)
    session.source = name
    asyncio.run(view.load())
    assert session.notice_level == "danger"
    assert session.notice == cli_message.replace(str(paths[name]), str(folder.resolve() / name))
