"""``splits.subsample``: one seeded subset of rows or events, the same positions whatever holds them."""

import numpy as np
import pandas as pd

from recogan_app.data.zdc import ZDCSample
from recogan_app.splits import subsample

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
