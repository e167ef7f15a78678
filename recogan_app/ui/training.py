"""The Training tab: settings, Start / Pause / Resume / Stop, progress, and the live plots.

The training runs in a worker thread (:class:`~recogan_app.training.background.BackgroundTraining`);
a periodic callback on this session's thread drains its events into the session state inside one
``pn.io.hold()``, and the state's changes feed HoloViews streams: a ``Buffer`` for the loss and
KS/WS curves (only new rows travel to the browser), a ``Pipe`` for the histogram overlay and the
correlation-residual heatmap.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.ui.plots import (LOSSES, SCORES, comparison_histogram, ks_curves, loss_curves, loss_rows,
                                  residual_heatmap, snapshot_rows, ws_curves)
from recogan_app.ui.state import ACTIVE, Session

POLL_MS = 500
"""How often the page collects the training's events (the issue asks for ≤ 2 s)."""
SETTINGS = {
    "Loss weights (λ)": ["lambda_ks", "lambda_range", "lambda_corr", "gradient_penalty", "label_smoothing"],
    "Architecture": ["adversarial", "latent_dim", "generator_widths", "discriminator_widths"],
    "Optimiser": ["batch_size", "lr_generator", "lr_discriminator", "discriminator_steps"],
    "Schedule": ["max_epochs", "time_limit", "patience", "snapshot_rows", "validation_fraction", "seed", "device"],
}
"""The settings shown, grouped; every widget comes from the TabularConfig parameter of that name."""
BUFFER_ROWS = 200_000


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


class TrainingView(Viewer):
    """Settings and controls on the left, live loss, KS, WS, histogram and heatmap plots on the right."""

    state = param.ClassSelector(class_=Session)
    feature = param.Selector(default=None, objects=[], allow_None=True, doc="Feature of the histogram overlay.")

    def __init__(self, **params):
        super().__init__(**params)
        state = self.state
        self.loss_stream = hv.streams.Buffer(LOSSES, length=BUFFER_ROWS, index=False)
        self.score_stream = hv.streams.Buffer(SCORES, length=BUFFER_ROWS, index=False)
        self.histogram_stream = hv.streams.Pipe(data=(np.array([]), np.array([]), "feature"))
        self.heatmap_stream = hv.streams.Pipe(data=(pd.DataFrame(), None))
        self._poller = None

        self.buttons = {name: pn.widgets.Button(label=name, button_type=kind, css_classes=[f"recogan-{name.lower()}"])
                        for name, kind in (("Start", "primary"), ("Pause", "warning"), ("Resume", "success"),
                                           ("Stop", "danger"))}
        for name, action in (("Start", self.start), ("Pause", state.pause), ("Resume", state.resume),
                             ("Stop", state.stop)):
            self.buttons[name].on_click(lambda _, act=action: act())
        settings = [pn.Card(pn.Param(state.config, parameters=names, show_name=False, sizing_mode="stretch_width"),
                            title=title, collapsed=title != "Loss weights (λ)", sizing_mode="stretch_width")
                    for title, names in SETTINGS.items()]
        controls = pn.Column(
            pn.pane.Markdown(state.param.device_label.rx().rx.pipe(lambda d: f"**Device:** {d}")),
            pn.Row(*self.buttons.values()),
            pn.indicators.Progress(value=state.param.progress.rx().rx.pipe(lambda p: round(100 * p)), max=100, sizing_mode="stretch_width",
                                   bar_color="primary"),
            pn.pane.Markdown(self.status_text, css_classes=["recogan-status"]),
            pn.widgets.Checkbox.from_param(state.param.detached, name="Keep training when this page closes"),
            *settings, width=380)
        self.feature_select = pn.widgets.Select.from_param(self.param.feature, name="Histogram of")
        plots = pn.GridBox(
            pn.pane.HoloViews(hv.DynamicMap(loss_curves, streams=[self.loss_stream]), sizing_mode="stretch_width",
                              css_classes=["recogan-losses"]),
            pn.pane.HoloViews(hv.DynamicMap(ks_curves, streams=[self.score_stream]), sizing_mode="stretch_width",
                              css_classes=["recogan-ks"]),
            pn.pane.HoloViews(hv.DynamicMap(ws_curves, streams=[self.score_stream]), sizing_mode="stretch_width",
                              css_classes=["recogan-ws"]),
            pn.Column(self.feature_select, pn.pane.HoloViews(
                hv.DynamicMap(lambda data: comparison_histogram(*data), streams=[self.histogram_stream]), sizing_mode="stretch_width",
                css_classes=["recogan-histogram"]), sizing_mode="stretch_width"),
            pn.pane.HoloViews(hv.DynamicMap(lambda data: residual_heatmap(*data), streams=[self.heatmap_stream]),
                              sizing_mode="stretch_width", css_classes=["recogan-heatmap"]),
            ncols=2, sizing_mode="stretch_width")
        self.layout = pn.Row(controls, plots, sizing_mode="stretch_width")
        state.param.watch(self._on_losses, "losses")
        state.param.watch(self._on_snapshot, "snapshot")
        state.param.watch(self._on_status, "status")
        self.param.watch(self._on_feature, "feature")
        self._on_status()

    # -- controls ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a training and the periodic collection of its events."""
        with self.state.reporting():
            self.state.start()
            self.loss_stream.clear()
            self.score_stream.clear()
            self.param.feature.objects = list(self.state.features)
            self.feature = self.state.features[0]
            if self._poller is None or not self._poller.running:
                self._poller = pn.state.add_periodic_callback(self.poll, period=POLL_MS)

    def poll(self) -> None:
        """Collect the worker's events in one batch of page updates; stop once nothing can come."""
        with pn.io.hold():
            self.state.poll()
        if not self.state.polling and self._poller is not None:
            self._poller.stop()

    def _on_status(self, *_):
        status = self.state.status
        self.buttons["Start"].disabled = status in ACTIVE
        self.buttons["Pause"].disabled = status != "running"
        self.buttons["Resume"].disabled = status not in ("pausing", "paused")
        self.buttons["Stop"].disabled = status not in ACTIVE

    @param.depends("state.status", "state.snapshot", "state.progress", "state.eta_s", "state.run")
    def status_text(self) -> str:
        """Status, epoch, elapsed time, ETA and the latest summary scores, in one line."""
        state, snap = self.state, self.state.snapshot
        text = f"**{state.status}**"
        if snap is not None:
            m = snap.metrics
            text += (f" · epoch {snap.epoch + 1} · {_duration(snap.elapsed_s)} · ETA {_duration(state.eta_s)}"
                     f" · mean KS {m['mean_ks']:.4f} · max KS {m['max_ks']:.4f}"
                     f" · max |Δρ| {m['max_corr_residual']:.3f} (n = {snap.sample_size:,})")
        if state.run is not None:
            text += f"<br>run: `{state.run.path}`"
        return text

    # -- live plots ----------------------------------------------------------------------------
    def _on_losses(self, event):
        self.loss_stream.send(loss_rows(event.new))

    def _on_snapshot(self, event):
        snapshot = event.new
        if snapshot is None:
            return
        self.score_stream.send(snapshot_rows(snapshot))
        self.heatmap_stream.send((snapshot.details["corr_residual"], snapshot.epoch + 1))
        self._on_feature()

    def _on_feature(self, *_):
        snapshot = self.state.snapshot
        if snapshot is not None and self.feature is not None:
            details = snapshot.details
            self.histogram_stream.send((details["reference"][self.feature].to_numpy(),
                                        details["synthetic"][self.feature].to_numpy(), self.feature))

    def __panel__(self):
        return self.layout
