"""Tests for recogan_app.data.sources: real files of every format and layout, and every refusal."""

import sys
import types

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.data.sources import EMBEDDED, MCSample, list_keys, load_mc
from recogan_app.errors import InputError

N = 40
RNG = np.random.default_rng(0)
BASE = {
    "a": RNG.normal(size=N),
    "b": RNG.integers(-50, 50, N).astype(np.int32),
    "c": RNG.normal(size=N).astype(np.float32),
}
TYPED = {"a": np.float64, "b": np.int32, "c": np.float32}
NAMES = np.array([f"n{i}" for i in range(N)])


def _frame(**extra):
    return pd.DataFrame({**BASE, **extra})


# --- writers: each returns (path, tree used, dtypes expected) --------------------------------------


def _parquet(tmp_path):
    path = tmp_path / "mc.parquet"
    _frame(name=NAMES).to_parquet(path)
    return path, None, TYPED


def _hdf_table(tmp_path):
    path = tmp_path / "mc.h5"
    _frame(name=NAMES).to_hdf(path, key="events", format="table")
    return path, "events", TYPED


def _hdf_fixed(tmp_path):
    path = tmp_path / "mc.hdf5"
    _frame(name=NAMES).to_hdf(path, key="events", format="fixed")
    return path, "events", TYPED


def _h5py_group(tmp_path):
    path = tmp_path / "mc.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("events")
        for name, values in BASE.items():
            group[name] = values
        group["name"] = NAMES.astype("S")
    return path, "events", TYPED


def _h5py_compound(tmp_path):
    path = tmp_path / "mc.hdf"
    records = np.zeros(N, dtype=[(name, dtype) for name, dtype in TYPED.items()])
    for name, values in BASE.items():
        records[name] = values
    with h5py.File(path, "w") as h5:
        h5["events"] = records
    return path, "events", TYPED


def _h5py_matrix(tmp_path):
    path = tmp_path / "mc.h5"
    with h5py.File(path, "w") as h5:
        h5["events"] = np.column_stack(list(BASE.values())).astype(np.float32)
        h5["events"].attrs["columns"] = np.array(list(BASE), dtype="S")
    return path, "events", dict.fromkeys(BASE, np.float32)


def _root_rntuple(tmp_path):
    path = tmp_path / "mc.root"
    with uproot.recreate(path) as file:
        file["events"] = {**BASE, "jag": ak.Array([[1.0] * (i % 3) for i in range(N)])}
    return path, "events", TYPED


def _root_ttree(tmp_path):
    path = tmp_path / "mc.root"
    with uproot.recreate(path) as file:
        tree = file.mktree("events", {**TYPED, "fixed": ("f4", (3,))})
        tree.extend({**BASE, "fixed": np.ones((N, 3), np.float32)})
    return path, "events", TYPED


def _npz_columns(tmp_path):
    path = tmp_path / "mc.npz"
    np.savez(path, **BASE, name=NAMES, n_generated=np.array(1000))
    return path, None, TYPED


def _npz_structured(tmp_path):
    path = tmp_path / "mc.npz"
    records = np.zeros(N, dtype=[(name, dtype) for name, dtype in TYPED.items()])
    for name, values in BASE.items():
        records[name] = values
    np.savez(path, events=records)
    return path, "events", TYPED


def _npz_matrix(tmp_path):
    path = tmp_path / "mc.npz"
    np.savez(path, X=np.column_stack(list(BASE.values())), feature_names=np.array(list(BASE)), y=np.zeros(N))
    return path, "X", dict.fromkeys(BASE, np.float64)


WRITERS = [_parquet, _hdf_table, _hdf_fixed, _h5py_group, _h5py_compound, _h5py_matrix,
           _root_rntuple, _root_ttree, _npz_columns, _npz_structured, _npz_matrix]


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__.strip("_"))
def test_round_trip_keeps_values_and_dtypes(tmp_path, write):
    path, tree, dtypes = write(tmp_path)
    sample = load_mc(path)
    assert isinstance(sample, MCSample)
    assert list(sample.frame.columns) == list(BASE)  # text, jagged and fixed-size columns skipped, with reasons
    assert set(sample.skipped).isdisjoint(BASE) and all(sample.skipped.values())
    assert {n: sample.frame[n].dtype for n in BASE} == {n: np.dtype(d) for n, d in dtypes.items()}
    for name, values in BASE.items():
        np.testing.assert_array_equal(sample.frame[name].to_numpy(), values.astype(dtypes[name]))
    assert (sample.source, sample.tree, sample.n_dropped, sample.invalid_counts) == (str(path), tree, 0, {})
    assert load_mc(path, tree=tree).frame.equals(sample.frame)


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__.strip("_"))
def test_features_select_in_order(tmp_path, write):
    path, _, _ = write(tmp_path)
    assert list(load_mc(path, features=["c", "a"]).frame.columns) == ["c", "a"]
    assert list(load_mc(path, features=" b, c ").frame.columns) == ["b", "c"]


def test_csv_round_trip_and_saved_index_skipped(tmp_path):
    path = tmp_path / "mc.csv"
    _frame(name=NAMES).to_csv(path)  # writes the index as an unnamed first column
    sample = load_mc(path)
    assert list(sample.frame.columns) == list(BASE)
    assert sample.frame["b"].dtype.kind == "i"
    np.testing.assert_allclose(sample.frame["c"], BASE["c"], rtol=1e-6)
    with pytest.raises(InputError, match="saved row index"):
        load_mc(path, features=["Unnamed: 0"])
    path = tmp_path / "mc.parquet"
    _frame().iloc[::2].to_parquet(path)  # a filtered frame: pandas stores its index as a column
    assert list(load_mc(path).frame.columns) == list(BASE)


def test_bool_becomes_int8_and_big_endian_becomes_native(tmp_path):
    path = tmp_path / "mc.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = BASE["a"].astype(">f8")
        h5["flag"] = np.arange(N) % 2 == 0
    sample = load_mc(path)
    frame = sample.frame
    assert sample.tree == "/" and list_keys(path) == ["/"]
    assert frame["x"].dtype == np.float64 and frame["x"].dtype.isnative
    assert frame["flag"].dtype == np.int8 and set(frame["flag"]) == {0, 1}


@pytest.mark.parametrize("fmt", ["fixed", "table"])
def test_pandas_hdf5_frames_are_read_by_h5py_with_pandas_dtypes(tmp_path, fmt):
    """Both pandas layouts, read without pandas: booleans, small integers, dates, categories, text,
    and an empty "fixed" frame (stored as a placeholder element)."""
    cycle = np.arange(N) * 7 % 11  # not sorted, not unique: sorted integers would be left out as identifiers
    frame = _frame(flag=np.arange(N) % 3 == 0, small=cycle.astype(np.int8), wide=cycle.astype(np.uint32),
                   when=pd.date_range("2024-01-01", periods=N, freq="h"), name=NAMES)
    if fmt == "table":
        frame["kind"] = pd.Categorical(["sig", "bkg"] * (N // 2))
    frame.to_hdf(tmp_path / "mc.h5", key="events", format=fmt)
    sample = load_mc(tmp_path / "mc.h5")
    assert dict(sample.frame.dtypes) == {**TYPED, "flag": np.int8, "small": np.int8, "wide": np.uint32}
    np.testing.assert_array_equal(sample.frame["flag"], (np.arange(N) % 3 == 0).astype(np.int8))
    assert sample.skipped["when"].startswith("is not numeric (dtype datetime64")
    assert "kind" not in frame or sample.skipped["kind"] == "is not numeric (dtype category)"
    if fmt == "fixed":  # ("table" writes nothing for an empty frame)
        frame.head(0).to_hdf(tmp_path / "empty.h5", key="events", format=fmt)
        _refused(tmp_path / "empty.h5", match="is empty (0 rows in key 'events')")


def test_list_keys(tmp_path):
    root = tmp_path / "two.root"
    with uproot.recreate(root) as file:
        file["events"] = {"a": BASE["a"]}
        file.mktree("other", {"x": np.float64}).extend({"x": BASE["a"]})
    assert list_keys(root) == ["events", "other"]
    h5 = tmp_path / "two.h5"
    _frame().to_hdf(h5, key="sim", format="table")
    with h5py.File(h5, "a") as f:
        f["gen/a"] = BASE["a"]
        f["table"] = np.column_stack([BASE["a"], -BASE["a"]])
        f["table"].attrs["columns"] = ["u", "v"]
    assert sorted(list_keys(h5)) == ["gen", "sim", "table"]
    assert list_keys(_npz_matrix(tmp_path)[0]) == ["X"]
    assert list_keys(_npz_columns(tmp_path)[0]) == []
    assert list_keys(_parquet(tmp_path)[0]) == []
    assert load_mc(root, tree="other").frame.columns.tolist() == ["x"]
    assert load_mc(h5, tree="/gen").tree == "gen"
    assert load_mc(h5, tree="table").frame.columns.tolist() == ["u", "v"]


def test_embedded_calls_toy_generator(monkeypatch):
    calls = []

    def generate(n=531_548, seed=0, n_features=8):
        calls.append(n_features)
        return pd.DataFrame({f"f{i}": RNG.normal(size=20) for i in range(n_features)})

    monkeypatch.setitem(sys.modules, "recogan_app.data.toy_xic", types.SimpleNamespace(generate=generate))
    assert load_mc("toy-xic").frame.shape == (20, 8)
    sample = load_mc(EMBEDDED[1])
    assert sample.frame.shape == (20, 12) and sample.source == "toy-xic-12" and sample.tree is None
    assert calls == [8, 12]
    assert list_keys("toy-xic") == []
    # simulated once per process (each dashboard page opens on it); a sample's frame is its own
    again = load_mc("toy-xic")
    again.frame.iloc[0, 0] = 1e9
    assert calls == [8, 12] and load_mc("toy-xic").frame.iloc[0, 0] != 1e9


# --- refusals: one InputError naming the file and the column ---------------------------------------


def _refused(path, *, column=None, match=None, **kwargs):
    with pytest.raises(InputError) as info:
        load_mc(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    if column is not None:
        assert f"column '{column}'" in message
    if match is not None:
        assert match in message, message
    return message


def _csv(tmp_path, text, name="mc.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_file_hints_closest(tmp_path):
    _csv(tmp_path, "a\n1\n", name="signal.csv")
    assert "'signal.csv'" in _refused(tmp_path / "signl.csv", match="does not exist")
    with pytest.raises(InputError, match="closest: 'toy-xic'"):
        load_mc("toy_xic")


def test_empty_folder_and_unknown_extension(tmp_path):
    _refused(tmp_path, match="is a folder without MC files")
    _refused(_csv(tmp_path, "a\n1\n", name="mc.txt"), match="unsupported extension '.txt'")


@pytest.mark.parametrize(("suffix", "fmt"), [(".root", "ROOT"), (".parquet", "Parquet"), (".h5", "HDF5"),
                                             (".npz", "npz")])
def test_corrupt_file(tmp_path, suffix, fmt):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"this is not what the extension promises\n" * 4)
    _refused(path, match=f"could not be read as {fmt}: ")
    if fmt != "Parquet":  # a Parquet file holds one table: list_keys need not open it
        with pytest.raises(InputError, match=f"could not be read as {fmt}"):
            list_keys(path)


def test_npz_with_pickled_array_names_it(tmp_path):
    path = tmp_path / "mc.npz"
    np.savez(path, a=BASE["a"], meta=np.array([{"x": 1}], dtype=object))
    _refused(path, match="array 'meta' holds pickled Python objects, which is never read")


def test_empty_files(tmp_path):
    _refused(_csv(tmp_path, ""), match="is empty (0 bytes)")
    _refused(_csv(tmp_path, "a,b\n", name="header.csv"), match="is empty (0 rows)")
    path = tmp_path / "empty.root"
    with uproot.recreate(path) as file:
        file.mktree("events", {"a": np.float64})
    _refused(path, match="is empty (0 rows in tree 'events')")


def test_tree_choice(tmp_path):
    path = tmp_path / "two.root"
    with uproot.recreate(path) as file:
        file["events"] = {"a": BASE["a"]}
        file["other"] = {"x": BASE["a"]}
    _refused(path, match="holds 2 trees ('events', 'other'); choose one with --tree")
    _refused(path, tree="evnts", match="has no tree 'evnts' (closest: 'events'")
    h5 = tmp_path / "two.h5"
    _frame().to_hdf(h5, key="sim", format="fixed")
    _frame().to_hdf(h5, key="reco", format="table")
    _refused(h5, match="holds 2 keys")
    _refused(h5, tree="rec", match="has no key 'rec' (closest: 'reco'")
    assert load_mc(h5, tree="reco").tree == "reco"
    _refused(_csv(tmp_path, "a\n1\n2\n"), tree="events", match="no tree 'events'")


def test_hdf5_without_table(tmp_path):
    path = tmp_path / "mc.h5"
    with h5py.File(path, "w") as h5:
        h5["matrix"] = np.zeros((N, 2))
    _refused(path, match="holds no key to read")


def test_missing_column_hints_closest(tmp_path):
    path, _, _ = _root_rntuple(tmp_path)
    _refused(path, features=["a", "cc"], column="cc", match="not found in tree 'events' (closest: 'c'")
    path = _csv(tmp_path, "decay_length,dca\n1,2\n3,4\n")
    _refused(path, features="decay_len", column="decay_len", match="(closest: 'decay_length'")


def test_non_numeric_columns(tmp_path):
    path = _csv(tmp_path, "a,name,x\n1,p,1.5\n2,q,abc\n3,r,2.5\n")
    assert list(load_mc(path).frame.columns) == ["a"]
    _refused(path, features=["a", "name"], column="name", match="is not numeric (dtype str")
    _refused(path, features=["x"], column="x", match="first non-number: 'abc' at row 1")
    _refused(_csv(tmp_path, "p,q\nu,v\nw,z\n", name="text.csv"), match="has no numeric columns (found: 'p', 'q')")


def test_non_flat_root_branches(tmp_path):
    path, _, _ = _root_rntuple(tmp_path)
    _refused(path, features=["a", "jag"], column="jag", match="is not a flat numeric branch (type std::vector")
    path, _, _ = _root_ttree(tmp_path)
    _refused(path, features=["fixed"], column="fixed", match="is not a flat numeric branch (type float[3]")


def test_flat_layout_problems(tmp_path):
    h5 = tmp_path / "mc.h5"
    with h5py.File(h5, "w") as f:
        f["a"] = BASE["a"]
        f["short"] = BASE["a"][:3]
    assert list(load_mc(h5).frame.columns) == ["a"]
    _refused(h5, features=["short"], column="short", match=f"has 3 rows but the other columns have {N}")
    npz = tmp_path / "mc.npz"
    np.savez(npz, X=np.zeros((N, 2)))
    _refused(npz, match="no 'columns' or 'feature_names' array")
    np.savez(npz, X=np.zeros((N, 2)), columns=np.array(["u", "v", "w"]))
    _refused(npz, match="'X' has 2 columns but 3 column names")
    np.savez(npz, X=np.zeros((N, 2)), columns=np.array(["u", "u"]))
    _refused(npz, column="u", match="named twice")


def test_features_listed_twice_or_none(tmp_path):
    path = _csv(tmp_path, "a,b\n1,2\n3,4\n")
    _refused(path, features="a,b,a", column="a", match="listed twice")
    _refused(path, features=[], match="no features selected")


def _with_invalid(tmp_path):
    frame = _frame()
    frame.loc[[1, 5], "a"] = np.nan
    frame.loc[[5, 9, 11], "c"] = [np.inf, -np.inf, np.nan]
    path = tmp_path / "mc.parquet"
    frame.to_parquet(path)
    return path


def test_invalid_values_refused(tmp_path):
    path = _with_invalid(tmp_path)
    _refused(path, column="c", match="has 3 NaN/inf values; 5 in all over 2 column(s) and 4 row(s) "
                                     "(drop those rows (--drop-invalid; in the dashboard: 'Drop rows with NaN/inf'))")


def test_drop_invalid_counts(tmp_path):
    sample = load_mc(_with_invalid(tmp_path), drop_invalid=True)
    assert sample.n_dropped == 4 and sample.invalid_counts == {"a": 2, "c": 3}
    assert len(sample.frame) == N - 4 and np.isfinite(sample.frame[["a", "c"]]).all().all()
    assert sample.frame["b"].dtype == np.int32 and sample.frame.index.equals(pd.RangeIndex(N - 4))
    np.testing.assert_array_equal(sample.frame["b"], np.delete(BASE["b"], [1, 5, 9, 11]))


def test_too_few_rows(tmp_path):
    _refused(_csv(tmp_path, "a\n1\n"), match="has 1 rows; training needs at least 2")
    path = _csv(tmp_path, "a,b\n1,2\nnan,3\n4,inf\n", name="nan.csv")
    _refused(path, drop_invalid=True, match="has 1 rows after dropping 2 with NaN/inf; training needs at least 2")
    assert len(load_mc(path, drop_invalid=True, min_rows=1).frame) == 1
    _refused(_csv(tmp_path, "a,b\n1,2\n3,4\n", name="two.csv"), min_rows=3, match="has 2 rows")


def test_constant_column_is_skipped_with_its_reason_and_refused_when_named(tmp_path):
    path = _csv(tmp_path, "a,k,b\n1,3.0,2\n2,3.0,5\n3,3.0,1\n")
    sample = load_mc(path)
    assert list(sample.frame.columns) == ["a", "b"]
    assert sample.skipped == {"k": "is constant (value 3.0): there is nothing to learn"}
    _refused(path, features="a,k", column="k", match="is constant (value 3.0): there is nothing to learn "
                                                     "(leave it out of the features)")
    assert list(load_mc(path, features="a,b").frame.columns) == ["a", "b"]
    _refused(_csv(tmp_path, "k,j\n1,2\n1,2\n", name="flat.csv"), match="has no usable columns")


def test_a_dataframe_in_memory_gets_the_checks_of_a_file():
    frame = pd.DataFrame({"pt": [1.0, 2.0, 3.0], "label": ["a", "b", "c"], "eta": [0.1, -0.2, 0.3]})
    sample = load_mc(frame)
    assert list(sample.frame.columns) == ["pt", "eta"] and sample.source == "a DataFrame"
    assert "label" in sample.skipped
    with pytest.raises(InputError, match=r"a DataFrame: column 'pt': has 1 NaN/inf"):
        load_mc(frame.assign(pt=[1.0, np.nan, 3.0]))
    with pytest.raises(InputError, match="a DataFrame: column 'label'"):
        load_mc(frame, features=["pt", "label"])
    with pytest.raises(InputError, match="single table"):
        load_mc(frame, tree="Candidates")


def test_repeated_csv_header_names_and_a_saved_index_column(tmp_path):
    _refused(_csv(tmp_path, "f64,f64,i32\n1,2,3\n4,5,6\n", name="dup.csv"), column="f64", match="appears twice")
    path = tmp_path / "idx.csv"
    pd.DataFrame({"pt": [1.5, 2.5, 0.5], "eta": [0.1, -0.2, 0.3]}).reset_index().to_csv(path)  # 'Unnamed: 0', 'index'
    sample = load_mc(path)
    assert list(sample.frame.columns) == ["pt", "eta"] and set(sample.skipped) == {"Unnamed: 0", "index"}
    counts = pd.DataFrame({"index": [3, 1, 2], "pt": [1.5, 2.5, 0.5]})  # not 0, 1, 2…: a feature like any other
    assert list(load_mc(counts).frame.columns) == ["index", "pt"]


def test_describe_gives_dtype_range_and_invalid_count_per_feature(tmp_path):
    path = tmp_path / "mc.csv"
    path.write_text("pt,n_hits\n1.5,4\nnan,7\n0.5,3\ninf,5\n2.0,6\n")
    summary = load_mc(path, drop_invalid=True).describe()
    assert list(summary.index) == ["pt", "n_hits"] and summary.index.name == "feature"
    assert summary.loc["pt"].tolist() == ["float64", 0.5, 2.0, 2]
    assert summary.loc["n_hits"].tolist() == ["int64", 3, 6, 0]  # rows 2 and 4 dropped with pt's NaN/inf
