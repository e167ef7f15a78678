"""Per-feature invertible transforms and the fitted pipeline that feeds a GAN.

A GAN learns best on features that look alike: unbounded, centred, of unit width, without
hard edges or long tails. This module maps each MC column to such a feature and back.

- **Transforms** (one 1-D float64 array in, one out), scikit-learn style: ``__init__`` only
  stores parameters, :meth:`~Transform.fit` validates and learns state named with a trailing
  ``_``, :meth:`~Transform.transform` / :meth:`~Transform.inverse_transform` check it was
  fitted, and ``inverse_transform(transform(x)) == x`` to float precision (exactly for
  ``integer``). Each serialises to a JSON-safe dict (``to_dict`` / ``from_dict``) that restores
  bit-identical outputs.

  ============  ===================================================================
  ``identity``     ``x``
  ``standardise``  ``(x - mean_) / scale_``
  ``log1p``        ``log1p(x + offset_)``, for non-negative long-tailed values
  ``arccos``       ``cos θ -> θ`` for values in [-1, 1]
  ``logit``        a bounded range ``[lo_, hi_]`` mapped to the real line
  ``quantile``     quantile mapping to a standard normal (LHCb practice)
  ``integer``      dequantisation noise on the way in, rounding on the way out
  ============  ===================================================================

- **Specs**: transforms chain per feature with ``+``, e.g. ``"log1p+quantile"``; a
  :class:`Chain` is itself a transform. :func:`suggest_transform` picks a spec from a
  column's name and values.
- **Pipeline**: :class:`FeaturePipeline` maps a whole MC :class:`pandas.DataFrame` to a
  float32 matrix for the networks and generated matrices back to a frame with the original
  column names and dtypes; it saves to / loads from JSON.
- **Before a training**: :func:`suggest_transforms`, :func:`preview_transform` and
  :func:`check_transforms` on a fixed subset (:func:`preview_rows`), as the Preprocessing tab does.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"decay_length": rng.exponential(0.1, 1000) ** 2,
...                       "cos_pa": np.cos(rng.uniform(0, 0.3, 1000)),
...                       "n_its_clusters": rng.integers(3, 8, 1000).astype("int16")})
>>> pipe = FeaturePipeline().fit(frame)
>>> pipe.specs_["cos_pa"], pipe.specs_["n_its_clusters"]
('arccos+quantile', 'integer+quantile')
>>> z = pipe.transform(frame)            # float32, shape (1000, 3), ~N(0, 1) per column
>>> back = pipe.inverse_transform(z)     # same columns and dtypes as ``frame``
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special, stats

from recogan_app.errors import InputError, NotFittedError, closest
from recogan_app.files import write_atomic
from recogan_app.metrics.distributions import weighted_quantile
from recogan_app.splits import subsample

__all__ = ["PREVIEW_ROWS", "TRANSFORMS", "Arccos", "Chain", "FeaturePipeline", "Identity", "Integer", "Log1p",
           "Logit", "Quantile", "Standardise", "Transform", "check_transforms", "parse_spec", "preview_rows",
           "preview_transform", "suggest_transform", "suggest_transforms"]


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------


def _as_float_1d(x, *, fitting: bool, what: str = "values") -> np.ndarray:
    """``x`` as a 1-D float64 array; refuse NaN (always) and, when fitting, inf and emptiness."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InputError(f"expected a 1-D array of {what}, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InputError(f"{what} are not numeric (dtype {arr.dtype})")
    arr = arr.astype(np.float64, copy=False)
    if fitting and arr.size == 0:
        raise InputError(f"no {what} to fit on")
    if fitting:
        bad = ~np.isfinite(arr)
        if bad.any():
            n_nan = int(np.isnan(arr).sum())
            raise InputError(f"has {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values")
    elif np.isnan(arr).any():
        raise InputError(f"has {int(np.isnan(arr).sum())} NaN values")
    return arr


def _torch_math(y: np.ndarray, op) -> np.ndarray:
    """``op`` applied to ``y`` as a tensor: torch's vectorised exp and cos are 3× numpy's
    on float64, and inverse transforms are on the export's hot path."""
    import torch

    return op(torch.from_numpy(np.require(y, requirements="W"))).numpy()


class Transform:
    """Base class of the per-feature transforms.

    Subclasses set ``name`` (the spec word), ``_params`` (constructor arguments, stored as
    attributes of the same name) and ``_state`` (the fitted attributes, with a trailing ``_``,
    that :meth:`to_dict` serialises), and implement ``_fit``, ``_transform`` and ``_inverse``
    on 1-D float64 arrays (``_inverse`` also gets float32 for float32 columns, see
    :meth:`FeaturePipeline.inverse_transform`). :meth:`_prepare` rebuilds derived look-up arrays from the state
    after ``fit`` and after :meth:`from_dict`, so both paths give bit-identical outputs.
    """

    name: ClassVar[str] = ""
    _params: ClassVar[tuple[str, ...]] = ()
    _state: ClassVar[tuple[str, ...]] = ()
    _saved_before: ClassVar[dict[str, Any]] = {}
    """The parameters a transform saved before they existed was fitted with."""

    # -- sklearn-like API ----------------------------------------------------------------

    def fit(self, x, weights=None) -> Transform:
        """Learn the state from a 1-D array of finite values, each counting its event weight
        (non-negative; None: all alike); returns ``self``."""
        x = _as_float_1d(x, fitting=True)
        self._fit(x, None if weights is None else np.asarray(weights, dtype=np.float64))
        self.n_samples_ = int(x.size)
        self._prepare()
        return self

    def transform(self, x) -> np.ndarray:
        """Map values to the network's space; 1-D float64 out."""
        NotFittedError.check(self, self.is_fitted())
        return self._transform(_as_float_1d(x, fitting=False))

    def inverse_transform(self, y) -> np.ndarray:
        """Map network-space values back to the feature's space; 1-D float64 out."""
        NotFittedError.check(self, self.is_fitted())
        return self._inverse(_as_float_1d(y, fitting=False, what="transformed values"))

    def fit_transform(self, x) -> np.ndarray:
        """``fit(x).transform(x)``."""
        return self.fit(x).transform(x)

    # -- hooks ----------------------------------------------------------------------------

    def _fit(self, x: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Learn the state (none by default); transforms fitted on a range, not a distribution, ignore ``weights``."""

    def _prepare(self) -> None:
        """Rebuild derived look-up arrays from the state (none by default)."""

    # -- bookkeeping ------------------------------------------------------------------------

    @property
    def spec(self) -> str:
        """The spec word(s) of this transform (``"quantile"``, ``"log1p+quantile"``)."""
        return self.name

    def is_fitted(self) -> bool:
        return hasattr(self, "n_samples_")

    def get_params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self._params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``name``, ``params`` and, once fitted, ``state``.

        Floats stay Python floats and arrays lists of floats, which ``json`` writes with
        ``repr`` precision, so :meth:`from_dict` restores the state bit for bit.
        """
        out: dict[str, Any] = {"name": self.name, "params": self.get_params()}
        if self.is_fitted():
            state: dict[str, Any] = {"n_samples_": self.n_samples_}
            for key in self._state:
                value = getattr(self, key)
                state[key] = value.tolist() if isinstance(value, np.ndarray) else float(value)
            out["state"] = state
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transform:
        """Rebuild a transform written by :meth:`to_dict` (dispatching on ``name``)."""
        name = data.get("name")
        if name == Chain.name:
            return Chain.from_dict(data)
        if name not in TRANSFORMS:
            raise InputError(f"unknown transform '{name}'", hint=closest(str(name), TRANSFORMS))
        klass = TRANSFORMS[name]
        if cls is not Transform and not issubclass(klass, cls):
            raise InputError(f"expected a '{cls.name}' transform, got '{name}'")
        obj = klass(**{**klass._saved_before, **data.get("params", {})})
        state = data.get("state")
        if state is not None:
            for key in klass._state:
                value = state[key]
                setattr(obj, key, np.asarray(value, dtype=np.float64) if isinstance(value, list) else float(value))
            obj.n_samples_ = int(state["n_samples_"])
            obj._prepare()
        return obj


# --------------------------------------------------------------------------------------------
# The transforms
# --------------------------------------------------------------------------------------------


class Identity(Transform):
    """``x -> x`` (a copy)."""

    name = "identity"

    def _transform(self, x):
        return x.copy()

    def _inverse(self, y):
        return y.copy()


class Standardise(Transform):
    """``x -> (x - mean_) / scale_``; ``scale_`` is the standard deviation, or 1 for a constant."""

    name = "standardise"
    _state = ("mean_", "scale_")

    def _fit(self, x, weights=None):
        self.mean_ = float(np.average(x, weights=weights))
        scale = float(np.sqrt(np.average((x - self.mean_) ** 2, weights=weights)))
        self.scale_ = scale if np.isfinite(scale) and scale > 0 else 1.0

    def _transform(self, x):
        return (x - self.mean_) / self.scale_

    def _inverse(self, y):
        return y * self.scale_ + self.mean_


class Log1p(Transform):
    """``x -> log1p(x + offset_)`` for non-negative, long-tailed values (decay lengths).

    Reconstructed lengths can dip slightly below zero (resolution). ``fit`` learns
    ``offset_ = max(0, -min(x))`` so the training minimum maps to exactly 0; the inverse
    ``expm1(y) - offset_`` is exact to float precision. A column reaching below
    ``-negative_tolerance × (max - min)`` is refused: it is not a length.
    On new data, values below ``-offset_`` are clipped to map to 0 (they stay finite).

    Parameters
    ----------
    negative_tolerance : float, default 0.05
        How far below zero (relative to the column's spread) values may go.
    """

    name = "log1p"
    _params = ("negative_tolerance",)
    _state = ("offset_",)

    def __init__(self, negative_tolerance: float = 0.05):
        self.negative_tolerance = negative_tolerance

    def _fit(self, x, weights=None):
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 and -lo > self.negative_tolerance * (hi - lo):
            raise InputError(
                f"has values down to {lo:.6g}; 'log1p' needs non-negative values "
                f"(negatives up to {self.negative_tolerance:g} of the range are shifted)",
                hint="use 'quantile' or 'standardise' for signed features",
            )
        self.offset_ = max(0.0, -lo)

    def _transform(self, x):
        return np.log1p(np.maximum(x + self.offset_, 0.0))

    def _inverse(self, y):
        return _torch_math(y, lambda t: t.expm1().sub_(self.offset_))


class Arccos(Transform):
    """``cos θ -> θ`` in [0, π]; inverse ``θ -> cos θ``.

    Values are clipped to [-1, 1] on the way in (float round-off pushes cosines of tiny
    angles just above 1). A column outside [-1 - tolerance, 1 + tolerance] is refused.

    Parameters
    ----------
    tolerance : float, default 1e-5
        How far beyond ±1 round-off may push values (float32 cosines reach 1 + 1.2e-7).
    """

    name = "arccos"
    _params = ("tolerance",)
    _state = ("min_", "max_")

    def __init__(self, tolerance: float = 1e-5):
        self.tolerance = tolerance

    def _fit(self, x, weights=None):
        lo, hi = float(x.min()), float(x.max())
        if lo < -1 - self.tolerance or hi > 1 + self.tolerance:
            raise InputError(
                f"has values in [{lo:.6g}, {hi:.6g}]; 'arccos' needs cosines in [-1, 1]",
                hint="use 'quantile' for features that are not cosines",
            )
        self.min_, self.max_ = lo, hi

    def _transform(self, x):
        return np.arccos(np.clip(x, -1.0, 1.0))

    def _inverse(self, y):
        return _torch_math(y, lambda t: t.cos())


class Logit(Transform):
    """A bounded range ``[lo_, hi_]`` mapped to the real line by the logit.

    ``fit`` learns ``lo_ = min - m`` and ``hi_ = max + m`` with ``m = margin × (max - min)``
    (``margin × max(|x|, 1)`` for a constant column), so the data extremes map to finite
    values (about ±log(1/margin)). The inverse ``lo_ + (hi_ - lo_) · sigmoid(y)`` keeps
    every output inside ``[lo_, hi_]`` (strictly inside where float resolution allows): a
    generator cannot leave the range. New data outside the range is clipped to it.

    Parameters
    ----------
    margin : float, default 1e-3
        Relative margin added on each side of the data range.
    """

    name = "logit"
    _params = ("margin",)
    _state = ("lo_", "hi_")
    _eps: ClassVar[float] = 1e-12

    def __init__(self, margin: float = 1e-3):
        self.margin = margin

    def _fit(self, x, weights=None):
        if not self.margin > 0:
            raise InputError(f"'logit' margin must be positive, got {self.margin!r}")
        lo, hi = float(x.min()), float(x.max())
        span = hi - lo
        pad = self.margin * (span if span > 0 else max(abs(lo), 1.0))
        self.lo_, self.hi_ = lo - pad, hi + pad

    def _transform(self, x):
        p = (x - self.lo_) / (self.hi_ - self.lo_)
        return special.logit(np.clip(p, self._eps, 1.0 - self._eps))

    def _inverse(self, y):
        p = np.clip(special.expit(y), self._eps, 1.0 - self._eps)
        return np.clip(self.lo_ + (self.hi_ - self.lo_) * p, self.lo_, self.hi_)


class Quantile(Transform):
    """Quantile mapping to a standard normal (numpy/scipy; cf. sklearn's QuantileTransformer).

    ``fit`` stores ``quantiles_``: the data quantiles at ``n = clip(len(x), 2, n_quantiles)``
    evenly spaced levels ``references_ = linspace(0, 1, n)`` (non-decreasing; runs of equal
    values mark point masses). ``transform`` interpolates linearly to the uniform level and
    applies ``ndtri`` with levels clipped to ``[bound, 1 - bound]`` (outputs within about
    ±5.2). Ties are handled so the map stays monotone and invertible: a value equal to a
    tied quantile maps to the middle of its run of levels, a value between two distinct
    quantiles interpolates between the end of the lower run and the start of the upper one.

    ``inverse_transform`` applies ``ndtr`` then interpolates back; levels within ``bound``
    of 0 or 1 give exactly the training minimum or maximum, and anything beyond the training
    range is clipped to it (a generator never produces values the MC never had).

    Round trip: exact to float precision except for values within ``bound × (n - 1)`` of a
    quantile spacing from the minimum or maximum, which come back as that extreme.

    Parameters
    ----------
    n_quantiles : int, default 2000
        Most quantile levels stored.
    bound : float, default 1e-7
        Level clipping before ``ndtri``.
    """

    name = "quantile"
    _params = ("n_quantiles", "bound")
    _state = ("quantiles_",)

    def __init__(self, n_quantiles: int = 2000, bound: float = 1e-7):
        self.n_quantiles = n_quantiles
        self.bound = bound

    def _fit(self, x, weights=None):
        if int(self.n_quantiles) < 2:
            raise InputError(f"'quantile' needs n_quantiles >= 2, got {self.n_quantiles!r}")
        if not 0 < self.bound < 0.5:
            raise InputError(f"'quantile' bound must be in (0, 0.5), got {self.bound!r}")
        n_levels = max(2, min(int(self.n_quantiles), x.size))
        if weights is not None:  # a weighted MC: its weighted quantiles (the rule below when weights are equal)
            self.quantiles_ = np.maximum.accumulate(weighted_quantile(x, np.linspace(0.0, 1.0, n_levels), weights))
            return
        xs = np.sort(x)
        pos = np.linspace(0.0, 1.0, n_levels) * (xs.size - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, xs.size - 1)
        frac = pos - lo
        a, b = xs[lo], xs[hi]
        q = np.where(a == b, a, a + (b - a) * frac)  # ties stay exact
        q = np.clip(q, a, b)
        self.quantiles_ = np.maximum.accumulate(q)

    def _prepare(self):
        q = self.quantiles_
        n = q.size
        self._tables = None  # look-up tables of _inverse, built on first use
        self.references_ = self._references()
        # runs of equal quantiles: knot values with the first and last level of each run
        starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
        ends = np.r_[starts[1:] - 1, n - 1]
        r = self.references_
        knots = q[starts]
        self._knots = knots
        self._knots_next = np.r_[knots[1:], np.inf]
        self._r_end = r[ends]
        self._r_mid = 0.5 * (r[starts] + r[ends])
        # slope from the end of a run to the start of the next one (the last never interpolates)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            slope = np.r_[(r[starts[1:]] - r[ends[:-1]]) / np.diff(knots), 0.0]
        self._slope = np.where(np.isfinite(slope), slope, 0.0)
        # a uniform grid over the knots' range: a first guess of the knot index per cell
        m = knots.size
        self._grid = None
        width = (knots[-1] - knots[0]) / (16 * m) if m > 1 else 0.0
        if m > 1 and np.isfinite(width) and width > 0 and np.isfinite(1.0 / width):
            n_cells = 16 * m
            edges = knots[0] + width * np.arange(n_cells)
            first = np.clip(np.searchsorted(knots, edges, side="right") - 2, 0, m - 1)
            self._grid = (float(knots[0]), 1.0 / width, n_cells, first)

    def _references(self) -> np.ndarray:
        """The level of each stored quantile: evenly spaced, the data's own CDF."""
        return np.linspace(0.0, 1.0, self.quantiles_.size)

    _GRID_STEPS: ClassVar[int] = 3

    def _knot_index(self, x):
        """Index of the last knot <= x (0 below the first knot); exact for every x."""
        knots, nxt = self._knots, self._knots_next
        if self._grid is None:
            return np.maximum(np.searchsorted(knots, x, side="right") - 1, 0)
        start, inv_width, n_cells, first = self._grid
        cell = np.clip((x - start) * inv_width, 0, n_cells - 1).astype(np.intp)
        j = first[cell]
        for _ in range(self._GRID_STEPS):
            j += nxt[j] <= x
        # a guess from a crowded cell (or a rounding edge case) is finished by bisection
        wrong = (nxt[j] <= x) | ((knots[j] > x) & (x >= knots[0]))
        if wrong.any():
            j[wrong] = np.maximum(np.searchsorted(knots, x[wrong], side="right") - 1, 0)
        return j

    def _levels(self, x):
        j = self._knot_index(x)
        v = self._knots[j]
        level = self._r_end[j] + (x - v) * self._slope[j]
        hit = x == v
        if hit.any():
            level[hit] = self._r_mid[j[hit]]
        level[x < self._knots[0]] = 0.0
        return level

    def _transform(self, x):
        level = self._levels(x)
        np.clip(level, self.bound, 1.0 - self.bound, out=level)
        return special.ndtri(level)

    def _inverse(self, y):
        """Levels back to values, in the precision of ``y`` (float32 on the export's hot path, several
        times faster than float64), the interpolation between quantiles always in float64, so the
        training minimum and maximum come back exactly.

        Each value is placed from its nearer end, ``a = ndtr(-|y|) × (n - 1)`` levels from the
        minimum (y < 0) or from the maximum (y > 0): a small tail probability keeps the float's
        relative precision, so the outermost bins resolve as finely as the central ones
        (``ndtr(y)`` near 1 would leave float32 only ~8000 steps per top bin).
        """
        import torch
        from torch import nn

        if self._tables is None:
            q = self.quantiles_
            step = np.r_[np.diff(q), 0.0]
            # rows 0…n-1 from the minimum up, rows n…2n-1 from the maximum down
            self._tables = (torch.from_numpy(np.r_[q, q[::-1]]),
                            torch.from_numpy(np.r_[step, -np.r_[0.0, step[:-1]][::-1]]))
        base, slope = self._tables
        last = self.quantiles_.size - 1
        t = torch.from_numpy(np.require(y, requirements="CW"))
        # ndtr(-|y|) through erfc: torch.special.ndtr loses the lower tail in float32 (9e-8 for 1.03e-7)
        a = torch.erfc(t.abs().mul_(0.5 ** 0.5)).mul_(0.5 * last)  # a ≤ last / 2: bin k + 1 always exists
        nn.functional.threshold_(a, self.bound * (1.0 + 1e-6) * last, 0.0)  # clipped levels: the extreme
        k = a.int()
        k.add_(t > 0, alpha=last + 1)
        out = torch.addcmul(base.index_select(0, k), slope.index_select(0, k), a.frac_())
        return out.clamp_(base[0], base[last]).numpy()


class FlatQuantile(Quantile):
    """:class:`Quantile` mapping by the data's density raised to the power 1 − :data:`FLATTEN`: the
    levels between distinct stored quantiles grow as (Δx)^FLATTEN, not as the data's share.
    A point mass (a run of tied quantiles: a DLL exactly 0 for tracks outside the detector) gets,
    per tied interval, the levels of the denser of the continuous intervals beside its run
    (``point_masses`` dense), or its share of the data (``point_masses`` share, runs saved
    before the setting existed).

    Why: a conditional model's target (a DLL) can have a narrow marginal peak made by one region
    of the conditions (high-momentum tracks near DLL 0). The plain quantile map stretches that
    peak by its density ratio over its surroundings (about 30 on the PID toy); tracks of other
    conditions have little mass there, so their distribution in the network's space gets a
    near-empty stretch that a smooth quantile network fills (the PID toy's dll_e at 6.5–14 GeV/c
    passed the median threshold in 13.4 % of the model's rows against the MC's 11.9 %). The
    square root of the ratio still resolves the peak. A point mass is the extreme case: kept at
    its share, the unseen RICH MC's 1.3 % of RichDLLmu = 0 spans as many levels as 0.12 units of
    the data beside it, and the network fills that stretch for tracks that are never 0 (protons at
    20–30 GeV/c: 5.5 % exact zeros against the MC's 0.04 %, taken from above the 75 % threshold).
    """

    name = "flatquantile"
    _params = ("n_quantiles", "bound", "point_masses")
    _saved_before = {"point_masses": "share"}

    def __init__(self, n_quantiles: int = 2000, bound: float = 1e-7, point_masses: str = "dense"):
        super().__init__(n_quantiles, bound)
        self.point_masses = point_masses

    def _fit(self, x, weights=None):
        if self.point_masses not in ("dense", "share"):
            raise InputError(f"'flatquantile' point_masses must be 'dense' or 'share', got {self.point_masses!r}")
        super()._fit(x, weights)

    def _references(self) -> np.ndarray:
        q = self.quantiles_
        step, tied = np.diff(q), np.diff(q) == 0
        if tied.all():  # a constant column
            return super()._references()
        grow = np.where(tied, 0.0, step) ** FLATTEN
        if self.point_masses == "share":
            share = 1.0 / max(q.size - 1, 1)  # of each interval between stored quantiles
            grow *= (1.0 - share * tied.sum()) / grow.sum()
            grow[tied] = share
        else:
            index, last = np.arange(step.size), step.size - 1
            before = np.maximum.accumulate(np.where(tied, -1, index))  # the continuous interval below each
            after = np.minimum.accumulate(np.where(tied, step.size, index)[::-1])[::-1]  # and above
            beside = np.minimum(np.where(before >= 0, grow[before.clip(0)], np.inf),
                                np.where(after <= last, grow[after.clip(max=last)], np.inf))
            grow = np.where(tied, beside, grow)
        levels = np.r_[0.0, np.cumsum(grow)]
        return levels / levels[-1]

    def _inverse(self, y):
        """Levels back to values by linear interpolation between the stored quantiles (the plain
        map's fast path assumes even levels); each level from its nearer end, and the clipped
        levels the training minimum or maximum, as there."""
        y = np.asarray(y)
        tail = special.ndtr(-np.abs(y.astype(np.float64)))
        tail[tail <= self.bound * (1.0 + 1e-6)] = 0.0
        level = np.where(y > 0, 1.0 - tail, tail)
        return np.interp(level, self.references_, self.quantiles_).astype(y.dtype)


FLATTEN = 0.5
"""The power of the stored quantiles' spacing that :class:`FlatQuantile`'s levels grow with (0:
the plain quantile map, 1: even in the value). 0.5, the geometric middle, is the one value tried."""


class Integer(Transform):
    """Integer-valued features: dequantise on the way in, round on the way out.

    ``transform`` adds uniform noise on [-0.5, 0.5) (shrunk by a factor ``1 - 1e-6`` so
    rounding recovers the integer even after float round-off downstream) drawn from a fresh
    ``numpy.random.default_rng(random_state)`` on every call: the same input always gives the
    same output, also after a JSON round trip. ``inverse_transform`` rounds to the nearest
    integer and clips to ``[min_, max_]`` learned in ``fit``; output is float64 holding
    integers (the pipeline restores the column's integer dtype). ``fit`` refuses values that
    are not integers.

    Parameters
    ----------
    random_state : int, default 0
        Seed of the dequantisation noise.
    """

    name = "integer"
    _params = ("random_state",)
    _state = ("min_", "max_")
    _width: ClassVar[float] = 1.0 - 1e-6

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def _fit(self, x, weights=None):
        frac = x != np.round(x)
        if frac.any():
            raise InputError(
                f"has non-integer values (e.g. {x[frac][0]!r}); 'integer' needs integral values",
                hint="use 'quantile' for continuous features",
            )
        if np.abs(x).max() > 2.0**52:
            raise InputError("has integers beyond 2**52, which float64 cannot dequantise")
        self.min_, self.max_ = float(x.min()), float(x.max())

    def _transform(self, x):
        rng = np.random.default_rng(self.random_state)
        return x + (rng.random(x.size) - 0.5) * self._width

    def _inverse(self, y):
        return np.clip(np.floor(y + 0.5), self.min_, self.max_)


TRANSFORMS: dict[str, type[Transform]] = {
    k.name: k for k in (Identity, Standardise, Log1p, Arccos, Logit, Quantile, FlatQuantile, Integer)
}
"""The spec words and their classes."""


# --------------------------------------------------------------------------------------------
# Chains and specs
# --------------------------------------------------------------------------------------------


class Chain(Transform):
    """Transforms applied in order; itself a transform.

    ``fit`` fits each step on the output of the previous one; ``inverse_transform`` runs
    the steps backwards. ``spec`` joins the step names with ``+``.

    Parameters
    ----------
    steps : list of Transform
        The steps, first applied first.
    """

    name = "chain"
    _params = ("steps",)

    def __init__(self, steps: list[Transform]):
        self.steps = steps

    @property
    def spec(self) -> str:
        return "+".join(s.spec for s in self.steps)

    def is_fitted(self) -> bool:
        return bool(self.steps) and all(s.is_fitted() for s in self.steps)

    def _fit(self, x, weights=None):
        if not self.steps:
            raise InputError("an empty chain of transforms cannot be fitted")
        for i, step in enumerate(self.steps):
            step.fit(x, weights)
            if i < len(self.steps) - 1:
                x = step._transform(x)

    def _transform(self, x):
        for step in self.steps:
            x = step._transform(x)
        return x

    def _inverse(self, y):
        for step in reversed(self.steps):
            y = step._inverse(y)
        return y

    def __repr__(self) -> str:
        return f"Chain({self.steps!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chain:
        chain = cls([Transform.from_dict(d) for d in data["steps"]])
        if chain.is_fitted():
            chain.n_samples_ = chain.steps[0].n_samples_
        return chain


def parse_spec(spec: str, *, column: str | None = None, random_state: int = 0) -> Chain:
    """A :class:`Chain` (unfitted, default parameters) from a spec string.

    Parameters
    ----------
    spec : str
        Transform names joined by ``+`` (``"log1p+quantile"``); case and spaces ignored.
    column : str, optional
        Named in the error message if the spec is bad.
    random_state : int, default 0
        Seed handed to ``integer`` steps.

    Raises
    ------
    InputError
        For an empty spec or an unknown name (with the closest valid names).
    """
    if not isinstance(spec, str):
        raise InputError(f"transform spec must be a string, got {type(spec).__name__}", column=column)
    words = [w.strip().lower() for w in spec.split("+")]
    steps: list[Transform] = []
    for word in words:
        if not word:
            raise InputError(f"empty transform in spec '{spec}'", column=column,
                             hint="valid: " + ", ".join(TRANSFORMS))
        if word not in TRANSFORMS:
            raise InputError(
                f"unknown transform '{word}' in spec '{spec}'",
                column=column,
                hint=f"{closest(word, TRANSFORMS)}; valid: {', '.join(TRANSFORMS)}",
            )
        klass = TRANSFORMS[word]
        steps.append(klass(random_state=random_state) if klass is Integer else klass())
    return Chain(steps)


_LENGTH_WORDS = ("length", "dist", "radius", "impact", "dca", "chi2", "chisq", "flight")
_LENGTH_TOKENS = frozenset({"ip", "ct", "dl", "l", "lxy", "lxyz", "r", "rxy", "d0", "len", "ctau", "tau"})
_MAX_INTEGER_LEVELS = 200
_SKEW_THRESHOLD = 2.0
_NEGATIVE_TOLERANCE = 0.05


def _name_tokens(name: str) -> list[str]:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[^a-z0-9]+", snake.lower()) if t]


def suggest_transform(name: str, values) -> str:
    """A spec for a column, from its name and values; the last step is always ``quantile``.

    The rule, first match wins:

    1. integer dtype (or bool), or all values integral with at most 200 distinct values
       → ``"integer+quantile"`` (cluster counts, charges, flags);
    2. ``"cos"`` in the name and all values in [-1, 1] (± 1e-5) → ``"arccos+quantile"``;
    3. a name that reads as a length/distance/radius/impact parameter/DCA/cτ/χ²
       (a word containing ``length``, ``dist``, ``radius``, ``impact``, ``dca``, ``chi2``,
       ``chisq``, ``flight``, or a token such as ``ip``, ``ct``, ``dl``, ``lxy``, ``r``, ``d0``),
       values non-negative (down to -5 % of the range) and a long right tail
       (sample skewness > 2) → ``"log1p+quantile"``;
    4. otherwise ``"quantile"`` (LHCb practice: every feature quantile-mapped to a normal).

    Parameters
    ----------
    name : str
        The column name (snake_case or CamelCase).
    values : array-like, 1-D
        The column's values (finite).

    Returns
    -------
    str
        A spec for :func:`parse_spec`.

    Examples
    --------
    >>> suggest_transform("cos_pa", np.array([0.99, 0.999, 1.0]))
    'arccos+quantile'
    """
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return "integer+quantile"
    x = _as_float_1d(arr, fitting=True)
    if np.all(x == np.round(x)) and np.unique(x).size <= _MAX_INTEGER_LEVELS:
        return "integer+quantile"
    lower = name.lower()
    lo, hi = float(x.min()), float(x.max())
    if "cos" in lower and lo >= -1 - 1e-5 and hi <= 1 + 1e-5:
        return "arccos+quantile"
    tokens = _name_tokens(name)
    length_like = any(w in lower for w in _LENGTH_WORDS) or any(t in _LENGTH_TOKENS for t in tokens)
    if length_like and not (lo < 0 and -lo > _NEGATIVE_TOLERANCE * (hi - lo)) and hi > lo:
        if float(stats.skew(x)) > _SKEW_THRESHOLD:
            return "log1p+quantile"
    return "quantile"


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------

_FORMAT = "recogan.FeaturePipeline"
_VERSION = 1
INVERSE_ROWS = 65_536
"""Values per pass of an inverse transform over a long column (see FeaturePipeline._inverse_column)."""


def _column_seed(random_state: int, column: str) -> int:
    """A per-column seed that does not depend on the column's position."""
    seq = np.random.SeedSequence([int(random_state) % 2**32, zlib.crc32(column.encode())])
    return int(seq.generate_state(1)[0])


class FeaturePipeline:
    """Per-column transforms that map an MC frame to a float32 matrix and back.

    Parameters
    ----------
    transforms : dict of str to str, optional
        A spec (``"log1p+quantile"``) per column; columns left out get
        :func:`suggest_transform`.
    random_state : int, default 0
        Seeds the ``integer`` dequantisation noise (one derived seed per column name).

    Attributes
    ----------
    columns_ : list of str
        The fitted columns, in frame order; the matrix's column order.
    dtypes_ : dict of str to str
        Each column's original dtype, restored by :meth:`inverse_transform`.
    specs_ : dict of str to str
        The spec used per column.
    steps_ : dict of str to Chain
        The fitted transform per column.

    Examples
    --------
    >>> frame = pd.DataFrame({"pt": np.linspace(0.5, 9.0, 200, dtype="float32")})
    >>> pipe = FeaturePipeline({"pt": "log1p+quantile"}).fit(frame)
    >>> pipe.transform(frame).shape, pipe.inverse_transform(pipe.transform(frame))["pt"].dtype
    ((200, 1), dtype('float32'))
    """

    def __init__(self, transforms: dict[str, str] | None = None, *, random_state: int = 0):
        self.transforms = transforms
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, weights=None) -> FeaturePipeline:
        """Learn one fitted :class:`Chain` per column of ``frame``, each row counting its event weight
        (``weights``, non-negative; None: all alike) where a transform fits a distribution (the
        quantile map: a weighted MC's generated sample follows its weighted distribution); returns ``self``."""
        frame = self._check_frame(frame)
        if len(frame) == 0:
            raise InputError("no rows to fit the feature transforms on")
        if frame.shape[1] == 0:
            raise InputError("no columns to fit the feature transforms on")
        given = dict(self.transforms or {})
        for col in given:
            if col not in frame.columns:
                raise InputError("has a transform spec but is not in the data", column=col,
                                 hint=closest(str(col), map(str, frame.columns)))
        columns = list(frame.columns)
        dtypes, specs, steps = {}, {}, {}
        for col in columns:
            series = frame[col]
            values = self._column_values(series, col)
            dtypes[col] = str(series.dtype)
            try:
                integer = pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype)
                spec = given[col] if col in given else suggest_transform(
                    col, values.astype(np.int64) if integer else values)
                chain = parse_spec(spec, column=col, random_state=_column_seed(self.random_state, col))
                chain.fit(values, weights)
            except InputError as err:
                if err.column is not None:
                    raise
                raise InputError(err.problem, column=col, hint=err.hint) from None
            specs[col], steps[col] = chain.spec, chain
        self.columns_, self.dtypes_, self.specs_, self.steps_ = columns, dtypes, specs, steps
        return self

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        """``fit(frame).transform(frame)``."""
        return self.fit(frame).transform(frame)

    def select(self, columns) -> FeaturePipeline:
        """The fitted pipeline of ``columns`` only, its transforms shared: a conditional model's
        one pipeline (fitted on targets and conditions alike) maps the conditions in and the
        targets out."""
        NotFittedError.check(self, self.is_fitted())
        part = FeaturePipeline(self.transforms, random_state=self.random_state)
        part.columns_ = list(columns)
        part.dtypes_, part.specs_, part.steps_ = ({c: table[c] for c in part.columns_}
                                                  for table in (self.dtypes_, self.specs_, self.steps_))
        return part

    def categories(self, most: int) -> dict[str, np.ndarray]:
        """The network-space points of each integer column with at most ``most`` values mapped
        without dequantisation noise (spec ``quantile``: a species), one point per value: a
        network can take such a column one-hot
        (:class:`~recogan_app.models.latent.OneHot`) instead of carving its points out of a line."""
        NotFittedError.check(self, self.is_fitted())
        points = {}
        for column, chain in self.steps_.items():
            integral = pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(self.dtypes_[column]))
            if integral and chain.spec == "quantile":
                values = np.unique(chain.steps[0].quantiles_)
                if len(values) <= most:
                    points[column] = chain._transform(values)
        return points

    # -- mapping ----------------------------------------------------------------------------

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The network's matrix: float32, shape ``(n, len(columns_))``, columns in ``columns_`` order.

        Extra columns in ``frame`` are ignored; a missing one is an :class:`InputError`.
        """
        NotFittedError.check(self, self.is_fitted())
        frame = self._check_frame(frame)
        for col in self.columns_:
            if col not in frame.columns:
                raise InputError("is missing from the data", column=col,
                                 hint=closest(col, map(str, frame.columns)))
        out = np.empty((len(frame), len(self.columns_)), dtype=np.float32)
        for i, col in enumerate(self.columns_):
            values = self._column_values(frame[col], col)
            out[:, i] = self.steps_[col]._transform(values)
        return out

    def inverse_transform(self, array) -> pd.DataFrame:
        """A frame with the original column names and dtypes from a ``(n, d)`` matrix.

        Integer columns are rounded and clipped to their dtype's range, float32 stays
        float32. A float32 ``array`` (the generator's output) is mapped to float32 columns in
        float32 arithmetic: the result has the column's precision, at a fraction of the cost.
        NaN in ``array`` (a diverged generator) is an :class:`InputError`.
        """
        NotFittedError.check(self, self.is_fitted())
        arr = np.asarray(array)
        d = len(self.columns_)
        if arr.ndim != 2 or arr.shape[1] != d:
            raise InputError(f"expected a matrix of shape (n, {d}) for columns {self.columns_}, "
                             f"got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"expected a numeric matrix, got dtype {arr.dtype}")
        data = {}
        for i, col in enumerate(self.columns_):
            single = arr.dtype == np.float32 and self._single_precision(self.dtypes_[col])
            y = np.ascontiguousarray(arr[:, i]) if single else arr[:, i].astype(np.float64)
            if np.isnan(y).any():
                raise InputError(f"has {int(np.isnan(y).sum())} NaN values in the generated matrix "
                                 f"(matrix column {i})", column=col)
            data[col] = self._inverse_column(col, y)
        return pd.DataFrame(data, columns=self.columns_, copy=False)  # fresh arrays: no consolidating copy

    def _inverse_column(self, col: str, y: np.ndarray):
        """One column back to its space and dtype, :data:`INVERSE_ROWS` values at a time: a
        transform's dozen intermediate arrays then stay in cache (1.5× faster on long columns)."""
        step, dtype = self.steps_[col], self.dtypes_[col]
        target = pd.api.types.pandas_dtype(dtype)
        if y.size <= INVERSE_ROWS or not isinstance(target, np.dtype) or target.kind == "b":
            return self._restore_dtype(step._inverse(y), dtype)
        out = np.empty(y.size, dtype=target)
        for start in range(0, y.size, INVERSE_ROWS):
            out[start:start + INVERSE_ROWS] = self._restore_dtype(step._inverse(y[start:start + INVERSE_ROWS]), dtype)
        return out

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with the parameters and, once fitted, every column's state."""
        out: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "params": {"transforms": None if self.transforms is None else dict(self.transforms),
                       "random_state": self.random_state},
        }
        if self.is_fitted():
            out["columns"] = [
                {"name": c, "dtype": self.dtypes_[c], "spec": self.specs_[c],
                 "transform": self.steps_[c].to_dict()}
                for c in self.columns_
            ]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path=None) -> FeaturePipeline:
        """Rebuild a pipeline written by :meth:`to_dict`."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise InputError("is not a saved feature pipeline", path=path)
        if data.get("version") != _VERSION:
            raise InputError(f"has pipeline format version {data.get('version')!r}; "
                             f"this recogan reads version {_VERSION}", path=path)
        try:
            params = data["params"]
            pipe = cls(params["transforms"], random_state=params["random_state"])
            if "columns" in data:
                cols = data["columns"]
                pipe.columns_ = [c["name"] for c in cols]
                pipe.dtypes_ = {c["name"]: c["dtype"] for c in cols}
                pipe.specs_ = {c["name"]: c["spec"] for c in cols}
                pipe.steps_ = {c["name"]: Chain.from_dict(c["transform"]) for c in cols}
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, InputError):
                raise err.in_file(path) from None
            raise InputError(f"is a damaged feature pipeline ({type(err).__name__}: {err})", path=path) from None
        return pipe

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (floats written exactly)."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str, *, path=None) -> FeaturePipeline:
        """Rebuild a pipeline from :meth:`to_json` text; outputs are bit-identical."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"is not valid JSON ({err})", path=path) from None
        return cls.from_dict(data, path=path)

    def save(self, path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically, readable like every other run file."""
        path = Path(path)
        write_atomic(path, lambda tmp: Path(tmp).write_text(self.to_json(), encoding="utf-8"))
        return path

    @classmethod
    def load(cls, path) -> FeaturePipeline:
        """Read a pipeline written by :meth:`save`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("no such file", path=path) from None
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"cannot be read ({err})", path=path) from None
        return cls.from_json(text, path=path)

    # -- helpers ----------------------------------------------------------------------------

    def is_fitted(self) -> bool:
        return hasattr(self, "steps_")

    def __repr__(self) -> str:
        if self.is_fitted():
            return f"FeaturePipeline({self.specs_!r}, random_state={self.random_state!r})"
        return f"FeaturePipeline({self.transforms!r}, random_state={self.random_state!r})"

    @staticmethod
    def _check_frame(frame) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        for col in frame.columns:
            if not isinstance(col, str):
                raise InputError(f"column names must be strings, got {col!r}")
        if frame.columns.has_duplicates:
            dup = frame.columns[frame.columns.duplicated()][0]
            raise InputError("appears more than once", column=dup)
        return frame

    @staticmethod
    def _column_values(series: pd.Series, col: str) -> np.ndarray:
        if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
            raise InputError(f"is not numeric (dtype {series.dtype})", column=col)
        if series.isna().any():
            raise InputError(f"has {int(series.isna().sum())} missing (NaN) values", column=col)
        values = series.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"has {int((~np.isfinite(values)).sum())} infinite values", column=col)
        return values

    @staticmethod
    def _single_precision(dtype: str) -> bool:
        """Whether float32 arithmetic holds every value of ``dtype`` exactly: float32 and
        integers of up to 16 bits (float32 is exact up to 2**24)."""
        target = pd.api.types.pandas_dtype(dtype)
        return isinstance(target, np.dtype) and (target == np.float32 or (target.kind in "iu" and target.itemsize <= 2))

    @staticmethod
    def _restore_dtype(x: np.ndarray, dtype: str):
        target = pd.api.types.pandas_dtype(dtype)
        if pd.api.types.is_bool_dtype(target):
            x = np.rint(x) > 0.5
        elif pd.api.types.is_integer_dtype(target):
            np_int = np.dtype(getattr(target, "numpy_dtype", target))
            info = np.iinfo(np_int)
            x = np.clip(np.rint(x), info.min, info.max).astype(np_int)
        return x.astype(target, copy=False) if isinstance(target, np.dtype) else pd.array(x, dtype=target)


# --------------------------------------------------------------------------------------------
# Choosing specs before a training
# --------------------------------------------------------------------------------------------

PREVIEW_ROWS = 20_000
"""Rows that previews and spec checks look at: enough for a column's shape, fitted in a moment."""


def preview_rows(data):
    """A fixed seeded subset of :data:`PREVIEW_ROWS` rows of a frame or column (all when fewer):
    what the page's histograms and previews show, and what spec checks fit on."""
    return subsample(data, PREVIEW_ROWS, seed=0)


def suggest_transforms(frame: pd.DataFrame) -> dict[str, str]:
    """:func:`suggest_transform` for every column of ``frame``, in column order."""
    return {name: suggest_transform(name, frame[name].to_numpy()) for name in frame.columns}


def check_transforms(frame: pd.DataFrame, transforms: dict[str, str]) -> FeaturePipeline:
    """``FeaturePipeline(transforms)`` fitted on the :func:`preview_rows` of ``frame``: a spec that does
    not fit its column (``arccos`` of a momentum) is refused in a moment, naming the column, not
    seconds into a training."""
    return FeaturePipeline(transforms).fit(preview_rows(frame))


def preview_transform(column: pd.Series, spec: str) -> tuple[np.ndarray, np.ndarray]:
    """(raw, transformed) values of the :func:`preview_rows` of ``column``, ``spec`` fitted on them."""
    rows = preview_rows(column).to_frame()
    return rows.iloc[:, 0].to_numpy(np.float64), check_transforms(rows, {column.name: spec}).transform(rows)[:, 0]
