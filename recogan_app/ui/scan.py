"""The Scan tab: a small grid of settings × repeats of the Training tab's model, trained on a Dask
cluster of this machine's cores (:mod:`recogan_app.scan`), followed live, with a figure of any
result against any axis, each point the mean over its repeats with their standard deviation.

A scan of the page's MC writes its runs, ``results.parquet`` and ``results.html`` under the work
folder's ``scans/``; ``recogan scan`` runs the same grids on a cluster (SWAN, HTCondor).
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, FactorRange, Whisker
from panel.viewable import Viewer

from recogan_app import scan
from recogan_app.config import MODELS
from recogan_app.errors import InputError
from recogan_app.markup import escape_markdown
from recogan_app.ui.plots import slot_figure
from recogan_app.ui.server import every
from recogan_app.ui.state import Session

POLL_MS = 1000
"""How often the page looks for trainings of the scan that ended."""
MAX_TRAININGS = 64
"""Trainings one scan of a page may ask for (grid points × repeats); larger scans: ``recogan scan``."""
SCORE_CAPTION = ("*score*: the monitor figure of the epoch each training kept (the GAN's snapshot score, a "
                 "flow's monitor negative log-likelihood), lower is better; the held-out test split chooses "
                 "nothing. Bars: standard deviation over the repeats (none for one repeat).")
SHOWN = ["run", "repeat", "status", "score", "mean_ks", "max_ks", "max_corr_residual", "fit_s", "error"]
"""The results table's columns (with the grid's axes after ``run``)."""


class ScanView(Viewer):
    """Grid, repeats and workers; Start scan / Stop scan; status, results table and the figure."""

    state = param.ClassSelector(class_=Session)
    grid = param.String(default="lambda_ks=0.5,1,2", doc="One axis per line: NAME=v1,v2,… (a setting of the model).")
    repeats = param.Integer(default=2, bounds=(1, 10), doc="Trainings per grid point, each with its own seed.")
    workers = param.Integer(default=2, bounds=(1, 16), doc="Trainings at a time (Dask worker processes).")
    status = param.String(default="idle")
    results = param.DataFrame(default=None, allow_None=True, doc="The trainings of the scan that ended.")
    axis = param.Selector(default=None, objects=[], allow_None=True, doc="The axis of the figure.")
    metric = param.Selector(default="score", objects=["score", "mean_ks", "max_ks", "max_corr_residual", "fit_s"],
                            doc="The result drawn (score: the monitor score that picks the best point).")

    def __init__(self, **params):
        super().__init__(**params)
        self.folder: Path | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lines: list[str] = []
        self._written = None
        self._poller = None
        self.source = ColumnDataSource({"value": [], "mean": [], "low": [], "high": []})
        self.figure = slot_figure("", x_range=FactorRange(), y_axis_label="score")
        self.figure.scatter("value", "mean", source=self.source, size=8, color="crimson")
        self.figure.add_layout(Whisker(base="value", lower="low", upper="high", source=self.source, line_color="crimson"))
        self.buttons = {"Start scan": pn.widgets.Button(label="Start scan", color="primary",
                                                        css_classes=["recogan-scan-start"]),
                        "Stop scan": pn.widgets.Button(label="Stop scan", color="danger", disabled=True,
                                                       css_classes=["recogan-scan-stop"])}
        self.buttons["Start scan"].on_click(lambda _: self.start())
        self.buttons["Stop scan"].on_click(lambda _: self.stop())
        self.param.watch(self._draw, ["results", "axis", "metric"])
        self.param.watch(self._on_status, "status")

    # -- the scan ------------------------------------------------------------------------------
    def start(self) -> None:
        """Plan the scan from the grid and the Training tab's model and settings (each point's
        settings checked now), then train it in a thread on a new local Dask cluster."""
        state = self.state
        if self._thread is not None and self._thread.is_alive():
            return
        with state.reporting():
            grid = scan.parse_grid([line for line in self.grid.splitlines() if line.strip()], flag="a grid line")
            if not grid:
                raise InputError("the grid is empty", hint="one axis per line, e.g. lambda_ks=0.5,1,2")
            sample = state.training_sample()
            base = state.bounded(state.config.updated(
                features=list(state.features), transforms={f: state.transforms[f] for f in state.features}))
            trainings = scan.plan(grid, kind=MODELS[state.model], base=base.to_dict(), repeats=self.repeats,
                                  seed=base.seed)
            if len(trainings) > MAX_TRAININGS:
                raise InputError(f"the scan asks for {len(trainings)} trainings; a page runs {MAX_TRAININGS} at most",
                                 hint="fewer values or repeats, or `recogan scan` on a cluster")
            workers = min(self.workers, state.limits.trainings) if state.limits else self.workers
            scans = Path(state.workdir) / "scans"
            scans.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix=time.strftime("scan-%Y%m%d-%H%M%S-"), dir=scans))
            self._stop.clear()
            self._lines, self._written, self.results = [], None, None
            self.param.axis.objects = list(grid)
            self.axis = next(iter(grid))
            self.status = f"starting {len(trainings)} trainings on {workers} workers"
            load = partial(dataclasses.replace, sample)  # a copy of the page's sample, made on a worker
            self._thread = threading.Thread(target=self._train, args=(load, trainings, workers), daemon=True,
                                            name="recogan-scan")
            self._thread.start()
            self._poller = every(POLL_MS, self.poll)

    def _train(self, load, trainings, workers: int) -> None:
        try:
            with scan.connect("local", workers=workers) as client:
                scan.run_scan(client, load, trainings, self.folder, report=self._lines.append, stop=self._stop)
        except InputError as exc:
            self._lines.append(f"failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - the page says so instead of a silent stale tab
            self._lines.append(f"failed: internal error: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """Cancel the trainings not finished (those running end with their workers)."""
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            self.status = "stopping"

    def poll(self) -> None:
        """Read the results table when a training ended, and the status once the scan ends."""
        table = self.folder / scan.RESULTS
        written = table.stat().st_mtime_ns if table.exists() else None
        if written != self._written:
            self._written = written
            self.results = pd.read_parquet(table)
        ended = not self._thread.is_alive()
        failed = next((line for line in self._lines if line.startswith("failed:")), None)
        counts = self.results["status"].value_counts().to_dict() if self.results is not None else {}
        done = ", ".join(f"{n} {status}" for status, n in counts.items()) or "none ended yet"
        if ended:
            self.status = failed or f"finished: {done}; results in {self.folder}"
            self._poller.stop()
        elif self.status != "stopping":
            self.status = f"running: {done} ({self._lines[-1] if self._lines else 'starting the workers'})"

    # -- views ---------------------------------------------------------------------------------
    def _on_status(self, *_) -> None:
        running = self._thread is not None and self._thread.is_alive()
        self.buttons["Start scan"].disabled = running
        self.buttons["Stop scan"].disabled = not running or self.status == "stopping"

    def _draw(self, *_) -> None:
        """Mean ± standard deviation over the repeats of the metric at each value of the axis."""
        if self.results is None or self.axis is None:
            return
        points = scan.along(self.results, self.axis, self.metric)
        spread = points["std"].fillna(0.0).to_numpy(np.float64)
        mean = points["mean"].to_numpy(np.float64)
        values = [str(value) for value in points.index]
        self.figure.x_range.factors = values
        self.source.data = {"value": values, "mean": mean, "low": mean - spread, "high": mean + spread}
        self.figure.xaxis.axis_label = self.axis
        self.figure.yaxis.axis_label = self.metric
        self.figure.title.text = f"{self.metric} against {self.axis}: mean ± std over repeats"

    @param.depends("status")
    def status_text(self) -> str:
        return escape_markdown(self.status)

    @param.depends("results")
    def table(self):
        if self.results is None:
            return pn.pane.Markdown("*no training of the scan ended yet*")
        columns = [c for c in [SHOWN[0], *self.param.axis.objects, *SHOWN[1:]] if c in self.results]
        return pn.pane.DataFrame(self.results[columns], index=False, escape=True, na_rep="",
                                 float_format="{:.4g}".format, sizing_mode="stretch_width")

    def __panel__(self):
        settings = pn.Column(
            pn.pane.Markdown("A grid of the **Training tab's** model and settings, each point trained "
                             f"*repeats* times with its own seed, {MAX_TRAININGS} trainings at most; "
                             "larger scans: `recogan scan` on a cluster.", styles={"font-size": "small"}),
            pn.widgets.TextAreaInput.from_param(self.param.grid, name="Grid (one axis per line)", height=90),
            pn.widgets.IntInput.from_param(self.param.repeats, name="Repeats"),
            pn.widgets.IntInput.from_param(self.param.workers, name="Workers"),
            pn.Row(*self.buttons.values()),
            pn.pane.Markdown(self.status_text, disable_math=True, css_classes=["recogan-scan-status"]),
            width=380)
        shown = pn.Column(pn.Row(pn.widgets.Select.from_param(self.param.axis, name="Axis"),
                                 pn.widgets.Select.from_param(self.param.metric, name="Result")),
                          pn.Column(pn.pane.Bokeh(self.figure, sizing_mode="stretch_width"),
                                    css_classes=["recogan-scan-plot"], sizing_mode="stretch_width"),
                          pn.pane.Markdown(SCORE_CAPTION, styles={"font-size": "small"}),
                          pn.Column(self.table, css_classes=["recogan-scan-results"], sizing_mode="stretch_width"),
                          sizing_mode="stretch_width")
        return pn.Row(settings, shown, sizing_mode="stretch_width")
