"""Per-feature distances between the MC and a synthetic sample, and the MC's own noise floor.

The KS distance (seed 000's headline number) and the 1-D Wasserstein distance W1 come out of
one merge of the two sorted samples, so a trainer can afford both for every feature at every
epoch. Each value is meant to be shown beside its noise floor: the same metric between two
disjoint halves of the MC (:func:`noise_floor`), or its closed form for KS (:func:`ks_floor`).

A weighted MC (event weights: :attr:`~recogan_app.data.sources.MCSample.weights`) enters every
function through ``weights``: its empirical CDF is the weighted one, F(t) = Σ_{x_i ≤ t} w_i / Σw,
which may step down where a weight is negative; a synthetic sample is unweighted. A weighted KS's
p-value and floor count the effective sample size (Σw)²/Σw² instead of the rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype
from scipy import stats

from recogan_app.errors import InputError, closest
from recogan_app.metrics.verdict import ks_verdict

MIN_REFERENCE_ROWS = 100
"""Fewest reference rows a verdict is given on. Two MC samples of 100 rows already differ by KS
0.135 at 68 % (:func:`ks_floor`), close to the 0.15 max-KS bar of 'good'; with fewer, the verdict
measures the reference's noise, not the model (5 rows: 0.60)."""
EXACT_PVALUE_MAX_N = 10_000
"""Largest sample for which the KS p-value is scipy's exact one (as ``ks_2samp``'s ``auto``)."""
DISCRETE_MAX_VALUES = 50
"""An integral feature with at most this many distinct values is labelled discrete."""

__all__ = [
    "DISCRETE_MAX_VALUES", "EXACT_PVALUE_MAX_N",
    "bootstrap_interval", "checked_weights", "effective_size", "feature_matrix", "feature_metrics", "halves", "iqr",
    "is_discrete", "ks_floor", "ks_statistic", "ks_summary", "ks_test", "noise_floor", "split_halves", "wasserstein",
    "weighted_quantile",
]


def feature_matrix(frame: pd.DataFrame, features: Sequence[str] | None = None, *, role: str = "sample",
                   min_rows: int = 1) -> tuple[np.ndarray, list[str]]:
    """The named columns of ``frame`` as one float64 array, refusing what no metric can use.

    Every metric here takes DataFrames through this one gate, so a missing, non-numeric or
    non-finite column gets the same clear message wherever it is met.

    Parameters
    ----------
    frame : DataFrame
        The sample.
    features : sequence of str, optional
        Columns to take, in order; all columns of ``frame`` by default.
    role : str
        How messages name the sample ("reference", "synthetic sample").
    min_rows : int
        Fewest rows the caller can work with.

    Returns
    -------
    values : ndarray, shape (n_rows, n_features)
    features : list of str

    Raises
    ------
    InputError
        A column is missing (with the closest names), not numeric, or holds NaN/inf; too few rows.
    """
    names = list(frame.columns if features is None else features)
    if not names:
        raise InputError(f"{role} has no features to compare")
    for name in names:
        if name not in frame.columns:
            raise InputError(f"{role} has no such column", column=name,
                             hint=closest(str(name), map(str, frame.columns)))
        if not is_numeric_dtype(frame[name].dtype):
            raise InputError(f"{role} holds {frame[name].dtype} values, not numbers", column=name)
    if len(frame) < min_rows:
        raise InputError(f"{role} has {len(frame)} rows; at least {min_rows} needed")
    values = frame[names].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = (~np.isfinite(values)).sum(axis=0)
    if bad.any():
        j = int(np.argmax(bad > 0))
        raise InputError(f"{role} has {bad[j]} NaN or infinite values", column=names[j])
    return values, names


def _sample(values, name: str) -> np.ndarray:
    """``values`` as a non-empty, finite 1-D float64 array."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has {np.count_nonzero(~np.isfinite(x))} NaN or infinite values")
    return x


def effective_size(weights, n: int | None = None) -> float:
    """Kish's effective sample size (Σw)²/Σw² of ``weights``: as many unweighted events carry the same
    statistical power; ``n`` (the row count) for an unweighted sample (``weights`` None)."""
    if weights is None:
        return float(n)
    w = np.asarray(weights, dtype=np.float64)
    squares = float(np.dot(w, w))
    return float(w.sum()) ** 2 / squares if squares > 0 else 0.0


def checked_weights(weights, n: int, role: str) -> np.ndarray | None:
    """``weights`` as float64, refused (InputError naming ``role``) unless one finite number per row
    with a positive sum; None stays None."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise InputError(f"{role} has {n:,} rows but {w.size:,} weights")
    if not np.isfinite(w).all():
        raise InputError(f"{role} has {int((~np.isfinite(w)).sum()):,} NaN or infinite weights")
    if not w.sum() > 0:
        raise InputError(f"{role}'s weights sum to {w.sum():g}: a weighted sample needs a positive sum")
    return w


def _ecdf_distances(a: np.ndarray, b: np.ndarray, a_weights: np.ndarray | None = None,
                    b_weights: np.ndarray | None = None) -> tuple[float, float]:
    """(KS, W1) of two checked samples (and their checked weights, None: unweighted) from a single
    merge of their sorted values.

    KS is the largest gap between the two empirical CDFs, W1 the area between them. The gap is
    evaluated at every pooled value from integer counts (from cumulative weights for a weighted
    sample), exactly as ``scipy.stats.ks_2samp`` and ``wasserstein_distance`` do, but the stable
    argsort of two sorted runs is a linear merge, which makes this several times faster than
    calling both.
    """
    n, m = a.size, b.size
    if a_weights is None and b_weights is None:
        both = np.concatenate((np.sort(a), np.sort(b)))
        order = np.argsort(both, kind="stable")
        count_a = np.cumsum(order < n)
        gap = np.abs(count_a / n - (np.arange(1, n + m + 1) - count_a) / m)
    else:
        sort_a, sort_b = np.argsort(a, kind="stable"), np.argsort(b, kind="stable")
        both = np.concatenate((a[sort_a], b[sort_b]))
        order = np.argsort(both, kind="stable")
        step_a = np.full(n, 1 / n) if a_weights is None else a_weights[sort_a] / a_weights.sum()
        step_b = np.full(m, 1 / m) if b_weights is None else b_weights[sort_b] / b_weights.sum()
        gap = np.abs(np.cumsum(np.concatenate((step_a, -step_b))[order]))
    pooled = both[order]
    # Inside a run of tied values only its last position is a point where both ECDFs are complete.
    run_end = np.append(pooled[1:] != pooled[:-1], True)
    return float(gap[run_end].max()), float(np.sum(gap[:-1] * np.diff(pooled)))


def _ks_pvalue(statistic: float, a: np.ndarray, b: np.ndarray, a_weights: np.ndarray | None = None,
               b_weights: np.ndarray | None = None) -> float:
    """Two-sided KS p-value: scipy's exact one for small samples, the Kolmogorov limit above and for
    weighted samples (at their effective sizes).

    Above :data:`EXACT_PVALUE_MAX_N` scipy's own ``asymp`` branch evaluates ``kstwo.sf`` at
    n·m/(n+m), which takes up to a second per call at 10⁶ rows; the Kolmogorov distribution
    ``kstwobign`` at √(n·m/(n+m))·D exceeds it by O(1/√n) relative (1–3 % there) and is instant.
    """
    n, m = effective_size(a_weights, a.size), effective_size(b_weights, b.size)
    if a_weights is None and b_weights is None and max(n, m) <= EXACT_PVALUE_MAX_N:
        with warnings.catch_warnings():
            # For n == m and tiny D (p ≈ 1) scipy's exact recursion loses precision and it falls
            # back, with a warning, to its asymptotic formula: that p-value is the one wanted.
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
            return float(stats.ks_2samp(a, b, method="exact").pvalue)
    return float(stats.kstwobign.sf(np.sqrt(n * m / (n + m)) * statistic))


def ks_statistic(a, b, a_weights=None, b_weights=None) -> float:
    """Two-sample Kolmogorov–Smirnov distance D = max |F_a − F_b|.

    Computed on the exact values: tied (discrete) values are handled as ``ks_2samp`` does, no jitter.

    Parameters
    ----------
    a, b : array_like, shape (n,), (m,)
        Finite samples.
    a_weights, b_weights : array_like, optional
        Event weights of each sample (weighted empirical CDFs); None: unweighted.

    Returns
    -------
    float
        D in [0, 1].

    Examples
    --------
    >>> ks_statistic([1, 2, 3], [2, 3, 4, 5])
    0.5
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    return _ecdf_distances(a, b, checked_weights(a_weights, a.size, "a"), checked_weights(b_weights, b.size, "b"))[0]


def ks_test(a, b) -> tuple[float, float]:
    """KS distance and its two-sided p-value.

    The p-value is scipy's exact one (``ks_2samp``) while both samples have at most
    :data:`EXACT_PVALUE_MAX_N` rows, and the Kolmogorov limit above, which is slightly larger
    (conservative) than ``ks_2samp(method="asymp")``, by ~1 % at p = 0.05 and ~3 % at p = 10⁻⁸,
    but costs microseconds instead of up to a second.
    For discrete features it is conservative: its null distribution assumes no ties.

    Returns
    -------
    statistic, pvalue : float
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    statistic = _ecdf_distances(a, b)[0]
    return statistic, _ks_pvalue(statistic, a, b)


def wasserstein(a, b, a_weights=None, b_weights=None) -> float:
    """1-D Wasserstein distance W1 = ∫ |F_a − F_b| dx, in the feature's own units.

    Equals ``scipy.stats.wasserstein_distance(a, b, a_weights, b_weights)``; unlike KS it grows with
    how *far* mass is displaced, so it sees tails that KS, capped by the CDF gap, hardly registers.
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    return _ecdf_distances(a, b, checked_weights(a_weights, a.size, "a"), checked_weights(b_weights, b.size, "b"))[1]


def weighted_quantile(x: np.ndarray, levels, weights: np.ndarray) -> np.ndarray:
    """Quantiles of ``x`` at ``levels`` (in [0, 1]), each value counting its weight (negative ones as 0).

    numpy's linear rule generalised: the i-th smallest value sits at the middle of its share of the
    cumulative weight, less the first and last values' halves, over the total of those, which is
    i / (n − 1) when the weights are equal: then the result is ``np.quantile(x, levels)``.
    """
    order = np.argsort(x, kind="stable")
    w = np.clip(weights[order], 0, None)
    centre = np.cumsum(w) - w / 2 - w[0] / 2
    if x.size < 2 or not centre[-1] > 0:
        return np.full(np.shape(levels), x[order][-1] if x.size else np.nan)
    return np.interp(levels, centre / centre[-1], x[order])


def iqr(a, weights=None) -> float:
    """Inter-quartile range (75th − 25th percentile, linear interpolation; weighted quantiles with
    ``weights``): the robust scale W1 is divided by."""
    a = _sample(a, "a")
    if weights is None:
        q25, q75 = np.percentile(a, [25, 75])
    else:
        q25, q75 = weighted_quantile(a, [0.25, 0.75], np.asarray(weights, dtype=np.float64))
    return float(q75 - q25)


def _spread(a: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The IQR, or the standard deviation where over half the values sit at one point (IQR 0)."""
    if weights is None:
        return iqr(a) or float(np.std(a))
    mean = np.average(a, weights=weights)
    return iqr(a, weights) or float(np.sqrt(max(np.average((a - mean) ** 2, weights=weights), 0.0)))


def is_discrete(values, max_values: int = DISCRETE_MAX_VALUES) -> bool:
    """Whether a feature is integral with few distinct values (a hit count, a charge).

    Callers label such features: their KS is exact on the values but the p-value is conservative
    and a histogram needs one bin per value.
    """
    x = _sample(values, "values")
    return bool(np.array_equal(x, np.round(x))) and np.unique(x).size <= max_values


def feature_metrics(reference: pd.DataFrame, synthetic: pd.DataFrame, features: Sequence[str] | None = None, *,
                    weights=None, synthetic_weights=None) -> pd.DataFrame:
    """KS, its p-value and W1 for every feature, one sort per feature.

    Parameters
    ----------
    reference : DataFrame
        The MC.
    synthetic : DataFrame
        The generated sample; needs the same feature columns.
    features : sequence of str, optional
        Features to compare; all columns of ``reference`` by default.
    weights, synthetic_weights : array_like, optional
        Event weights of each sample's rows (the MC's; a synthetic sample is unweighted but for
        the floor's second MC half).

    Returns
    -------
    DataFrame
        Indexed by ``feature``, columns ``ks``, ``ks_pvalue``, ``wasserstein``,
        ``wasserstein_iqr`` (W1 over the reference's IQR, its standard deviation where the IQR
        is 0, NaN for a constant feature) and ``discrete`` (see :func:`is_discrete`).
    """
    ref, names = feature_matrix(reference, features, role="reference")
    syn, _ = feature_matrix(synthetic, names, role="synthetic sample")
    wa = checked_weights(weights, len(ref), "reference")
    wb = checked_weights(synthetic_weights, len(syn), "synthetic sample")
    rows = []
    for j in range(len(names)):
        a, b = ref[:, j], syn[:, j]
        ks, w1 = _ecdf_distances(a, b, wa, wb)
        spread = _spread(a, wa)
        rows.append((ks, _ks_pvalue(ks, a, b, wa, wb), w1, w1 / spread if spread else np.nan, is_discrete(a)))
    return pd.DataFrame(rows, index=pd.Index(names, name="feature"),
                        columns=["ks", "ks_pvalue", "wasserstein", "wasserstein_iqr", "discrete"])


def bootstrap_interval(fn: Callable[..., float], a, b, n_boot: int = 200, cl: float = 0.68, rng=None,
                       a_weights=None) -> tuple[float, float]:
    """Bootstrap interval of a two-sample statistic, resampling both samples: the replicas'
    central ``cl`` spread around their median, placed on the observed value.

    A distance such as KS is positive and resampling adds noise to it, so its replicas sit above
    the observed value, often all of them: their raw percentiles would bracket values the data
    did not give (KS 0.060 "in [0.062, 0.078]"). Shifted by the replicas' median bias, the
    interval shows the statistic's spread around what was measured; how much of the value
    itself is noise is the noise floor's job (:func:`ks_floor`).

    Parameters
    ----------
    fn : callable
        ``fn(a, b) -> float``, e.g. :func:`ks_statistic`; ``fn(a, b, a_weights)`` with ``a_weights``.
    a, b : array_like
        The two samples.
    n_boot : int
        Bootstrap replicas.
    cl : float
        Central probability covered, in (0, 1).
    rng : int, Generator or None
        Seed or generator for the resampling.
    a_weights : array_like, optional
        Event weights of ``a``: each resampled value keeps its weight.

    Returns
    -------
    lo, hi : float
    """
    if not 0 < cl < 1:
        raise ValueError(f"cl must lie in (0, 1), got {cl}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    a, b = _sample(a, "a"), _sample(b, "b")
    rng = np.random.default_rng(rng)
    w = checked_weights(a_weights, a.size, "a")
    replicas = []
    for _ in range(n_boot):
        rows, other = rng.integers(0, a.size, a.size), rng.integers(0, b.size, b.size)
        replicas.append(fn(a[rows], b[other]) if w is None else fn(a[rows], b[other], w[rows]))
    lo, median, hi = np.quantile(replicas, [(1 - cl) / 2, 0.5, (1 + cl) / 2])
    observed = fn(a, b) if w is None else fn(a, b, w)
    return float(observed + lo - median), float(observed + hi - median)


def split_halves(frame: pd.DataFrame, size: int | None = None, rng=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint random halves of ``frame``, each of ``min(len // 2, size)`` rows.

    The MC against itself is the yardstick for every comparison with a synthetic sample.
    """
    first, second = halves(len(frame), size, rng)
    return frame.iloc[first], frame.iloc[second]


def halves(n: int, size: int | None = None, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """The row positions of :func:`split_halves` for ``n`` rows (the weights of a weighted MC follow them)."""
    half = n // 2 if size is None else min(n // 2, int(size))
    if half < 1:
        raise InputError(f"sample of {n} rows cannot be split into halves of {size} rows")
    order = np.random.default_rng(rng).permutation(n)
    return order[:half], order[half:2 * half]


def noise_floor(reference: pd.DataFrame, n_synthetic: int | None = None, rng=None,
                features: Sequence[str] | None = None, weights=None) -> pd.DataFrame:
    """:func:`feature_metrics` between two disjoint random halves of the MC (each with its weights).

    This is the level of disagreement the MC's own statistics produce; a synthetic sample
    cannot be shown to agree better than it. Halves have ``min(len(reference) // 2,
    n_synthetic)`` rows, so the floor refers to the sample size actually compared.
    """
    first, second = halves(len(reference), n_synthetic, rng)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    return feature_metrics(reference.iloc[first], reference.iloc[second], features,
                           weights=None if w is None else w[first], synthetic_weights=None if w is None else w[second])


def check_reference_rows(n: int, source) -> None:
    """Refuse a reference of fewer than :data:`MIN_REFERENCE_ROWS` rows (an InputError naming it)."""
    if n < MIN_REFERENCE_ROWS:
        chance = f": two MC samples of {n:,} rows differ by KS {min(ks_floor(n, n), 1):.2f} by chance" if n else ""
        raise InputError(f"has {n:,} rows; a validation verdict needs at least {MIN_REFERENCE_ROWS} reference "
                         f"rows{chance}", path=source)


def ks_floor(n: int, m: int, cl: float = 0.68) -> float:
    """Quantile ``cl`` of the KS distance between samples of sizes n and m of one distribution.

    Closed form from the Kolmogorov limit, √((n+m)/(n·m)) · K⁻¹(cl); a KS value below it is
    indistinguishable from the fluctuation of two MC samples of those sizes.
    """
    if min(n, m) < 1:
        raise ValueError(f"sample sizes must be positive, got {n} and {m}")
    return float(np.sqrt((n + m) / (n * m)) * stats.kstwobign.ppf(cl))


def ks_summary(ks_values) -> dict:
    """Mean and max KS over features, and seed 000's verdict.

    The verdict is :func:`~recogan_app.metrics.verdict.ks_verdict` of the mean and the max.

    Returns
    -------
    dict
        ``{"mean": float, "max": float, "verdict": str}``

    Examples
    --------
    >>> ks_summary([0.072, 0.22])["verdict"]
    'poor'
    """
    ks = np.asarray(ks_values, dtype=np.float64)
    if ks.size == 0:
        raise ValueError("no KS values to summarise")
    mean, worst = float(ks.mean()), float(ks.max())
    return {"mean": mean, "max": worst, "verdict": ks_verdict(mean, worst)}
