"""load_mc on a production's output: several files (globs, folders, lists) read as one sample, the
cut applied as they are read, and identifier columns (run, event numbers) left out by default."""

import numpy as np
import pandas as pd
import pytest
import uproot

from recogan_app.data.sources import load_mc
from recogan_app.errors import InputError

SIZES = (120, 75, 160)


def _events(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"pt": rng.exponential(3.0, n), "eta": rng.normal(0.0, 1.5, n).astype(np.float32),
            "nj": rng.integers(0, 5, n).astype(np.int32)}


@pytest.fixture
def productions(tmp_path):
    """Three ROOT files of one TTree (plus a file the glob must not match), and what each holds."""
    folder = tmp_path / "mc"
    folder.mkdir()
    parts = []
    for k, n in enumerate(SIZES):
        columns = _events(n, k)
        with uproot.recreate(folder / f"mc_{k}.root") as file:
            file.mktree("events", {name: values.dtype for name, values in columns.items()}).extend(columns)  # TTree
        parts.append(pd.DataFrame(columns))
    (folder / "notes.txt").write_text("not MC")
    return folder, parts


def test_three_root_files_through_a_glob_are_their_concatenation(productions):
    folder, parts = productions
    sample = load_mc(str(folder / "mc_*.root"))
    pd.testing.assert_frame_equal(sample.frame, pd.concat(parts, ignore_index=True)[list(sample.frame.columns)])
    assert sample.files == tuple(str(folder / f"mc_{k}.root") for k in range(3)) and sample.tree == "events"
    assert sample.source == f"{folder / 'mc_*.root'} (3 files)" and sample.cut is None
    assert sample.n_before_cut == sample.n_after_cut == sum(SIZES)


def test_a_list_of_a_file_and_a_glob_and_a_folder_of_parquet(tmp_path, productions):
    _, parts = productions
    folder = tmp_path / "pq"
    folder.mkdir()
    for k, part in enumerate(parts):
        part.to_parquet(folder / f"part-{k}.parquet", index=False)
    (folder / "README.md").write_text("a folder's other files are not MC")
    whole = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(load_mc(folder).frame, whole)
    listed = load_mc([folder / "part-2.parquet", str(folder / "part-[01].parquet")])
    pd.testing.assert_frame_equal(listed.frame, pd.concat([parts[2], parts[0], parts[1]], ignore_index=True))
    assert listed.source == f"{folder / 'part-2.parquet'}, {folder / 'part-[01].parquet'} (3 files)"


def test_the_cut_is_applied_to_every_file_and_its_columns_need_not_be_features(productions):
    folder, parts = productions
    sample = load_mc(str(folder / "*.root"), features="pt,nj", cut="abs(eta) < 1 and nj >= 1")
    whole = pd.concat(parts, ignore_index=True)
    kept = whole[(whole["eta"].abs() < 1) & (whole["nj"] >= 1)].reset_index(drop=True)
    pd.testing.assert_frame_equal(sample.frame, kept[["pt", "nj"]])
    assert (sample.cut, sample.n_before_cut, sample.n_after_cut) == ("abs(eta) < 1 and nj >= 1", len(whole), len(kept))
    assert sample.selected() == f"the cut 'abs(eta) < 1 and nj >= 1' kept {len(kept)} of {len(whole)} rows " \
                                f"({len(kept) / len(whole):.1%})"


def test_a_file_whose_columns_differ_is_named_with_how(productions):
    folder, _ = productions
    with uproot.recreate(folder / "mc_3.root") as file:
        file["events"] = {"pt": np.ones(10), "nj": np.ones(10, np.int32)}
    with pytest.raises(InputError) as info:
        load_mc(str(folder / "mc_*.root"))
    assert str(info.value) == (f"{folder / 'mc_3.root'}: differs from {folder / 'mc_0.root'}: has no column 'eta' "
                               "(the files of one sample must hold the same columns)")


@pytest.mark.parametrize(("entry", "words"), [("nothing_*.root", "nothing_*.root: matches no file"),
                                              ("empty", "empty: is a folder without MC files")])
def test_a_glob_without_matches_and_an_empty_folder_are_refused(productions, entry, words):
    folder, _ = productions
    (folder / "empty").mkdir()
    with pytest.raises(InputError, match=words.replace("*", r"\*")):
        load_mc([str(folder / "mc_0.root"), str(folder / entry)])


def test_identifier_columns_are_left_out_unless_named(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({
        "pt": rng.exponential(3.0, n),
        "nTracks": rng.integers(0, 40, n),                   # a count: physics
        "eventNumber": rng.integers(0, 50, n),               # named like one, whatever its values
        "candidate": rng.permutation(n) + 10_000,            # unique integers
        "block": np.repeat(np.arange(20), n // 20) + 7,      # sorted, repeated: a luminosity block
    })
    path = tmp_path / "mc.csv"
    frame.to_csv(path, index=False)
    sample = load_mc(path)
    assert list(sample.frame.columns) == ["pt", "nTracks"]
    assert sample.skipped == {
        "eventNumber": "looks like an identifier (integers named like a run, event or luminosity-block number)",
        "candidate": "looks like an identifier (400 distinct integers in 400 rows)",
        "block": "looks like an identifier (integers in sorted order)"}
    named = load_mc(path, features=["pt", "candidate", "eventNumber"])
    pd.testing.assert_frame_equal(named.frame, frame[["pt", "candidate", "eventNumber"]])


def test_a_glob_or_a_folder_follows_no_symbolic_link(tmp_path, productions):
    """What a pattern finds stays where the pattern points: the dashboard checks only the pattern
    against its data root."""
    folder, _ = productions
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.root").write_bytes((folder / "mc_0.root").read_bytes())
    (folder / "linked.root").symlink_to(outside / "secret.root")
    (folder / "sub").symlink_to(outside)
    for entry, found in ((folder, "linked.root"), (folder / "*.root", "linked.root"), (folder / "*" / "*.root",
                                                                                       "sub/secret.root")):
        with pytest.raises(InputError) as info:
            load_mc(str(entry))
        assert str(info.value).startswith(f"{folder / found}: is reached through a symbolic link, which {entry} "
                                          "does not follow")
    assert len(load_mc(folder / "linked.root").frame) == SIZES[0]  # named in full: read


def test_only_the_features_and_the_cut_columns_are_read(productions, monkeypatch):
    folder, _ = productions
    read = []
    original = uproot.behaviors.TBranch.TBranch.array

    def array(branch, *args, **kwargs):
        read.append(branch.name)
        return original(branch, *args, **kwargs)

    monkeypatch.setattr(uproot.behaviors.TBranch.TBranch, "array", array)
    sample = load_mc(str(folder / "mc_*.root"), features="pt", cut="abs(eta) < 1")
    assert read == ["pt", "eta"] * 3 and list(sample.frame.columns) == ["pt"]
