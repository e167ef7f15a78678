"""How a run's MC is split into training, monitor and test rows, and how that split is rebuilt.

Every family splits through :func:`draw_split`: the *training* rows fit the preprocessing and the
networks, the *monitor* rows give the per-epoch snapshots (curves, best checkpoint, early
stopping), and the *test* rows, never used for a choice, give the final figures. The run records
the split (:meth:`Split.record`: seed, sizes and a SHA-256 of the row positions), so anyone
rebuilding it gets exactly the rows the run trained on, or a refusal saying why not.

A member of a bootstrap ensemble (:mod:`recogan_app.ensemble`) trains on a resample with
replacement of the training rows (stream "resample" of its own seed), while the split itself,
drawn by the ensemble's seed, is the same for every member: the monitor and test rows are
never resampled, so the ensemble is validated on MC no member has seen.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recogan_app import streams
from recogan_app.errors import InputError

__all__ = ["Split", "draw_split", "snapshot_positions", "subsample"]


@dataclass(frozen=True)
class Split:
    """Sorted row positions of the three parts; ``seed`` draws them (stream "split"); ``resample``,
    when set, is the seed whose stream "resample" drew ``train`` as a bootstrap (positions repeat)."""

    train: np.ndarray
    monitor: np.ndarray
    test: np.ndarray
    seed: int
    resample: int | None = None

    @property
    def n_rows(self) -> int:
        return len(self.train) + len(self.monitor) + len(self.test)

    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (self.train, self.monitor, self.test):
            h.update(np.asarray(part, dtype="<i8").tobytes())
            h.update(b"|")
        return h.hexdigest()

    def record(self) -> dict:
        """What ``run.json`` keeps under ``split``."""
        resample = {} if self.resample is None else {"resample": {"seed": self.resample, "stream": "resample"}}
        return {"seed": self.seed, "stream": "split", "n_rows": self.n_rows, "n_train": len(self.train),
                "n_monitor": len(self.monitor), "n_test": len(self.test), "sha256": self.digest(), **resample}

    @classmethod
    def rebuild(cls, record: dict, n_rows: int, where: str) -> "Split":
        """The split ``record`` describes, drawn again for ``n_rows`` rows; refused (naming ``where``)
        when the rows or the drawn positions differ from what was recorded."""
        if n_rows != record["n_rows"]:
            raise InputError(f"has {n_rows:,} usable rows, the run split {record['n_rows']:,}", path=where)
        split = draw_split(n_rows, record["n_monitor"], record["n_test"], record["seed"],
                           resample=record.get("resample", {}).get("seed"))
        if split.digest() != record["sha256"]:
            raise InputError("the split drawn again differs from the one the run recorded (another recogan "
                             "version drew it)", path=where)
        return split


def heldout_sizes(n_rows: int, monitor_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(monitor, test) row counts for the fractions: at least 2 each, rounded up."""
    return max(2, math.ceil(monitor_fraction * n_rows)), max(2, math.ceil(test_fraction * n_rows))


def draw_split(n_rows: int, n_monitor: int, n_test: int, seed: int, *, resample: int | None = None) -> Split:
    """A seeded random split of ``n_rows`` rows (stream "split" of ``seed``); with ``resample``,
    its training rows replaced by as many drawn from them with replacement (stream "resample" of
    ``resample``), the monitor and test rows unchanged."""
    order = streams.rng(seed, "split").permutation(n_rows)
    held = n_monitor + n_test
    train = order[held:]
    if resample is not None:
        train = streams.rng(resample, "resample").choice(train, len(train), replace=True)
    return Split(train=np.sort(train), monitor=np.sort(order[:n_monitor]), test=np.sort(order[n_monitor:held]),
                 seed=seed, resample=resample)


def snapshot_positions(n_monitor: int, rows: int, seed: int) -> np.ndarray:
    """Sorted positions, among ``n_monitor`` monitor rows, of the ``rows`` that every per-epoch
    snapshot of a training with ``seed`` compares (stream "snapshot")."""
    return np.sort(streams.rng(seed, "snapshot").permutation(n_monitor)[:rows])


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
