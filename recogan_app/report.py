"""The standalone HTML validation report: one file, every figure inlined, that opens offline.

A reviewer gets a single ``report.html`` (mail it, archive it, open it on a laptop without
network): no CDN, font or script is referenced; every figure is a matplotlib PNG embedded as
base64. Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never
through ``pyplot``, so writing a report changes no global plotting state and is safe from a
dashboard thread. Names from the data are text everywhere: escaped in the HTML, and drawn without
matplotlib's TeX parsing (a column named ``$\\foo$`` failed the whole report).

Sections (HTML ids): ``summary``, ``effective``, ``features``, ``conditional`` (a conditional run's
only), ``histograms``, ``correlations``, ``pairs``, ``classifier``, ``importance``, ``provenance``.
Given a bootstrap ensemble (:class:`~recogan_app.ensemble.Results`), ``effective`` holds its N_eff
table and warnings and the histograms its ±1σ band; without one, it says that the sample's
statistical power is not measured.

:func:`write_figures` writes the same figures as PDF and PNG files for an analysis note, in the HEP
community's style (mplhep, the optional extra ``[hep]``) when it is installed. Axes of columns named
only as a momentum, an energy or a mass (of a particle or object) are labelled in GeV (:func:`axis_label`).
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import matplotlib.style
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from recogan_app.ensemble import Results, draw_band, unmeasured
from recogan_app.errors import InputError, closest
from recogan_app.files import check_writable, write_atomic
from recogan_app.markup import escape_html
from recogan_app.metrics import EXCELLENT, GOOD, RESIDUAL_TOLERANCE
from recogan_app.metrics.conditional import MIN_PASSING, PULL_LIMIT, QUANTILES, RATIO_TOLERANCE
from recogan_app.metrics.correlations import METHODS, residual_text
from recogan_app.validation import FLOOR_CL, INDISTINGUISHABLE, SCORE_EDGES, Validation

__all__ = ["GEV_NAMES", "MAX_PAIR_FEATURES", "OBJECT_NAMES", "SECTIONS", "axis_label", "check_figure_folder",
           "default_pair_features", "effective_statistics", "efficiency_figure", "efficiency_verdict",
           "histogram_figure", "residual_figure", "write_figures", "write_report"]

SECTIONS = {
    "summary": "Summary",
    "effective": "Effective statistics",
    "features": "Per-feature KS and Wasserstein distances",
    "histograms": "Histogram overlays",
    "correlations": "Correlation matrices and residuals",
    "pairs": "Pairwise distributions",
    "classifier": "Classifier two-sample test",
    "importance": "What gives the synthetic sample away",
    "provenance": "Provenance",
}
"""HTML id → heading of every section, in order."""
CONDITIONAL = {"conditional": "Conditional model: efficiency ratios and relative residuals"}
"""The section a conditional run's report has after ``features``."""
MAX_PAIR_FEATURES = 5
DPI = 90
NOTE_DPI = 200
"""Resolution of the PNG files of :func:`write_figures` (the PDFs are vector graphics)."""
GEV_NAMES = frozenset({"p", "pt", "px", "py", "pz", "e", "et", "energy", "m", "mass", "mt", "met", "ht"})
"""Parts of a column's name that make it a momentum, energy or mass: its axis is labelled in GeV."""
OBJECT_NAMES = frozenset({
    "e", "el", "ele", "electron", "mu", "muon", "tau", "pi", "pion", "k", "kaon", "p", "proton", "gamma", "photon",
    "pho", "nu", "neutrino", "w", "z", "h", "higgs", "top", "b", "bjet", "jet", "fatjet", "lep", "lepton", "d", "ds",
    "lambda", "lambdac", "lc", "lb", "xi", "xic", "omega", "jpsi", "psi", "upsilon", "kst", "ks", "v", "track", "trk",
    "cand", "candidate", "mother", "daughter", "dau", "pair", "dimuon", "dilepton", "diphoton", "mumu", "ee",
    "reco", "gen", "true", "truth", "mc", "inv", "vis", "miss", "missing", "sum", "tot", "total", "lead",
    "leading", "sublead", "subleading", "min", "max", "x", "y", "z"})
"""Parts that only say whose momentum, energy or mass a name is (a particle, an object, a level, a
component): ``jet_pt``, ``mu_e``, ``reco_met_x``, ``pi_pt_min``. Any other part (``dll``, ``pid``,
``log``, ``prob``) may make it a quantity without unit, so the axis keeps the bare name."""
PLAIN_STYLE = "plain matplotlib style: pip install 'recogan_app[hep]' for the HEP style (mplhep)"
MC_COLOUR, MODEL_COLOUR, COPULA_COLOUR = "#444444", "#d62728", "#1f77b4"

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.ok { color: #1a7f37; } .bad { color: #b42318; }
.verdict { font-size: 1.15em; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: .5em; }
img { max-width: 100%; }
.note { color: #555; font-size: .9em; }
.scroll { overflow-x: auto; }
"""


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def axis_label(name: str) -> str:
    """``name [GeV]`` when the name (split at anything but letters and digits, lower case, trailing
    digits dropped: ``mu1_pt``, ``E2``, ``inv_mass``, ``M``) has a part of :data:`GEV_NAMES` and
    every other part is one of :data:`OBJECT_NAMES`; else the name. A wrong unit misleads where a
    missing one does not: ``dll_e``, ``pid_p`` and ``jet_log_mass`` have no unit."""
    parts = {re.sub(r"\d+$", "", part) for part in re.split(r"[^a-z0-9]+", name.lower())} - {""}
    unit = any(parts - {quantity} <= OBJECT_NAMES for quantity in parts & GEV_NAMES)
    return f"{name} [GeV]" if unit else name


def _img(figure: Figure, alt: str) -> str:
    """The figure as an inline base64 PNG (no metadata, so no URL hides in the file)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape_html(alt)}" src="data:image/png;base64,{data}">'


def _weighted(v: Validation) -> str:
    """The weighted MC's effective sample size, said beside its rows ('' for an unweighted MC)."""
    return "" if v.n_effective is None else f" (weighted: effective sample size (Σw)²/Σw² {v.n_effective:,.0f})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; cells are already escaped or built here."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary(v: Validation) -> str:
    ks, c2st = v.model.ks, v.model.c2st
    lo, hi = c2st.auc_interval
    comparison = [
        ("mean KS", f"{v.model.ks['mean']:.4f}", f"{v.baseline.ks['mean']:.4f}"),
        ("max KS", f"{v.model.ks['max']:.4f}", f"{v.baseline.ks['max']:.4f}"),
        *[(f"max |Δρ| {m}", residual_text(v.model.max_residual[m]), residual_text(v.baseline.max_residual[m]))
          for m in METHODS],
        ("classifier AUC", f"{c2st.auc:.3f}", f"{v.baseline.c2st.auc:.3f}"),
    ]
    flagged = len(v.model.flagged["pearson"])
    return f"""
<p class="verdict">Seed 000 verdict: {escape_html(ks['verdict'])} (mean KS {ks['mean']:.4f}, max KS {ks['max']:.4f};
excellent below {EXCELLENT[0]} / {EXCELLENT[1]}, good below {GOOD[0]} / {GOOD[1]}).</p>
<ul>
{f"<li>Conditional run: {escape_html(v.conditions_said)}.</li>" if v.conditions else ""}
<li>{v.n_indistinguishable} of {len(v.features)} features are {INDISTINGUISHABLE}
(KS within its {FLOOR_CL:.0%} floor and WS within the MC half-vs-half value).</li>
<li>Classifier two-sample test: AUC {c2st.auc:.3f} [{lo:.3f}, {hi:.3f}] (68 % bootstrap), scored on
{c2st.n_test:,} held-out rows (half MC, half synthetic), trained on {c2st.n_train:,}. 0.5 means the BDT
finds no difference.</li>
<li>Pearson residuals: {escape_html(v.residual_said('pearson'))}; {flagged} pair(s) beyond seed 000's
±{RESIDUAL_TOLERANCE}.</li>
</ul>
<h3>Against the Gaussian copula baseline</h3>
<p class="note">Fitted on {escape_html(v.baseline_fitted_on)}, sampled {
"given the MC rows' conditions (a conditional Gaussian copula)" if v.conditions else "at the synthetic size"},
tested alike.</p>
{_table(["figure", "model", "copula"], comparison)}
<p class="verdict {'ok' if v.beats_baseline else 'bad'}">{escape_html(v.baseline_verdict)}</p>
<p class="note">Compared: {v.n_reference:,} MC rows{_weighted(v)} and {v.n_synthetic:,} synthetic rows.
A generator trained on N MC events carries no more information than those N events: the synthetic sample
does not have the statistical power of an MC sample of its size.</p>
"""


def _features(v: Validation) -> str:
    rows = []
    for name, r in v.table.iterrows():
        kind = "integer" if name in v.integer_features else ""
        label = f'<span class="{"ok" if r.label == INDISTINGUISHABLE else "bad"}">{escape_html(r.label)}</span>'
        rows.append([f"{escape_html(name)} <small>{kind}</small>", f"{r.ks:.4f} [{r.ks_lo:.4f}, {r.ks_hi:.4f}]",
                     f"{r.ks_floor:.4f}", f"{r.ks_halves:.4f}", f"{r.ks_pvalue:.3g}", f"{r.wasserstein:.4g}",
                     f"{r.ws_floor:.4g}", f"{r.wasserstein_iqr:.4f}", f"{r.ws_iqr_floor:.4f}", f"{r.chi2_ndf:.2f}",
                     f"{r.baseline_ks:.4f}", label])
    header = ["feature", "KS [68 % interval]", f"KS floor ({FLOOR_CL:.0%})", "KS MC halves", "KS p-value", "WS",
              "WS floor", "WS/IQR", "WS/IQR floor", "χ²/ndf", "copula KS", "label"]
    return f"""
<p class="note">KS floor: the {FLOOR_CL:.0%} quantile of KS between two MC samples of these sizes. WS floor: WS
between two disjoint halves of the MC at the synthetic size. Integer features are compared on their exact
values (synthetic values rounded). χ²/ndf from the histograms below, with both samples' Poisson errors.
The 68 % interval is the bootstrap replicas' spread around their median, placed on the measured KS
(resampling adds noise to a distance, so the raw replicas sit above it), its lower end clipped at 0 (a distance
is never negative); whether the KS itself is MC noise, the floor says.</p>
<div class="scroll">{_table(header, rows)}</div>"""


MAX_RATIO_PANELS = (6, 4)
"""Most targets (rows) × conditions (columns) of the efficiency-ratio figure; the JSON holds all."""


def efficiency_figure(v: Validation) -> Figure:
    """ε_gen/ε_MC per condition bin, one line per threshold quantile, for each target × condition."""
    table = v.conditional.efficiency
    targets = list(dict.fromkeys(table.target))[:MAX_RATIO_PANELS[0]]
    conditions = list(dict.fromkeys(table.condition))[:MAX_RATIO_PANELS[1]]
    figure = _figure(3.2 * len(conditions), 2.4 * len(targets))
    axes = np.array(figure.subplots(len(targets), len(conditions), squeeze=False, sharey=True))
    colours = colormaps["viridis"](np.linspace(0, 0.9, len(QUANTILES)))
    for (i, target), (j, condition) in ((a, b) for a in enumerate(targets) for b in enumerate(conditions)):
        axis, panel = axes[i, j], table[(table.target == target) & (table.condition == condition)]
        labels = list(dict.fromkeys(panel.bin))
        axis.axhspan(1 - RATIO_TOLERANCE, 1 + RATIO_TOLERANCE, color="#dddddd")
        for k, q in enumerate(QUANTILES):
            rows = panel[panel["quantile"] == q]
            axis.errorbar(np.arange(len(rows)) + (k - 3) * 0.06, rows.ratio, yerr=rows.ratio_error, fmt="o-", ms=2.5,
                          lw=0.8, label=f"{q} %", color=colours[k])
        axis.set_xticks(range(len(labels)), labels, rotation=30, fontsize=6, parse_math=False)
        axis.set_ylim(0.5, 1.5)
        axis.set_title(f"{target} vs {condition}", fontsize=8, parse_math=False)
    axes[0, -1].legend(fontsize=6, title="threshold", title_fontsize=6)
    return figure


def residual_figure(v: Validation) -> Figure:
    """Seed 003's relative residual distributions, (x − x_gen)/x_gen, MC against the model."""
    table = v.conditional.residuals
    columns = min(3, len(table))
    figure = _figure(3.6 * columns, 2.8 * -(-len(table) // columns))
    axes = np.array(figure.subplots(-(-len(table) // columns), columns, squeeze=False)).ravel()
    for axis, row in zip(axes, table.itertuples()):
        centres = (row.edges[1:] + row.edges[:-1]) / 2
        for counts, colour, label in ((row.counts_mc, MC_COLOUR, "MC reco"), (row.counts_gen, MODEL_COLOUR, "model")):
            axis.step(centres, counts / max(counts.sum(), 1), where="mid", color=colour, label=label)
        axis.set_title(f"({row.target} − {row.condition}) / {row.condition}: KS {row.ks:.3f}", fontsize=7,
                       parse_math=False)
    axes[0].legend(fontsize=7)
    for axis in axes[len(table):]:
        axis.set_visible(False)
    return figure


def efficiency_verdict(v: Validation) -> str:
    """The efficiency ratios against seed 002's bars in one line of text (the report's and the
    Validation tab's): the largest |ratio − 1| where the MC bin is well populated, the share of large pulls."""
    figures = v.conditional.figures()
    large = figures["efficiency_bins_large"]
    ratios = (f"max |ratio − 1| {figures['max_ratio_deviation']:.3f} over the {large} bins" if large
              else "no bin") + f" with ≥ {MIN_PASSING:,} passing MC rows (bar {RATIO_TOLERANCE})"
    pulls = "no finite pull" if figures["pull_share"] is None else f"{figures['pull_share']:.1%} of the pulls"
    return (f"Efficiency ratios ε_gen/ε_MC (seed 002): {ratios}; {pulls} beyond {PULL_LIMIT:g}σ (bar 5 %) among "
            f"{figures['efficiency_bins']} ratios.")


def _conditional(v: Validation) -> str:
    if v.conditional is None:
        return ""
    figures = v.conditional.figures()
    rows = [[escape_html(r.target), escape_html(r.condition), f"{r.ks:.4f}", f"{r.median_gen:+.4f}",
             f"{r.median_mc:+.4f}", f"{r.width_gen:.4f}", f"{r.width_mc:.4f}"] for r in v.conditional.residuals.itertuples()]
    residuals = "" if not rows else f"""<h3>Relative residuals (seed 003)</h3>
<p class="note">(x_model − x_gen)/x_gen against (x_reco − x_gen)/x_gen for each reco target and its gen condition.</p>
{_table(["target", "condition", "KS", "median model", "median MC", "68 % half-width model", "68 % half-width MC"], rows)}
{_img(residual_figure(v), "relative residual distributions")}"""
    verdict = "ok" if v.conditional.passes() else "bad"
    return f"""
<p class="verdict {verdict}">{escape_html(efficiency_verdict(v))}</p>
<p class="note">Thresholds at the {", ".join(map(str, QUANTILES))} % quantiles of the MC target; the model generated
given the MC rows' conditions; bins of each condition hold equal shares of the MC (or one value each); error bars
are the binomial errors of both efficiencies; the grey band is 1 ± {RATIO_TOLERANCE}. At most
{MAX_RATIO_PANELS[0]} targets × {MAX_RATIO_PANELS[1]} conditions are drawn; the JSON holds every ratio.
Largest KS of a target in a condition bin: {figures['max_binned_ks'] or 0:.3f}.</p>
{_img(efficiency_figure(v), "efficiency ratios")}{residuals}"""


def effective_statistics(ensemble: Results | None, n: int, conditional: bool = False) -> str:
    """The ensemble's N_eff table (per feature and over all bins) and its warnings for a sample of
    ``n`` events, as HTML (the report's section and the dashboard's Validation tab); without one, that
    it is not measured (and how to, unless the run is ``conditional``)."""
    if ensemble is None:
        text = unmeasured(conditional)
        return f'<p class="note">{escape_html(text[0].upper() + text[1:])}.</p>'
    s = ensemble.statistics(n)
    rows = [[escape_html(name), f"{r['n_effective']:,.0f} [{r['n_effective_interval'][0]:,.0f}, "
             f"{r['n_effective_interval'][1]:,.0f}]" if "n_effective" in r else "", f"{s['n_train']:,}", f"{n:,}",
             "" if r["coverage"] is None else f"{r['coverage']:.0%}", f"{r['chi2']:.1f}/{r['ndf']}",
             f'<span class="{"ok" if r["verdict"] == "covers" else "bad"}">{escape_html(r["verdict"])}</span>']
            for name, r in [*s["features"].items(), ("all bins", s["overall"])]]
    warnings = "".join(f"<li>{escape_html(line)}</li>" for line in s["warnings"])
    return f"""
<p class="note">Bootstrap ensemble {escape_html(s['ensemble'])}: {s['members']} generators, each trained on a
resample of the {s['n_train']:,} training events, each generating {s['n_generated_per_member']:,} events. N_eff: the
true-MC events whose histogram would have the same total uncertainty as the synthetic prediction (68 % interval);
coverage: share of bins whose held-out MC ({s['n_test']:,} events) lies within the ensemble's ±1σ (68 % expected);
N_gen: this sample's events.</p>
<div class="scroll ensemble-table">{_table(["feature", "N_eff [68 % interval]", "N_train", "N_gen", "coverage",
                                           "χ²/ndf", "verdict"], rows)}</div>
{f'<ul class="bad ensemble-warnings">{warnings}</ul>' if warnings else ""}"""


def histogram_figure(name: str, v: Validation, ensemble: Results | None = None) -> Figure:
    """MC against the synthetic sample in the validation's bins, with their ratio, and the ensemble's
    ±1σ band (in its own bins, at the MC's size) when one is given (the report's and the Validation tab's)."""
    h = v.histograms[name]
    centres = (h.edges[1:] + h.edges[:-1]) / 2
    figure = _figure(4.2, 3.6)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if ensemble is not None and name in ensemble.features:  # as entries of the MC's size in these bins
        draw_band(top, *ensemble.band(name), per_unit=v.n_reference * float(np.mean(np.diff(h.edges))))
    top.stairs(h.reference, h.edges, color=MC_COLOUR, fill=True, alpha=0.25, label="MC")
    top.errorbar(centres, h.reference, h.reference_error, fmt="none", ecolor=MC_COLOUR, lw=1)
    top.stairs(h.synthetic_scaled, h.edges, color=MODEL_COLOUR, lw=1.2, label="synthetic (scaled)")
    top.errorbar(centres, h.synthetic_scaled, h.synthetic_error, fmt="none", ecolor=MODEL_COLOUR, lw=1)
    top.set_title(f"{name}   χ²/ndf = {h.chi2:.1f}/{h.ndf}", fontsize=9, parse_math=False)
    top.set_ylabel("entries")
    top.legend(fontsize=7)
    bottom.errorbar(centres, h.ratio, h.ratio_error, fmt="o", ms=2, color=MODEL_COLOUR, lw=1)
    bottom.axhline(1, color=MC_COLOUR, lw=0.8)
    bottom.set_ylim(0.5, 1.5)
    bottom.set_ylabel("synth./MC")
    bottom.set_xlabel(axis_label(name), parse_math=False)
    return figure


def _heatmap(axis, matrix: np.ndarray, names: list[str], title: str, limit: float, annotate: bool):
    image = axis.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=6, parse_math=False)
    axis.set_yticks(range(len(names)), names, fontsize=6, parse_math=False)
    axis.set_title(title, fontsize=9)
    if annotate:
        for (i, j), value in np.ndenumerate(matrix):
            if i != j and np.isfinite(value):
                axis.text(j, i, f"{value * 100:.0f}", ha="center", va="center", fontsize=5)
    return image


def _correlation_figure(v: Validation) -> Figure:
    names = v.features
    side = 2.2 + 0.22 * len(names)
    figure = _figure(4 * side, 2 * side)
    for row, method in zip(figure.subplots(2, 4), METHODS):
        _heatmap(row[0], v.reference_correlation[method].to_numpy(), names, f"MC, {method}", 1, False)
        unit = _heatmap(row[1], v.model.correlation[method].to_numpy(), names, f"synthetic, {method}", 1, False)
        figure.colorbar(unit, ax=row[:2], shrink=0.7)
        annotate = len(names) <= 12
        residual = _heatmap(row[2], v.model.residual[method].to_numpy(), names,
                            f"residual synthetic − MC, {method} (×100)", RESIDUAL_TOLERANCE, annotate)
        _heatmap(row[3], v.residual_floor[method].to_numpy(), names,
                 f"two MC halves: half − half, {method} (×100)", RESIDUAL_TOLERANCE, annotate)
        figure.colorbar(residual, ax=row[2:], shrink=0.7, format=PercentFormatter(1, 0, symbol=""),
                        label=f"residual ×100 (saturates at ±{RESIDUAL_TOLERANCE * 100:g})")
    return figure


def _correlations(v: Validation) -> str:
    rows = [[escape_html(method), escape_html(p.feature_a), escape_html(p.feature_b), f"{p.residual:+.3f}",
             f"{v.residual_floor[method].at[p.feature_a, p.feature_b]:+.3f}"]
            for method in METHODS for p in v.model.flagged[method].itertuples()]
    flagged = (_table(["method", "feature", "feature", "residual", "two MC halves"], rows) if rows
               else f"<p>No pair beyond ±{RESIDUAL_TOLERANCE}.</p>")
    return f"""
<p class="note">Residuals ×100, colour scale ±{RESIDUAL_TOLERANCE * 100:g} (seed 000's ±{RESIDUAL_TOLERANCE}); the right-most column
is the residual between two halves of the MC, each with half its events: about twice the noise of the
comparison itself, which the summary gives (a pair, and the largest of all pairs).</p>
{_img(_correlation_figure(v), "correlation matrices")}
<h3>Pairs beyond ±{RESIDUAL_TOLERANCE}</h3>{flagged}"""


def default_pair_features(v: Validation, n: int = 4) -> list[str]:
    """The features of the most flagged Pearson pairs, topped up with the first features, ``n`` in all."""
    chosen = []
    for pair in v.model.flagged["pearson"].itertuples():
        chosen += [f for f in (pair.feature_a, pair.feature_b) if f not in chosen]
    chosen = chosen[:n]
    return chosen + [f for f in v.features if f not in chosen][: n - len(chosen)]


def _pairs_figure(v: Validation, features: list[str]) -> Figure:
    """MC beside synthetic for every pair, two pairs per row, one log colour scale per pair."""
    pairs = list(combinations(features, 2))
    n_rows = -(-len(pairs) // 2)
    figure = _figure(11, 2.6 * n_rows)
    axes = np.atleast_2d(figure.subplots(n_rows, 4)).reshape(-1, 2)
    for (x, y), row in zip(pairs, axes):
        extent = [*np.quantile(v.reference_sample[x], [0.005, 0.995]),
                  *np.quantile(v.reference_sample[y], [0.005, 0.995])]
        cells = []
        for axis, sample, title in zip(row, (v.reference_sample, v.synthetic_sample), ("MC", "synthetic")):
            cells.append(axis.hexbin(sample[x], sample[y], gridsize=30, extent=extent, mincnt=1, norm=LogNorm(),
                                     cmap="viridis"))
            axis.set(xlim=extent[:2], ylim=extent[2:])
            axis.set_xlabel(axis_label(x), fontsize=8, parse_math=False)
            axis.set_ylabel(axis_label(y), fontsize=8, parse_math=False)
            axis.tick_params(labelsize=6)
            axis.set_title(f"{title} ({len(sample):,} rows)", fontsize=8)
        top = max(float(cell.get_array().max()) for cell in cells)
        for cell in cells:
            cell.set_clim(1, top)
    for axis in axes[len(pairs):].ravel():
        axis.set_axis_off()
    return figure


def _classifier_figure(v: Validation) -> Figure:
    figure = _figure(9, 3.8)
    roc, scores = figure.subplots(1, 2)
    for comparison, label, colour in ((v.model, "model", MODEL_COLOUR), (v.baseline, "copula", COPULA_COLOUR)):
        fpr, tpr = comparison.c2st.roc
        roc.plot(fpr, tpr, color=colour, label=f"{label}: AUC {comparison.c2st.auc:.3f}")
    roc.plot([0, 1], [0, 1], color="grey", ls=":", label="indistinguishable")
    roc.set_xlabel("synthetic rows called MC (false-positive rate)")
    roc.set_ylabel("MC rows called MC (true-positive rate)")
    roc.legend(fontsize=8)
    c2st = v.model.c2st
    scores.hist(c2st.scores_reference, SCORE_EDGES, histtype="stepfilled", alpha=0.3, color=MC_COLOUR, label="MC")
    scores.hist(c2st.scores_synthetic, SCORE_EDGES, histtype="step", color=MODEL_COLOUR, label="synthetic")
    scores.set_xlabel("BDT score (probability of MC), test half")
    scores.set_ylabel("rows")
    scores.legend(fontsize=8)
    return figure


def _importance_figure(v: Validation) -> Figure:
    names = v.features
    y = np.arange(len(names))
    figure = _figure(9, 1.2 + 0.3 * len(names))
    gain, auc = figure.subplots(1, 2, sharey=True)
    gain.barh(y, [v.model.c2st.feature_importance[f] for f in names], color=MODEL_COLOUR)
    gain.set_yticks(y, names, fontsize=8, parse_math=False)
    gain.invert_yaxis()
    gain.set_xlabel("share of the BDT's split gain")
    for offset, comparison, label, colour in ((-0.2, v.model, "model", MODEL_COLOUR),
                                             (0.2, v.baseline, "copula", COPULA_COLOUR)):
        auc.barh(y + offset, [comparison.c2st.per_feature_auc[f] - 0.5 for f in names], height=0.4,
                 color=colour, label=label)
    auc.axvline(0, color="grey", lw=0.8)
    auc.set_xlabel("one-feature classifier AUC − 0.5")
    auc.legend(fontsize=8)
    return figure


def _pair_features(v: Validation, pair_features: Sequence[str] | None) -> list[str]:
    features = list(pair_features) if pair_features else default_pair_features(v)
    if not 2 <= len(features) <= MAX_PAIR_FEATURES:
        raise InputError(f"the pairwise grid takes 2 to {MAX_PAIR_FEATURES} features, got {len(features)}")
    for name in features:
        if name not in v.features:
            raise InputError("is not a validated feature", column=name, hint=closest(name, v.features))
    return features


def _note_style() -> tuple[contextlib.AbstractContextManager, str]:
    """mplhep's ROOT style (experiment-neutral) scaled to these figures' sizes, or matplotlib's own
    when mplhep is not installed; and the line that says which."""
    try:
        import mplhep
    except ImportError:
        return contextlib.nullcontext(), PLAIN_STYLE
    style = {**mplhep.style.ROOT, "font.size": 10, "axes.linewidth": 1,  # its sizes are for 10-inch figures
             "xtick.major.size": 5, "xtick.minor.size": 2.5, "ytick.major.size": 5, "ytick.minor.size": 2.5}
    return matplotlib.style.context(style), f"HEP style: mplhep {mplhep.__version__}, ROOT"


def _file_stems(names: Sequence[str]) -> list[str]:
    """A file name for each feature's histogram, distinct even where two names differ only in
    characters a file name cannot hold (``d/fD64`` and ``d_fD64``)."""
    stems: list[str] = []
    for name in names:
        stem = "histogram_" + (re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("._") or "feature")
        stems.append(stem if stem not in stems else f"{stem}_{len(stems)}")
    return stems


def check_figure_folder(folder) -> None:
    """Refuse a figures folder that is a file, or that cannot be written, before any work is done."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("is not a folder", path=folder, hint="--figures names a folder for the PDF and PNG files")
    check_writable(folder / "figure.pdf")


def write_figures(validation: Validation, folder, *, pair_features: Sequence[str] | None = None,
                  ensemble: Results | None = None, overwrite: bool = False) -> tuple[list[Path], str]:
    """Write the report's figures as PDF and PNG files for a note: one histogram with its ratio
    panel per feature (``histogram_<feature>``), ``correlations``, ``pairs``, ``classifier`` and
    ``importance``.

    Every figure is drawn and rendered before the first file is written, each file atomically, so
    a failure leaves no half set. The style is set for the drawing only (matplotlib's global
    settings, restored afterwards: a command-line or notebook call, not one from a dashboard thread).

    Returns
    -------
    (list of Path, str)
        The files written, and which style drew them.

    Raises
    ------
    InputError
        Pair features as :func:`write_report` refuses them; a file that exists already without ``overwrite``.
    """
    v, folder = validation, Path(folder)
    check_figure_folder(folder)
    features = _pair_features(v, pair_features)
    stems = [*_file_stems(v.features), "correlations", "pairs", "classifier", "importance"]
    paths = [folder / f"{stem}.{fmt}" for stem in stems for fmt in ("pdf", "png")]
    if not overwrite and (existing := next((p for p in paths if p.exists()), None)):
        raise InputError("exists already", path=existing, hint="pass --overwrite to replace it")
    style, said = _note_style()
    rendered = []
    with style:
        figures = [*(histogram_figure(name, v, ensemble) for name in v.features), _correlation_figure(v),
                   _pairs_figure(v, features), _classifier_figure(v), _importance_figure(v)]
        for figure in figures:
            for fmt in ("pdf", "png"):
                buffer = io.BytesIO()
                figure.savefig(buffer, format=fmt, dpi=NOTE_DPI,
                               metadata={"Software": None} if fmt == "png" else {"Creator": None})
                rendered.append(buffer.getvalue())
    folder.mkdir(parents=True, exist_ok=True)
    for path, data in zip(paths, rendered):
        write_atomic(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
    return paths, said


def write_report(validation: Validation, path, *, title: str, provenance: dict,
                 pair_features: Sequence[str] | None = None, ensemble: Results | None = None) -> Path:
    """Write the validation as one standalone HTML file (atomically).

    Parameters
    ----------
    validation : Validation
        From :func:`recogan_app.validation.validate`.
    path : str or Path
        The ``.html`` file to write.
    title : str
        Page title and heading.
    provenance : dict
        What was compared and how (files, run, seed, version…), shown as a table.
    pair_features : sequence of str, optional
        At most :data:`MAX_PAIR_FEATURES` features for the pairwise grid; by default
        :func:`default_pair_features`.
    ensemble : Results, optional
        A bootstrap ensemble of the model: its N_eff table and warnings, and its band on the histograms.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        Unknown pair features, or more than :data:`MAX_PAIR_FEATURES` of them.
    """
    v = validation
    features = _pair_features(v, pair_features)
    histograms = "".join(_img(histogram_figure(name, v, ensemble), f"histogram of {name}") for name in v.features)
    body = {
        "summary": _summary(v),
        "effective": effective_statistics(ensemble, v.n_synthetic, bool(v.conditions)),
        "features": _features(v),
        "conditional": _conditional(v),
        "histograms": f"""<p class="note">Synthetic counts scaled to the MC's area; error bars are each sample's
Poisson errors; entries beyond the edges are counted in the first and last bins.{
            " The band: the ensemble's ±1σ prediction in its own bins, drawn at the MC's size." if ensemble else ""}</p>
<div class="grid">{histograms}</div>""",
        "correlations": _correlations(v),
        "pairs": f"""<p class="note">Hexbin densities (log colour scale) of {len(v.reference_sample):,} random rows
of each sample; axes span the MC's central 99 %.</p>{_img(_pairs_figure(v, features), "pairwise distributions")}""",
        "classifier": f"""<p class="note">An xgboost BDT trained on half of a balanced MC-vs-synthetic sample and
scored on the other half; the copula baseline is tested alike.</p>{_img(_classifier_figure(v), "ROC and scores")}""",
        "importance": f"""<p class="note">Left: the BDT's gain importances. Right: the AUC of a classifier that
sees one feature only (0 = that feature alone gives nothing away).</p>{_img(_importance_figure(v), "importances")}""",
        "provenance": _table(["item", "value"],
                             [[escape_html(key), escape_html(value)] for key, value in provenance.items()]),
    }
    headings = SECTIONS if v.conditional is None else {"summary": "", "features": "", **CONDITIONAL} | SECTIONS
    sections = "".join(f'<section id="{key}"><h2>{heading}</h2>{body[key]}</section>' for key, heading in headings.items())
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape_html(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{escape_html(title)}</h1>{sections}</body></html>")
    path = Path(path)
    write_atomic(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return path
