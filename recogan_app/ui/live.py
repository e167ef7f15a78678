"""What the tabs that follow a training share: Start / Pause / Resume / Stop, progress, status,
and live plots fed by a periodic callback.

The training runs in a child process (:class:`~recogan_app.training.background.BackgroundTraining`);
a periodic callback on this session's thread drains its events into the state inside one
``pn.io.hold()``, and the state's changes feed HoloViews streams: a ``Buffer`` for curves (only
new rows travel to the browser), a ``Pipe`` for plots redrawn whole (histograms, heatmaps,
image galleries).

Each training gets fresh streams, created from their first data: a plot's first frame fixes its
curves (one per loss term or feature) and axis types, so it must already hold the real structure.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import holoviews as hv
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.ui.plots import loss_rows
from recogan_app.ui.state import ACTIVE, TrainingState

__all__ = ["BUFFER_ROWS", "POLL_MS", "REDRAW_SHARE", "WAITING", "LiveView", "duration", "settings_cards"]

POLL_MS = 250
"""How often the page collects the training's events and may redraw one stale plot: with quick
redraws each of five plots is at most about 5 × POLL_MS old (the issues ask for ≤ 2 s)."""
REDRAW_SHARE = 0.3
"""Most of the session thread's time that redrawing plots may take, so that clicks are answered."""
BUFFER_ROWS = 200_000
WAITING = "*waiting for the first epoch*"


def duration(seconds: float | None) -> str:
    """``'1 min 05 s'``, ``'42 s'``, or ``'–'`` when unknown."""
    if seconds is None:
        return "–"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def settings_cards(config, groups: dict[str, list[str]], open_first: bool = True) -> list[pn.Card]:
    """One card of widgets per group of ``config``'s parameters (numbers as typed inputs); only the
    first card starts open."""
    inputs = {name: pn.widgets.IntInput if isinstance(p, param.Integer) else pn.widgets.FloatInput
              for name, p in config.param.objects().items() if isinstance(p, param.Number)}
    return [pn.Card(pn.Param(config, parameters=names, widgets=inputs, show_name=False, sizing_mode="stretch_width"),
                    title=title, collapsed=not (open_first and i == 0), sizing_mode="stretch_width")
            for i, (title, names) in enumerate(groups.items())]


class LiveView(Viewer):
    """Base of a tab that trains: buttons that follow the state's status and live plots.

    Subclasses declare :attr:`LIVE` (plot name: (stream type, function of the stream's data)), call
    :meth:`show` with new data for a plot, lay out :attr:`slots` and :meth:`controls`, and may
    override :meth:`on_start` (called right after a training started) and :meth:`status_text`.
    The step losses go to the plot named :attr:`LOSSES`, if there is one.
    """

    state = param.ClassSelector(class_=TrainingState)

    LIVE: dict = {}
    PANES: dict = {}
    """Pane options per plot name (default: the plot stretches to the width of its slot)."""
    LOSSES = "losses"
    CSS = "recogan"
    """Prefix of the CSS classes that name the buttons, status line and plots (for browser tests)."""

    def __init__(self, **params):
        super().__init__(**params)
        self.streams: dict[str, hv.streams.Stream] = {}
        self.stale: dict[str, object] = {}
        self._next_redraw = 0.0
        self._poller = None
        self.slots = {name: pn.Column(WAITING, sizing_mode="stretch_width", css_classes=[f"{self.CSS}-{name}"])
                      for name in self.LIVE}
        self.buttons = {name: pn.widgets.Button(label=name, color=kind, css_classes=[f"{self.CSS}-{name.lower()}"])
                        for name, kind in (("Start", "primary"), ("Pause", "warning"), ("Resume", "success"),
                                           ("Stop", "danger"))}
        for name, action in (("Start", self.start), ("Pause", self.state.pause), ("Resume", self.state.resume),
                             ("Stop", self.state.stop)):
            self.buttons[name].on_click(lambda _, act=action: act())
        self.state.param.watch(self._on_status, "status")
        self.state.param.watch(self._on_losses, "losses")
        self._on_status()

    def controls(self) -> list:
        """Device, buttons, progress bar, status line, the last messages and the detach box."""
        state = self.state
        return [pn.pane.Markdown(state.param.device_label.rx().rx.pipe(lambda d: f"**Device:** {d}")),
                pn.Row(*self.buttons.values()),
                pn.indicators.Progress(value=state.param.progress.rx().rx.pipe(lambda p: round(100 * p)), max=100,
                                       sizing_mode="stretch_width", bar_color="primary"),
                pn.pane.Markdown(self.status_text, css_classes=[f"{self.CSS}-status"]),
                pn.pane.Markdown(self.messages, styles={"font-size": "small"}),
                pn.widgets.Checkbox.from_param(state.param.detached, label="Keep training when this page closes")]

    # -- controls ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a training and the periodic collection of its events."""
        with self.state.reporting():
            self.state.start()
            self.streams.clear()
            self.stale.clear()
            for slot in self.slots.values():
                slot[:] = [WAITING]
            self.on_start()
            self.follow()

    def on_start(self) -> None:
        """Called when a training has just started (its streams are cleared)."""

    def follow(self) -> None:
        """Collect the state's events every :data:`POLL_MS` until nothing more can come."""
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

    def status_text(self) -> str:
        return f"**{self.state.status}**"

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
        elif name in self.stale and self.LIVE[name][0] is hv.streams.Buffer:
            self.stale[name] = pd.concat([self.stale[name], data], ignore_index=True)
        else:
            self.stale[name] = data

    def feed(self, name: str, data) -> None:
        """Send ``data`` to the stream ``name``; its first data creates the stream and its plot."""
        stream = self.streams.get(name)
        if stream is not None:
            stream.send(data)
            return
        kind, plot = self.LIVE[name]
        stream = self.streams[name] = (kind(data, length=BUFFER_ROWS, index=False) if kind is hv.streams.Buffer
                                       else kind(data=data))
        options = self.PANES.get(name, {"sizing_mode": "stretch_width"})
        self.slots[name][:] = [pn.pane.HoloViews(hv.DynamicMap(plot, streams=[stream]), **options)]

    def _on_losses(self, event):
        if self.LOSSES in self.LIVE:
            self.show(self.LOSSES, loss_rows(event.new))
