"""Correlation matrices of the MC and a synthetic sample, and their residual.

Seed 000 asks every Pearson coefficient of the synthetic sample to agree with the MC's within
±0.05 (:data:`RESIDUAL_TOLERANCE`). :func:`residual_noise` says what chance alone gives at the sizes
compared, for one pair and for the largest of all pairs (what a "max |Δρ|" is set against), in the
words of :func:`noise_text` wherever a residual is printed; :func:`residual_floor` is the residual
the MC shows against itself (two halves: twice the variance per side). A weighted MC's matrices
are the weighted ones (``weights``: weighted covariances; weighted average ranks for Spearman).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from recogan_app.errors import InputError, closest
from recogan_app.metrics.distributions import feature_matrix, halves
from recogan_app.metrics.verdict import RESIDUAL_TOLERANCE

METHODS = ("pearson", "spearman")

__all__ = ["METHODS", "correlation_matrix", "correlation_residual", "flagged_pairs", "max_abs_residual",
           "noise_text", "residual_floor", "residual_noise", "residual_undefined"]


def _average_ranks(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """1-based ranks of ``x``, ties sharing their average rank (as ``scipy.stats.rankdata``, ~1.5× faster);
    with ``weights``, each value's mid-point on the cumulative weight (a Pearson-neutral shift of the
    average rank when every weight is 1)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if weights is not None:
        mass = np.bincount(inverse, weights=weights)
        return (np.cumsum(mass) - mass / 2)[inverse]
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse]


def _pearson(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Pearson matrix of the columns of ``values``, each row counting its weight (any sign)."""
    if weights is None:
        return np.corrcoef(values, rowvar=False)
    share = weights / weights.sum()
    centred = values - share @ values
    covariance = (centred * share[:, None]).T @ centred
    spread = np.sqrt(np.diag(covariance))
    return covariance / np.outer(spread, spread)


def _correlation(values: np.ndarray, names: list[str], method: str, weights=None) -> pd.DataFrame:
    if method not in METHODS:
        raise InputError(f"unknown correlation method '{method}'", hint=closest(method, METHODS))
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    if method == "spearman":
        values = np.column_stack([_average_ranks(column, weights) for column in values.T])
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant feature has NaN coefficients
        matrix = np.atleast_2d(_pearson(values, weights))
    return pd.DataFrame(matrix, index=pd.Index(names, name="feature"), columns=pd.Index(names, name="feature"))


def correlation_matrix(frame: pd.DataFrame, method: str = "pearson",
                       features: Sequence[str] | None = None, weights=None) -> pd.DataFrame:
    """Pearson or Spearman correlation matrix of the features.

    Parameters
    ----------
    frame : DataFrame
        The sample, at least two rows.
    method : {"pearson", "spearman"}
        Spearman is Pearson on average ranks: it sees monotone, not only linear, dependence.
    features : sequence of str, optional
        Columns, in order; all by default.
    weights : array_like, optional
        Each row's event weight.

    Returns
    -------
    DataFrame, shape (n_features, n_features)
        Symmetric, unit diagonal; NaN rows/columns for a constant feature.
    """
    return _correlation(*feature_matrix(frame, features, role="sample", min_rows=2), method, weights)


def correlation_residual(reference: pd.DataFrame, synthetic: pd.DataFrame, method: str = "pearson",
                         features: Sequence[str] | None = None, weights=None,
                         synthetic_weights=None) -> pd.DataFrame:
    """Correlation matrix of ``synthetic`` minus that of ``reference`` (the heatmap of seed 000),
    each sample weighted by its ``weights`` when given.

    Features default to all columns of ``reference``; ``synthetic`` must hold them.
    """
    ref_values, names = feature_matrix(reference, features, role="reference", min_rows=2)
    syn_values, _ = feature_matrix(synthetic, names, role="synthetic sample", min_rows=2)
    return _correlation(syn_values, names, method, synthetic_weights) - _correlation(ref_values, names, method, weights)


def _pairs(residual: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices, column indices and values of the distinct feature pairs (upper triangle)."""
    rows, cols = np.triu_indices(len(residual), k=1)
    return rows, cols, residual.to_numpy()[rows, cols]


def max_abs_residual(residual: pd.DataFrame) -> float:
    """Largest |residual| over distinct feature pairs; NaN when it cannot be computed
    (:func:`residual_undefined` says why): never a 0 that reads as perfect agreement."""
    values = _pairs(residual)[2]
    return float(np.abs(values).max()) if values.size else math.nan


def residual_undefined(residual: pd.DataFrame) -> str | None:
    """Why :func:`max_abs_residual` of ``residual`` is not a number, or None when it is one."""
    if len(residual) < 2:
        return "one feature: no pair to correlate"
    constant = residual.columns[np.isnan(np.diag(residual.to_numpy()))]
    if len(constant):
        return f"column '{constant[0]}' is constant in one of the samples: its coefficients are 0/0"
    return None


def residual_text(value: float) -> str:
    """A largest |residual| for a person: three decimals, or "not computable" where it is NaN (one
    feature, a constant column: :func:`residual_undefined` says which), never a made-up 0."""
    return f"{value:.3f}" if math.isfinite(value) else "not computable"


def flagged_pairs(residual: pd.DataFrame, tolerance: float = RESIDUAL_TOLERANCE) -> pd.DataFrame:
    """Feature pairs whose |residual| exceeds ``tolerance``, largest first.

    Returns
    -------
    DataFrame
        Columns ``feature_a``, ``feature_b``, ``residual``; empty when all pairs agree.
    """
    rows, cols, values = _pairs(residual)
    keep = np.abs(values) > tolerance
    names = np.asarray(residual.columns)
    pairs = pd.DataFrame({"feature_a": names[rows[keep]], "feature_b": names[cols[keep]], "residual": values[keep]})
    return pairs.iloc[np.argsort(-np.abs(pairs["residual"].to_numpy()), kind="stable")].reset_index(drop=True)


def residual_noise(n_reference: float, n_synthetic: float, n_features: int, cl: float = 0.68) -> dict:
    """What chance alone gives the correlation residual between ``n_reference`` and ``n_synthetic``
    rows of one distribution (effective sizes for weighted rows), with ``n_features`` columns.

    ``pair``: the 1σ of one coefficient's residual, √(1/(n−1) + 1/(m−1)) for an uncorrelated pair
    (Pearson of Gaussian rows, Spearman of any; (1 − ρ²) times it for a correlation ρ).
    ``largest``: the ``cl`` quantile of the largest |residual| of the ``pairs`` distinct pairs, what a
    max |Δρ| over them reaches by chance: pairs of independent columns are uncorrelated, so
    P(max ≤ x) = (2Φ(x/σ) − 1)^pairs. A max |Δρ| is judged against ``largest``, never against ``pair``.
    """
    pairs = max(n_features * (n_features - 1) // 2, 1)
    pair = math.sqrt(1 / max(n_reference - 1, 1) + 1 / max(n_synthetic - 1, 1))
    return {"pair": pair, "largest": pair * float(stats.norm.ppf((1 + cl ** (1 / pairs)) / 2)), "pairs": pairs,
            "cl": cl}


def noise_text(noise: dict) -> str:
    """:func:`residual_noise` in the words of every summary (training, ``validate``, the report)."""
    if noise["pairs"] == 1:
        return f"noise {noise['pair']:.3f}, one pair"
    return (f"noise {noise['pair']:.3f} a pair, up to {noise['largest']:.3f} over {noise['pairs']:,} pairs "
            f"({noise['cl']:.0%})")


def residual_floor(reference: pd.DataFrame, method: str = "pearson", n_synthetic: int | None = None, rng=None,
                   features: Sequence[str] | None = None, weights=None) -> pd.DataFrame:
    """:func:`correlation_residual` between two disjoint random halves of the MC (each with its weights).

    Halves have ``min(len(reference) // 2, n_synthetic)`` rows. For Pearson the scale is about
    (1 − ρ²)·√(2/half) a pair: twice the variance a side of the MC against a synthetic sample of the
    full size has (:func:`residual_noise`), so a summary names it "two MC halves", never the noise.
    """
    first, second = halves(len(reference), n_synthetic, rng)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    return correlation_residual(reference.iloc[first], reference.iloc[second], method, features,
                                None if w is None else w[first], None if w is None else w[second])
