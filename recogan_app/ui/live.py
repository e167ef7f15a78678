"""What the tabs that follow a training share: Start / Pause / Resume / Stop, progress, status,
and live plots fed by a periodic callback.

The training runs in a child process (:class:`~recogan_app.training.background.BackgroundTraining`);
a periodic callback on this session's thread drains its events into the state and updates the
live Bokeh figures (:mod:`recogan_app.ui.plots`) in place, inside one ``pn.io.hold()``: curves
stream only their new points, the other figures replace their data. An update costs the server
milliseconds, so a click never waits behind a redraw; each figure is redrawn at most every
:data:`REDRAW_S`, which keeps the browser free too.

Each training gets fresh figures, built from their first data: a figure's first data fixes its
curves (one per loss term or feature) and axes.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.markup import escape_markdown
from recogan_app.ui.plots import loss_rows
from recogan_app.ui.server import every, in_served_page
from recogan_app.ui.state import ACTIVE, TrainingState

__all__ = ["OFF", "POLL_MS", "PREPARING", "REDRAW_S", "WAITING", "LiveView", "duration", "settings_cards", "switch"]

STARTING = ("starting", *ACTIVE)
"""The statuses in which Start is refused (the button is off)."""
ON, OFF = {"opacity": "1", "pointer-events": "auto"}, {"opacity": "0.45", "pointer-events": "none"}
"""How a button looks when it cannot act (:func:`switch`): greyed and deaf to the mouse (its
handler refuses out of turn too). Not Bokeh's ``disabled``: changing that re-renders the button,
and bokehjs then lays the whole page out again from its root (``LayoutDOMView.rerender`` →
``compute_layout``), 0.1-0.7 s of a browser's main thread under load for each of the two to
four buttons that change at every Start, Pause and Stop (load test: Pause answered in 2.8 s at
worst). A change of inline styles is not laid out. ON sets both back: bokehjs keeps an inline style
that a new ``styles`` leaves out. Every button that a training's start or end turns on or off
(Validate, Report, Export, the trainings list's Stop) switches the same way: at Start a page's run
is reset, and Bokeh's ``disabled`` on the other tabs' buttons laid out every page again."""


def switch(button, on: bool) -> None:
    """Turn ``button`` on or off by its inline style (:data:`OFF`), sending nothing when unchanged."""
    styles = {**button.styles, **(ON if on else OFF)}
    if button.styles != styles:
        button.styles = styles


POLL_MS = 250
"""How often the page collects the training's events and draws what is due."""
REDRAW_S = 2.0
"""Least time between two redraws of one figure (the issues ask for updates at least every 2 s).
A small training can end an epoch every 0.3 s; redrawing five figures that often kept a browser
on a shared 2-core machine so busy that a click took 5 s to be answered, and at 1 s four pages'
updates still took the server's one thread 0.1-0.4 s per page and poll (load test)."""
WAITING = "*waiting for the first epoch*"
PREPARING = " · preparing (worker, data, networks): figures come with the first epoch"
"""Said on the status line between Start and the first epoch, which can take tens of seconds."""


def duration(seconds: float | None) -> str:
    """``'1 min 05 s'``, ``'42 s'``, or ``'–'`` when unknown."""
    if seconds is None:
        return "–"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def settings_cards(config, groups: dict[str, list[str]], open_first: bool = True) -> list:
    """A line saying when settings apply, then one card of widgets per group of ``config``'s
    parameters (numbers as typed inputs); only the first card starts open."""
    inputs = {name: pn.widgets.IntInput if isinstance(p, param.Integer) else pn.widgets.FloatInput
              for name, p in config.param.objects().items() if isinstance(p, param.Number)}
    return [pn.pane.Markdown("*Settings are read at Start: a change during a training applies to the next one.*",
                             styles={"font-size": "small"}),
            *(pn.Card(pn.Param(config, parameters=names, widgets=inputs, show_name=False, sizing_mode="stretch_width"),
                      title=title, collapsed=not (open_first and i == 0), sizing_mode="stretch_width")
              for i, (title, names) in enumerate(groups.items()))]


class LiveView(Viewer):
    """Base of a tab that trains: buttons that follow the state's status and live plots.

    Subclasses declare :attr:`LIVE` (plot name: a function of the plot's first data that returns a
    live figure, see :mod:`recogan_app.ui.plots`), call :meth:`show` with new data for a plot, lay
    out :attr:`slots` and :meth:`controls`, and may
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
        self.figures: dict[str, object] = {}
        self.filled: set[str] = set()  # the figures holding data (not only blank): a Start empties them
        self._blank_key = object()  # what the blank figures were built for: nothing yet
        self.stale: dict[str, object] = {}
        self.drawn_at: dict[str, float] = {}
        self._poller = None
        self.waiting = {name: pn.pane.Markdown(WAITING) for name in self.LIVE}
        self.slots = {name: pn.Column(self.waiting[name], sizing_mode="stretch_width",
                                      css_classes=[f"{self.CSS}-{name}"]) for name in self.LIVE}
        self.buttons = {name: pn.widgets.Button(label=name, color=kind, css_classes=[f"{self.CSS}-{name.lower()}"])
                        for name, kind in (("Start", "primary"), ("Pause", "warning"), ("Resume", "success"),
                                           ("Stop", "danger"))}
        self.buttons["Start"].on_click(self.press_start)
        for name, action in (("Pause", self.state.pause), ("Resume", self.state.resume), ("Stop", self.state.stop)):
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
                pn.pane.Markdown(self.status_text, disable_math=True, css_classes=[f"{self.CSS}-status"]),
                pn.pane.Markdown(self.messages, disable_math=True, styles={"font-size": "small"}),
                pn.widgets.Checkbox.from_param(state.param.detached, label="Keep training when this page closes")]

    # -- controls ------------------------------------------------------------------------------
    async def press_start(self, *_) -> None:
        """Start pressed in the page: the status line says "starting" at once (four pages pressing
        together queue on one server thread), then :meth:`prepare` runs in a worker thread and
        :meth:`start` launches; a refused start puts the status back and says why in the notice.

        "starting" is sent inside ``pn.io.unlocked()``: otherwise Panel queued it behind this
        callback, and the page saw it together with "running", after the launch (load test)."""
        state = self.state
        if state.status in STARTING:
            return
        with pn.io.unlocked():
            before, state.status = state.status, "starting"
        try:
            with state.reporting():
                await asyncio.to_thread(self.prepare)
                self.start()
        finally:
            if state.status == "starting":
                state.status = before

    def prepare(self) -> None:
        """The slow part of starting that needs no page update (called in a worker thread before
        :meth:`start`, whose state finds its results remembered); nothing by default."""

    def start(self) -> None:
        """Start a training and the periodic collection of its events; the page's resets (status,
        figures, selectors) go out in one batch.

        The blank figures (:meth:`blank_figures`), built before, are emptied in place; only the
        other figures of the last training are taken out, and only then does Bokeh walk the page's
        model graph, once (``freeze``): a freeze walks it even when no model came or went, and a
        figure built at Start or at the first epoch held the server's thread 0.3-1 s per page
        while the other pages' clicks waited, and the browser's whole page was laid out again
        (load test)."""
        blank = self.blank_figures()
        rebuilt = self._blank_key != self.blank_key()
        replaced = {name: slot for name, slot in self.slots.items()
                    if slot.objects != [self.waiting[name]] and (rebuilt or name not in blank)}
        with self.state.reporting(), pn.io.hold(freeze=bool(replaced)):
            self.state.start()
            kept = {} if rebuilt else {name: self.figures[name] for name in blank if name in self.figures}
            for name in self.filled & set(kept):  # an empty one is left alone: each change costs the browser
                kept[name].clear()  # a repaint (a Start of four pages on two cores: 80-100 ms each)
            self.figures, self.filled = kept, set()
            self.stale.clear()
            self.drawn_at.clear()
            for name, slot in replaced.items():
                slot[:] = [self.waiting[name]]
            self.on_start()
            self.stale.update({name: data for name, data in blank.items() if name not in kept})
            self.follow()

    def on_start(self) -> None:
        """Called when a training has just started (its streams are cleared)."""

    def blank_figures(self) -> dict:
        """Plot name: data that builds the plot's figure, empty, before any training data, for the
        plots whose curves and axes are known beforehand (they depend on :meth:`blank_key` only).
        :meth:`draw_blank` builds them while the page is idle (it loaded, the features changed);
        a Start empties them; the first epoch only fills them. By default the losses' figure,
        whose curves the first step names (:class:`~recogan_app.ui.plots.Curves`' ``spare``)."""
        return {self.LOSSES: loss_rows([])} if self.LOSSES in self.LIVE else {}

    def blank_key(self):
        """What the blank figures' curves and axes depend on (e.g. the features)."""
        return None

    def draw_blank(self, *_) -> None:
        """Build the blank figures now, unless a training is being followed (its figures stay)."""
        blank = self.blank_figures()
        if self.polling or not blank:
            return
        with pn.io.hold(freeze=True):
            for name, data in blank.items():
                self.figures.pop(name, None)
                self.feed(name, data)
        self.filled -= set(blank)
        self._blank_key = self.blank_key()

    def follow(self) -> None:
        """Collect the state's events every :data:`POLL_MS` until nothing more can come."""
        if not self.polling:
            self._poller = every(POLL_MS, self.poll)

    @property
    def polling(self) -> bool:
        return self._poller is not None and self._poller.running

    def poll(self) -> None:
        """Collect the worker's events and draw what is due (each figure at most every
        :data:`REDRAW_S`), in one batch of page updates; stop once nothing more can come.

        Figures due for their first drawing are built together: each new figure made Bokeh walk
        the page's whole model graph (~1,000 models, 0.1-0.9 s under the load test), so building a
        page's five figures one by one held the server's thread five times as long, while the
        pages' clicks waited; in one ``freeze`` the graph is walked once. Updating a built
        figure's data adds no model.
        """
        with pn.io.hold():
            self.state.poll()
            now = time.monotonic()
            finishing = not self.state.polling
            due = [name for name in self.stale if finishing or now - self.drawn_at.get(name, 0) >= REDRAW_S]
            with pn.io.hold(freeze=any(name not in self.figures for name in due)):
                for name in due:
                    self.feed(name, self.stale.pop(name))
                    self.drawn_at[name] = now
        if not (self.state.polling or self.stale) and self.polling:
            self._poller.stop()

    def _on_status(self, *_):
        status = self.state.status
        usable = {"Start": status not in STARTING, "Pause": status == "running",
                  "Resume": status in ("pausing", "paused"), "Stop": status in ACTIVE}
        for name, on in usable.items():
            switch(self.buttons[name], on)

    def status_text(self) -> str:
        return f"**{self.state.status}**"

    @param.depends("state.log")
    def messages(self) -> str:
        """The training's last messages: what it trains on, rollbacks, why it stopped."""
        return "<br>".join(escape_markdown(message.text) for message in self.state.log[-3:])

    # -- live plots ----------------------------------------------------------------------------
    def show(self, name: str, data) -> None:
        """Queue ``data`` for the plot ``name`` (drawn by the next :meth:`poll`), or draw it when no
        training is being followed. Queued frames are curve rows, which add up: they are concatenated;
        other data replaces what was queued.

        Without a training to follow, the figure is drawn in a callback of its own on the server
        (at once in a notebook): :meth:`feed` changes Bokeh models directly, which needs the page's
        document lock, and the async callbacks that show results computed in a thread (the ZDC
        held-out comparison) run without it."""
        if not self.polling:
            pn.state.execute(partial(self.feed, name, data), schedule=True)
        elif isinstance(self.stale.get(name), pd.DataFrame):
            self.stale[name] = pd.concat([self.stale[name], data], ignore_index=True)
        else:
            self.stale[name] = data

    def feed(self, name: str, data) -> None:
        """Give ``data`` to the figure ``name``; its first data builds the figure."""
        self.filled.add(name)
        live = self.figures.get(name)
        if live is not None:
            live.update(data)
        else:
            live = self.figures[name] = self.LIVE[name](data)
            options = self.PANES.get(name, {"sizing_mode": "stretch_width"})
            self.slots[name][:] = [pn.pane.Bokeh(live.figure, **options)]
        if not in_served_page():  # a notebook: changed Bokeh models are sent explicitly
            pn.io.push_notebook(self.slots[name])

    def _on_losses(self, event):
        if self.LOSSES in self.LIVE:
            self.show(self.LOSSES, loss_rows(event.new))
