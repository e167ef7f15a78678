"""The Gaussian copula: the baseline every generator must beat.

It reproduces each marginal exactly (up to its quantile grid) and all pairwise dependence that
one Gaussian correlation matrix of normal scores can express, in seconds and with no training.
A GAN that does not beat it on the validation metrics has learnt nothing the copula could not.
For a conditional model it is conditional too: given the conditions' values, the targets' normal
scores are drawn from the Gaussian conditioned on the conditions' scores (closed form).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype
from scipy import special

from recogan_app.errors import NotFittedError
from recogan_app.metrics.correlations import correlation_matrix
from recogan_app.metrics.distributions import feature_matrix

__all__ = ["GaussianCopula"]


class GaussianCopula:
    """Per-feature empirical quantile maps joined by one Gaussian correlation matrix.

    ``fit`` maps each feature through its empirical CDF to normal scores and measures their
    correlation; ``sample`` draws correlated normals and maps each back through the feature's
    quantile function. Ties (discrete features) are broken at random before ranking, so the
    normal scores stay continuous and their correlation estimates the latent Gaussian one.

    Parameters
    ----------
    n_quantiles : int
        Points of each stored quantile function (capped by the number of rows); values between
        them are linearly interpolated.
    random_state : int or None
        Seeds the tie-breaking in ``fit`` and is the default seed of ``sample``.

    Attributes
    ----------
    columns_ : list of str
        Fitted features, in order.
    dtypes_ : Series
        Their dtypes, restored by ``sample``.
    quantiles_ : ndarray, shape (n_quantiles, n_features)
        Quantile function of each feature at ``linspace(0, 1, n_quantiles)``.
    correlation_ : ndarray, shape (n_features, n_features)
        Correlation matrix of the normal scores.
    n_samples_ : int
        Rows it was fitted on: it carries no more information than these.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": np.arange(100.0), "n": np.arange(100) % 7})
    >>> GaussianCopula().fit(frame).sample(5, seed=1).dtypes.tolist()
    [dtype('float64'), dtype('int64')]
    """

    def __init__(self, n_quantiles: int = 1000, random_state: int | None = 0):
        self.n_quantiles = n_quantiles
        self.random_state = random_state

    def fit(self, frame: pd.DataFrame, weights=None) -> GaussianCopula:
        """Learn the quantile maps and the normal-score correlation of every column of ``frame``,
        each row counting its event weight when ``weights`` are given (negative ones as 0): a
        row's normal score sits at the middle of its share of the cumulative weight.

        Raises
        ------
        InputError
            A non-numeric or non-finite column, or fewer than two rows.
        """
        if self.n_quantiles < 2:
            raise ValueError(f"n_quantiles must be at least 2, got {self.n_quantiles}")
        values, columns = feature_matrix(frame, role="training sample", min_rows=2)
        n, d = values.shape
        rng = np.random.default_rng(self.random_state)
        normal_scores = special.ndtri((np.arange(n) + 0.5) / n)
        # Quantiles at linspace(0, 1, k) by np.quantile's linear rule, read off the sorted column.
        positions = np.linspace(0, n - 1, min(self.n_quantiles, n))
        scores, quantiles = np.empty_like(values), np.empty((positions.size, d))
        w = None if weights is None else np.clip(np.asarray(weights, dtype=np.float64), 0, None)
        for j in range(d):
            # A stable sort after a fresh shuffle breaks ties at random, independently per feature.
            shuffle = rng.permutation(n)
            order = shuffle[np.argsort(values[shuffle, j], kind="stable")]
            if w is None:
                scores[order, j] = normal_scores
                quantiles[:, j] = np.interp(positions, np.arange(n), values[order, j])
            else:
                mass = np.cumsum(w[order])
                levels = (mass - w[order] / 2) / mass[-1]
                scores[order, j] = special.ndtri(np.clip(levels, 0.5 / n, 1 - 0.5 / n))
                quantiles[:, j] = np.interp(positions / max(n - 1, 1), levels, values[order, j])
        self.columns_ = columns
        self.dtypes_ = frame[columns].dtypes
        self.quantiles_ = quantiles
        self.correlation_ = correlation_matrix(pd.DataFrame(scores), weights=w).to_numpy()
        self.n_samples_ = n
        return self

    def sample(self, n: int, seed: int | None = None, given: pd.DataFrame | None = None) -> pd.DataFrame:
        """Draw ``n`` rows with the fitted columns and dtypes.

        Integer and boolean columns come back rounded to their type; every value lies inside
        the range seen in ``fit``.

        Parameters
        ----------
        n : int
            Rows to draw.
        seed : int, optional
            Seed of this draw; ``random_state`` when omitted, so a plain ``sample(n)`` repeats.
        given : DataFrame, optional
            Values of some fitted columns (a conditional model's conditions), ``n`` rows: they are
            copied through, and the other columns drawn given them: their normal scores from the
            fitted Gaussian conditioned on the given columns' scores, mean Σ_tc Σ_cc⁻¹ z_c and
            covariance Σ_tt − Σ_tc Σ_cc⁻¹ Σ_ct. A given value's score is drawn within its share of
            the fitted CDF (a tied, discrete value spans a range), as ``fit`` broke its ties.

        Returns
        -------
        DataFrame, shape (n, n_features)
        """
        NotFittedError.check(self, hasattr(self, "correlation_"), "fit(frame)")
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        rng = np.random.default_rng(self.random_state if seed is None else seed)
        d, sigma = len(self.columns_), self.correlation_
        if given is None:
            scores = rng.multivariate_normal(np.zeros(d), sigma, size=n, method="eigh")
        else:
            if len(given) != n:
                raise ValueError(f"given holds {len(given)} rows, not n = {n}")
            c = [self.columns_.index(name) for name in given.columns]
            t = [j for j in range(d) if j not in c]
            scores = np.empty((n, d))
            scores[:, c] = np.column_stack([self._given_scores(given[name].to_numpy(np.float64), j, rng)
                                            for name, j in zip(given.columns, c)])
            regression = sigma[np.ix_(t, c)] @ np.linalg.pinv(sigma[np.ix_(c, c)], hermitian=True)
            spread = sigma[np.ix_(t, t)] - regression @ sigma[np.ix_(c, t)]
            scores[:, t] = scores[:, c] @ regression.T + rng.multivariate_normal(
                np.zeros(len(t)), spread, size=n, method="eigh")
        uniform = special.ndtr(scores)
        grid = np.linspace(0, 1, len(self.quantiles_))
        columns = {}
        for j, name in enumerate(self.columns_):
            if given is not None and name in given.columns:
                columns[name] = given[name].to_numpy()
                continue
            x = np.interp(uniform[:, j], grid, self.quantiles_[:, j])
            dtype = self.dtypes_[name]
            columns[name] = np.rint(x) if is_integer_dtype(dtype) or is_bool_dtype(dtype) else x
        return pd.DataFrame(columns).astype(self.dtypes_.to_dict())

    def _given_scores(self, x: np.ndarray, j: int, rng: np.random.Generator) -> np.ndarray:
        """Normal scores of values ``x`` of column ``j``: a level drawn uniformly between the fitted
        CDF just below and at each value (one point for a continuous value), through Φ⁻¹."""
        q = self.quantiles_[:, j]
        grid = np.linspace(0, 1, len(q))
        x = np.clip(x, q[0], q[-1])

        def level(side: str, flat: float) -> np.ndarray:  # the CDF on the quantile grid's segment holding x
            i = np.clip(np.searchsorted(q, x, side), 1, len(q) - 1)
            width = q[i] - q[i - 1]
            share = np.divide(x - q[i - 1], width, out=np.full(x.shape, flat), where=width > 0)
            return grid[i - 1] + share * (grid[i] - grid[i - 1])

        edge = 0.5 / self.n_samples_
        return special.ndtri(np.clip(rng.uniform(level("left", 0.0), level("right", 1.0)), edge, 1 - edge))
