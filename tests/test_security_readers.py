"""Files are data, never code: every way a file can carry a pickle, or point the reader outside
itself, is refused or left unread, and each test proves that the payload did not run.

The payload (conftest's ``payload``) is a pickled object whose unpickling creates a marker file;
pandas, PyTables and ``np.load(allow_pickle=True)`` would each run it on reading these files.
"""

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from recogan_app.data.containers import pickled_literal
from recogan_app.data.sources import list_keys, load_mc
from recogan_app.data.zdc import load_conditions, load_zdc
from recogan_app.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")  # "PyTables will pickle"
REPO = str(Path(__file__).resolve().parents[1])  # the code under test, in the CLI's own process too
N = 30
PT = np.linspace(1.0, 9.0, N)


def refused(read, *args, match, **kwargs) -> str:
    with pytest.raises(InputError, match=match) as info:
        read(*args, **kwargs)
    return str(info.value)


def fixed_frame_with_objects(path, payload):
    """A pandas "fixed" frame: PyTables stores the object column pickled."""
    frame = pd.DataFrame({"pt": PT, "obj": [payload] * N})
    frame.to_hdf(path, key="events", format="fixed")
    return path


def test_a_pickled_object_column_is_left_out_unread(tmp_path, payload):
    path = fixed_frame_with_objects(tmp_path / "mc.h5", payload)
    sample = load_mc(path)
    assert list(sample.frame.columns) == ["pt"]
    assert "stored pickled in node '/events/block1_values'" in sample.skipped["obj"]
    message = refused(load_mc, path, features="pt,obj", match="column 'obj': is a pandas object column")
    assert str(path) in message and "/events/block1_values" in message and "never read" in message
    conditions = tmp_path / "conditions.h5"
    pd.DataFrame({"Energy": [payload] * N}).to_hdf(conditions, key="conditions", format="fixed")
    refused(load_conditions, conditions, match="column 'Energy': condition is a pandas object column")


def test_the_cli_refuses_it_in_one_line(tmp_path, payload):
    path = fixed_frame_with_objects(tmp_path / "mc.h5", payload)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "train", "--data", str(path), "--features",
                           "pt,obj", "--out", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{path}: column 'obj': is a pandas object column, stored pickled in node '/events/block1_values'" \
        in done.stderr
    assert not out.exists()


def test_the_payload_is_real(tmp_path, payload):
    """The same file read by pandas runs a payload: the tests above refuse a real attack."""
    path = fixed_frame_with_objects(tmp_path / "mc.h5", type(payload)(tmp_path / "ran"))
    pd.read_hdf(path)
    assert (tmp_path / "ran").exists()


def table_frame(path):
    pd.DataFrame({"pt": PT, "eta": PT / 10}).to_hdf(path, key="events", format="table")
    return path


@pytest.mark.parametrize("node, attribute", [("/events", "evil"), ("/events/table", "values_block_0_kind")])
def test_a_pickled_pytables_attribute_is_refused(tmp_path, payload, node, attribute):
    """PyTables unpickles an attribute when it is read; a "table" frame keeps its column names in
    such attributes, which are decoded as plain lists, and anything that would call is refused."""
    path = table_frame(tmp_path / "mc.h5")
    assert list(load_mc(path).frame.columns) == ["pt", "eta"]  # names decoded, nothing unpickled
    with h5py.File(path, "a") as h5:
        h5[node].attrs[attribute] = np.bytes_(pickle.dumps(payload, protocol=0))
    for read in (load_mc, list_keys, load_zdc):
        message = refused(read, path, match=f"node '{node}' attribute '{attribute}' is a pickled Python object")
        assert message.startswith(str(path))


def test_pickled_literals_are_read_without_unpickling(payload):
    assert pickled_literal(pickle.dumps([("pt", 1), {"a": None}, 2.5, True], protocol=0)) == [("pt", 1), {"a": None}, 2.5, True]
    assert pickled_literal(pickle.dumps(["pt", "eta"], protocol=4)) == ["pt", "eta"]
    with pytest.raises(Exception, match="GLOBAL|REDUCE"):
        pickled_literal(pickle.dumps(payload, protocol=0))


def outside_link(tmp_path, payload):
    fixed_frame_with_objects(tmp_path / "other.h5", payload)
    with h5py.File(tmp_path / "mc.h5", "w") as h5:
        h5["pt"] = PT
        h5["events"] = h5py.ExternalLink("other.h5", "/events")
    return "node '/events' is an external link to 'other.h5'"


def external_storage(tmp_path, payload):
    PT.tofile(tmp_path / "raw.bin")
    with h5py.File(tmp_path / "mc.h5", "w") as h5:
        h5.create_dataset("pt", shape=(N,), dtype="f8", external=[(str(tmp_path / "raw.bin"), 0, N * 8)])
    return "node '/pt' keeps its data in the external file(s)"


def virtual_dataset(tmp_path, payload):
    with h5py.File(tmp_path / "source.h5", "w") as h5:
        h5["pt"] = PT
    layout = h5py.VirtualLayout(shape=(N,), dtype="f8")
    layout[:] = h5py.VirtualSource(tmp_path / "source.h5", "pt", shape=(N,))
    with h5py.File(tmp_path / "mc.h5", "w") as h5:
        h5.create_virtual_dataset("pt", layout)
    return "node '/pt' is a virtual dataset"


def dangling_soft_link(tmp_path, payload):
    with h5py.File(tmp_path / "mc.h5", "w") as h5:
        h5["pt"] = PT
        h5["alias"] = h5py.SoftLink("/gone")
    return "node '/alias' is a soft link to '/gone', which is not in the file"


@pytest.mark.parametrize("write", [outside_link, external_storage, virtual_dataset, dangling_soft_link],
                         ids=lambda w: w.__name__)
def test_nodes_leading_outside_the_file_are_refused(tmp_path, payload, write):
    message = write(tmp_path, payload)
    for read in (load_mc, list_keys, load_zdc):
        assert refused(read, tmp_path / "mc.h5", match=re.escape(message)).startswith(f"{tmp_path / 'mc.h5'}: {message}")


def test_a_group_linked_into_itself_is_read_once(tmp_path):
    with h5py.File(tmp_path / "mc.h5", "w") as h5:
        group = h5.create_group("events")
        group["pt"], group["eta"] = PT, PT / 10
        group["again"] = group  # a hard-link cycle
        h5["alias"] = h5py.SoftLink("/events")  # a soft link inside the file: fine, not followed
    assert list_keys(tmp_path / "mc.h5") == ["events"]
    assert list(load_mc(tmp_path / "mc.h5").frame.columns) == ["eta", "pt"]


def test_an_npz_object_array_is_refused(tmp_path, payload):
    path = tmp_path / "mc.npz"
    np.savez(path, pt=PT, obj=np.array([payload], dtype=object))
    for read in (load_mc, load_zdc):
        refused(read, path, match=r"mc.npz: array 'obj' holds pickled Python objects, which is never read")


@pytest.mark.parametrize("suffix", [".pkl", ".pickle"])
def test_a_pickle_file_is_refused_with_how_to_convert_it(tmp_path, payload, suffix):
    path = tmp_path / f"mc{suffix}"
    pd.to_pickle(payload, path)
    for read in (load_mc, load_zdc, load_conditions):
        message = refused(read, path, match="is a pickle file, which is never read: unpickling can run code")
        assert "to_parquet" in message and "numpy.savez" in message


def test_a_parquet_python_extension_column_stays_unread(tmp_path, payload):
    """pyarrow 14.0.0 unpickled the metadata of an "arrow.py_extension_type" column (CVE-2023-47248)."""
    pickled = pa.field("obj", pa.binary(), metadata={b"ARROW:extension:name": b"arrow.py_extension_type",
                                                       b"ARROW:extension:metadata": pickle.dumps(payload)})
    table = pa.table([pa.array(PT), pa.array([b"x"] * N)], schema=pa.schema([pa.field("pt", pa.float64()), pickled]))
    pq.write_table(table, tmp_path / "mc.parquet")
    assert load_mc(tmp_path / "mc.parquet").skipped == {"obj": "is not numeric (dtype binary)"}
    pq.write_table(table.rename_columns(["Energy", "obj"]), tmp_path / "conditions.parquet")
    refused(load_conditions, tmp_path / "conditions.parquet", match="condition not found")


# --- ROOT: uproot compiles Python classes from a file's streamers ---------------------------------

OPENS = "' +open('SEEN','w')+ '"  # creates ./SEEN if pasted unquoted into generated code
EXITS = "'+exit()+'"  # ends the test process if pasted unquoted


def crafted_root(path, version=21):
    """A TTree of class ``version`` (ROOT writes 20), for which uproot has no model: uproot compiles one
    from the file's own TTree streamer, whose member ``fDefaultEntryOffsetLen`` and base class
    ``TAttMarker`` are renamed (same length, so no byte count changes) to Python payloads; the tree
    title and a branch name carry payloads too. Written uncompressed so it can be patched in place."""
    with uproot.recreate(path, compression=None) as file:
        file.mktree("t", {"pt": "f8", OPENS: "f8"}, title=OPENS).extend({"pt": PT, OPENS: PT})
    data = path.read_bytes()
    renames = {b"fDefaultEntryOffsetLen": OPENS.encode(), b"\nTAttMarker": b"\n" + EXITS.encode()}
    for name, payload in renames.items():
        assert len(name) == len(payload) and name in data
        data = data.replace(name, payload)
    streamer = data.index(b"\x05TTree\x00") + 7 + 4  # name, empty title, checksum: the class version
    tree = data.rindex(b"\x05TTree\x01t")  # the tree's key: class, name, title, then the object
    tree += 9 + data[tree + 8] + 4  # past the title and the object's byte count: its version
    for offset, size in ((streamer, 4), (tree, 2)):
        assert int.from_bytes(data[offset:offset + size]) == 20
        data = data[:offset] + version.to_bytes(size) + data[offset + size:]
    path.write_bytes(data)
    return path


def test_root_names_in_a_streamer_stay_data(tmp_path, monkeypatch):
    """uproot pastes member names into generated code as repr() literals and class names hex-encoded
    into identifiers, so a crafted streamer is read as data: the payloads are names, nothing runs."""
    monkeypatch.chdir(tmp_path)
    path = crafted_root(tmp_path / "mc.root")
    with uproot.open(path) as file:
        tree = file["t"]
        assert type(tree).__name__ == "Model_TTree_v21"  # compiled from the crafted streamer
        assert tree.member(OPENS) == 1000 and tree.title == OPENS
        assert repr(OPENS) in tree.class_code and repr(EXITS) in tree.class_code  # pasted as literals
    sample = load_mc(path)
    assert list(sample.frame.columns) == ["pt", OPENS]
    assert not (tmp_path / "SEEN").exists()


def test_a_broken_root_streamer_is_refused_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = crafted_root(tmp_path / "mc.root", version=22)  # uproot keeps compiled classes per process
    data = path.read_bytes()
    title = data.index(OPENS.encode(), data.index(b"\x05TTree\x00")) + len(OPENS)  # the renamed member's title,
    kind = title + 1 + data[title]  # then its type code
    path.write_bytes(data[:kind] + (77).to_bytes(4) + data[kind + 4:])  # no such ROOT type
    message = refused(load_mc, path, match="could not be read as ROOT")
    assert message.startswith(f"{path}: ")
    assert not (tmp_path / "SEEN").exists()


def test_root_tree_aliases_are_never_evaluated(tmp_path, monkeypatch):
    """A TTree's aliases are Python expressions stored in the file; uproot's ``arrays`` evaluates
    them, and attribute access escapes its sandbox. The loader reads branches one by one and
    never asks for the aliases (uproot cannot write them: ``TTree.aliases`` stands in for them)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mc.root"
    with uproot.recreate(path) as file:
        file.mktree("t", {"pt": "f8"}).extend({"pt": PT})
    subclasses = ().__class__.__base__.__subclasses__()
    popen = [c.__name__ for c in subclasses].index("Popen")
    escape = f"pt * ().__class__.__base__.__subclasses__()[{popen}](['touch', 'SEEN']).wait()"
    with uproot.open(path) as file:
        file["t"].arrays(["e"], aliases={"e": escape}, library="np")
    assert (tmp_path / "SEEN").exists()  # the escape is real
    (tmp_path / "SEEN").unlink()
    asked = []
    monkeypatch.setattr(uproot.behaviors.TTree.TTree, "aliases",
                        property(lambda tree: asked.append(tree) or {"pt": escape, "e": escape}))
    assert load_mc(path).frame["pt"].tolist() == PT.tolist()
    assert asked == [] and not (tmp_path / "SEEN").exists()
