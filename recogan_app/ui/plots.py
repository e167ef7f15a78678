"""HoloViews elements of the dashboard, as pure functions of plain data (testable without a server).

Every comparison shows its reference yardstick: KS curves sit on seed 000's good/excellent bands
with the MC noise floor at the snapshot's sample size, compared histograms carry Poisson error
bars, and the correlation residual uses one fixed ±tolerance colour scale so that frames compare.
ZDC plots follow suit: the five-channel WS curves sit over the toy's noise floor, the channel
histograms carry error bars, and each gallery frame puts a real response and the generated ones
for the same conditions on one colour scale.
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the backend, so that .opts work without hv.extension)
import numpy as np
import pandas as pd

from recogan_app.data.toy_zdc import SPECIES
from recogan_app.metrics.correlations import RESIDUAL_TOLERANCE
from recogan_app.metrics.distributions import EXCELLENT, GOOD, is_discrete, ks_floor
from recogan_app.validation import compare_histograms

__all__ = ["BINS", "CHANNELS", "KS_CAPTION", "SIZE", "channel_histogram", "channel_ws_curves", "channel_ws_rows",
           "comparison_histogram", "condition_title", "density_histogram", "edges_for", "gallery_canvas",
           "ks_curves", "loss_curves",
           "loss_rows", "residual_heatmap", "snapshot_rows", "ws_curves", "zdc_gallery"]

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


def comparison_histogram(reference: np.ndarray, synthetic: np.ndarray, feature: str, *,
                         reference_label: str = "MC (held out)", title: str | None = None) -> hv.Overlay:
    """MC (filled) and generated rows scaled to the MC's area (outline) on the validation's shared
    bins (:func:`~recogan_app.validation.compare_histograms`), each with its Poisson error bars, and
    their χ²/ndf in the title (``title``, by default "<feature>: MC vs generated")."""
    h = compare_histograms(reference, synthetic, integer=is_discrete(reference))
    centres = 0.5 * (h.edges[1:] + h.edges[:-1])
    dims = dict(kdims=[feature], vdims=["entries"])
    ref = hv.Histogram((h.edges, h.reference), **dims, label=reference_label)
    syn = hv.Histogram((h.edges, h.synthetic_scaled), **dims, label="generated")
    errors = [hv.ErrorBars((centres, counts, error), kdims=[feature], vdims=["entries", "error"]).opts(color=color)
              for counts, error, color in ((h.reference, h.reference_error, "black"),
                                           (h.synthetic_scaled, h.synthetic_error, "crimson"))]
    return (ref.opts(fill_alpha=0.35, fill_color="grey", line_alpha=0)
            * syn.opts(fill_alpha=0, line_color="crimson", line_width=2) * errors[0] * errors[1]).opts(
        **SIZE, legend_position="top_right", framewise=True,
        title=f"{title or f'{feature}: MC vs generated'} (χ²/ndf {h.chi2_ndf:.2f})")


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


def _feature_curves(data: pd.DataFrame, column: str, by: str = "feature", colors: dict | None = None,
                    **opts) -> hv.NdOverlay:
    """One curve of ``column`` versus epoch per value of ``by`` (in the given ``colors``, if any)."""
    curves = {key: hv.Curve(rows, "epoch", column).opts(**_CURVES, **opts, **({"color": colors[key]} if colors else {}))
              for key, rows in data.groupby(by, sort=False)}
    return hv.NdOverlay(curves, kdims=by).opts(legend_position="right")


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


# -- ZDC -------------------------------------------------------------------------------------------

CHANNELS = ("ch1", "ch2", "ch3", "ch4", "ch5")
CHANNEL_COLORS = {"ch1": "#1f77b4", "ch2": "#ff7f0e", "ch3": "#2ca02c", "ch4": "#d62728", "ch5": "#9467bd",
                  "mean": "black"}
"""One colour per channel, shared by its WS curve and its noise-floor line; black: the five-channel mean."""
WS_CAPTION = ("Five-channel Wasserstein distance (photons) between the snapshot's real training events and "
              "generated responses to their conditions (one fixed noise draw); dashed, same colour (embedded toy "
              "only): the noise floor, a second simulation of the same conditions, below which a model cannot "
              "be shown to do better.")
PARTICLES = {"proton": "p", "neutron": "n", "pi+": "π⁺", "pi-": "π⁻", "K0L": "K⁰L", "gamma": "γ"}
GALLERY_GAP = 2
"""Columns of blank space between the images of one gallery frame."""


def channel_ws_rows(snapshot, floor=None) -> pd.DataFrame:
    """Long-form rows (epoch counted from 1, channel, ws, floor) of one ZDC snapshot: the five
    channels and their mean; ``floor`` (per channel, or None) the toy's noise floor."""
    floor = np.full(5, np.nan) if floor is None else np.asarray(floor, dtype=np.float64)
    ws = [snapshot.metrics[f"ws_{channel}"] for channel in CHANNELS] + [snapshot.metrics["ws_mean"]]
    return pd.DataFrame({"epoch": snapshot.epoch + 1, "channel": [*CHANNELS, "mean"],
                         "ws": np.maximum(ws, 1e-3),  # a log axis cannot show 0
                         "floor": [*floor, floor.mean()]})


def channel_ws_curves(data: pd.DataFrame) -> hv.Overlay:
    """WS per channel and their mean versus epoch (log scale), each over its noise floor (dashed)
    when the rows carry one (see :data:`WS_CAPTION`)."""
    curves = _feature_curves(data, "ws", by="channel", colors=CHANNEL_COLORS, logy=True)
    floors = data.groupby("channel", sort=False)["floor"].last().dropna()
    lines = [hv.HLine(value).opts(color=CHANNEL_COLORS[channel], line_dash="dashed", line_width=1)
             for channel, value in floors.items()]
    low, high = min(data["ws"].min(), floors.min() if len(floors) else np.inf), data["ws"].max()
    return hv.Overlay([curves, *lines]).opts(title="Five-channel WS (photons)", xlabel="epoch", ylabel="WS [photons]",
                                              legend_position="right", ylim=(float(low) / 1.5, float(high) * 1.5))  # floors in view


def condition_title(conditions) -> str:
    """A particle's energy, name (by mass and charge), mass and charge: 'p 2,512 GeV (938.3 MeV, +1)'."""
    energy, mass, charge = float(conditions[0]), float(conditions[7]), float(conditions[8])
    names = [PARTICLES[name] for name, (m, q, _) in SPECIES.items() if abs(mass - m) < 1.0 and charge == q]
    return f"{names[0] + ' ' if names else ''}{energy:,.0f} GeV ({mass:.1f} MeV, {charge:+.0f})"


def gallery_canvas(real: np.ndarray, generated: np.ndarray, cols: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames of :func:`zdc_gallery` on one array (row 0 at the top, NaN between frames).

    Frame ``i`` holds event ``i``'s real response, then its generated ones, each divided by the
    frame's brightest pixel; it starts at row ``corners[i, 0]``, column ``corners[i, 1]``.

    Returns
    -------
    canvas : ndarray, 2-D
    corners : ndarray, shape (N, 2), int
    tops : ndarray, shape (N,), int
        Each frame's brightest pixel, in photons (at least 1).
    """
    n, draws = generated.shape[:2]
    rows, width = real.shape[1:]
    cell_w = (1 + draws) * width + (draws + 3) * GALLERY_GAP
    cell_h = rows + 14  # room for the title above and the labels below
    canvas = np.full((max(1, -(-n // cols)) * cell_h, min(n, cols) * cell_w), np.nan)
    corners = np.array([((i // cols) * cell_h + 9, (i % cols) * cell_w) for i in range(n)], dtype=int).reshape(n, 2)
    tops = np.array([max(1, int(max(r.max(), g.max()))) for r, g in zip(real, generated)], dtype=int)
    for (y, x), top, image, fakes in zip(corners, tops, real, generated):
        for k, picture in enumerate([image, *fakes]):
            left = x + k * (width + GALLERY_GAP)
            canvas[y:y + rows, left:left + width] = picture / top
    return canvas, corners, tops


def zdc_gallery(real: np.ndarray, generated: np.ndarray, conditions: np.ndarray, cols: int = 3) -> hv.Overlay:
    """One frame per event: its real response, then the generated ones for the same conditions,
    side by side on one colour scale (0 to the frame's brightest pixel, whose count the frame's
    title gives), the conditions as title.

    All frames are one image (:func:`gallery_canvas`) with one set of labels: a single plot,
    cheap enough to redraw at every epoch.

    Parameters
    ----------
    real : ndarray, shape (N, 56, 30)
    generated : ndarray, shape (N, D, 56, 30)
    conditions : ndarray, shape (N, 9)
    cols : int
        Frames per row.
    """
    canvas, corners, tops = gallery_canvas(real, generated, cols)
    height, span = canvas.shape
    rows, width = real.shape[1:]
    frame_w = (1 + generated.shape[1]) * (width + GALLERY_GAP) - GALLERY_GAP
    labels = []
    for (y, x), top, condition in zip(corners, tops, conditions):
        labels.append((x + frame_w / 2, height - y + 4, f"{condition_title(condition)} · max {top} photons"))
        labels += [(x + k * (width + GALLERY_GAP) + width / 2, height - y - rows - 2.5, "generated" if k else "real")
                   for k in range(1 + generated.shape[1])]
    picture = hv.Image(canvas, bounds=(0, 0, span, height), kdims=["x", "y"], vdims=["share of the frame's maximum"])
    return (picture.opts(cmap="viridis", clim=(0, 1), colorbar=True, clipping_colors={"NaN": "white"},
                         tools=["hover"])
            * hv.Labels(labels, ["x", "y"], "text").opts(text_font_size="8pt", text_color="black")).opts(
        xaxis=None, yaxis=None, frame_width=round(2.6 * span), frame_height=round(2.6 * height), toolbar=None,
        title="", framewise=True)


def channel_histogram(real: np.ndarray, generated: np.ndarray, channel: str) -> hv.Overlay:
    """Photon sums of one channel, real events (filled) against generated responses to the same
    conditions (outline), with error bars and χ²/ndf (:func:`comparison_histogram`)."""
    return comparison_histogram(real, generated, f"{channel} photons", reference_label="real",
                                title=f"{channel} photon sum: real vs generated")
