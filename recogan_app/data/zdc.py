"""Proton ZDC (ZP) samples: 56 × 30 photon-count images and the 9 conditions of each particle.

The real GEANT4 sets come as an image array plus a conditions table, often in two pickle files;
:func:`load_zdc` reads them, converted to ``.npz`` or HDF5 (and the toy's ``.npz``), into one
checked :class:`ZDCSample`, and :func:`load_conditions` reads a conditions table alone (what
``recogan generate --conditions`` needs). Pickle runs code from the file when read, so pickle files
are refused with how to convert them (see :mod:`recogan_app.data.containers`).

Accepted layouts
----------------
images
    An array (N, 56, 30) named ``images`` in an ``.npz`` / HDF5 file, or the only 3-D array
    there. Raw counts (non-negative integers) or log1p of
    counts; which one is detected from the values and said in :attr:`ZDCSample.note`.
conditions
    The 9 columns of :data:`CONDITIONS`: named arrays or table columns (pandas HDF5 key,
    DataFrame, CSV, Parquet, ROOT tree), or a 2-D array ``conditions`` (N, 9) whose columns are
    named by ``condition_names`` (the standard order when that is absent).

Files are read by :func:`recogan_app.data.sources.read_arrays`, through the same checks and
messages as an MC sample; this module knows the layout.

Example
-------
>>> sample = load_zdc("images.npz", conditions="conditions.parquet")  # doctest: +SKIP
>>> sample.images.shape, sample.note                                  # doctest: +SKIP
((350000, 56, 30), 'images are log1p(photon counts) ...')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recogan_app.data.containers import named_columns
from recogan_app.data.sources import IMAGE_FORMATS, Table, read_arrays
from recogan_app.errors import InputError, NotFittedError, closest
from recogan_app.files import write_atomic

__all__ = ["CONDITIONS", "IMAGE_SHAPE", "ConditionScaler", "ZDCSample", "counts_from_log1p", "diversity_targets", "load_conditions",
           "load_zdc"]

CONDITIONS = ("Energy", "Vx", "Vy", "Vz", "Px", "Py", "Pz", "mass", "charge")
"""The conditions, in order: energy [GeV], vertex [m], momentum [GeV], mass [MeV], charge [e]."""
IMAGE_SHAPE = (56, 30)
"""Rows × columns of a ZP response."""
LOG1P_MAX = float(np.log1p(1e6))
"""Largest value a log1p image may hold (10⁶ photons in a pixel); non-integers above are neither form."""


@dataclass(frozen=True, eq=False)
class ZDCSample:
    """Checked ZP events.

    Attributes
    ----------
    images : ndarray, shape (N, 56, 30), int32
        Photon counts.
    conditions : ndarray, shape (N, 9), float64
        Columns in the order of :data:`CONDITIONS`, all finite.
    source : str or None
        Where the images were read from (None for a simulated sample).
    note : str
        How the images were stored and read ("raw photon counts", "log1p ... converted").
    """

    images: np.ndarray
    conditions: np.ndarray
    source: str | None = None
    note: str = "raw photon counts"

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def photon_sums(self) -> np.ndarray:
        """Total photons per event, shape (N,)."""
        return self.images.sum(axis=(1, 2))

    def subset(self, index) -> "ZDCSample":
        """The events at ``index`` (boolean mask or integer positions)."""
        return ZDCSample(self.images[index], self.conditions[index], self.source, self.note)

    def save(self, path) -> None:
        """Write the ``.npz`` layout (``images``, ``conditions``, ``condition_names``) atomically,
        the counts in the smallest unsigned integer type that holds them (uint8 for the toy: a
        quarter of the bytes to compress; :func:`load_zdc` reads them back as int32)."""
        images = self.images.astype(np.min_scalar_type(self.images.max() if self.images.size else 0))

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:  # a handle, so numpy does not append '.npz' to the name
                np.savez_compressed(handle, images=images, conditions=self.conditions,
                                    condition_names=np.array(CONDITIONS))
        write_atomic(path, write)


class ConditionScaler:
    """Standardises the 9 conditions with the training split's mean and standard deviation.

    The conditions span from metres of vertex to TeV of energy; the networks see each with zero
    mean and unit variance. A constant condition (say, only protons) gets scale 1.
    """

    def fit(self, conditions: np.ndarray) -> "ConditionScaler":
        values = np.asarray(conditions, dtype=np.float64)
        self.mean_, std = values.mean(axis=0), values.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, conditions: np.ndarray) -> np.ndarray:
        """(N, 9) float32 standardised conditions."""
        NotFittedError.check(self, hasattr(self, "mean_"))
        return ((np.asarray(conditions, dtype=np.float64) - self.mean_) / self.scale_).astype(np.float32)

    def to_dict(self) -> dict:
        return {"names": list(CONDITIONS), "mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> "ConditionScaler":
        scaler = cls()
        scaler.mean_, scaler.scale_ = np.asarray(values["mean"], float), np.asarray(values["scale"], float)
        return scaler


def load_zdc(path, *, conditions=None) -> ZDCSample:
    """Read and check ZP images and their conditions.

    Parameters
    ----------
    path : str or Path
        ``.npz`` or HDF5 (``.h5``, ``.hdf5``, ``.hdf``) file with the images, and the conditions
        too unless ``conditions`` is given.
    conditions : str or Path, optional
        A separate conditions table, in any format of :data:`~recogan_app.data.sources.FORMATS`.

    Returns
    -------
    ZDCSample

    Raises
    ------
    InputError
        Missing or unreadable file, a pickle file, images not (N, 56, 30), NaN,
        negative or non-count values, a missing condition column, NaN conditions, row counts
        that differ, no events.
    """
    source = str(path)
    table = read_arrays(source, formats=IMAGE_FORMATS)
    images, note = _images(table.read(list(table.columns)), source)
    matrix = _conditions(table, source) if conditions is None else load_conditions(conditions)
    if matrix.shape[0] != images.shape[0]:
        raise InputError(f"has {images.shape[0]} images but the conditions have {matrix.shape[0]} rows",
                         path=source)
    return ZDCSample(images, matrix, source, note)


def load_conditions(path) -> np.ndarray:
    """The 9 conditions of a file as an (N, 9) float64 array, in the order of :data:`CONDITIONS`.

    Parameters and errors as for :func:`load_zdc`; a file holding images too is fine.
    """
    return _conditions(read_arrays(path), str(path))


def counts_from_log1p(values) -> np.ndarray:
    """Model output (log1p space, any shape) as whole photon counts: round(expm1(x)), int32.

    Generated images are rounded like the real ones are counted, so that an "empty response"
    and every channel sum mean the same for both (seed 001 compared unrounded values).
    """
    return np.rint(np.expm1(np.maximum(np.asarray(values, dtype=np.float64), 0.0))).astype(np.int32)


def diversity_targets(conditions: np.ndarray, images: np.ndarray) -> np.ndarray:
    """SDI-GAN's diversity target of every event, in [0, 1].

    Events with identical 9-vectors form a group; the target is the per-pixel standard deviation
    within the group, summed over pixels, divided by its largest value over all events. A
    response that the conditions fix (a lone event, or a group of identical images) gets 0, so
    the diversity loss leaves it alone; the most variable groups get 1.

    Parameters
    ----------
    conditions : ndarray, shape (N, 9)
    images : ndarray, shape (N, 56, 30)
        In the space the model works in (log1p of counts).

    Returns
    -------
    ndarray, shape (N,), float32
    """
    _, group = np.unique(conditions, axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    pixels = images.reshape(len(images), -1)[order].astype(np.float32)
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    size = np.diff(np.r_[starts, len(order)])[:, None]
    mean = np.add.reduceat(pixels, starts, axis=0, dtype=np.float64) / size
    var = np.maximum(np.add.reduceat(pixels ** 2, starts, axis=0, dtype=np.float64) / size - mean ** 2, 0.0)
    spread = np.sqrt(var).sum(axis=1)
    top = spread.max(initial=0.0)
    per_group = spread / top if top > 0 else spread
    targets = np.empty(len(order))
    targets[order] = np.repeat(per_group, size.ravel())
    return targets.astype(np.float32)


# --- reading: the files through recogan_app.data.sources, the layout here -----------------------------


def _images(arrays: dict, source: str) -> tuple[np.ndarray, str]:
    """The (N, 56, 30) photon counts and how they were stored."""
    cubes = [k for k, v in arrays.items() if np.ndim(v) == 3]
    key = "images" if "images" in arrays else cubes[0] if len(cubes) == 1 else None
    if key is None:
        found = ", ".join(f"'{k}' {np.shape(v)}" for k, v in arrays.items()) or "nothing"
        raise InputError("holds no image array (N, 56, 30) named 'images'", path=source, hint=f"found: {found}")
    values = np.asarray(arrays[key])
    if values.ndim != 3 or values.shape[1:] != IMAGE_SHAPE:
        raise InputError(f"images have shape {values.shape}; expected (N, 56, 30)", path=source, column=key)
    if values.shape[0] == 0:
        raise InputError("holds 0 images", path=source, column=key)
    if values.dtype.kind not in "biuf":
        raise InputError(f"images are not numbers (dtype {values.dtype})", path=source, column=key)
    finite = np.isfinite(values)
    if not finite.all():
        raise InputError(f"images hold {np.count_nonzero(~finite)} NaN or infinite values", path=source, column=key)
    low, high = values.min(), values.max()
    if low < 0:
        raise InputError(f"images hold negative values (down to {low}); photon counts cannot be negative",
                         path=source, column=key)
    if values.dtype.kind in "biu" or np.array_equal(values, np.round(values)):
        return values.astype(np.int32), f"images are raw photon counts (integers, max {high:g})"
    counts = np.expm1(values.astype(np.float64)) if high <= LOG1P_MAX else None
    if counts is None or np.abs(counts - np.round(counts)).max() > 0.1:
        raise InputError(f"images hold non-integer values up to {high:g}: neither photon counts nor "
                         "log1p of photon counts", path=source, column=key)
    return (np.round(counts).astype(np.int32),
            f"images are log1p(photon counts) (non-integer values, max {high:.3g}): converted back with expm1")


def _conditions(table: Table, source: str) -> np.ndarray:
    """The (N, 9) conditions in the order of :data:`CONDITIONS`: columns by those names, or a 2-D
    array ``conditions`` whose columns ``condition_names`` names (the standard order without it)."""
    named = {}
    if "conditions" in table.columns and (matrix := np.asarray(table.read(["conditions"])["conditions"])).ndim == 2:
        if matrix.dtype.kind not in "biuf":
            raise InputError(f"conditions are not numbers (dtype {matrix.dtype})", path=source, column="conditions")
        names = table.read(["condition_names"])["condition_names"] if "condition_names" in table.columns else CONDITIONS
        named = named_columns(names, list(matrix.T), source, "conditions")
    for name in CONDITIONS:
        if name not in named and name not in table.columns:
            raise InputError("condition not found", path=source, column=name,
                             hint=closest(name, [k for k in [*table.columns, *named] if k != "images"]))
        if name not in named and table.columns[name] is not None:
            raise InputError(f"condition {table.columns[name]}", path=source, column=name)
    values = {**table.read([name for name in CONDITIONS if name not in named]), **named}
    for name in CONDITIONS:
        bad = np.count_nonzero(~np.isfinite(values[name]))
        if bad:
            raise InputError(f"condition has {bad} NaN or infinite values", path=source, column=name)
    if len({len(values[name]) for name in CONDITIONS}) > 1:
        raise InputError("condition columns have different lengths", path=source)
    if len(values["Energy"]) == 0:
        raise InputError("holds 0 condition rows", path=source)
    return np.column_stack([np.asarray(values[name], dtype=np.float64) for name in CONDITIONS])
