"""The dashboard's plots: static HoloViews elements, and live Bokeh figures updated in place.

Live figures (:class:`Curves`, :class:`Heatmap`, :class:`HistogramComparison`, :class:`Gallery`)
are built from their first data and then only change their data sources (``stream`` for curves,
new columns for the rest): an update costs milliseconds, where redrawing a HoloViews plot took
0.3–1.6 s of the server's thread on the 2-core benchmark machine and held up clicks.

Every comparison shows its reference yardstick: KS curves sit on seed 000's good/excellent bands
with the MC noise floor at the snapshot's sample size, compared histograms carry Poisson error
bars, and the correlation residual uses one fixed ±tolerance colour scale so that frames compare.
ZDC plots follow suit: the five-channel WS curves sit over the toy's noise floor, the channel
histograms carry error bars, and each gallery frame puts a real response and the generated ones
for the same conditions on one colour scale.
"""

from __future__ import annotations

from itertools import cycle

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the backend, so that .opts work without hv.extension)
import numpy as np
import pandas as pd
from bokeh.core.properties import value
from bokeh.models import (BoxAnnotation, ColorBar, ColumnDataSource, FixedTicker, LabelSet, Legend, LegendItem,
                          LinearColorMapper, Span, Whisker)
from bokeh.palettes import Category10_10, Category20_20, RdBu11, Viridis256
from bokeh.plotting import figure

from recogan_app.data.toy_zdc import SPECIES
from recogan_app.metrics.distributions import is_discrete, ks_floor
from recogan_app.metrics.verdict import EXCELLENT, GOOD, RESIDUAL_TOLERANCE
from recogan_app.validation import compare_histograms

__all__ = ["BINS", "CHANNELS", "KS_CAPTION", "SIZE", "Curves", "Gallery", "Heatmap", "HistogramComparison",
           "channel_ws_rows", "condition_title", "density_histogram", "edges_for", "gallery_canvas", "ks_curves",
           "literal_title", "loss_curves", "loss_rows", "slot_figure", "snapshot_rows", "ws_curves", "zdc_ws_curves"]

BINS = 40
SIZE = dict(width=560, height=300)
"""Every dashboard plot's size: fixed, so that legends outside the frame do not overlap a neighbour."""
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def literal_title(text) -> str:
    """``text`` as a HoloViews title, shown as it is: HoloViews fills a title's ``{...}`` fields
    (``{label}``), so a column named ``{x}`` raised KeyError and left the plot out."""
    return str(text).replace("{", "{{").replace("}", "}}")


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


KS_CAPTION = (f"Green band: excellent (KS < {EXCELLENT[1]}), orange: good (< {GOOD[1]}), seed 000's max-KS bars; "
              f"dashed: the MC noise floor at the snapshot size, below which KS cannot be told from MC vs MC.")


def snapshot_rows(snapshot) -> pd.DataFrame:
    """Long-form rows (epoch counted from 1, feature, ks, ws, floor) of one snapshot, for the score stream."""
    table = snapshot.details["per_feature"]
    size = snapshot.sample_size
    return pd.DataFrame({"epoch": snapshot.epoch + 1, "feature": table.index.astype(str), "ks": table["ks"].to_numpy(),
                         "ws": table["wasserstein"].to_numpy(), "floor": ks_floor(size, size)})


LOSS_TERMS = 10
"""Loss curves a figure holds: the tabular GAN's terms with every penalty on are 8, the ZDC GAN's 7."""


def loss_rows(rows: list[dict]) -> pd.DataFrame:
    """Step-loss dicts as long-form rows (step, term, value), for the loss stream (none: no rows)."""
    if not rows:
        return pd.DataFrame({"step": [], "term": [], "value": []})
    wide = pd.DataFrame(rows).drop(columns="epoch")
    return wide.melt(id_vars="step", var_name="term", value_name="value")


# -- ZDC -------------------------------------------------------------------------------------------

CHANNELS = ("ch1", "ch2", "ch3", "ch4", "ch5")
CHANNEL_COLORS = {"ch1": "#1f77b4", "ch2": "#ff7f0e", "ch3": "#2ca02c", "ch4": "#d62728", "ch5": "#9467bd",
                  "mean": "black"}
"""One colour per channel, shared by its WS curve and its noise-floor line; black: the five-channel mean."""
WS_CAPTION = ("Five-channel Wasserstein distance (photons) between the snapshot's real monitor events (held out "
              "from training) and generated responses to their conditions (one fixed noise draw); dashed, same colour (embedded toy "
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
    cell_h = rows + 18  # room for the two-line title above and the labels below
    canvas = np.full((max(1, -(-n // cols)) * cell_h, min(n, cols) * cell_w), np.nan)
    corners = np.array([((i // cols) * cell_h + 13, (i % cols) * cell_w) for i in range(n)], dtype=int).reshape(n, 2)
    tops = np.array([max(1, int(max(r.max(), g.max()))) for r, g in zip(real, generated)], dtype=int)
    for (y, x), top, image, fakes in zip(corners, tops, real, generated):
        for k, picture in enumerate([image, *fakes]):
            left = x + k * (width + GALLERY_GAP)
            canvas[y:y + rows, left:left + width] = picture / top
    return canvas, corners, tops


# -- live figures ----------------------------------------------------------------------------------


def slot_figure(title: str, **options):
    """A figure as wide as its slot, :data:`SIZE`'s height."""
    return figure(title=title, height=SIZE["height"], sizing_mode="stretch_width", tools=TOOLS, **options)


class Curves:
    """One line per ``by`` value of long-form rows (``x``, ``by``, ``y``), extended by streaming.

    Parameters
    ----------
    rows : DataFrame
        The first rows; their ``by`` values name the first curves.
    x, by, y : str
        Column names: abscissa, curve label, ordinate.
    title, y_label : str
    log_y : bool
        Logarithmic ordinate.
    colors : dict, optional
        Colour per curve label (default: a categorical palette).
    bands : sequence of (low, high, colour)
        Horizontal bands behind the curves (quality bars).
    floor : {None, "shared", "per_curve"}
        Draw the rows' ``floor`` column as dashed lines at its latest values: one black line, or
        one per curve in its colour; the ordinate's range always includes them.
    spare : int
        Curves built hidden and unnamed, named by the first new ``by`` values that later rows bring
        (further ones are ignored), and unnamed again by :meth:`clear`. Naming one changes
        properties only: a figure whose curves come with its first data (the loss terms of
        whichever family trains) is built blank beforehand, and its first data adds no Bokeh
        model, which made the server walk the page's whole model graph (0.3-0.4 s per page, while
        the other pages' clicks waited: load test).
    """

    def __init__(self, rows: pd.DataFrame, *, x: str, by: str, y: str, title: str, y_label: str,
                 log_y: bool = False, colors: dict | None = None, bands=(), floor: str | None = None, spare: int = 0):
        self.x, self.by, self.y, self.floor = x, by, y, floor
        keys = list(dict.fromkeys(rows[by]))
        n = len(keys) + spare
        palette = cycle(Category10_10 if n <= 10 else Category20_20)
        self.slot_colors = [(colors or {}).get(key) or color for key, color in zip([*keys, *[None] * spare], palette)]
        self.slot_columns = [f"{y}:{i}" for i in range(n)]  # never the abscissa's name
        self.columns = dict(zip(keys, self.slot_columns))
        self.fixed = len(keys)
        self.source = ColumnDataSource({x: [], **{column: [] for column in self.slot_columns}})
        fig = self.figure = slot_figure(title, x_axis_label=x, y_axis_label=y_label,
                                        y_axis_type="log" if log_y else "linear",
                                        tooltips=[("", "$name"), (x, "@" + x), (y, "$y{0.0000}")])
        fig.xaxis.ticker.min_interval = 1  # epochs and steps are whole: no tick at epoch 1.5
        for low, high, color in bands:
            fig.add_layout(BoxAnnotation(bottom=low, top=high, fill_color=color, fill_alpha=0.12, level="underlay"))
        self.items = []
        for key, column, color in zip([*keys, *[""] * spare], self.slot_columns, self.slot_colors):
            renderers = [fig.line(x, column, source=self.source, color=color, line_width=2),  # dots too: a curve
                         fig.scatter(x, column, source=self.source, color=color, size=4)]  # of one point shows
            self.items.append(LegendItem(label=value(str(key)), renderers=renderers))
            self._name(len(self.items) - 1, key)
        self.legend = Legend(items=self.items, click_policy="hide", visible=bool(keys))
        fig.add_layout(self.legend, "right")
        self.log_ticks = None
        if log_y:  # Bokeh labels a log axis spanning under a few decades with linear ticks (50, 100, 150)
            self.log_ticks = fig.yaxis.ticker = FixedTicker(ticks=[])
        self.spans = {}
        if floor is not None:
            for key, color in ([("shared", "black")] if floor == "shared" else zip(keys, self.slot_colors)):
                span = self.spans[key] = Span(dimension="width", line_dash="dashed", line_width=1, visible=False,
                                              line_color=color)
                fig.add_layout(span)
            self.floor_points = ColumnDataSource({"x": [], "floor": []})
            fig.scatter("x", "floor", source=self.floor_points, alpha=0)  # invisible: keeps the floors in range
        self.update(rows)

    def _name(self, slot: int, key) -> None:
        """Show curve ``slot`` as ``key`` ("": hidden)."""
        item = self.items[slot]
        item.label = value(str(key))  # a value: a bare string may be read as a column name
        item.visible = bool(key)
        for renderer in item.renderers:
            renderer.update(name=str(key), visible=bool(key))

    def clear(self) -> None:
        """No points (a new training on the same figure): its curves, axes and models stay; the
        spare curves are free again."""
        self.source.data = {column: [] for column in self.source.data}
        for slot in range(self.fixed, len(self.slot_columns)):
            self._name(slot, "")
        self.columns = dict(list(self.columns.items())[:self.fixed])
        self.legend.visible = bool(self.columns)
        for span in self.spans.values():
            span.visible = False
        if self.spans:
            self.floor_points.data = {"x": [], "floor": []}

    def update(self, rows: pd.DataFrame) -> None:
        """Stream the rows' points (rows without an abscissa only name curves: a blank figure's)."""
        for key in dict.fromkeys(rows[self.by]):
            if key not in self.columns and len(self.columns) < len(self.slot_columns):
                slot = len(self.columns)
                self.columns[key] = self.slot_columns[slot]
                self._name(slot, key)
                self.legend.visible = True
        wide = rows.dropna(subset=[self.x]).pivot_table(index=self.x, columns=self.by, values=self.y, aggfunc="last", dropna=False)
        new = {self.x: wide.index.to_numpy()}
        for column in self.slot_columns:
            new[column] = np.full(len(wide), np.nan)
        for key, column in self.columns.items():
            if key in wide:
                new[column] = wide[key].to_numpy(np.float64)
        self.source.stream(new)
        if self.spans:
            latest = rows.groupby(self.by, sort=False)["floor"].last()
            floors = {"shared": float(latest.iloc[-1])} if "shared" in self.spans else latest.to_dict()
            for key, span in self.spans.items():
                value = floors.get(key, np.nan)
                span.visible = bool(np.isfinite(value))
                span.location = float(value) if span.visible else None
            shown = [value for value in floors.values() if np.isfinite(value)]
            self.floor_points.data = {"x": [rows[self.x].iloc[0]] * len(shown), "floor": shown}
        if self.log_ticks is not None:
            values = np.concatenate([np.asarray(self.source.data[c], np.float64) for c in self.columns.values()]
                                    + ([np.asarray(self.floor_points.data["floor"], np.float64)] if self.spans else []))
            self.log_ticks.ticks = log_ticks(values)


def log_ticks(values) -> list[float]:
    """Ticks over the positive finite ``values``, one step beyond each end: 1-2-5 per decade when
    they span up to 2.5 decades, else one per decade."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        return []
    low, high = int(np.floor(np.log10(values.min()))), int(np.ceil(np.log10(values.max())))
    mantissas = (1, 2, 5) if np.log10(values.max() / values.min()) <= 2.5 else (1,)
    ticks = [float(f"{m}e{e}") for e in range(low - 1, high + 1) for m in mantissas]
    first = max(i for i, t in enumerate(ticks) if t <= values.min())
    last = min(i for i, t in enumerate(ticks) if t >= values.max())
    return ticks[first:last + 1]


def loss_curves(rows: pd.DataFrame) -> Curves:
    """One curve per loss term versus optimisation step (``rows`` from :func:`loss_rows`; none:
    a blank figure, its curves named by the first training's terms, at most :data:`LOSS_TERMS`)."""
    return Curves(rows, x="step", by="term", y="value", title="Losses", y_label="loss", spare=LOSS_TERMS)


def ks_curves(rows: pd.DataFrame) -> Curves:
    """Per-feature KS versus epoch over seed 000's bands and the MC noise floor (see :data:`KS_CAPTION`);
    the floor is :func:`ks_floor` at the snapshot's sample size (``rows`` from :func:`snapshot_rows`)."""
    curves = Curves(rows, x="epoch", by="feature", y="ks", title="KS distance per feature", y_label="KS",
                    bands=((0, EXCELLENT[1], "green"), (EXCELLENT[1], GOOD[1], "orange")), floor="shared")
    curves.figure.y_range.start = 0
    return curves


def ws_curves(rows: pd.DataFrame) -> Curves:
    """Per-feature 1-D Wasserstein distance versus epoch, in each feature's own unit (log scale)."""
    return Curves(rows, x="epoch", by="feature", y="ws", title="Wasserstein distance per feature",
                  y_label="WS (feature units)", log_y=True)


def zdc_ws_curves(rows: pd.DataFrame) -> Curves:
    """WS per channel and their mean versus epoch (log scale), each over its noise floor (dashed,
    same colour) when the rows carry one (see :data:`WS_CAPTION`; rows from :func:`channel_ws_rows`)."""
    return Curves(rows, x="epoch", by="channel", y="ws", title="Five-channel WS (photons)", y_label="WS [photons]",
                  log_y=True, colors=CHANNEL_COLORS, floor="per_curve")


class Heatmap:
    """Pearson(generated) − Pearson(MC) per feature pair on a fixed ±tolerance colour scale;
    data: (residual DataFrame, epoch or None)."""

    def __init__(self, data):
        residual, _ = data
        names = [str(name) for name in residual.columns]
        self.source = ColumnDataSource({"x": [], "y": [], "residual": []})
        fig = self.figure = slot_figure("Correlation residual", x_range=names, y_range=names[::-1],
                                        tooltips=[("pair", "@x – @y"), ("residual", "@residual{+0.000}")])
        mapper = LinearColorMapper(palette=RdBu11, low=-RESIDUAL_TOLERANCE, high=RESIDUAL_TOLERANCE)  # red: positive
        fig.rect("x", "y", 1, 1, source=self.source, fill_color={"field": "residual", "transform": mapper},
                 line_color=None)
        fig.add_layout(ColorBar(color_mapper=mapper, title="residual"), "right")
        fig.xaxis.major_label_orientation = 0.8
        fig.grid.visible = False
        self.update(data)

    def clear(self) -> None:
        """Every pair blank (no residual yet), the same axes."""
        self.source.data = {**self.source.data, "residual": np.full(len(self.source.data["residual"]), np.nan)}
        self.figure.title.text = "Correlation residual"

    def update(self, data) -> None:
        residual, epoch = data
        names = [str(name) for name in residual.columns]
        self.source.data = {"x": np.repeat(names, len(names)).tolist(), "y": names * len(names),
                            "residual": residual.to_numpy(np.float64).T.ravel()}
        self.figure.title.text = "Correlation residual" + (f", epoch {epoch}" if epoch is not None else "")


class HistogramComparison:
    """Reference (filled) and generated entries scaled to the reference's area (outline) on the
    validation's shared bins (:func:`~recogan_app.validation.compare_histograms`), each with its
    Poisson error bars, and their χ²/ndf in the title; data: (reference, synthetic, feature), or
    None for an empty figure.

    ``reference_label``, ``title`` and ``x_label`` are formatted with the feature.
    """

    def __init__(self, data, *, reference_label: str = "MC", title: str = "{feature}: MC vs generated",
                 x_label: str = "{feature}"):
        self.title, self.x_label = title, x_label
        self.sources = {name: ColumnDataSource({"left": [], "right": [], "centre": [], "top": [], "low": [], "high": []})
                        for name in ("reference", "generated")}
        fig = self.figure = slot_figure("", y_axis_label="entries",
                                        tooltips=[("bin", "@left{0.000g} – @right{0.000g}"), ("entries", "@top{0.0}")])
        fig.quad(left="left", right="right", top="top", bottom=0, source=self.sources["reference"], fill_color="grey",
                 fill_alpha=0.35, line_alpha=0, legend_label=reference_label)
        fig.quad(left="left", right="right", top="top", bottom=0, source=self.sources["generated"], fill_alpha=0,
                 line_color="crimson", line_width=2, legend_label="generated")
        for name, color in (("reference", "black"), ("generated", "crimson")):
            fig.add_layout(Whisker(base="centre", lower="low", upper="high", source=self.sources[name],
                                   line_color=color))
        fig.y_range.start = 0
        if data is not None:  # None: an empty figure, filled by the first update
            self.update(data)

    def clear(self) -> None:
        """No entries (a new training on the same figure)."""
        for source in self.sources.values():
            source.data = {column: [] for column in source.data}
        self.figure.title.text = ""

    def update(self, data) -> None:
        reference, synthetic, feature = data
        h = compare_histograms(reference, synthetic, integer=is_discrete(reference))
        left, right = h.edges[:-1], h.edges[1:]
        for name, counts, error in (("reference", h.reference, h.reference_error),
                                    ("generated", h.synthetic_scaled, h.synthetic_error)):
            self.sources[name].data = {"left": left, "right": right, "centre": 0.5 * (left + right), "top": counts,
                                       "low": counts - error, "high": counts + error}
        self.figure.title.text = f"{self.title.format(feature=feature)} (χ²/ndf {h.chi2_ndf:.2f})"
        self.figure.xaxis.axis_label = self.x_label.format(feature=feature)


class Gallery:
    """One frame per event: its real response, then the generated ones for the same conditions,
    side by side on one colour scale (0 to the frame's brightest pixel, whose count the frame's
    title gives), the conditions as title; data: a comparison with ``real`` (N, 56, 30),
    ``generated`` (N, D, 56, 30) and ``conditions`` (N, 9).

    All frames are one image (:func:`gallery_canvas`) with one set of labels; a new N or D
    needs a new figure (its size follows them).
    """

    def __init__(self, comparison, cols: int = 3):
        self.cols = cols
        canvas, _, _ = gallery_canvas(comparison.real, comparison.generated, cols)
        height, span = canvas.shape
        self.image = ColumnDataSource({"image": []})
        self.labels = ColumnDataSource({"x": [], "y": [], "text": []})
        fig = self.figure = figure(frame_width=round(2.6 * span), frame_height=round(2.6 * height), x_range=(0, span),
                                   y_range=(0, height), toolbar_location=None, tools="")
        mapper = LinearColorMapper(palette=Viridis256, low=0, high=1, nan_color="white")
        fig.image(image="image", x=0, y=0, dw=span, dh=height, source=self.image, color_mapper=mapper)
        fig.add_layout(LabelSet(x="x", y="y", text="text", source=self.labels, text_font_size="8pt",
                                text_align="center", text_baseline="middle"))
        fig.add_layout(ColorBar(color_mapper=mapper, title="share of the frame's maximum"), "right")
        fig.axis.visible = False
        fig.grid.visible = False
        self.update(comparison)

    def update(self, comparison) -> None:
        real, generated = comparison.real, comparison.generated
        canvas, corners, tops = gallery_canvas(real, generated, self.cols)
        height = canvas.shape[0]
        rows, width = real.shape[1:]
        frame_w = (1 + generated.shape[1]) * (width + GALLERY_GAP) - GALLERY_GAP
        labels = []
        for (y, x), top, condition in zip(corners, tops, comparison.conditions):
            labels.append((x + frame_w / 2, height - y + 6.5, f"{condition_title(condition)}\nmax {top} photons"))
            labels += [(x + k * (width + GALLERY_GAP) + width / 2, height - y - rows - 2.5, "generated" if k else "real")
                       for k in range(1 + generated.shape[1])]
        self.image.data = {"image": [np.flipud(canvas)]}  # an image's first row is drawn at the bottom
        self.labels.data = dict(zip(("x", "y", "text"), map(list, zip(*labels)))) if labels else \
            {"x": [], "y": [], "text": []}
