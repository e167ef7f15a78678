"""Validation of a conditional model (targets given conditions): is the response right *where* it
is asked for, not only on average?

- **Efficiency ratios** (seed 002, LHCb's RICH GAN): for each target, thresholds at the
  :data:`QUANTILES` of the MC target; in bins of each condition (equal-population quantile bins,
  or one bin per value of a condition with few values, such as a particle species), the
  efficiency ε = share of rows above the threshold, for the MC and for the model, the ratio
  ε_gen/ε_MC with binomial errors of both, and the pull (ε_gen − ε_MC)/√(σ_gen² + σ_MC²).
- **Relative residuals** (seed 003): (x_model − x_gen)/x_gen against (x_reco − x_gen)/x_gen for
  each target ``reco_<f>`` whose condition ``gen_<f>`` is its generator-level value, with their KS.
- **KS per target in condition bins**: the marginal KS, condition bin by condition bin.

The issue's bars (:data:`RATIO_TOLERANCE`, :data:`PULL_LIMIT`, :data:`MAX_PULL_SHARE`,
:data:`MIN_PASSING`) are read off in :meth:`ConditionalValidation.figures`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recogan_app.metrics.distributions import ks_statistic

QUANTILES = (5, 10, 25, 50, 75, 90, 95)
"""Percentiles of the MC target at which the efficiencies are measured (seed 002)."""
BINS = 5
"""Equal-population bins per condition."""
CATEGORIES = 10
"""A condition with at most this many distinct values is binned value by value."""
RATIO_TOLERANCE, MIN_PASSING = 0.1, 2000
"""Every ratio within 1 ± RATIO_TOLERANCE where the MC bin has at least MIN_PASSING passing rows."""
PULL_LIMIT, MAX_PULL_SHARE = 3.0, 0.05
"""No more than MAX_PULL_SHARE of the ratios with |pull| beyond PULL_LIMIT."""


def binomial_error(passed, total) -> np.ndarray:
    """σ_ε = √(ε (1 − ε) / N) of an efficiency ε = passed / total (NaN for an empty bin)."""
    passed, total = np.asarray(passed, float), np.asarray(total, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        efficiency = passed / total
        return np.sqrt(efficiency * (1 - efficiency) / total)


def condition_bins(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Bin edges of a condition (from the MC's values) and a label per bin: one bin per value
    of a condition with at most :data:`CATEGORIES` values (edges halfway between them), else
    :data:`BINS` equal-population bins."""
    distinct = np.unique(values.to_numpy())
    if len(distinct) <= CATEGORIES:
        middles = (distinct[1:] + distinct[:-1]) / 2
        return np.concatenate(([-np.inf], middles, [np.inf])), [f"{v:g}" for v in distinct]
    edges = np.unique(np.quantile(values.to_numpy(float), np.linspace(0, 1, BINS + 1)))
    labels = [f"[{lo:.4g}, {hi:.4g})" for lo, hi in zip(edges[:-1], edges[1:])]
    return np.concatenate(([-np.inf], edges[1:-1], [np.inf])), labels


def _bins(reference: pd.DataFrame, synthetic: pd.DataFrame, condition: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, MC rows in it, model rows in it) of each bin of ``condition``: each sample binned
    by its own values, with the MC's edges."""
    edges, labels = condition_bins(reference[condition])
    mc, gen = (np.searchsorted(edges, frame[condition].to_numpy(float), side="right") - 1
               for frame in (reference, synthetic))
    return [(label, mc == b, gen == b) for b, label in enumerate(labels)]


def efficiency_ratios(reference: pd.DataFrame, synthetic: pd.DataFrame, targets, conditions) -> pd.DataFrame:
    """One row per (target, condition, condition bin, threshold quantile): the MC's and the
    model's counts, efficiencies with binomial errors, their ratio with its error and the pull.

    ``synthetic`` holds the model's targets beside its conditions (any rows: each sample is
    binned by its own condition values, with the MC's edges)."""
    rows = []
    for condition in conditions:
        bins = _bins(reference, synthetic, condition)
        for target in targets:
            mc_values, gen_values = reference[target].to_numpy(float), synthetic[target].to_numpy(float)
            thresholds = np.percentile(mc_values, QUANTILES)
            for label, in_mc, in_gen in bins:
                mc, gen = mc_values[in_mc], gen_values[in_gen]
                for q, threshold in zip(QUANTILES, thresholds):
                    rows.append({"target": target, "condition": condition, "bin": label, "quantile": q,
                                 "threshold": threshold, "n_mc": len(mc), "n_gen": len(gen),
                                 "pass_mc": int((mc > threshold).sum()), "pass_gen": int((gen > threshold).sum())})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for name in ("mc", "gen"):
        with np.errstate(invalid="ignore", divide="ignore"):
            table[f"eff_{name}"] = table[f"pass_{name}"] / table[f"n_{name}"]
        table[f"err_{name}"] = binomial_error(table[f"pass_{name}"], table[f"n_{name}"])
    with np.errstate(invalid="ignore", divide="ignore"):
        table["ratio"] = table.eff_gen / table.eff_mc
        table["ratio_error"] = table.ratio * np.hypot(table.err_gen / table.eff_gen, table.err_mc / table.eff_mc)
        table["pull"] = (table.eff_gen - table.eff_mc) / np.hypot(table.err_gen, table.err_mc)
    return table


def residual_pairs(targets, conditions) -> list[tuple[str, str]]:
    """(target, condition) pairs of a reconstruction-level target ``reco_<f>`` and its
    generator-level value ``gen_<f>`` among the conditions (seed 003's naming)."""
    return [(t, "gen_" + t[5:]) for t in targets if t.startswith("reco_") and "gen_" + t[5:] in conditions]


def relative_residuals(frame: pd.DataFrame, target: str, condition: str) -> np.ndarray:
    """(x_target − x_condition) / x_condition of the rows where it is finite (x_gen ≠ 0)."""
    gen = frame[condition].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = (frame[target].to_numpy(float) - gen) / gen
    return residual[np.isfinite(residual)]


def residual_table(reference: pd.DataFrame, synthetic: pd.DataFrame, pairs, bins: int = 60) -> pd.DataFrame:
    """Per pair: the KS between the MC's and the model's relative residual distributions, each
    one's median and central 68 % half-width, and both histograms (``bins`` bins over the MC's
    central 98 %; ``edges``, ``counts_mc``, ``counts_gen``) for the report."""
    rows = []
    for target, condition in pairs:
        mc, gen = relative_residuals(reference, target, condition), relative_residuals(synthetic, target, condition)
        (m16, m50, m84), (g16, g50, g84) = np.percentile(mc, [16, 50, 84]), np.percentile(gen, [16, 50, 84])
        edges = np.linspace(*np.percentile(mc, [1, 99]), bins + 1)
        rows.append({"target": target, "condition": condition, "ks": ks_statistic(mc, gen), "n_mc": len(mc),
                     "n_gen": len(gen), "median_mc": m50, "median_gen": g50, "width_mc": (m84 - m16) / 2,
                     "width_gen": (g84 - g16) / 2, "edges": edges, "counts_mc": np.histogram(mc, edges)[0],
                     "counts_gen": np.histogram(gen, edges)[0]})
    return pd.DataFrame(rows, columns=["target", "condition", "ks", "n_mc", "n_gen", "median_mc", "median_gen",
                                       "width_mc", "width_gen", "edges", "counts_mc", "counts_gen"])


def binned_ks(reference: pd.DataFrame, synthetic: pd.DataFrame, targets, conditions) -> pd.DataFrame:
    """The KS of each target in each bin of each condition (bins as :func:`condition_bins`)."""
    rows = []
    for condition in conditions:
        bins = _bins(reference, synthetic, condition)
        for target in targets:
            for label, in_mc, in_gen in bins:
                mc, gen = reference[target].to_numpy(float)[in_mc], synthetic[target].to_numpy(float)[in_gen]
                rows.append({"target": target, "condition": condition, "bin": label, "n_mc": len(mc),
                             "n_gen": len(gen), "ks": ks_statistic(mc, gen) if len(mc) and len(gen) else np.nan})
    return pd.DataFrame(rows)


def _largest(values: pd.Series) -> float | None:
    """The largest finite value, None when there is none."""
    values = values.replace([np.inf, -np.inf], np.nan).dropna()
    return float(values.max()) if len(values) else None


@dataclass
class ConditionalValidation:
    """The three tables of a conditional model against the MC (see the module)."""

    efficiency: pd.DataFrame
    residuals: pd.DataFrame
    binned_ks: pd.DataFrame

    def figures(self) -> dict:
        """The issue's bars, measured (None where nothing is measured): ``max_ratio_deviation``
        (largest |ε_gen/ε_MC − 1| where the MC bin has ≥ MIN_PASSING passing rows),
        ``pull_share`` (share of the finite pulls beyond PULL_LIMIT), ``max_residual_ks`` and
        ``max_binned_ks``."""
        e = self.efficiency
        large = e[e.pass_mc >= MIN_PASSING]
        pulls = e.pull.replace([np.inf, -np.inf], np.nan).dropna()
        return {"efficiency_bins": len(e), "efficiency_bins_large": len(large),
                "max_ratio_deviation": _largest((large.ratio - 1).abs()),
                "pull_share": float((pulls.abs() > PULL_LIMIT).mean()) if len(pulls) else None,
                "max_residual_ks": _largest(self.residuals.ks), "max_binned_ks": _largest(self.binned_ks.ks)}

    def passes(self) -> bool:
        """The issue's efficiency bars: every well-populated ratio within tolerance, few large pulls."""
        f = self.figures()
        return ((f["max_ratio_deviation"] or 0.0) <= RATIO_TOLERANCE and (f["pull_share"] or 0.0) <= MAX_PULL_SHARE)

    def summary(self) -> str:
        f = self.figures()
        large = f["efficiency_bins_large"]
        ratios = f"max |ratio − 1| {f['max_ratio_deviation']:.3f}" if large else "none"
        pulls = f"{f['pull_share']:.1%}" if f["pull_share"] is not None else "none"
        lines = [f"efficiency ratios ε_gen/ε_MC at the MC's {', '.join(map(str, QUANTILES))} % quantiles, in bins of "
                 f"each condition: {f['efficiency_bins']} ratios; where the MC bin has ≥ {MIN_PASSING:,} passing "
                 f"rows ({large}): {ratios} (bar {RATIO_TOLERANCE}); |pull| > {PULL_LIMIT:g}: {pulls} of the ratios "
                 f"(bar {MAX_PULL_SHARE:.0%}): {'passes' if self.passes() else 'fails'}"]
        worst = self.binned_ks.sort_values("ks", ascending=False).head(3)
        lines.append("largest KS in a condition bin: " + ", ".join(
            f"{r.target} at {r.condition} {r.bin} {r.ks:.3f} ({r.n_mc:,} MC rows)" for r in worst.itertuples()))
        for r in self.residuals.itertuples():
            lines.append(f"relative residual of {r.target} vs {r.condition}: KS {r.ks:.4f}; median "
                         f"{r.median_gen:+.4f} (MC {r.median_mc:+.4f}), 68 % half-width {r.width_gen:.4f} "
                         f"(MC {r.width_mc:.4f})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"figures": self.figures(), "passes": self.passes(), "quantiles": list(QUANTILES),
                **{name: getattr(self, name).to_dict(orient="records")
                   for name in ("efficiency", "residuals", "binned_ks")}}


def validate_conditional(reference: pd.DataFrame, synthetic: pd.DataFrame, targets, conditions) -> ConditionalValidation:
    """The conditional validation of ``synthetic`` (targets beside their conditions) against the
    MC ``reference``."""
    targets, conditions = list(targets), list(conditions)
    return ConditionalValidation(efficiency=efficiency_ratios(reference, synthetic, targets, conditions),
                                 residuals=residual_table(reference, synthetic, residual_pairs(targets, conditions)),
                                 binned_ks=binned_ks(reference, synthetic, targets, conditions))
