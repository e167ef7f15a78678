"""The Validation tab: the full validation of the trained run on demand (a conditional run's efficiency
ratios and relative residuals drawn as the report draws them), and its HTML report; a bootstrap
ensemble's effective statistics and ±1σ bands (:mod:`recogan_app.ensemble`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.ensemble import RESULTS, Results
from recogan_app.errors import InputError
from recogan_app.markup import escape_html
from recogan_app.report import (effective_statistics, efficiency_figure, efficiency_verdict, histogram_figure,
                                residual_figure)
from recogan_app.ui.downloads import served_link
from recogan_app.ui.live import switch
from recogan_app.ui.plots import SIZE, literal_title
from recogan_app.ui.state import Session, files_under, inside
from recogan_app.validation import SCORE_EDGES, Validation

TABLE_COLUMNS = ["ks", "ks_lo", "ks_hi", "ks_floor", "wasserstein", "ws_floor", "chi2_ndf", "baseline_ks", "label"]
KS_COLUMNS = ["ks", "ks_lo", "ks_hi", "ks_floor", "baseline_ks"]
"""The per-feature columns shown; the report and ``Validation.table`` hold the rest."""


def roc_plot(validation: Validation) -> hv.Overlay:
    """ROC curves of the classifier two-sample test, model and copula baseline (diagonal: no separation)."""
    curves = [hv.Curve(tuple(comparison.c2st.roc), "false positive rate", "true positive rate",
                       label=f"{name} (AUC {comparison.c2st.auc:.3f})")
              for name, comparison in (("model", validation.model), ("copula", validation.baseline))]
    diagonal = hv.Curve([(0, 0), (1, 1)], "false positive rate", "true positive rate").opts(
        color="grey", line_dash="dashed")
    return hv.Overlay([diagonal, *curves]).opts(title="Classifier two-sample test: ROC", **SIZE,
                                                legend_position="bottom_right")


def score_plot(validation: Validation) -> hv.Overlay:
    """BDT score distributions of MC and generated test rows: identical when the BDT cannot tell."""
    c2st = validation.model.c2st
    hists = [hv.Histogram(np.histogram(scores, SCORE_EDGES), kdims=["BDT score (probability of MC)"], label=label).opts(
        fill_alpha=0.4, fill_color=color, line_alpha=0)
        for label, scores, color in (("MC", c2st.scores_reference, "grey"), ("generated", c2st.scores_synthetic,
                                                                               "crimson"))]
    return hv.Overlay(hists).opts(title="BDT scores", **SIZE)


def pair_plot(validation: Validation, x: str, y: str) -> hv.Overlay:
    """MC and generated rows in the plane of two features (a few thousand random rows of each)."""
    return (hv.Points(validation.reference_sample, [x, y], label="MC").opts(color="grey", alpha=0.3, size=3)
            * hv.Points(validation.synthetic_sample, [x, y], label="generated").opts(color="crimson", alpha=0.3,
                                                                                     size=3)).opts(
        title=literal_title(f"{y} vs {x}"), **SIZE)


def ensemble_dirs(state: Session) -> dict[str, tuple[str, str]]:
    """The ensemble directories (holding ``ensemble.json``) under the data root and the work folder,
    hidden folders skipped: label → (root, folder relative to it)."""
    found = {}
    for root, where in ((state.data_root, "data root"), (state.workdir, "work folder")):
        for results in files_under(root, suffixes=(), names={RESULTS}) if root is not None else ():
            folder = str(Path(results).parent)
            found[f"{folder} ({where})"] = (str(root), folder)
    return found


class ValidationView(Viewer):
    """Runs :meth:`Session.validate` in a worker thread and shows its tables and plots."""

    state = param.ClassSelector(class_=Session)
    downloads = param.Boolean(default=False, constant=True, doc="The server serves the reports folder.")
    rows = param.Integer(default=0, bounds=(0, None), doc="Generated rows to validate (0: as many as held-out MC).")
    x = param.Selector(default=None, objects=[], allow_None=True, doc="Horizontal feature of the pair plot.")
    y = param.Selector(default=None, objects=[], allow_None=True, doc="Vertical feature of the pair plot.")
    feature = param.Selector(default=None, objects=[], allow_None=True, doc="Feature of the histogram overlay.")

    def __init__(self, **params):
        super().__init__(**params)
        self.validate_button = pn.widgets.Button(label="Validate", color="primary",
                                                 css_classes=["recogan-validate"])
        self.validate_button.on_click(self.run_validation)
        self.report_button = pn.widgets.Button(label="Save HTML report", css_classes=["recogan-report"])
        self.report_button.on_click(self.save_report)
        self.report = pn.pane.HTML("", visible=False, css_classes=["recogan-report-download"])
        self.ensemble = pn.widgets.Select(label="Bootstrap ensemble (recogan ensemble --out DIR)", width=420,
                                          css_classes=["recogan-ensemble-choice"])
        self.ensemble.param.watch(lambda event: self.choose_ensemble(event.new), "value")
        self.refresh = pn.widgets.Button(label="Refresh the ensemble list", css_classes=["recogan-ensemble-refresh"])
        self.refresh.on_click(lambda _: self._list_ensembles())
        self._list_ensembles()
        validated = self.state.param.validation.rx.is_not(None)
        self.layout = pn.Column(
            pn.Row(pn.widgets.IntInput.from_param(self.param.rows, label="Generated rows (0: as many as the held-out "
                                                                      "MC)", width=300),
                   self.validate_button, self.report_button, self.report),
            pn.panel(self.results, sizing_mode="stretch_width"),
            pn.panel(self.conditional, sizing_mode="stretch_width"),
            pn.Row(self.ensemble, self.refresh),
            pn.pane.HTML(self.effective, css_classes=["recogan-ensemble"], sizing_mode="stretch_width"),
            pn.Row(pn.widgets.Select.from_param(self.param.feature, label="Histogram of"), visible=validated),
            pn.panel(self.overlay),
            pn.Row(pn.widgets.Select.from_param(self.param.x, label="x"),
                   pn.widgets.Select.from_param(self.param.y, label="y"), visible=validated),
            pn.panel(self.pairs, sizing_mode="stretch_width"), sizing_mode="stretch_width")
        self.state.param.watch(self._on_validation, "validation")
        self.state.param.watch(lambda _: self._enable(), "run")
        self._enable()

    def _enable(self) -> None:
        switch(self.validate_button, self.state.run is not None)
        switch(self.report_button, self.state.validation is not None)

    async def run_validation(self, *_):
        """Validate in a thread (the classifier test takes seconds to minutes), show it here."""
        self.layout.loading = True
        try:
            with self.state.reporting():
                self.state.validation = await asyncio.to_thread(self.state.validate, self.rows)
        finally:
            self.layout.loading = False

    async def save_report(self, *_):
        with self.state.reporting():
            path = await asyncio.to_thread(self.state.save_report, self.state.validation)
            if self.downloads:
                self.report.param.update(object=served_link(path, self.state.workdir), visible=True)
            self.state.tell(f"report saved to {path}", "success")

    def _on_validation(self, event) -> None:
        features = event.new.features if event.new is not None else []
        self.param.x.objects = self.param.y.objects = self.param.feature.objects = features
        self.param.update(x=features[0] if features else None, y=features[1 % len(features)] if features else None,
                          feature=features[0] if features else None)
        self._enable()

    def _list_ensembles(self) -> None:
        """Offer the ensembles under the data root and the work folder (made after the page opened: Refresh)."""
        self.ensemble.options = {"none": "", **ensemble_dirs(self.state)}  # "": Panel shows a None value blank

    def choose_ensemble(self, chosen: tuple[str, str] | str) -> None:
        """Choose the ``chosen`` ensemble (only inside its root: no link leads out; "": none), then read it."""
        folder = None
        with self.state.reporting():  # a link that leads out: a notice, and no ensemble
            folder = inside(Path(chosen[0]), chosen[1]) if chosen else None
        self.state.choose_ensemble(folder)
        pn.state.execute(self.state.settle_ensemble)

    @param.depends("state.ensemble", "state.validation", "state.run")
    def effective(self) -> str:
        """The ensemble's N_eff table and warnings, for the validated sample's size (else its members'),
        under a warning when the page's run was not trained like the ensemble (its numbers are not the run's)."""
        ensemble, validation, run = self.state.ensemble, self.state.validation, self.state.run
        if ensemble is None:
            return ""
        unlike = ""
        if run is not None:
            try:
                ensemble.check_run(run.info, run.path)
            except InputError as exc:
                unlike = f'<p class="bad recogan-ensemble-unlike">{escape_html(exc)}</p>'
        return unlike + effective_statistics(ensemble, ensemble.summary["n_generated"] if validation is None
                                             else validation.n_synthetic)

    @param.depends("state.validation", "state.ensemble", "feature")
    def overlay(self):
        """MC against the generated sample for one feature, with the ensemble's band when one is chosen."""
        validation = self.state.validation
        if validation is None or self.feature not in validation.features:
            return pn.Spacer()
        return pn.pane.Matplotlib(histogram_figure(self.feature, validation, self.state.ensemble), dpi=90, tight=True,
                                  format="png", css_classes=["recogan-overlay"])

    @param.depends("state.validation", "state.run")
    def results(self):
        """Summary, per-feature table, ROC and BDT scores of the last validation."""
        validation = self.state.validation
        if validation is None:
            first = "Press" if self.state.run is not None else "Train a run, then press"
            return pn.pane.Markdown(f"{first} **Validate**: KS/WS beside the MC noise floor, "
                                    "a classifier two-sample test and a Gaussian-copula baseline.")
        return pn.Column(
            pn.pane.HTML(f"<pre>{escape_html(validation.summary())}</pre>", sizing_mode="stretch_width"),
            pn.pane.DataFrame(validation.table[TABLE_COLUMNS], float_format="{:.4g}".format,  # KS: fixed decimals,
                              formatters=dict.fromkeys(KS_COLUMNS, "{:.4f}".format),  # lined up with its interval
                              css_classes=["recogan-validation-table"]),
            pn.Row(pn.pane.HoloViews(roc_plot(validation), sizing_mode="stretch_width"),
                   pn.pane.HoloViews(score_plot(validation), sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    @param.depends("state.validation")
    def conditional(self):
        """A conditional run's efficiency ratios (and relative residuals, where a target has its gen
        condition) under the bars' verdict: the report's own figures and words."""
        validation = self.state.validation
        if validation is None or validation.conditional is None:
            return pn.Spacer()
        passes = validation.conditional.passes()
        figures = [efficiency_figure(validation)] + (
            [residual_figure(validation)] if len(validation.conditional.residuals) else [])
        return pn.Column(
            pn.pane.HTML(f"<b>{escape_html(efficiency_verdict(validation))}</b>", sizing_mode="stretch_width",
                         styles={"color": "#1a7f37" if passes else "#b42318"},
                         css_classes=["recogan-efficiency-verdict"]),
            *(pn.pane.Matplotlib(figure, dpi=90, tight=True, format="png", css_classes=[f"recogan-{name}"])
              for figure, name in zip(figures, ("efficiency", "residuals"))),
            sizing_mode="stretch_width")

    @param.depends("state.validation", "x", "y")
    def pairs(self):
        """The pair plot of the chosen features, once validated."""
        if self.state.validation is None or None in (self.x, self.y):
            return pn.Spacer()
        return pn.pane.HoloViews(pair_plot(self.state.validation, self.x, self.y), sizing_mode="stretch_width")

    def __panel__(self):
        return self.layout
