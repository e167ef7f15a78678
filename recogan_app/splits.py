"""How a run's MC is split into training, monitor and test rows, and how that split is rebuilt.

Every consumer of a split goes through this module, so a run's training rows are the same ones
whoever asks: training draws the split, and validation rebuilds it from what the run recorded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from recogan_app.data.sources import load_mc
from recogan_app.errors import InputError
from recogan_app.files import file_sha256

__all__ = ["split_mc", "subsample", "training_split"]


def split_mc(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, monitor, test): a seeded random split; monitor and test share ``fraction`` equally."""
    order = np.random.default_rng(seed).permutation(len(frame))
    n_held = max(4, math.ceil(fraction * len(frame)))
    n_monitor = n_held // 2
    take = lambda idx: frame.iloc[np.sort(idx)].reset_index(drop=True)  # noqa: E731
    return take(order[n_held:]), take(order[:n_monitor]), take(order[n_monitor:n_held])


def training_split(run) -> tuple[pd.DataFrame | None, str]:
    """The MC a run was trained on, rebuilt from its source exactly as training split it.

    The copula baseline must learn from the same events as the model. The source is re-read
    and re-split with the run's seed; it is refused (None) when it cannot be read, or when its
    checksum or row count no longer match what the run recorded.

    Parameters
    ----------
    run : recogan_app.run.Run

    Returns
    -------
    frame : DataFrame or None
        The training split, or None when it cannot be rebuilt.
    note : str
        What was used, or why nothing could be.
    """
    data = run.info.get("data", {})
    source = data.get("source")
    if not source:
        return None, "the run records no data source"
    try:
        sample = load_mc(source, tree=data.get("tree"), features=data.get("features"),
                         drop_invalid=bool(data.get("n_dropped_invalid")))
    except InputError as exc:
        return None, f"the run's training MC could not be read ({exc})"
    if data.get("sha256") and Path(source).is_file() and file_sha256(source) != data["sha256"]:
        return None, f"{source} has changed since training (SHA-256 differs)"
    if data.get("n_rows") not in (None, len(sample.frame)):
        return None, f"{source} has {len(sample.frame):,} rows, the run trained on {data['n_rows']:,}"
    train, _, _ = split_mc(sample.frame, run.config.validation_fraction, run.config.seed)
    return train, f"the training split of {source} ({len(train):,} rows)"


def subsample(data, size: int, seed):
    """A seeded random subset of ``size`` rows or events of ``data``, in their original order; ``data``
    itself (no copy) when ``size`` is 0 or not below its length.

    One function for quick looks, previews and the ZDC gallery and floor: one seed, the same rows.
    ``data``: a DataFrame or Series (returned with a fresh index), an array, or events with a
    ``subset(positions)`` method (ZDCSample); ``seed``: an int or a numpy Generator.
    """
    if not 0 < size < len(data):
        return data
    rows = np.sort(np.random.default_rng(seed).choice(len(data), size, replace=False))
    if hasattr(data, "subset"):
        return data.subset(rows)
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return data.iloc[rows].reset_index(drop=True)
    return np.asarray(data)[rows]
