"""The Training tab: settings, Start / Pause / Resume / Stop, progress, and the live plots.

Live loss and KS/WS curves, the histogram overlay and the correlation-residual heatmap follow the
training through :class:`~recogan_app.ui.live.LiveView`'s periodic callback and streams.
"""

from __future__ import annotations

from functools import partial

import math

import numpy as np
import pandas as pd
import panel as pn
import param

from recogan_app.markup import escape_markdown
from recogan_app.metrics.correlations import noise_text, residual_noise, residual_text
from recogan_app.ui.data import column_choice
from recogan_app.ui.live import PREPARING, LiveView, duration, settings_cards
from recogan_app.ui.plots import (KS_CAPTION, Heatmap, HistogramComparison, ks_curves, loss_curves, snapshot_rows,
                                  ws_curves)
from recogan_app.ui.state import ACTIVE, AUTO_SETTINGS, Session

SCHEDULE = ["max_epochs", "time_limit", "patience", "snapshot_rows", "monitor_fraction", "test_fraction", "seed", "device"]
SETTINGS = {
    "gan": {"Loss weights (λ)": ["lambda_ks", "lambda_range", "lambda_corr", "gradient_penalty", "label_smoothing"],
            "Architecture": ["adversarial", "latent_dim", "generator_widths", "discriminator_widths"],
            "Optimiser": ["batch_size", "lr_generator", "lr_discriminator", "discriminator_steps"],
            "Schedule": SCHEDULE},
    "flow": {"Architecture": ["coupling_transforms", "hidden_widths", "spline_bins"],
             "Optimiser": ["batch_size", "learning_rate", "weight_decay"],
             "Schedule": SCHEDULE},
    "quantile": {"Architecture": ["hidden_widths"], "Optimiser": ["batch_size", "learning_rate"], "Schedule": SCHEDULE},
    "auto": {"Schedule": AUTO_SETTINGS},
}
"""The settings shown per model, grouped; every widget comes from the model's config parameter of that name."""
MODEL_NOTES = {
    "gan": "*GAN (seed 000): fast to sample; its classifier AUC plateaus around 0.6–0.67.*",
    "flow": "*Normalizing flow (maximum likelihood, zuko splines): picks its checkpoint by the monitor "
            "log-likelihood; closer joint structure, slower to sample.*",
    "quantile": "*Mean + quantile regression (seed 003): needs conditions; each target Gaussian given them, "
                "each reco_<f> starting from its gen_<f>.*",
    "auto": "*Auto: a short trial of each family on this MC (30 s each, or a sixth of the time limit), "
            "scored by a classifier against the monitor split; the winner trains with its default "
            "settings, all within the time limit.*",
}


class TrainingView(LiveView):
    """Settings and controls on the left, live loss, KS, WS, histogram and heatmap plots on the right."""

    state = param.ClassSelector(class_=Session)
    feature = param.Selector(default=None, objects=[], allow_None=True, doc="Feature of the histogram overlay.")

    LIVE = {"ks": ks_curves, "heatmap": Heatmap, "losses": loss_curves, "ws": ws_curves,
            "histogram": partial(HistogramComparison, reference_label="MC (monitor split)")}

    def __init__(self, **params):
        super().__init__(**params)
        plots = pn.GridBox(
            pn.Column(self.slots["ks"], pn.pane.Markdown(KS_CAPTION, styles={"font-size": "small"}),
                      sizing_mode="stretch_width"),
            self.slots["heatmap"], self.slots["losses"], self.slots["ws"],
            pn.Column(pn.widgets.Select.from_param(self.param.feature, label="Histogram of"), self.slots["histogram"],
                      sizing_mode="stretch_width"),
            ncols=2, sizing_mode="stretch_width")
        self.settings = pn.Column(sizing_mode="stretch_width")
        model = pn.widgets.RadioButtonGroup.from_param(self.state.param.model, color="primary",
                                                       css_classes=["recogan-model"])
        self.conditions = column_choice(self.state, "conditions", "Conditions (given, never generated; empty: unconditional)")
        self.layout = pn.Row(pn.Column(*self.controls(), self.conditions, pn.pane.Markdown("**Model**"), model,
                                       self.settings, width=380),
                             plots, sizing_mode="stretch_width")
        self._show_settings()
        self.state.param.watch(self._show_settings, "model")
        self.state.param.watch(self._on_snapshots, "snapshots")
        self.state.param.watch(self.draw_blank, ["features", "conditions"])
        self.draw_blank()
        self.param.watch(self._on_feature, "feature")

    def _show_settings(self, *_) -> None:
        """The chosen model's note and settings cards (each model keeps its own settings)."""
        model = self.state.model
        self.settings[:] = [pn.pane.Markdown(MODEL_NOTES[model], styles={"font-size": "small"}),
                            *settings_cards(self.state.config, SETTINGS[model])]

    def blank_key(self):
        return tuple(self.state.targets)

    def blank_figures(self) -> dict:
        features = self.state.targets
        if not features:
            return super().blank_figures()
        rows = pd.DataFrame({"epoch": np.nan, "feature": features, "ks": np.nan, "ws": np.nan, "floor": np.nan})
        return {**super().blank_figures(), "ks": rows, "ws": rows,
                "heatmap": (pd.DataFrame(np.nan, index=features, columns=features), None), "histogram": None}

    def on_start(self) -> None:
        if self.param.feature.objects != self.state.targets:  # the same list again re-renders the selector
            self.param.feature.objects = self.state.targets
        self.feature = self.state.targets[0]

    @param.depends("state.status", "state.snapshot", "state.progress", "state.eta_s", "state.run")
    def status_text(self) -> str:
        """Status, epoch, elapsed time, ETA and the latest summary scores, in one line."""
        state, snap = self.state, self.state.snapshot
        text = f"**{state.status}**"
        if snap is None and state.status in ACTIVE:
            text += PREPARING
        if snap is not None:
            m, residual = snap.metrics, snap.metrics["max_corr_residual"]
            reference, synthetic = snap.details["reference"], snap.details["synthetic"]
            noise = residual_noise(len(reference), len(synthetic), reference.shape[1])
            floor = f" ({noise_text(noise)})" if math.isfinite(residual) else ""
            text += (f" · epoch {snap.epoch + 1} · {duration(snap.elapsed_s)} · ETA {duration(state.eta_s)}"
                     f" · mean KS {m['mean_ks']:.4f} · max KS {m['max_ks']:.4f}"
                     f" · max |Δρ| {residual_text(residual)}{floor} at n = {snap.sample_size:,}")
        if state.run is not None:
            text += f"<br>run: {escape_markdown(state.run.path)}"
        return text

    def _on_snapshots(self, event):
        if not event.new:
            return
        rows = pd.concat([snapshot_rows(s) for s in event.new], ignore_index=True)
        self.show("ks", rows)
        self.show("ws", rows)
        latest = event.new[-1]
        self.show("heatmap", (latest.details["corr_residual"], latest.epoch + 1))
        self._on_feature()

    def _on_feature(self, *_):
        snapshot = self.state.snapshot
        if snapshot is not None and self.feature is not None:
            details = snapshot.details
            self.show("histogram", (details["reference"][self.feature].to_numpy(),
                                    details["synthetic"][self.feature].to_numpy(), self.feature))

    def __panel__(self):
        return self.layout
