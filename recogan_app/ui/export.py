"""The Export tab: N rows (for a conditional run, a conditions file: a row per row), a format and the
validation gate; progress and where the file went."""

from __future__ import annotations

import asyncio
import json
from functools import partial

import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.ensemble import unmeasured
from recogan_app.export import provenance_path, validation_summary
from recogan_app.markup import escape_markdown
from recogan_app.metrics.verdict import REQUIRABLE
from recogan_app.ui.data import choose_file, settle_choice
from recogan_app.ui.downloads import served_link
from recogan_app.ui.live import switch
from recogan_app.ui.state import Session

FORMATS = {"Parquet": ".parquet", "HDF5": ".h5", "ROOT": ".root"}


class ExportView(Viewer):
    """Runs :meth:`Session.export` in a worker thread; the file comes with its provenance sidecar
    and, where the server serves the exports (``downloads``), a link downloads it. A conditional run
    takes a conditions file (those the Data tab offers, read as the CLI's ``--conditions``) instead of Rows."""

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
        self.rows_input = pn.widgets.IntInput.from_param(self.param.rows, label="Rows", step=100_000, width=180)
        # not bound to the state: the chosen file's trees are listed in a thread first (choose_file);
        # "" is the state's None (Panel shows a None value as a blank choice)
        self.conditions_file = pn.widgets.Select(label="Conditions file (a row per row)", width=300,
                                                 css_classes=["recogan-export-conditions"])
        self._offer_files()
        self.state.param.watch(self._offer_files, "conditions_source", what="objects")
        self.state.param.watch(lambda event: setattr(self.conditions_file, "value", event.new or ""),
                               "conditions_source")
        self.conditions_file.param.watch(
            lambda event: pn.state.execute(partial(choose_file, self.state, "conditions_source", event.new or None)),
            "value")
        tree = pn.widgets.Select.from_param(self.state.param.conditions_tree, label="Tree / key", width=160,
                                            visible=self.state.param.conditions_tree.rx().rx.pipe(bool))
        self.given = pn.Row(self.conditions_file, tree)
        self.state.param.watch(lambda _: self._enable(), "run")
        self._enable()
        self.layout = pn.Column(
            "### Export a synthetic sample",
            "The run is validated against its held-out MC before anything is written; the file records "
            "how many MC events the model learnt from and how far it may be trusted (`FILE.provenance.json`).",
            pn.pane.Markdown(self.what, disable_math=True, css_classes=["recogan-export-what"]),
            pn.Row(self.rows_input, self.given,
                   pn.widgets.Select.from_param(self.param.suffix, label="Format", width=120),
                   pn.widgets.Select.from_param(self.param.require, label="Required verdict", width=160),
                   pn.widgets.Checkbox.from_param(self.param.force, label="Export even if below")),
            pn.pane.Markdown(self.effective, disable_math=True, css_classes=["recogan-export-ensemble"]),
            pn.Row(self.export_button, self.download),
            pn.indicators.Progress(value=self.param.percent, max=100, width=400),
            pn.pane.Markdown(self.where, disable_math=True, css_classes=["recogan-exported"]),
            sizing_mode="stretch_width")

    @property
    def conditional(self) -> bool:
        """Whether the run generates given conditions (a file of them is exported, not a number of rows)."""
        return bool(getattr(self.state.run, "conditions", None))

    def _enable(self) -> None:
        switch(self.export_button, self.state.run is not None and not self.exporting)
        self.rows_input.visible, self.given.visible = not self.conditional, self.conditional

    def _offer_files(self, *_) -> None:
        self.conditions_file.options = {"choose a file": "", **self.state.param.conditions_source.names}
        self.conditions_file.value = self.state.conditions_source or ""

    @param.depends("state.run")
    def what(self) -> str:
        """What Export writes: the rows asked for, or a conditional run's row per row of a conditions file."""
        run = self.state.run
        if not self.conditional:
            return "Export writes the number of **Rows** asked for."
        return (f"The run generates {escape_markdown(', '.join(run.features))} given "
                f"{escape_markdown(', '.join(run.conditions))}: Export writes **a row per row of the conditions "
                "file** chosen (any file the Data tab reads), its conditions copied through unchanged, and records "
                "the file.")

    async def run_export(self, *_):
        """Read a conditional run's conditions file (the one the selector shows, even while its trees
        are still being listed) and wait for an ensemble being read, then generate and write, in
        threads; the progress bar follows the written chunks. A forced export is announced as a
        warning: the file is below the level asked for."""
        rows = self.rows
        if self.exporting:
            return
        if rows < 1 and not self.conditional:
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
            if self.conditional:
                await settle_choice(self.state, "conditions_source", self.conditions_file.value or None)
            await self.state.settle_ensemble()  # chosen a moment ago on the Validation tab, it may still be read
            with self.state.reporting():
                conditions = await asyncio.to_thread(self.state.read_conditions) if self.conditional else None
                rows = rows if conditions is None else len(conditions.frame)
                path = await asyncio.to_thread(self.state.export, rows if conditions is None else conditions,
                                               self.suffix, require=self.require, force=self.force, progress=count)
                self.state.exported = str(path)
                if self.downloads:
                    self.download.param.update(object=served_link(path, self.state.workdir), visible=True)
                forced = json.loads(provenance_path(path).read_text())["forced"]
                given_by = "" if conditions is None else f" given the conditions of {conditions.source}"
                self.state.tell(f"exported {rows:,} rows{given_by} to {path}" + (
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
        given = provenance.get("conditional")
        rows = f"rows, one per row of {given['source']}" if given else "rows"
        return (f"Last export: {escape_markdown(exported)} ({provenance['rows']:,} {escape_markdown(rows)}; "
                f"provenance beside it)\n\n"
                f"{escape_markdown(summary[0].upper() + summary[1:])}\n\n{escape_markdown(provenance['statement'])}")

    def __panel__(self):
        return self.layout
