"""The Data tab: choose the MC (embedded toy, a file under the data root, an upload), see its
features and pick the ones to model."""

from __future__ import annotations

import asyncio

import holoviews as hv
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.data.sources import FORMATS
from recogan_app.markup import escape_html, escape_markdown
from recogan_app.ui.plots import density_histogram
from recogan_app.ui.state import Session


class DataView(Viewer):
    """Source, tree and upload selectors, a per-feature summary with small histograms, and the
    feature choice. Loading runs in a worker thread: a large file does not freeze the page."""

    state = param.ClassSelector(class_=Session)
    max_upload_mb = param.Integer(default=200, bounds=(1, None), constant=True,
                                  doc="Largest file the page accepts (MB): refused in the browser, and here.")

    def __init__(self, **params):
        super().__init__(**params)
        state = self.state
        self.source = pn.widgets.Select.from_param(state.param.source, label="MC source", sizing_mode="stretch_width")
        self.tree = pn.widgets.Select.from_param(state.param.tree, label="Tree / key",
                                                 visible=state.param.tree.rx().rx.pipe(bool))
        # sent in chunks, checked in the browser before any byte is: one FileInput message held a whole file
        self.upload = pn.widgets.FileDropper(max_file_size=f"{self.max_upload_mb}MB", multiple=False,
                                             layout="compact", previews=[], css_classes=["recogan-upload"])
        self.upload.param.watch(self._upload, "value")
        self.refresh = pn.widgets.Button(label="Refresh the file list", css_classes=["recogan-refresh"],
                                         visible=state.data_root is not None)  # files copied in after the page opened
        self.refresh.on_click(lambda _: state.refresh_sources())
        self.load_button = pn.widgets.Button(label="Load", color="primary", css_classes=["recogan-load"])
        self.load_button.on_click(self.load)
        # not from_param: Bokeh's MultiChoice (Choices.js) renders its labels as HTML, so they are escaped names
        self.features = pn.widgets.MultiChoice(label="Features to model", value=list(state.features),
                                               sizing_mode="stretch_width")
        self._offer_features()
        state.param.watch(self._offer_features, "features", what="objects")
        state.param.watch(lambda event: setattr(self.features, "value", list(event.new)), "features")
        self.features.param.watch(lambda event: setattr(state, "features", list(event.new)), "value")
        self.max_rows = pn.widgets.IntInput.from_param(state.param.max_rows, label="Rows to train on (0: all)",
                                                       step=1000)
        self.drop_invalid = pn.widgets.Checkbox.from_param(state.param.drop_invalid, label="Drop rows with NaN/inf")
        uploads = pn.pane.Markdown(f"or upload a file ({', '.join(FORMATS)}; up to {self.max_upload_mb:,} MB):")
        self.layout = pn.Row(
            pn.Column("### MC sample", self.source, self.refresh, self.tree, uploads, self.upload,
                      self.drop_invalid, self.load_button, self.max_rows, width=340),
            pn.Column(pn.pane.Markdown(self.loaded, disable_math=True, css_classes=["recogan-loaded"]),
                      self.features,  # the table escapes the names (Panel's escape=True)
                      pn.pane.DataFrame(state.param.summary, float_format="{:.5g}".format,
                                        css_classes=["recogan-summary"]),
                      pn.panel(self.histograms, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def _offer_features(self, *_):
        self.features.options = {escape_html(name): name for name in self.state.param.features.objects}

    async def load(self, *_):
        """Read the chosen source in a thread, then use it on the UI thread."""
        self.layout.loading = True
        try:
            with self.state.reporting():
                self.state.use(await asyncio.to_thread(self.state.read))
        finally:
            self.layout.loading = False

    async def _upload(self, event):
        if not event.new:  # the file was removed from the dropper
            return
        name, content = list(event.new.items())[-1]
        if isinstance(content, str):  # the dropper decodes text files (CSV) as UTF-8: exactly reversible
            content = content.encode("utf-8")
        if len(content) > self.max_upload_mb * 1e6:
            self.state.tell(f"{name}: not uploaded: {len(content) / 1e6:,.1f} MB is over this server's "
                            f"{self.max_upload_mb:,} MB upload limit", "danger")
            return
        with self.state.reporting():
            self.state.upload(name, content)
            await self.load()

    @param.depends("state.sample")
    def loaded(self) -> str:
        """What Start trains on: after a failed load the previous sample stays, whatever the selector
        shows."""
        sample = self.state.sample
        if sample is None:
            return "**Loaded:** nothing yet"
        tree = f" (tree {escape_markdown(sample.tree)})" if sample.tree else ""
        return f"**Loaded:** {escape_markdown(sample.source)}{tree}, {len(sample.frame):,} rows"

    @param.depends("state.sample", "state.features")
    def histograms(self):
        """Small normalised histograms of the chosen features."""
        if self.state.sample is None or not self.state.features:
            return hv.Layout([hv.Histogram([])]).opts(title="no data loaded")
        plots = [density_histogram(self.state.histogram_values(f), label=f).opts(width=230, height=150, toolbar=None,
                                                                               xticks=4, yticks=4)
                 for f in self.state.features]
        return hv.Layout(plots).cols(4).opts(shared_axes=False)

    def __panel__(self):
        return self.layout
