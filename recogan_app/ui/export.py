"""The Export tab: N rows, a format and the validation gate; progress and where the file went."""

from __future__ import annotations

import asyncio
import json

import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.ensemble import unmeasured
from recogan_app.export import provenance_path, validation_summary
from recogan_app.markup import escape_markdown
from recogan_app.metrics.verdict import REQUIRABLE
from recogan_app.ui.downloads import served_link
from recogan_app.ui.live import switch
from recogan_app.ui.state import Session

FORMATS = {"Parquet": ".parquet", "HDF5": ".h5", "ROOT": ".root"}


class ExportView(Viewer):
    """Runs :meth:`Session.export` in a worker thread; the file comes with its provenance sidecar
    and, where the server serves the exports (``downloads``), a link downloads it."""

    state = param.ClassSelector(class_=Session)
    downloads = param.Boolean(default=False, constant=True, doc="The server serves the exports folder.")
    rows = param.Integer(default=100_000, doc="Synthetic rows to export (checked at Export: a typed 0 gets a notice).")
    suffix = param.Selector(default=".parquet", objects=FORMATS, doc="File format.")
    require = param.Selector(default="good", objects=list(REQUIRABLE),
                             doc="Validation verdict the run must reach (seed 000's bars on KS).")
    force = param.Boolean(default=False, doc="Export below the required level; the provenance records it.")
    percent = param.Integer(default=0, bounds=(0, 100), doc="Share of the running export's rows written.")

    def __init__(self, **params):
        super().__init__(**params)
        self.export_button = pn.widgets.Button(label="Export", color="primary", css_classes=["recogan-export"])
        self.export_button.on_click(self.run_export)
        self.download = pn.pane.HTML("", visible=False, css_classes=["recogan-download"])
        self.exporting = False  # one export at a time per page: the button is off meanwhile
        self.state.param.watch(lambda _: self._enable(), "run")
        self._enable()
        self.layout = pn.Column(
            "### Export a synthetic sample",
            "The run is validated against its held-out MC before anything is written; the file records "
            "how many MC events the model learnt from and how far it may be trusted (`FILE.provenance.json`).",
            pn.Row(pn.widgets.IntInput.from_param(self.param.rows, label="Rows", step=100_000, width=180),
                   pn.widgets.Select.from_param(self.param.suffix, label="Format", width=120),
                   pn.widgets.Select.from_param(self.param.require, label="Required verdict", width=160),
                   pn.widgets.Checkbox.from_param(self.param.force, label="Export even if below")),
            pn.pane.Markdown(self.effective, disable_math=True, css_classes=["recogan-export-ensemble"]),
            pn.Row(self.export_button, self.download),
            pn.indicators.Progress(value=self.param.percent, max=100, width=400),
            pn.pane.Markdown(self.where, disable_math=True, css_classes=["recogan-exported"]),
            sizing_mode="stretch_width")

    def _enable(self) -> None:
        switch(self.export_button, self.state.run is not None and not self.exporting)

    async def run_export(self, *_):
        """Generate and write in a thread; the progress bar follows the written chunks. A forced
        export is announced as a warning: the file is below the level asked for."""
        rows = self.rows
        if self.exporting:
            return
        if rows < 1:
            self.state.tell(f"Rows must be a whole number of at least 1, not {rows:,}: nothing exported", "danger")
            return
        written = 0

        def count(chunk: int) -> None:
            nonlocal written
            written += chunk
            self.percent = min(100, 100 * written // rows)

        self.percent = 0
        self.exporting = True
        self._enable()
        try:
            with self.state.reporting():
                path = await asyncio.to_thread(self.state.export, rows, self.suffix, require=self.require,
                                               force=self.force, progress=count)
                self.state.exported = str(path)
                if self.downloads:
                    self.download.param.update(object=served_link(path, self.state.workdir), visible=True)
                forced = json.loads(provenance_path(path).read_text())["forced"]
                self.state.tell(f"exported {rows:,} rows to {path}" + (
                    f", FORCED: the run is below the required '{self.require}' (recorded in the file)"
                    if forced else ""), "warning" if forced else "success")
        finally:
            self.exporting = False
            self._enable()

    @param.depends("state.ensemble", "state.run", "rows")
    def effective(self) -> str:
        """The ensemble's warnings (Validation tab) for the rows asked: more than its information, errors that
        undercover; the export records them. Without an ensemble, that the sample's power is not measured."""
        ensemble = self.state.ensemble
        if ensemble is None:
            conditional = bool(getattr(self.state.run, "conditions", None))
            return f"Effective statistics {escape_markdown(unmeasured(conditional))}" + (
                "." if conditional else " (or choose it on the Validation tab).")
        warnings = ensemble.statistics(max(self.rows, 0))["warnings"]
        return "\n\n".join(f"**Warning**: {escape_markdown(line)}" for line in warnings) or (
            f"{self.rows:,} rows are within the information of the ensemble {escape_markdown(ensemble.path)}.")

    @param.depends("state.exported")
    def where(self) -> str:
        """Where the last export went, how it validated (beside the MC's own KS noise) and what
        it may be used for: read back from its provenance sidecar, the file's own record."""
        exported = self.state.exported
        if not exported or not provenance_path(exported).is_file():  # its sidecar may have been moved since
            return f"Last export: {escape_markdown(exported)}" if exported else ""
        provenance = json.loads(provenance_path(exported).read_text())
        summary = validation_summary(provenance)  # names the features
        return (f"Last export: {escape_markdown(exported)} ({provenance['rows']:,} rows; provenance beside it)\n\n"
                f"{escape_markdown(summary[0].upper() + summary[1:])}\n\n{escape_markdown(provenance['statement'])}")

    def __panel__(self):
        return self.layout
