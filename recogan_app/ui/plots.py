"""HoloViews elements of the dashboard, as pure functions of plain data (testable without a server).

Every comparison shows its reference yardstick: KS curves sit on seed 000's good/excellent bands
with the MC noise floor at the snapshot's sample size, reference histograms carry Poisson error
bars, and the correlation residual uses one fixed ±tolerance colour scale so that frames compare.
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the backend, so that .opts work without hv.extension)
import numpy as np
import pandas as pd

from recogan_app.metrics.correlations import RESIDUAL_TOLERANCE
from recogan_app.metrics.distributions import EXCELLENT, GOOD, ks_floor

__all__ = ["BINS", "comparison_histogram", "density_histogram", "edges_for", "ks_curves", "loss_curves",
           "residual_heatmap", "ws_curves"]

BINS = 40
LOSSES = pd.DataFrame({"step": pd.Series(dtype=int), "term": pd.Series(dtype=str), "value": pd.Series(dtype=float)})
"""Empty long-form loss table: the schema of the loss stream."""
SCORES = pd.DataFrame({"epoch": pd.Series(dtype=int), "feature": pd.Series(dtype=str), "ks": pd.Series(dtype=float),
                       "ws": pd.Series(dtype=float), "floor": pd.Series(dtype=float)})
"""Empty long-form per-feature score table: the schema of the KS/WS stream."""
_CURVES = dict(responsive=True, min_height=260, show_grid=True, tools=["hover"], legend_position="right")


def edges_for(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin edges over the central 99.8 % of ``values`` (so that one far tail does not squash the
    histogram), or a unit range around a constant."""
    lo, hi = np.percentile(values, [0.1, 99.9]) if len(values) else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def density_histogram(values: np.ndarray, edges: np.ndarray | None = None, label: str = "") -> hv.Histogram:
    """A normalised histogram of ``values``."""
    edges = edges_for(values) if edges is None else edges
    counts, _ = np.histogram(values, edges)
    density = counts / max(counts.sum(), 1) / np.diff(edges)
    return hv.Histogram((edges, density), kdims=[label or "value"], vdims=["density"], label=label)


def comparison_histogram(reference: np.ndarray, synthetic: np.ndarray, feature: str) -> hv.Overlay:
    """Reference (filled, with √N error bars) and synthetic (outline) densities on common bins."""
    edges = edges_for(reference)
    counts, _ = np.histogram(reference, edges)
    width, total = np.diff(edges), max(counts.sum(), 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ref = hv.Histogram((edges, counts / total / width), kdims=[feature], vdims=["density"], label="MC (held out)")
    errors = hv.ErrorBars((centres, counts / total / width, np.sqrt(counts) / total / width),
                          kdims=[feature], vdims=["density", "error"])
    syn = density_histogram(synthetic, edges, feature).relabel("generated")
    return (ref.opts(fill_alpha=0.35, fill_color="grey", line_alpha=0)
            * errors.opts(color="black")
            * syn.opts(fill_alpha=0, line_color="crimson", line_width=2)).opts(
        responsive=True, min_height=260, legend_position="top_right", title=f"{feature}: MC vs generated")


def residual_heatmap(residual: pd.DataFrame, epoch: int | None = None) -> hv.HeatMap:
    """Pearson(generated) − Pearson(MC) per feature pair on a fixed ±tolerance colour scale."""
    names = list(residual.columns)
    cells = [(x, y, float(residual.loc[y, x])) for x in names for y in names]
    title = "Correlation residual" + (f", epoch {epoch}" if epoch is not None else "")
    return hv.HeatMap(cells, kdims=["x", "y"], vdims=["residual"]).opts(
        cmap="RdBu_r", clim=(-RESIDUAL_TOLERANCE, RESIDUAL_TOLERANCE), colorbar=True, xrotation=45,
        tools=["hover"], responsive=True, min_height=300, title=title, xlabel="", ylabel="", invert_yaxis=True)


def loss_curves(data: pd.DataFrame) -> hv.NdOverlay:
    """One curve per loss term versus optimisation step (``data`` in :data:`LOSSES` form)."""
    curves = {term: hv.Curve(rows, "step", "value").opts(**_CURVES) for term, rows in data.groupby("term")}
    return hv.NdOverlay(curves or {"": hv.Curve([], "step", "value").opts(**_CURVES)}, kdims="term").opts(
        title="Losses", legend_position="right")


def _feature_curves(data: pd.DataFrame, column: str, **opts) -> hv.NdOverlay:
    curves = {f: hv.Curve(rows, "epoch", column).opts(**_CURVES, **opts) for f, rows in data.groupby("feature", sort=False)}
    return hv.NdOverlay(curves or {"": hv.Curve([], "epoch", column).opts(**_CURVES, **opts)}, kdims="feature")


def ks_curves(data: pd.DataFrame) -> hv.Overlay:
    """Per-feature KS versus epoch over seed 000's bands and the MC noise floor.

    Green: excellent (every feature's KS below the 'excellent' max-KS bar), orange: good. The
    dashed line is :func:`ks_floor` at the snapshot sample size: KS below it cannot be told from
    two MC samples of that size.
    """
    bands = (hv.HSpan(0, EXCELLENT[1]).opts(color="green", alpha=0.12)
             * hv.HSpan(EXCELLENT[1], GOOD[1]).opts(color="orange", alpha=0.12))
    floor = float(data["floor"].iloc[-1]) if len(data) else 0.0
    overlay = bands * _feature_curves(data, "ks") * hv.HLine(floor).opts(color="black", line_dash="dashed")
    return overlay.opts(
        title=f"KS per feature (bands: excellent < {EXCELLENT[1]}, good < {GOOD[1]}; dashed: MC floor {floor:.3f})",
        ylim=(0, None))


def ws_curves(data: pd.DataFrame) -> hv.NdOverlay:
    """Per-feature 1-D Wasserstein distance versus epoch, in each feature's own unit (log scale)."""
    return _feature_curves(data, "ws", logy=True).opts(title="Wasserstein distance per feature")


def snapshot_rows(snapshot) -> pd.DataFrame:
    """The :data:`SCORES` rows of one training snapshot."""
    table = snapshot.details["per_feature"]
    size = snapshot.sample_size
    return pd.DataFrame({"epoch": snapshot.epoch, "feature": table.index.astype(str), "ks": table["ks"].to_numpy(),
                         "ws": table["wasserstein"].to_numpy(), "floor": ks_floor(size, size)})


def loss_rows(rows: list[dict]) -> pd.DataFrame:
    """Step-loss dicts as :data:`LOSSES` rows."""
    wide = pd.DataFrame(rows).drop(columns="epoch")
    return wide.melt(id_vars="step", var_name="term", value_name="value")
