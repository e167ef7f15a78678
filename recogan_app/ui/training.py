"""The Training tab: settings, Start / Pause / Resume / Stop, progress, and the live plots.

The training runs in a worker thread (:class:`~recogan_app.training.background.BackgroundTraining`);
a periodic callback on this session's thread drains its events into the session state inside one
``pn.io.hold()``, and the state's changes feed HoloViews streams: a ``Buffer`` for the loss and
KS/WS curves (only new rows travel to the browser), a ``Pipe`` for the histogram overlay and the
correlation-residual heatmap.

Each training gets fresh streams, created from its first data: a plot's first frame fixes its
curves (one per loss term or feature) and axis types (categorical for the heatmap), so it must
already hold the real structure.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import holoviews as hv
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.ui.plots import (KS_CAPTION, comparison_histogram, ks_curves, loss_curves, loss_rows, residual_heatmap,
                                  snapshot_rows, ws_curves)
from recogan_app.ui.state import ACTIVE, Session

POLL_MS = 250
"""How often the page collects the training's events and may redraw one stale plot: with quick
redraws each of the five plots is at most about 5 × POLL_MS old (the issue asks for ≤ 2 s)."""
REDRAW_SHARE = 0.3
"""Most of the session thread's time that redrawing plots may take, so that clicks are answered."""
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


LIVE = {
    "ks": (hv.streams.Buffer, ks_curves),
    "heatmap": (hv.streams.Pipe, lambda data: residual_heatmap(*data)),
    "losses": (hv.streams.Buffer, loss_curves),
    "ws": (hv.streams.Buffer, ws_curves),
    "histogram": (hv.streams.Pipe, lambda data: comparison_histogram(*data)),
}
"""Live plot name: (stream type, function of the stream's data); a Buffer accumulates rows."""
WAITING = "*waiting for the first epoch*"


class TrainingView(Viewer):
    """Settings and controls on the left, live loss, KS, WS, histogram and heatmap plots on the right."""

    state = param.ClassSelector(class_=Session)
    feature = param.Selector(default=None, objects=[], allow_None=True, doc="Feature of the histogram overlay.")

    def __init__(self, **params):
        super().__init__(**params)
        state = self.state
        self.streams: dict[str, hv.streams.Stream] = {}
        self.stale: dict[str, object] = {}
        self._next_redraw = 0.0
        self.slots = {name: pn.Column(WAITING, sizing_mode="stretch_width", css_classes=[f"recogan-{name}"])
                      for name in LIVE}
        self._poller = None

        self.buttons = {name: pn.widgets.Button(label=name, color=kind, css_classes=[f"recogan-{name.lower()}"])
                        for name, kind in (("Start", "primary"), ("Pause", "warning"), ("Resume", "success"),
                                           ("Stop", "danger"))}
        for name, action in (("Start", self.start), ("Pause", state.pause), ("Resume", state.resume),
                             ("Stop", state.stop)):
            self.buttons[name].on_click(lambda _, act=action: act())
        inputs = {name: pn.widgets.IntInput if isinstance(p, param.Integer) else pn.widgets.FloatInput
                  for name, p in state.config.param.objects().items() if isinstance(p, param.Number)}
        settings = [pn.Card(pn.Param(state.config, parameters=names, widgets=inputs, show_name=False,
                                     sizing_mode="stretch_width"),
                            title=title, collapsed=title != "Loss weights (λ)", sizing_mode="stretch_width")
                    for title, names in SETTINGS.items()]
        controls = pn.Column(
            pn.pane.Markdown(state.param.device_label.rx().rx.pipe(lambda d: f"**Device:** {d}")),
            pn.Row(*self.buttons.values()),
            pn.indicators.Progress(value=state.param.progress.rx().rx.pipe(lambda p: round(100 * p)), max=100,
                                   sizing_mode="stretch_width", bar_color="primary"),
            pn.pane.Markdown(self.status_text, css_classes=["recogan-status"]),
            pn.pane.Markdown(self.messages, styles={"font-size": "small"}),
            pn.widgets.Checkbox.from_param(state.param.detached, label="Keep training when this page closes"),
            *settings, width=380)
        plots = pn.GridBox(
            pn.Column(self.slots["ks"], pn.pane.Markdown(KS_CAPTION, styles={"font-size": "small"}),
                      sizing_mode="stretch_width"),
            self.slots["heatmap"], self.slots["losses"], self.slots["ws"],
            pn.Column(pn.widgets.Select.from_param(self.param.feature, label="Histogram of"), self.slots["histogram"],
                      sizing_mode="stretch_width"),
            ncols=2, sizing_mode="stretch_width")
        self.layout = pn.Row(controls, plots, sizing_mode="stretch_width")
        state.param.watch(self._on_losses, "losses")
        state.param.watch(self._on_snapshots, "snapshots")
        state.param.watch(self._on_status, "status")
        self.param.watch(self._on_feature, "feature")
        self._on_status()

    # -- controls ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a training and the periodic collection of its events."""
        with self.state.reporting():
            self.state.start()
            self.streams.clear()
            self.stale.clear()
            for slot in self.slots.values():
                slot[:] = [WAITING]
            self.param.feature.objects = list(self.state.features)
            self.feature = self.state.features[0]
            if not self.polling:
                self._poller = pn.state.add_periodic_callback(self.poll, period=POLL_MS)

    @property
    def polling(self) -> bool:
        return self._poller is not None and self._poller.running

    def poll(self) -> None:
        """Collect the worker's events and redraw the plot that has waited longest, in one batch of
        page updates; stop once nothing more can come.

        Clicks wait while a plot redraws, so redraws come one at a time and take at most
        :data:`REDRAW_SHARE` of this session's thread: on a busy machine plots refresh less often,
        but the page keeps answering. ``freeze`` makes Bokeh recompute the document's model graph
        once per batch instead of once per changed plot (that recomputation grows with the page).
        """
        started = time.perf_counter()
        redraw = bool(self.stale) and started >= self._next_redraw
        with pn.io.hold(freeze=True) if redraw or self.state.pending else nullcontext():
            self.state.poll()
            if redraw:
                name = next(iter(self.stale))
                self.feed(name, self.stale.pop(name))
        if redraw:
            self._next_redraw = started + (time.perf_counter() - started) / REDRAW_SHARE
        if not (self.state.polling or self.stale) and self.polling:
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

    @param.depends("state.log")
    def messages(self) -> str:
        """The training's last messages: what it trains on, rollbacks, why it stopped."""
        return "<br>".join(message.text for message in self.state.log[-3:])

    # -- live plots ----------------------------------------------------------------------------
    def show(self, name: str, data) -> None:
        """Queue ``data`` for the plot ``name`` (drawn by a later :meth:`poll`), or draw it now when no
        training is being followed; queued rows of a Buffer accumulate."""
        if not self.polling:
            self.feed(name, data)
        elif name in self.stale and LIVE[name][0] is hv.streams.Buffer:
            self.stale[name] = pd.concat([self.stale[name], data], ignore_index=True)
        else:
            self.stale[name] = data

    def feed(self, name: str, data) -> None:
        """Send ``data`` to the stream ``name``; its first data creates the stream and its plot."""
        stream = self.streams.get(name)
        if stream is not None:
            stream.send(data)
            return
        kind, plot = LIVE[name]
        stream = self.streams[name] = (kind(data, length=BUFFER_ROWS, index=False) if kind is hv.streams.Buffer
                                       else kind(data=data))
        self.slots[name][:] = [pn.pane.HoloViews(hv.DynamicMap(plot, streams=[stream]), sizing_mode="stretch_width")]

    def _on_losses(self, event):
        self.show("losses", loss_rows(event.new))

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
