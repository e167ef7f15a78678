"""Readers of ZP samples (npz, HDF5; pickle refused), raw/log1p detection, clear refusals, and the
diversity targets. The files are read by the MC sample's reader layer: a file's problem reads the same."""

import gzip
import os
import pickle

import h5py
import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.data import toy_zdc
from recogan_app.data.sources import load_mc
from recogan_app.data.zdc import (CONDITIONS, ConditionScaler, counts_from_log1p, diversity_targets,
                                  load_conditions, load_zdc)
from recogan_app.errors import InputError, NotFittedError


@pytest.fixture(scope="module")
def sample():
    return toy_zdc.generate(200, seed=5)


def same(a, b):
    return np.array_equal(a.images, b.images) and np.array_equal(a.conditions, b.conditions)


def test_npz_round_trip(sample, tmp_path):
    sample.save(tmp_path / "toy.npz")
    loaded = load_zdc(tmp_path / "toy.npz")
    assert same(loaded, sample) and "raw photon counts" in loaded.note
    assert np.array_equal(load_conditions(tmp_path / "toy.npz"), sample.conditions)
    with np.load(tmp_path / "toy.npz", allow_pickle=False) as stored:
        assert stored["images"].dtype == np.uint8  # the toy's counts (max < 256) in a quarter of the bytes
    bright = type(sample)(sample.images * 10, sample.conditions)  # counts up to ~800, like real ZP data
    bright.save(tmp_path / "bright.npz")
    assert same(load_zdc(tmp_path / "bright.npz"), bright) and load_zdc(tmp_path / "bright.npz").images.dtype == np.int32


def test_npz_with_conditions_in_another_order(sample, tmp_path):
    order = list(reversed(CONDITIONS))
    np.savez(tmp_path / "r.npz", images=sample.images, conditions=sample.conditions[:, ::-1],
             condition_names=np.array(order))
    assert same(load_zdc(tmp_path / "r.npz"), sample)


def test_hdf5_datasets_and_pandas_table(sample, tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as h5:
        h5["images"] = sample.images
        h5["conditions"] = sample.conditions
        h5["conditions"].attrs["columns"] = list(CONDITIONS)
    assert same(load_zdc(path), sample)
    table = tmp_path / "c.h5"
    pd.DataFrame(sample.conditions, columns=CONDITIONS).to_hdf(table, key="conditions")
    with h5py.File(tmp_path / "i.h5", "w") as h5:
        h5["images"] = sample.images
    assert same(load_zdc(tmp_path / "i.h5", conditions=table), sample)


def test_pickle_refused_and_log1p_detected(sample, tmp_path):
    """The published layout, two pickles, is refused with how to convert it; converted, its log1p
    float32 images are detected and turned back into counts."""
    pd.to_pickle(np.log1p(sample.images).astype(np.float32), tmp_path / "images.pkl")
    pd.DataFrame(sample.conditions, columns=CONDITIONS).to_pickle(tmp_path / "cond.pkl")
    with pytest.raises(InputError, match=r"images.pkl: is a pickle file, which is never read.*numpy.savez"):
        load_zdc(tmp_path / "images.pkl")
    with pytest.raises(InputError, match=r"cond.pkl: is a pickle file.*to_parquet"):
        load_conditions(tmp_path / "cond.pkl")
    np.savez(tmp_path / "images.npz", images=pd.read_pickle(tmp_path / "images.pkl"))  # the hint, in trusted code
    pd.read_pickle(tmp_path / "cond.pkl").to_parquet(tmp_path / "cond.parquet")
    loaded = load_zdc(tmp_path / "images.npz", conditions=tmp_path / "cond.parquet")
    assert same(loaded, sample) and loaded.note.startswith("images are log1p")


def test_csv_conditions(sample, tmp_path):
    pd.DataFrame(sample.conditions, columns=CONDITIONS).to_csv(tmp_path / "c.csv", index=False)
    assert np.allclose(load_conditions(tmp_path / "c.csv"), sample.conditions)


@pytest.mark.parametrize("images, message", [
    (np.zeros((4, 30, 56)), r"shape \(4, 30, 56\); expected \(N, 56, 30\)"),
    (np.full((4, 56, 30), -1), "negative"),
    (np.full((4, 56, 30), np.nan), "NaN"),
    (np.full((4, 56, 30), 20.5), "neither photon counts nor log1p"),
    (np.full((4, 56, 30), 0.3), "neither photon counts nor log1p"),  # expm1(0.3) is not a count
])
def test_bad_images_refused(images, message, tmp_path):
    np.savez(tmp_path / "bad.npz", images=images, conditions=np.zeros((len(images), 9)))
    with pytest.raises(InputError, match=message):
        load_zdc(tmp_path / "bad.npz")


def test_bad_conditions_refused(sample, tmp_path):
    frame = pd.DataFrame(sample.conditions, columns=CONDITIONS)
    frame.rename(columns={"Energy": "energy"}).to_csv(tmp_path / "missing.csv", index=False)
    with pytest.raises(InputError, match="column 'Energy': condition not found.*closest: 'energy'"):
        load_conditions(tmp_path / "missing.csv")
    frame.assign(Vz=np.nan).to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(InputError, match="column 'Vz': condition has 200 NaN"):
        load_conditions(tmp_path / "nan.csv")
    frame.iloc[:10].to_csv(tmp_path / "short.csv", index=False)
    np.savez(tmp_path / "images.npz", images=sample.images)
    with pytest.raises(InputError, match="200 images but the conditions have 10 rows"):
        load_zdc(tmp_path / "images.npz", conditions=tmp_path / "short.csv")
    with pytest.raises(InputError, match="does not exist"):
        load_zdc(tmp_path / "nowhere.npz")
    (tmp_path / "c.txt").write_text("Energy\n1\n")
    with pytest.raises(InputError, match="unsupported extension"):
        load_conditions(tmp_path / "c.txt")


def conditions_frame(sample):
    return pd.DataFrame(sample.conditions, columns=CONDITIONS)


def write_root(sample, path):
    with uproot.recreate(path) as file:
        file["conditions"] = {name: sample.conditions[:, j] for j, name in enumerate(CONDITIONS)}


@pytest.mark.parametrize("suffix, write", [
    (".npz", lambda sample, path: np.savez(path, **dict(zip(CONDITIONS, sample.conditions.T)))),
    (".h5", lambda sample, path: conditions_frame(sample).to_hdf(path, key="conditions", format="table")),
    (".parquet", lambda sample, path: conditions_frame(sample).to_parquet(path)),
    (".csv", lambda sample, path: conditions_frame(sample).to_csv(path, index=False)),
    (".root", write_root),
], ids=["npz", "h5", "parquet", "csv", "root"])
def test_conditions_round_trip_in_every_table_format(sample, tmp_path, suffix, write):
    path = tmp_path / f"conditions{suffix}"
    write(sample, path)
    np.savez(tmp_path / "images.npz", images=sample.images)
    assert same(load_zdc(tmp_path / "images.npz", conditions=path), sample)
    assert np.array_equal(load_conditions(path), sample.conditions)


def test_images_beside_condition_columns_in_hdf5(sample, tmp_path):
    with h5py.File(tmp_path / "z.h5", "w") as h5:
        h5["images"] = np.log1p(sample.images).astype(np.float32)
        for j, name in enumerate(CONDITIONS):
            h5[name] = sample.conditions[:, j]
    loaded = load_zdc(tmp_path / "z.h5")
    assert same(loaded, sample) and loaded.note.startswith("images are log1p")


def pickled_attribute(path, payload):
    with h5py.File(path, "w") as h5:
        h5["images"], h5["Energy"] = np.zeros((3, 56, 30)), np.ones(3)
        h5["Energy"].attrs["units"] = np.bytes_(pickle.dumps(payload, protocol=0))


def external_link(path, payload):
    with h5py.File(path, "w") as h5:
        h5["images"], h5["Energy"] = np.zeros((3, 56, 30)), np.ones(3)
        h5["conditions"] = h5py.ExternalLink("elsewhere.h5", "/conditions")


def object_array(path, payload):
    np.savez(path, images=np.zeros((3, 56, 30)), Energy=np.array([payload], dtype=object))


def fifo(path, payload):
    os.mkfifo(path)


TRAPS = [
    ("pickled-attribute.h5", pickled_attribute, "node '/Energy' attribute 'units' is a pickled Python object"),
    ("external-link.h5", external_link, "node '/conditions' is an external link to 'elsewhere.h5'"),
    ("object-array.npz", object_array, "array 'Energy' holds pickled Python objects"),
    ("fifo.npz", fifo, "is a FIFO (named pipe), not a regular file"),
    ("empty.npz", lambda path, payload: path.write_bytes(b""), "is empty (0 bytes)"),
    ("gzip.csv", lambda path, payload: path.write_bytes(gzip.compress(b"Energy,Vx\n1,2\n")), "is gzip-compressed"),
    ("semicolons.csv", lambda path, payload: path.write_text("Energy;Vx\n1;2\n"), "is separated by ';'"),
    ("twice.csv", lambda path, payload: path.write_text("Energy,Energy\n1,2\n"), "column 'Energy': appears twice"),
    ("text.parquet", lambda path, payload: path.write_text("Energy\n1\n"), "could not be read as Parquet"),
    ("text.root", lambda path, payload: path.write_text("Energy\n1\n"), "could not be read as ROOT"),
]


@pytest.mark.parametrize("name, write, message", TRAPS, ids=[name for name, _, _ in TRAPS])
def test_a_bad_file_gets_the_mc_samples_message(tmp_path, payload, name, write, message):
    """One reader layer: each refusal of a ZDC file is word for word the MC sample's, naming file and node."""
    path = tmp_path / name
    write(path, payload)
    with pytest.raises(InputError) as mc:
        load_mc(path)
    assert str(mc.value).startswith(f"{path}: ") and message in str(mc.value)
    for read in (load_conditions, load_zdc) if path.suffix in (".h5", ".npz") else (load_conditions,):
        with pytest.raises(InputError) as zdc:
            read(path)
        assert str(zdc.value) == str(mc.value)


def test_diversity_targets_by_hand():
    conditions = np.array([[1.0] * 9, [1.0] * 9, [2.0] * 9, [3.0] * 9, [3.0] * 9])
    images = np.zeros((5, 56, 30))
    images[0, 0, 0], images[1, 0, 0] = 0.0, 2.0        # group 1: std 1 in one pixel → 1
    images[3, 5, 5], images[4, 5, 5] = 1.0, 1.0        # group 3: identical images → 0
    images[3, 7, 7], images[4, 7, 7] = 0.0, 1.0        # … but std 0.5 in another pixel → 0.5
    assert np.allclose(diversity_targets(conditions, images), [1.0, 1.0, 0.0, 0.5, 0.5])


def test_counts_and_scaler():
    assert np.array_equal(counts_from_log1p(np.log1p([0.0, 0.4, 0.6, 765.0])), [0, 0, 1, 765])
    conditions = np.array([[1.0, 5.0] + [0.0] * 7, [3.0, 5.0] + [0.0] * 7])
    scaler = ConditionScaler.from_dict(ConditionScaler().fit(conditions).to_dict())
    assert np.allclose(scaler.transform(conditions)[:, :2], [[-1, 0], [1, 0]])  # constant column → 0
    with pytest.raises(NotFittedError, match="ConditionScaler is not fitted"):
        ConditionScaler().transform(conditions)
