"""The split every family trains on, recorded in the run and rebuilt exactly; the named random streams;
``subsample``: one seeded subset of rows or events, the same positions whatever holds them."""

import math

import numpy as np
import pandas as pd
import pytest

from recogan_app import streams
from recogan_app.config import TabularConfig, ZDCConfig
from recogan_app.data.zdc import ZDCSample
from recogan_app.errors import InputError
from recogan_app.families.tabular import TabularRun
from recogan_app.splits import Split, draw_split, heldout_sizes, subsample


def test_split_is_disjoint_complete_sorted_and_sized():
    split = draw_split(1000, 50, 120, seed=3)
    parts = (split.train, split.monitor, split.test)
    assert [len(p) for p in parts] == [830, 50, 120]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1000))
    assert all(np.all(np.diff(p) > 0) for p in parts)
    # the permutation of numpy's own stream 0 of the seed: monitor first, then test
    order = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0,))).permutation(1000)
    assert np.array_equal(split.monitor, np.sort(order[:50])) and np.array_equal(split.test, np.sort(order[50:170]))
    assert heldout_sizes(1000, 0.05, 0.12) == (50, 120) and heldout_sizes(7, 0.01, 0.01) == (2, 2)


def test_streams_are_numpys_spawned_children_and_independent():
    assert streams.stream_seed(5, "gate") == int(np.random.SeedSequence(5, spawn_key=(7,)).generate_state(1)[0])
    assert len({streams.stream_seed(5, name) for name in streams.STREAMS}) == len(streams.STREAMS)
    assert streams.stream_seed(5, "split") != streams.stream_seed(6, "split")
    assert streams.record(5)["streams"]["split"] == 0


def test_a_recorded_split_is_rebuilt_exactly_or_refused():
    split = draw_split(500, 25, 25, seed=9)
    again = Split.rebuild(split.record(), 500, "mc.parquet")
    assert np.array_equal(again.train, split.train) and again.record() == split.record()
    with pytest.raises(InputError, match="mc.parquet: has 499 usable rows, the run split 500"):
        Split.rebuild(split.record(), 499, "mc.parquet")
    with pytest.raises(InputError, match="differs from the one the run recorded"):
        Split.rebuild({**split.record(), "sha256": "0" * 64}, 500, "mc.parquet")


def _run(tmp_path, frame, split, version="0.2.0"):
    path = tmp_path / "mc.parquet"
    frame.to_parquet(path, index=False)
    info = {"recogan_version": version, "data": {"source": str(path), "tree": None, "features": ["x", "z"],
                                                 "n_rows": len(frame), "sha256": None, "n_dropped_invalid": 0}}
    if split is not None:
        info["split"] = split.record()
    return TabularRun(tmp_path, info, TabularConfig()), path


def test_a_run_rebuilds_its_training_rows_from_its_source(tmp_path):
    frame = pd.DataFrame({"x": np.arange(300.0), "y": 1.0, "z": np.arange(300.0) ** 2})
    split = draw_split(300, 30, 30, seed=3)
    run, path = _run(tmp_path, frame, split)
    train, note = run.training_rows()
    pd.testing.assert_frame_equal(train, frame[["x", "z"]].iloc[split.train].reset_index(drop=True))
    assert str(path) in note
    held, _ = run.training_rows(frame)  # the frame the caller trained on gives the same rows
    pd.testing.assert_frame_equal(held, train)
    frame.iloc[:200].to_parquet(path, index=False)
    assert run.training_rows()[0] is None and "has 200 usable rows, the run split 300" in run.training_rows()[1]
    old, _ = _run(tmp_path, frame, None, version="0.1.0")
    assert old.training_rows() == (None, "the run was written by recogan 0.1.0, which recorded no split")


def test_settings_of_version_0_1_still_load():
    """0.1 held out one ``validation_fraction``, split equally between monitor and test."""
    config = TabularConfig.from_dict({"validation_fraction": 0.3, "seed": 2})
    assert math.isclose(config.monitor_fraction, 0.15) and math.isclose(config.test_fraction, 0.15)
    zdc = ZDCConfig.from_dict({"test_fraction": 0.2})
    assert (zdc.test_fraction, zdc.monitor_fraction, zdc.batch_size, zdc.param.batch_size.bounds) == (
        0.2, 0.1, None, (8, 100_000))  # the batch is the profile's, chosen by the device at the start


N = 200


def test_a_subset_is_seeded_distinct_rows_in_file_order():
    frame = pd.DataFrame({"row": np.arange(N), "pt": np.arange(N) * 0.5}, index=np.arange(N) + 1000)
    first = subsample(frame, 50, seed=3)
    assert first.equals(subsample(frame, 50, seed=3)) and not first.equals(subsample(frame, 50, seed=4))
    rows = first["row"].to_numpy()
    assert len(rows) == 50 and (np.diff(rows) > 0).all()  # distinct, in the file's order
    assert first.index.equals(pd.RangeIndex(50)) and np.array_equal(first["pt"], rows * 0.5)
    assert len(np.unique([subsample(frame, 50, seed)["row"].iloc[0] for seed in range(20)])) > 5  # not a fixed pick


def test_frames_columns_arrays_and_events_get_the_same_positions():
    rows = subsample(np.arange(N), 30, seed=7)
    assert np.array_equal(subsample(pd.Series(np.arange(N) * 2.0), 30, seed=7), rows * 2.0)
    events = ZDCSample(np.arange(N, dtype=np.int32)[:, None, None] * np.ones((1, 56, 30), np.int32),
                       np.arange(N * 9, dtype=float).reshape(N, 9))
    picked = subsample(events, 30, seed=7)
    assert np.array_equal(picked.images[:, 0, 0], rows) and np.array_equal(picked.conditions, events.conditions[rows])
    generator = np.random.default_rng(7)  # a generator stands for its seed, and moves on
    assert np.array_equal(subsample(np.arange(N), 30, generator), rows)
    assert not np.array_equal(subsample(np.arange(N), 30, generator), rows)


def test_zero_or_at_least_all_rows_is_the_data_itself():
    frame = pd.DataFrame({"pt": np.arange(10.0)})
    assert subsample(frame, 0, seed=1) is frame and subsample(frame, 10, seed=1) is frame
    assert subsample(frame, 11, seed=1) is frame
