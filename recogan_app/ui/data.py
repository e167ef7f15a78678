"""The Data tab: choose the MC (embedded toy, a file under the data root, an upload), see its
features and pick the ones to model."""

from __future__ import annotations

import asyncio
from functools import partial

import holoviews as hv
from bokeh.document import Document
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.data.sources import FORMATS
from recogan_app.ui.plots import density_histogram
from recogan_app.ui.state import Session


class DataView(Viewer):
    """Source, tree and upload selectors, a per-feature summary with small histograms, and the
    feature choice. Listing a file's trees, loading and drawing the histograms run in worker
    threads: a large file does not freeze this page, nor the server's other pages."""

    state = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        state = self.state
        # not bound to state.source: the chosen file's trees are listed in a thread first (_choose)
        self.source = pn.widgets.Select(label="MC source", options=state.param.source.names, value=state.source,
                                        sizing_mode="stretch_width")  # names: {label: source}
        self.source.param.watch(lambda event: pn.state.execute(partial(self._choose, event.new)), "value")
        state.param.watch(lambda event: setattr(self.source, "value", event.new), "source")
        state.param.watch(lambda event: setattr(self.source, "options", event.new), "source", what="objects")
        self.tree = pn.widgets.Select.from_param(state.param.tree, label="Tree / key",
                                                 visible=state.param.tree.rx().rx.pipe(bool))
        self.upload = pn.widgets.FileInput(accept=",".join(FORMATS), multiple=False)
        self.upload.param.watch(self._upload, "value")
        self.refresh = pn.widgets.Button(label="Refresh the file list", css_classes=["recogan-refresh"],
                                         visible=state.data_root is not None)  # files copied in after the page opened
        self.refresh.on_click(lambda _: state.refresh_sources())
        self.load_button = pn.widgets.Button(label="Load", color="primary", css_classes=["recogan-load"])
        self.load_button.on_click(self.load)
        self.features = pn.widgets.MultiChoice.from_param(state.param.features, label="Features to model",
                                                          sizing_mode="stretch_width")
        self.max_rows = pn.widgets.IntInput.from_param(state.param.max_rows, label="Rows to train on (0: all)",
                                                       step=1000)
        self.drop_invalid = pn.widgets.Checkbox.from_param(state.param.drop_invalid, label="Drop rows with NaN/inf")
        self.histogram_slot = pn.Column(sizing_mode="stretch_width", css_classes=["recogan-histograms"])
        self._drawn = 0
        self.layout = pn.Row(
            pn.Column("### MC sample", self.source, self.refresh, self.tree, pn.pane.Markdown("or upload a file:"),
                      self.upload,
                      self.drop_invalid, self.load_button, self.max_rows, width=340),
            pn.Column(pn.pane.Markdown(self.loaded, css_classes=["recogan-loaded"]), self.features, pn.pane.DataFrame(state.param.summary, float_format="{:.5g}".format,
                                                       css_classes=["recogan-summary"]),
                      self.histogram_slot, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        state.param.watch(lambda *_: pn.state.execute(self.draw_histograms), ["sample", "features"])

    async def _choose(self, source: str) -> None:
        """List the chosen file's trees in a thread, then choose it in the state (which finds them
        remembered)."""
        with self.state.reporting():
            await asyncio.to_thread(self.state.keys, source)
        self.state.source = source

    async def load(self, *_):
        """Read the chosen source in a thread, then use it on the UI thread."""
        self.layout.loading = True
        try:
            with self.state.reporting():
                self.state.use(await asyncio.to_thread(self.state.read))
        finally:
            self.layout.loading = False

    async def _upload(self, event):
        if event.new is None:
            return
        with self.state.reporting():
            self.state.upload(self.upload.filename, event.new)
            await self.load()

    @param.depends("state.sample")
    def loaded(self) -> str:
        """What Start trains on: after a failed load the previous sample stays, whatever the selector
        shows."""
        sample = self.state.sample
        if sample is None:
            return "**Loaded:** nothing yet"
        tree = f" (tree {sample.tree})" if sample.tree else ""
        return f"**Loaded:** {sample.source}{tree}, {len(sample.frame):,} rows"

    def histograms(self):
        """Small normalised histograms of the chosen features."""
        if self.state.sample is None or not self.state.features:
            return hv.Layout([hv.Histogram([])]).opts(title="no data loaded")
        plots = [density_histogram(self.state.histogram_values(f), label=f).opts(width=230, height=150, toolbar=None,
                                                                               xticks=4, yticks=4)
                 for f in self.state.features]
        return hv.Layout(plots).cols(4).opts(shared_axes=False)

    async def draw_histograms(self) -> None:
        """Build :meth:`histograms` and their Bokeh figure in a thread, then show them (the latest
        request wins when features change faster than they draw). The figure is built for a
        document of its own: HoloViews would otherwise theme the current one, a page's, without
        its lock."""
        self._drawn += 1
        request = self._drawn
        figure = await asyncio.to_thread(lambda: hv.renderer("bokeh").get_plot(self.histograms(), doc=Document()).state)
        if request == self._drawn:
            self.histogram_slot[:] = [pn.pane.Bokeh(figure, sizing_mode="stretch_width")]

    def __panel__(self):
        return self.layout
