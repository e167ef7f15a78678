"""Read a Monte Carlo sample for training, refusing bad input with one clear message.

:func:`load_mc` reads files (ROOT, Parquet, CSV, HDF5, npz; one, several, a glob or a folder; ROOT
files also by URL) or an embedded toy, applies the selection (``cut``), keeps the numeric feature
columns and checks them: a problem is one :class:`~recogan_app.errors.InputError` naming the file
and the column. An event weight (``weights``) is read beside the features and never modelled;
without it, a column named like a weight is left out of the features and said.
:func:`list_keys` lists the trees, keys or arrays a file offers as ``tree``.
:func:`read_arrays` reads arrays of any shape (ZDC images and conditions) through the same checks:
every file is read here.

Example
-------
>>> sample = load_mc("xic.root", tree="events", features="pt,eta,decay_length")  # doctest: +SKIP
>>> sample = load_mc(["mc/*.root", "extra.root"], cut="pt > 2 and abs(eta) < 0.8")  # doctest: +SKIP
>>> sample.frame.shape  # doctest: +SKIP
(531548, 3)
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import glob
import importlib.util
import itertools
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import awkward as ak
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import uproot

from recogan_app.data.containers import (PICKLE_SUFFIXES, check_regular_file, hdf5_arrays, hdf5_columns,
                                         hdf5_tables, named_columns, open_hdf5, read_npz, reading, refuse_pickle)
from recogan_app.data.derived import Derivations
from recogan_app.data.selection import Selection
from recogan_app.errors import InputError, closest
from recogan_app.metrics.distributions import effective_size

__all__ = ["EMBEDDED", "FORMATS", "IMAGE_FORMATS", "MCSample", "Table", "is_remote", "list_keys", "load_mc",
           "named_like_weight", "read_arrays", "read_columns"]

EMBEDDED = ("toy-xic", "toy-xic-12", "toy-pid", "toy-wjet")
"""Names that load an embedded toy sample instead of a file."""

FORMATS = {".root": "ROOT", ".parquet": "Parquet", ".pq": "Parquet", ".csv": "CSV", ".h5": "HDF5", ".hdf5": "HDF5",
           ".hdf": "HDF5", ".npz": "npz"}
"""File extension (lower case) to format name: the files a table (MC sample, ZDC conditions) is read from."""
IMAGE_FORMATS = {suffix: fmt for suffix, fmt in FORMATS.items() if fmt in ("HDF5", "npz")}
"""The formats that hold arrays of any shape (ZDC images)."""

_NPZ_NAMES = ("columns", "feature_names")
_ROOT_TREES = {"TTree", "TNtuple", "TNtupleD"}
_SAVED_INDEX = re.compile(r"Unnamed: \d+|__index_level_\d+__")  # pandas' names for a written index
_INDEX_WHY = "looks like a saved row index, not a feature"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INDEX_NAMES = ("index", "level_0")
"""What ``reset_index`` names a frame's index: a saved index when it counts the rows 0, 1, 2…"""
_GLOB = re.compile(r"[*?[]")
_REMOTE = re.compile(r"(https?|x?root)://", re.IGNORECASE)
_REMOTE_MODULES = {"http": ("aiohttp",), "https": ("aiohttp",), "root": ("fsspec_xrootd", "XRootD"),
                   "xroot": ("fsspec_xrootd", "XRootD")}
"""What uproot's fsspec backend needs to read a URL of each scheme (the extra ``[remote]``)."""
_IDENTIFIER_NAME = re.compile(r"(run|event|evt|lumi|luminosity)[ _]?(number|num|nr|no|id|block|blk|section)?s?",
                              re.IGNORECASE)
"""Names of bookkeeping numbers: run, event, luminosity block (``runNumber``, ``evtNum``, ``lumiBlock``…)."""
_IDENTIFIER_ROWS = 50
"""Fewest rows on which unique or sorted integers say "identifier" rather than chance."""
_WEIGHT_NAME = re.compile(r"(?i:.*weight.*|wgt|.*_wgt)|w")
"""Names of event weights (``weight``, ``EventWeight``, ``sWeight``, ``genWeight``, ``wgt``, ``w``)."""


def _counts_rows(values) -> bool:
    dtype = getattr(values, "dtype", None)  # jagged (awkward) columns have no numpy dtype: not an index
    if getattr(values, "ndim", None) != 1 or not isinstance(dtype, np.dtype) or dtype.kind not in "iu":
        return False
    return np.array_equal(np.asarray(values), np.arange(len(values)))


@dataclass(frozen=True, eq=False)
class MCSample:
    """A checked MC sample, ready for preprocessing.

    Attributes
    ----------
    frame : pandas.DataFrame
        The selected numeric feature columns, in the order asked for, numpy dtypes as stored
        (integers stay integers, float32 stays float32; booleans become int8 0/1). Every value is
        finite, there are at least ``min_rows`` rows and no column is constant.
    source : str
        The path as given, or the embedded name.
    tree : str or None
        The ROOT tree, HDF5 key or npz array actually read; None for a single-table file.
    n_dropped : int
        Rows dropped for NaN/inf values (``drop_invalid=True``).
    invalid_counts : dict of str to int
        NaN/inf count per column before dropping; only columns that had some.
    skipped : dict of str to str
        Columns left out when no features were named, each with the reason (text, jagged, a
        saved index, constant, an identifier such as an event number, beyond float32's range):
        said to the user, so that no column disappears unnoticed.
    files : tuple of str
        The files read, in order (several for a glob, a folder or a list); empty for an embedded
        toy or a DataFrame.
    cut : str or None
        The selection applied (see :class:`~recogan_app.data.selection.Selection`).
    n_before_cut, n_after_cut : int
        Rows read, and rows the cut kept (before any NaN/inf row was dropped).
    weights : ndarray or None
        Each row's event weight (float64, finite, any sign), read from ``weight_column``; None for
        an unweighted sample. Never a feature: a model learns the weighted distribution of ``frame``.
    weight_column : str or None
        The column the weights were read from.
    derived : dict of str to str
        The derived columns (in ``frame``, the MC's values) and their formulas, in the order of
        computation (:mod:`recogan_app.data.derived`): not modelled, computed after generation.
    """

    frame: pd.DataFrame = field(repr=False)
    source: str
    tree: str | None
    n_dropped: int
    invalid_counts: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    cut: str | None = None
    n_before_cut: int = 0
    n_after_cut: int = 0
    weights: np.ndarray | None = field(default=None, repr=False)
    weight_column: str | None = None
    derived: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n_effective(self) -> float:
        """The effective sample size (Σw)²/Σw²: as many unweighted events carry the same statistical
        power (the number of rows for an unweighted sample)."""
        return effective_size(self.weights, len(self.frame))

    def subset(self, rows) -> "MCSample":
        """The sample at row positions ``rows`` (a split's part): frame and weights alike."""
        return dataclasses.replace(self, frame=self.frame.iloc[rows].reset_index(drop=True),
                                   weights=None if self.weights is None else self.weights[rows])

    def weighting(self) -> dict | None:
        """The column, Σw and the effective sample size (what run.json keeps under ``data.weights``,
        with the training split's effective size ``n_effective_train``)."""
        if self.weights is None:
            return None
        return {"column": self.weight_column, "sum": float(self.weights.sum()), "n_effective": self.n_effective}

    def check_trainable_weights(self) -> None:
        """Refuse negative weights for training: a likelihood or a sampler cannot represent a
        negative density (a generated event has no sign)."""
        if self.weights is not None and (negative := int((self.weights < 0).sum())):
            raise InputError(f"has {negative:,} rows with negative weights (of {len(self.weights):,}); training needs "
                             "weights >= 0", path=self.source, column=self.weight_column,
                             hint="a generator cannot produce negative density: train on the positive part or "
                                  "reweight first; validation (recogan validate --weights) accepts them")
        if self.weights is not None and not self.weights.sum() > 0:
            raise InputError("has no positive weight: the weighted sample is empty", path=self.source,
                             column=self.weight_column)

    def left_out(self) -> str:
        """The skipped columns and why, in one line ('' when none)."""
        return "; ".join(f"column '{name}' {why}" for name, why in self.skipped.items())

    def selected(self) -> str:
        """What the cut kept, in words ('' without a cut)."""
        if self.cut is None:
            return ""
        share = f" ({self.n_after_cut / self.n_before_cut:.1%})" if self.n_before_cut else ""
        return f"the cut '{self.cut}' kept {self.n_after_cut:,} of {self.n_before_cut:,} rows{share}"

    def describe(self) -> pd.DataFrame:
        """One row per feature: its ``dtype``, ``min``, ``max`` and ``invalid`` (NaN/inf values in
        the file, before any were dropped): what to look at before choosing transforms."""
        frame = self.frame
        invalid = pd.Series([self.invalid_counts.get(name, 0) for name in frame.columns], index=frame.columns)
        return pd.DataFrame({"dtype": frame.dtypes.astype(str), "min": frame.min(), "max": frame.max(),
                             "invalid": invalid}).rename_axis("feature")


@dataclass(frozen=True)
class Table:
    """What a reader found: the columns (name to the reason it is not a flat numeric column, None if
    it is; an image column has a shape per row), read by ``read(names)``."""

    columns: dict[str, str | None]
    n_rows: int
    read: Callable[[list[str]], Mapping[str, np.ndarray]]
    tree: str | None = None
    kind: str = "tree"

    @property
    def where(self) -> str:
        return f" in {self.kind} '{self.tree}'" if self.tree else ""


def load_mc(path, *, tree=None, features=None, cut=None, weights=None, derive=None, drop_invalid=False,
            min_rows=2) -> MCSample:
    """Read and check an MC sample.

    Parameters
    ----------
    path : str, pathlib.Path, list of them, or pandas.DataFrame
        A ``.root``, ``.parquet``/``.pq``, ``.csv``, ``.h5``/``.hdf5``/``.hdf`` or ``.npz`` file, a
        glob pattern (``"mc/*.root"``, matches sorted), a folder (its files of those formats, sorted)
        or a list of these, read one file at a time into one sample (every file must hold the same
        columns); a ``root://``, ``http://`` or ``https://`` URL of a ROOT file, read by uproot through
        fsspec (the extra ``[remote]``; no SHA-256 is taken: that would download the whole file);
        one of :data:`EMBEDDED`; or a frame already in memory (its source is then "a DataFrame").
    tree : str, optional
        The ROOT tree (TTree or RNTuple), HDF5 key/group/dataset or npz array to read; needed only
        when the file holds more than one (see :func:`list_keys`).
    features : list of str or str, optional
        Columns to keep, in this order (a string is split at commas). Default: every numeric
        top-level column; text, jagged, saved-index, constant and identifier columns (integers unique
        or nearly, sorted, or named like run/event/luminosity-block numbers) are skipped (see
        ``MCSample.skipped``).
    cut : str, optional
        A selection such as ``"pt > 2 and abs(eta) < 0.8"``, applied to each file as it is read,
        before anything else (:class:`~recogan_app.data.selection.Selection`: no code is run). The
        columns it reads need not be features.
    weights : str, optional
        The column of event weights (generator, reweighting, sWeights…), read beside the features
        and never one of them (``MCSample.weights``). Without it, columns named like a weight
        (``weight``, ``EventWeight``, ``sWeight``, ``w``…) are left out of the default features.
    derive : dict of str to str, optional
        Derived columns, name to formula (``{"pt": "hypot(px, py)"}``,
        :class:`~recogan_app.data.derived.Derivations`): each must be a column of the file, is read
        beside the features (after them when ``features`` are named) and must not be one of them; a
        formula reads features and other derived columns only.
    drop_invalid : bool
        Drop rows with NaN/inf values (in a feature or the weight) instead of refusing the file.
    min_rows : int
        Fewest rows (after dropping) a usable sample has.

    Returns
    -------
    MCSample

    Raises
    ------
    InputError
        Missing, unreadable or empty file; files that differ in their columns; a bad cut or one that
        reads an unknown column; unknown tree or column; a non-numeric or constant column; a weight
        column that is also a feature; NaN/inf values (unless ``drop_invalid``); too few rows.
    """
    selection = None if cut is None else Selection(cut)  # refused before any file is opened
    derivations = Derivations(derive)
    in_memory = isinstance(path, pd.DataFrame)  # a notebook's frame gets the same checks as a file
    source, files = ("a DataFrame", ()) if in_memory else _sources(path)
    wanted = _parse_features(features, source)
    for name in wanted or []:
        if name in derivations.formulas:
            raise InputError("is both a feature and derived: a derived column is computed from the generated "
                             "columns, neither modelled nor given", path=source, column=name,
                             hint="leave it out of --features and --conditions")
    if in_memory:
        _no_tree(source, tree, "DataFrame")
    tables = [(source, _table(path))] if in_memory else _open_all(source, files, tree)
    table = tables[0][1]
    n_rows = sum(t.n_rows for _, t in tables)
    names = _select(table, wanted, source, n_rows=n_rows)
    if weights is not None:
        _select(table, [weights], source, n_rows=n_rows)  # found and numeric
        if wanted and weights in wanted:
            raise InputError("is both a feature and the weights: a weight is never modelled", path=source,
                             column=weights, hint="leave it out of --features")
        names = [name for name in names if name != weights]
    for name in derivations.names:
        if name not in table.columns:
            raise InputError(f"is derived but is not a column{table.where}: a derived column replaces a column "
                             "of the file", path=source, column=name, hint=closest(name, table.columns))
        if table.columns[name] is not None:
            raise InputError(table.columns[name], path=source, column=name)
    names += [name for name in derivations.names if name not in names]
    for formula in derivations.formulas.values():
        formula.check_columns(table.columns, path=source)
    extra = [] if weights is None else [weights]
    if selection is not None:
        selection.check_columns(table.columns, path=source)
        extra += [name for name in selection.columns if name not in names + extra]
    data, n_before_cut = _read_selected(tables, names + extra, selection)
    frame = pd.DataFrame({name: _native(data[name]) for name in names})
    n_after_cut = len(frame)
    skipped = {} if wanted else {name: why for name, why in table.columns.items() if why is not None}
    empty = [name for name, values in frame.items() if len(frame) and values.dtype.kind == "f"
             and not np.isfinite(values.to_numpy()).any()]  # a NanoAOD branch never filled in this sample
    if empty and wanted:
        raise InputError("is NaN/inf in every row: there is nothing to learn", path=source, column=empty[0],
                         hint="leave it out of the features")
    if empty:
        skipped.update(dict.fromkeys(empty, "is NaN/inf in every row (a branch never filled)"))
        names = [name for name in names if name not in empty]
        frame = frame[names]

    weight = None if weights is None else np.asarray(data[weights], dtype=np.float64)
    floats = frame.select_dtypes("floating")
    if weight is not None:
        floats = floats.assign(**{weights: weight})
    invalid = ~np.isfinite(floats.to_numpy())
    counts = {name: n for name, n in zip(floats.columns, invalid.sum(axis=0).tolist()) if n}
    bad_rows = invalid.any(axis=1)
    if counts and not drop_invalid:
        worst = max(counts, key=counts.get)
        raise InputError(
            f"has {counts[worst]} NaN/inf values; {sum(counts.values())} in all over "
            f"{len(counts)} column(s) and {int(bad_rows.sum())} row(s)",
            path=source, column=worst,
            hint="drop those rows (--drop-invalid; in the dashboard: 'Drop rows with NaN/inf')",
        )
    n_dropped = int(bad_rows.sum())
    if n_dropped:
        frame = frame[~bad_rows].reset_index(drop=True)
        weight = None if weight is None else weight[~bad_rows]

    if len(frame) < min_rows:
        after = [f"the cut '{selection.shown}' (it kept {n_after_cut:,} of {n_before_cut:,})"] if selection else []
        after += [f"dropping {n_dropped} with NaN/inf"] if n_dropped else []
        after = f" after {' and '.join(after)}" if after else ""
        raise InputError(f"has {len(frame)} rows{after}; training needs at least {min_rows}", path=source)
    if len(frame) > 1:
        for name in (n for n in names if n not in derivations.formulas):  # a derived column is never learnt
            why, hint = _unlearnable(frame[name].to_numpy())
            if why and wanted:
                raise InputError(why, path=source, column=name, hint=hint)
            if not (why or wanted):
                why = _identifier(name, frame[name].to_numpy()) or _weight_like(name, weights)
            if why:
                skipped[name] = why
        if all(name in skipped for name in names):
            raise InputError(f"has no usable columns{table.where}", path=source,
                             hint="; ".join(f"'{name}' {why}" for name, why in list(skipped.items())[:3]))
        frame = frame.drop(columns=[name for name in names if name in skipped])
    derivations.check([name for name in frame.columns if name not in derivations.formulas], path=source)
    return MCSample(frame, source, table.tree, n_dropped, counts, skipped, files=files,
                    cut=selection and selection.expression, n_before_cut=n_before_cut, n_after_cut=n_after_cut,
                    weights=weight, weight_column=weights, derived=derivations.record())


def list_keys(path) -> list[str]:
    """The values ``tree`` may take for this file, for a tree selector.

    Parameters
    ----------
    path : str or pathlib.Path
        As for :func:`load_mc`.

    Returns
    -------
    list of str
        ROOT trees (TTree and RNTuple, without cycle numbers), HDF5 keys (pandas keys, groups of
        1-D datasets, compound datasets, 2-D datasets with a ``columns`` attribute; ``"/"`` is the
        root group) or npz tables (structured or 2-D arrays). Empty for a file that holds a single
        unnamed table (CSV, Parquet, npz column arrays) and for an embedded name.
    """
    source = str(path)
    if source in EMBEDDED:
        return []
    fmt = _format(source, FORMATS, EMBEDDED)
    if fmt == "ROOT":
        with reading(source, fmt), uproot.open(source) as file:
            return _root_trees(file)
    if fmt == "HDF5":
        with open_hdf5(source) as h5:
            return list(hdf5_tables(h5))
    if fmt == "npz":
        return _npz_tables(read_npz(source))
    return []


def read_columns(path, names, *, tree=None) -> tuple[dict[str, str | None], dict[str, np.ndarray], int]:
    """What the dashboard counts a cut on while it is typed: the columns of ``path`` (as :func:`load_mc`
    takes it; name to why it is not a flat numeric column, None when it is), the values of those of
    ``names`` that are, in every file, and the number of rows. The cut checks the columns it reads
    (:meth:`~recogan_app.data.selection.Expression.check_columns`), with :func:`load_mc`'s message."""
    source, files = _sources(path)
    tables = _open_all(source, files, tree)
    columns = tables[0][1].columns
    readable = [name for name in names if name in columns and columns[name] is None]
    return columns, (_read_selected(tables, readable, None)[0] if readable else {}), sum(t.n_rows for _, t in tables)


def named_like_weight(name: str) -> bool:
    """Whether a column is named like an event weight (``weight``, ``EventWeight``, ``sWeight``,
    ``wgt``, ``w``…): offered as the weights, never modelled silently."""
    return bool(_WEIGHT_NAME.fullmatch(name))


def read_arrays(path, *, formats=FORMATS) -> Table:
    """Every named array at the top of a file (extension among ``formats``), of any shape, as one table
    read through the checks and messages of :func:`load_mc`: an npz's arrays; an HDF5 file's top-level
    datasets, its top-level tables split into columns; a CSV, Parquet or ROOT file's one table."""
    source = str(path)
    fmt = _format(source, formats)
    if fmt == "npz":
        return _table({key: values for key, values in read_npz(source).items() if values.ndim})
    if fmt == "HDF5":
        with open_hdf5(source) as h5:
            data, unusable = hdf5_arrays(h5, source)
        return _table(data, unusable=unusable)
    return _OPENERS[fmt](source, None)


# --- the checks shared by every format ------------------------------------------------------------


def _parse_features(features, path) -> list[str] | None:
    if features is None:
        return None
    names = [str(n).strip() for n in (features.split(",") if isinstance(features, str) else features)]
    names = [n for n in names if n]
    if not names:
        raise InputError("no features selected", path=path,
                         hint="name some columns with --features, or leave it out to use all numeric ones")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise InputError("is listed twice in features", path=path, column=twice)
    return names


def _select(table: Table, wanted: list[str] | None, path: str, n_rows: int) -> list[str]:
    """The columns to read: ``wanted`` after checking it, or every numeric column (``n_rows``: in
    every file together)."""
    if n_rows == 0:
        raise InputError(f"is empty (0 rows{table.where})", path=path)
    stripped = [name.strip() for name in table.columns]
    alike = next((name for i, name in enumerate(table.columns) if stripped[i] in stripped[:i]), None)
    if alike is not None:
        other = list(table.columns)[stripped.index(alike.strip())]
        raise InputError(f"differs from column '{other}' only by spaces around the name{table.where}", path=path,
                         column=alike, hint="rename one of them: --features could not tell them apart")
    if wanted is None:
        names = [name for name, why in table.columns.items() if why is None]
        if not names:
            found = ", ".join(f"'{n}'" for n in list(table.columns)[:5]) or "none"
            more = ", ..." if len(table.columns) > 5 else ""
            raise InputError(f"has no numeric columns{table.where}", path=path, hint=f"found: {found}{more}")
        return names
    for name in wanted:
        if name not in table.columns:
            usable = [column for column, why in table.columns.items() if why is None]  # never a jagged branch
            raise InputError(f"not found{table.where}", path=path, column=name, hint=closest(name, usable))
        if table.columns[name] is not None:
            raise InputError(table.columns[name], path=path, column=name)
    return wanted


def _unusable(name: str, values) -> str | None:
    """Why a column cannot be a feature, or None if it can."""
    if _SAVED_INDEX.fullmatch(name) or (name in _INDEX_NAMES and _counts_rows(values)):
        return _INDEX_WHY
    if values.ndim != 1:
        return f"is not a flat column (shape {values.shape[1:]} per row)"
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
        return None
    return f"is not numeric (dtype {values.dtype}{_first_non_number(values)})"


def _identifier(name: str, values: np.ndarray) -> str | None:
    """Why an integer column looks like bookkeeping (run, event, luminosity block), not physics; or None."""
    if values.dtype.kind not in "iu":
        return None
    if _IDENTIFIER_NAME.fullmatch(name):
        return "looks like an identifier (integers named like a run, event or luminosity-block number)"
    if len(values) < _IDENTIFIER_ROWS:
        return None
    distinct = len(np.unique(values))
    if distinct >= 0.99 * len(values):
        return f"looks like an identifier ({distinct:,} distinct integers in {len(values):,} rows)"
    if distinct >= 3 and ((values[1:] >= values[:-1]).all() or (values[1:] <= values[:-1]).all()):
        return "looks like an identifier (integers in sorted order)"
    return None


def _weight_like(name: str, weights: str | None) -> str | None:
    """Why a column left out of the default features looks like an event weight (never modelled
    silently), or None."""
    if weights is not None or not named_like_weight(name):
        return None
    return f"looks like an event weight: --weights {name} weights the events by it instead of modelling it"


def _unlearnable(values: np.ndarray) -> tuple[str, str] | tuple[None, None]:
    """Why a loaded column cannot be learnt, and what to do about it; (None, None) if it can."""
    if values.min() == values.max():
        return f"is constant (value {values[0].item()}): there is nothing to learn", "leave it out of the features"
    peak = np.abs(values).max() if values.dtype.kind == "f" else 0
    if peak > _FLOAT32_MAX:  # XGBoost's classifier test and the networks compute in float32
        return (f"has values up to {peak:.3g}, beyond float32's range ({_FLOAT32_MAX:.2g}) in which the networks "
                "and the classifier test compute", "express it in other units, or leave it out of the features")
    return None, None


def _first_non_number(values) -> str:
    """``"; first non-number: 'abc' at row 17"`` for text that is mostly numbers, else ``""``."""
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        return ""
    series = pd.Series(values)
    parsed = pd.to_numeric(series, errors="coerce")
    bad = (parsed.isna() & series.notna()).to_numpy()
    if not bad.any() or not parsed.notna().any():
        return ""
    row = int(bad.argmax())
    return f"; first non-number: {series.iloc[row]!r} at row {row}"


def _native(values) -> np.ndarray:
    """A native-endian numpy array; booleans as int8 0/1."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return values.astype(np.int8)
    return values.astype(values.dtype.newbyteorder("="), copy=False)


def _table(data: Mapping[str, np.ndarray] | pd.DataFrame, tree: str | None = None, kind: str = "key",
           unusable: Mapping[str, str] | None = None) -> Table:
    """A table over in-memory columns (a frame's too); those whose length differs from the most common
    are unusable, and so are those ``unusable`` names (with its reason)."""
    if isinstance(data, pd.DataFrame):
        data = {str(name): data[name] for name in data.columns}
    lengths = {name: len(values) for name, values in data.items()}
    n_rows = Counter(lengths.values()).most_common(1)[0][0] if lengths else 0
    unusable = unusable or {}
    columns = {
        name: (f"has {lengths[name]} rows but the other columns have {n_rows}"
               if lengths[name] != n_rows else unusable.get(name) or _unusable(name, values))
        for name, values in data.items()
    }
    return Table(columns, n_rows, lambda names: {n: np.asarray(data[n]) for n in names}, tree, kind)


def _choose(path: str, tree: str | None, keys: list[str], kind: str, expected: str | None = None) -> str:
    """The tree/key/array to read: ``tree`` if valid, else the only one; ``expected`` says what
    would have counted when there is none."""
    if tree is not None:
        if tree not in keys:
            raise InputError(f"has no {kind} '{tree}'", path=path, hint=closest(tree, keys))
        return tree
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise InputError(f"holds no {kind} to read", path=path, hint=expected)
    listed = ", ".join(f"'{k}'" for k in keys)
    raise InputError(f"holds {len(keys)} {kind}s ({listed}); choose one with --tree", path=path)


def _no_tree(path: str, tree: str | None, fmt: str) -> None:
    if tree is not None:
        raise InputError(f"is a {fmt} source with a single table; there is no tree '{tree}' to choose", path=path)


# --- many files ------------------------------------------------------------------------------------


def _sources(path) -> tuple[str, tuple[str, ...]]:
    """The source as messages name it, and the files it stands for: each entry a file, a glob
    pattern (its matches, sorted) or a folder (its files of a known format, sorted). An embedded
    toy stands alone and is no file."""
    entries = [str(p) for p in path] if isinstance(path, (list, tuple)) else [str(path)]
    if not entries:
        raise InputError("no MC file given")
    if len(entries) == 1 and entries[0] in EMBEDDED:
        return entries[0], ()
    files: list[str] = []
    for entry in entries:
        if entry in EMBEDDED:
            raise InputError("is an embedded toy: it cannot be read together with files", path=entry)
        files += [name for name in _expanded(entry) if name not in files]
    n = len(files)
    source = ", ".join(entries) + (f" ({n} file{'s' * (n > 1)})" if entries != files else "")
    return source, tuple(files)


def is_remote(path) -> bool:
    """Whether ``path`` is a URL (``root://``, ``https://``…), read by uproot through fsspec: never
    a local path to resolve, and never hashed (that would download the whole file)."""
    return bool(_REMOTE.match(str(path)))


def _expanded(entry: str) -> list[str]:
    """The files of one entry. What a glob or a folder finds is refused where a symbolic link
    leads to it: only a path named in full may (the dashboard checks those against its data root)."""
    if is_remote(entry):  # one remote file: a URL names it in full (no globs, no folders)
        return [entry]
    where = Path(entry)
    if where.is_dir():
        fixed = where
        found = sorted(str(p) for p in where.iterdir()
                       if p.suffix.lower() in FORMATS and not p.name.startswith("."))
        if not found:
            raise InputError("is a folder without MC files", path=entry, hint=f"expected {', '.join(FORMATS)}")
    elif not where.exists() and _GLOB.search(entry):
        fixed = Path(*itertools.takewhile(lambda part: not _GLOB.search(part), where.parts))
        found = sorted(glob.glob(entry))
        if not found:
            raise InputError("matches no file", path=entry)
    else:
        return [entry]
    for name in found:
        if Path(name).resolve() != fixed.resolve() / Path(name).relative_to(fixed):
            raise InputError(f"is reached through a symbolic link, which {entry} does not follow", path=name,
                             hint="name the file itself")
    return found


def _open_all(source: str, files: tuple[str, ...], tree: str | None) -> list[tuple[str, Table]]:
    """Each file's table (the embedded toy's when there is no file), refusing a file whose columns
    differ from the first one's; every file is read from the tree the first one was."""
    if not files:
        return [(source, _open(source, tree))]
    first = _open(files[0], tree)
    tables = [(files[0], first)]
    for path in files[1:]:
        table = _open(path, first.tree if tree is None else tree)
        _same_columns(first, table, files[0], path)
        tables.append((path, table))
    return tables


def _same_columns(first: Table, table: Table, first_path: str, path: str) -> None:
    missing = [name for name in first.columns if name not in table.columns]
    extra = [name for name in table.columns if name not in first.columns]
    differs = [name for name, why in first.columns.items()
               if name in table.columns and (why is None) != (table.columns[name] is None)]
    if missing:
        how = f"has no column '{missing[0]}'" + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
    elif extra:
        how = f"has a column '{extra[0]}' that {first_path} has not" + (
            f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
    elif differs:
        name = differs[0]
        how = (f"column '{name}' {table.columns[name] or 'is a flat numeric column'} here, but "
               f"{first.columns[name] or 'is a flat numeric column'} in {first_path}")
    else:
        return
    raise InputError(f"differs from {first_path}: {how}", path=path,
                     hint="the files of one sample must hold the same columns")


def _read_selected(tables: list[tuple[str, Table]], names: list[str],
                   selection: Selection | None) -> tuple[dict[str, np.ndarray], int]:
    """The columns ``names`` of every table, one file at a time, each cut by ``selection`` as it is
    read (only the kept rows are held); and the number of rows before the cut."""
    parts, n_read = [], 0
    for path, table in tables:
        data = table.read(names)
        for name in names:
            if (why := _unusable(name, data[name])) is not None:
                raise InputError(why, path=path, column=name)
        n_read += len(data[names[0]])
        if selection is not None:
            kept = selection.mask(data)
            data = {name: np.asarray(values)[kept] for name, values in data.items()}
        parts.append(data)
    if len(parts) == 1:
        return parts[0], n_read
    return {name: np.concatenate([part.pop(name) for part in parts]) for name in names}, n_read


# --- formats ---------------------------------------------------------------------------------------


def _open(source: str, tree: str | None) -> Table:
    if source in EMBEDDED:
        return _open_embedded(source, tree)
    return _OPENERS[_format(source, FORMATS, EMBEDDED)](source, tree)


def _format(source: str, formats: Mapping[str, str], embedded: tuple[str, ...] = ()) -> str:
    """The format of an existing, non-empty regular file, from its extension among ``formats``;
    the ``embedded`` names are offered too when a file is not found."""
    if is_remote(source):
        return _remote_format(source, formats)
    path = Path(source)
    if not path.exists() and not path.is_symlink():
        siblings = path.parent.glob("*") if path.parent.is_dir() else []
        options = [p.name for p in siblings if p.suffix.lower() in formats] + ([] if path.suffix else list(embedded))
        raise InputError("does not exist", path=source, hint=closest(path.name, options) if options else None)
    check_regular_file(path, source)
    fmt = formats.get(path.suffix.lower())
    if path.suffix.lower() in PICKLE_SUFFIXES:
        refuse_pickle(source)
    if fmt is None:
        known = ", ".join(sorted(set(formats.values())))
        toys = f", or an embedded toy: {', '.join(embedded)}" if embedded else ""
        raise InputError(f"has an unsupported extension '{path.suffix}'", path=source,
                         hint=f"supported: {known} ({', '.join(formats)}){toys}")
    if path.stat().st_size == 0:
        raise InputError("is empty (0 bytes)", path=source)
    return fmt


def _remote_format(url: str, formats: Mapping[str, str]) -> str:
    """A URL is read as a ROOT file, by uproot through fsspec (only the chosen branches' baskets
    travel), once the backend of its scheme is installed."""
    if formats.get(Path(urlsplit(url).path).suffix.lower()) != "ROOT":
        raise InputError("is a URL of a file that is not ROOT: only ROOT files are read remotely", path=url,
                         hint="copy the file to a local disk and give its path")
    scheme = url.split("://", 1)[0].lower()
    missing = [name for name in _REMOTE_MODULES[scheme] if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"is a {scheme}:// URL, which needs {' and '.join(missing)} (not installed)", path=url,
                         hint="pip install 'recogan_app[remote]'")
    return "ROOT"


def _open_embedded(name: str, tree: str | None) -> Table:
    from recogan_app.data import toy_pid, toy_wjet
    from recogan_app.data.toy_xic import generate  # the module as sys.modules holds it (a test's stub)

    _no_tree(name, tree, "embedded")
    if name.startswith("toy-xic"):
        return _table(_toy_columns(generate, n_features=12 if name == "toy-xic-12" else 8))
    return _table(_toy_columns((toy_pid if name == "toy-pid" else toy_wjet).generate))


@functools.lru_cache(maxsize=8)
def _toy_columns(generate: Callable[..., pd.DataFrame], **options) -> dict[str, np.ndarray]:
    """A seeded toy's columns (its defaults), simulated once per process and read-only: every
    dashboard page opens on the 531,548-row toy, which took seconds to simulate again for each."""
    columns = {str(name): values.to_numpy(copy=True) for name, values in generate(**options).items()}
    for values in columns.values():
        values.flags.writeable = False
    return columns


def _open_csv(path: str, tree: str | None) -> Table:
    _no_tree(path, tree, "CSV")
    with open(path, "rb") as handle:
        start = handle.read(2)
    if start == b"\x1f\x8b":
        raise InputError("is gzip-compressed, not plain CSV text", path=path, hint=f"decompress it first: gunzip -c {path}")
    with reading(path, "CSV"):
        frame = pd.read_csv(path, low_memory=False)
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            header = next(csv.reader(handle), [])  # pandas renames a repeated name 'x' to 'x.1' silently
    twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
    if twice is not None:
        raise InputError("appears twice in the header", path=path, column=twice,
                         hint="rename one of the columns")
    if len(header) == 1 and (separator := next((c for c in ";\t|" if c in header[0]), None)):
        raise InputError(f"is separated by {separator!r}, not by commas (one column '{header[0]}')", path=path,
                         hint="save it comma-separated")
    return _table(frame)


def _open_parquet(path: str, tree: str | None) -> Table:
    _no_tree(path, tree, "Parquet")
    with reading(path, "Parquet"):
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    columns = {
        f.name: _INDEX_WHY if _SAVED_INDEX.fullmatch(f.name)
        else None if any(is_(f.type) for is_ in numeric) else f"is not numeric (dtype {f.type})"
        for f in schema
    }
    return Table(columns, meta.num_rows, functools.partial(_read_parquet, path))


def _read_parquet(path: str, names: list[str]) -> dict[str, np.ndarray]:
    """The columns; a nullable boolean's nulls become NaN, as a nullable integer's do."""
    with reading(path, "Parquet"):
        table = pq.read_table(path, columns=names)
        table = table.cast(pa.schema([pa.field(f.name, pa.float64()) if pa.types.is_boolean(f.type)
                                      and table.column(f.name).null_count else f for f in table.schema]))
        frame = table.to_pandas(ignore_metadata=True)
    return {name: frame[name].to_numpy() for name in names}


def _open_hdf5(path: str, tree: str | None) -> Table:
    with open_hdf5(path) as h5:
        tables = hdf5_tables(h5)
        key = _choose(path, None if tree is None else tree.strip("/") or "/", list(tables), "key",
                      "expected a pandas key, a group of 1-D datasets, a compound dataset or a 2-D "
                      "dataset with a 'columns' attribute")
        data, unusable = hdf5_columns(tables[key], path)
    return _table(data, key, "key", unusable)


def _open_npz(path: str, tree: str | None) -> Table:
    arrays = read_npz(path)
    tables = _npz_tables(arrays)
    if tree is None and not tables:
        return _table({k: a for k, a in arrays.items() if a.ndim and k not in _NPZ_NAMES})
    key = _choose(path, tree, tables, "array")
    values = arrays[key]
    if values.dtype.names:
        return _table({name: values[name] for name in values.dtype.names}, key, "array")
    names = next((arrays[k] for k in _NPZ_NAMES if k in arrays), None)
    if names is None:
        raise InputError(f"array '{key}' is 2-D but no 'columns' or 'feature_names' array names its columns",
                         path=path)
    return _table(named_columns(names, list(values.T), path, key), key, "array")


def _npz_tables(arrays: Mapping[str, np.ndarray]) -> list[str]:
    return [k for k, a in arrays.items() if k not in _NPZ_NAMES and (a.dtype.names or a.ndim == 2)]


def _open_root(path: str, tree: str | None) -> Table:
    with reading(path, "ROOT"), uproot.open(path) as file:
        wanted = None if tree is None else tree.strip("/").split(";")[0]
        name = _choose(path, wanted, _root_trees(file), "tree", "expected a TTree or RNTuple")
        ttree = file[name]
        columns = {key: _root_unusable(branch) for key, branch in _root_columns(ttree)}
        n_rows = ttree.num_entries
    return Table(columns, n_rows, functools.partial(_read_root, path, name), name, "tree")


def _root_columns(tree):
    """(name, branch) of each column of a TTree or RNTuple. A split object's members are its
    columns, named by their path (``d/fD64``, ``evt/P3/P3.Px``): the object itself is no number."""
    if not isinstance(tree, uproot.behaviors.TTree.TTree):
        return tree.iteritems(recursive=False)
    return ((key, branch) for key, branch in tree.iteritems(recursive=True) if not branch.branches)


def _read_root(path: str, name: str, names: list[str]) -> dict[str, np.ndarray]:
    """Each wanted branch read on its own: ``tree.arrays`` goes through uproot's expression language,
    which evaluates the tree's aliases (Python written in the file, whose sandbox attribute access escapes)."""
    wanted = set(names)
    with reading(path, "ROOT"), uproot.open(path) as file:
        return {key: branch.array(library="np") for key, branch in _root_columns(file[name]) if key in wanted}


def _root_trees(file) -> list[str]:
    """TTree and RNTuple names in ``file`` (subdirectories included), without cycle numbers."""
    names = [key.rsplit(";", 1)[0] for key, cls in file.classnames(recursive=True).items()
             if cls in _ROOT_TREES or cls.split("::")[-1] == "RNTuple"]
    return list(dict.fromkeys(names))


def _root_unusable(branch) -> str | None:
    """None for a flat numeric TTree branch or RNTuple field, else why not."""
    if isinstance(branch, uproot.behaviors.TBranch.TBranch):
        interp = branch.interpretation
        flat = isinstance(interp, (uproot.AsDtype, uproot.interpretation.numerical.TruncatedNumerical))
        dtype = interp.to_dtype if flat else None
    else:
        form = branch.to_akform()[0].contents[0]
        flat = isinstance(form, ak.forms.NumpyForm) and not form.inner_shape
        dtype = np.dtype(form.primitive) if flat else None
    if dtype is not None and dtype.shape == () and dtype.kind in "biuf":
        return None
    return f"is not a flat numeric branch (type {branch.typename})"


_OPENERS = {"ROOT": _open_root, "Parquet": _open_parquet, "CSV": _open_csv, "HDF5": _open_hdf5, "npz": _open_npz}
