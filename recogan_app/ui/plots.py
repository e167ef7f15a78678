"""HoloViews elements of the dashboard, as pure functions of plain data (testable without a server).

Every comparison shows its reference yardstick: KS curves sit on seed 000's good/excellent bands
with the MC noise floor at the snapshot's sample size, compared histograms carry Poisson error
bars, and the correlation residual uses one fixed ±tolerance colour scale so that frames compare.
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the backend, so that .opts work without hv.extension)
import numpy as np
import pandas as pd

from recogan_app.metrics.correlations import RESIDUAL_TOLERANCE
from recogan_app.metrics.distributions import EXCELLENT, GOOD, is_discrete, ks_floor
from recogan_app.validation import compare_histograms

__all__ = ["BINS", "KS_CAPTION", "SIZE", "comparison_histogram", "density_histogram", "edges_for", "ks_curves",
           "loss_curves", "loss_rows", "residual_heatmap", "snapshot_rows", "ws_curves"]

BINS = 40
SIZE = dict(width=560, height=300)
"""Every dashboard plot's size: fixed, so that legends outside the frame do not overlap a neighbour."""
_CURVES = dict(**SIZE, show_grid=True, tools=["hover"], framewise=True)


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
    return hv.Histogram((edges, density), kdims=[label or "value"], vdims=["density"], label=label).opts(xlabel="")


def comparison_histogram(reference: np.ndarray, synthetic: np.ndarray, feature: str) -> hv.Overlay:
    """MC (filled) and generated rows scaled to the MC's area (outline) on the validation's shared
    bins (:func:`~recogan_app.validation.compare_histograms`), each with its Poisson error bars, and
    their χ²/ndf in the title."""
    h = compare_histograms(reference, synthetic, integer=is_discrete(reference))
    centres = 0.5 * (h.edges[1:] + h.edges[:-1])
    dims = dict(kdims=[feature], vdims=["entries"])
    ref = hv.Histogram((h.edges, h.reference), **dims, label="MC (held out)")
    syn = hv.Histogram((h.edges, h.synthetic_scaled), **dims, label="generated")
    errors = [hv.ErrorBars((centres, counts, error), kdims=[feature], vdims=["entries", "error"]).opts(color=color)
              for counts, error, color in ((h.reference, h.reference_error, "black"),
                                           (h.synthetic_scaled, h.synthetic_error, "crimson"))]
    return (ref.opts(fill_alpha=0.35, fill_color="grey", line_alpha=0)
            * syn.opts(fill_alpha=0, line_color="crimson", line_width=2) * errors[0] * errors[1]).opts(
        **SIZE, legend_position="top_right", framewise=True,
        title=f"{feature}: MC vs generated (χ²/ndf {h.chi2_ndf:.2f})")


def residual_heatmap(residual: pd.DataFrame, epoch: int | None = None) -> hv.HeatMap:
    """Pearson(generated) − Pearson(MC) per feature pair on a fixed ±tolerance colour scale."""
    names = list(residual.columns)
    cells = [(x, y, float(residual.loc[y, x])) for x in names for y in names]
    title = "Correlation residual" + (f", epoch {epoch}" if epoch is not None else "")
    return hv.HeatMap(cells, kdims=["x", "y"], vdims=["residual"]).opts(
        cmap="RdBu_r", clim=(-RESIDUAL_TOLERANCE, RESIDUAL_TOLERANCE), colorbar=True, xrotation=45,
        tools=["hover"], **SIZE, title=title, xlabel="", ylabel="", invert_yaxis=True,
        framewise=True)


def loss_curves(data: pd.DataFrame) -> hv.NdOverlay:
    """One curve per loss term versus optimisation step (``data`` from :func:`loss_rows`)."""
    curves = {term: hv.Curve(rows, "step", "value").opts(**_CURVES) for term, rows in data.groupby("term")}
    return hv.NdOverlay(curves, kdims="term").opts(title="Losses", legend_position="right")


def _feature_curves(data: pd.DataFrame, column: str, **opts) -> hv.NdOverlay:
    curves = {feature: hv.Curve(rows, "epoch", column).opts(**_CURVES, **opts)
              for feature, rows in data.groupby("feature", sort=False)}
    return hv.NdOverlay(curves, kdims="feature").opts(legend_position="right")


KS_CAPTION = (f"Green band: excellent (KS < {EXCELLENT[1]}), orange: good (< {GOOD[1]}), seed 000's max-KS bars; "
              f"dashed: the MC noise floor at the snapshot size, below which KS cannot be told from MC vs MC.")


def ks_curves(data: pd.DataFrame) -> hv.Overlay:
    """Per-feature KS versus epoch over seed 000's bands and the MC noise floor (see :data:`KS_CAPTION`).

    The floor is :func:`ks_floor` at the snapshot's sample size.
    """
    bands = (hv.HSpan(0, EXCELLENT[1]).opts(color="green", alpha=0.12)
             * hv.HSpan(EXCELLENT[1], GOOD[1]).opts(color="orange", alpha=0.12))
    floor = float(data["floor"].iloc[-1])
    overlay = bands * _feature_curves(data, "ks") * hv.HLine(floor).opts(color="black", line_dash="dashed")
    return overlay.opts(title="KS distance per feature", xlabel="epoch", ylabel="KS", ylim=(0, None),
                        legend_position="right")


def ws_curves(data: pd.DataFrame) -> hv.NdOverlay:
    """Per-feature 1-D Wasserstein distance versus epoch, in each feature's own unit (log scale)."""
    return _feature_curves(data, "ws", logy=True).opts(title="Wasserstein distance per feature")


def snapshot_rows(snapshot) -> pd.DataFrame:
    """Long-form rows (epoch counted from 1, feature, ks, ws, floor) of one snapshot, for the score stream."""
    table = snapshot.details["per_feature"]
    size = snapshot.sample_size
    return pd.DataFrame({"epoch": snapshot.epoch + 1, "feature": table.index.astype(str), "ks": table["ks"].to_numpy(),
                         "ws": table["wasserstein"].to_numpy(), "floor": ks_floor(size, size)})


def loss_rows(rows: list[dict]) -> pd.DataFrame:
    """Step-loss dicts as long-form rows (step, term, value), for the loss stream."""
    wide = pd.DataFrame(rows).drop(columns="epoch")
    return wide.melt(id_vars="step", var_name="term", value_name="value")
