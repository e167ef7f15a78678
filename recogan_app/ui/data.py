"""The Data tab: choose the MC (embedded toy, a file under the data root, an upload), see its
features and pick the ones to model."""

from __future__ import annotations

import asyncio
from functools import partial

import holoviews as hv
import numpy as np
from bokeh.document import Document
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.data.sources import FORMATS
from recogan_app.markup import escape_html, escape_markdown
from recogan_app.preprocessing import preview_rows
from recogan_app.ui.plots import density_histogram
from recogan_app.ui.state import Session

class CappedFileDropper(pn.widgets.FileDropper):
    """Panel's FileDropper with its size cap kept on the server too: the browser checks
    ``max_file_size`` before sending, but a client that skips that check can send chunks without end,
    and Panel would buffer them all. One upload is received at a time (a new one drops an unfinished
    one) and only the last file received is held, so at most ``max_mb`` is held."""

    max_mb = param.Integer(default=200, bounds=(1, None), constant=True, doc="Largest upload (MB).")
    chunk_size = param.Integer(default=1_000_000, constant=True, doc="""
        Bytes per upload message (Panel sends 10 MB). The server reads no websocket message much larger
        than a chunk (recogan_app/ui/wire.py), and Bokeh may hold ~40 times a message while it parses it.""")
    refused = param.String(default="", doc="Why the last dropped upload was dropped (an event per drop).")

    _rename = {"max_mb": None, "refused": None}

    def __init__(self, **params):
        super().__init__(**params)
        self.max_file_size = f"{self.max_mb}MB"
        self._received = 0  # bytes of the upload in progress

    def _process_event(self, event):
        data = event.data
        if event.event_name != "upload_event":
            return super()._process_event(event)
        if data["chunk"] == 1:
            self._file_buffer.clear()
            self._received = 0
        elif data["name"] not in self._file_buffer:
            return  # the rest of a dropped upload
        self._received += memoryview(data["data"]).nbytes  # bytes as sent; anything else is refused by raising
        if self._received > self.max_mb * 1e6:
            self._file_buffer.clear()
            with param.discard_events(self):
                self.refused = (f"{data['name']}: not uploaded: {self._received / 1e6:,.1f} MB sent is over "
                                f"this server's {self.max_mb:,} MB upload limit")
            self.param.trigger("refused")
            return
        if data["chunk"] == data["total_chunks"]:
            self.value.clear()  # the previous file: the page has stored it already
            self.mime_type.clear()
        super()._process_event(event)


class DataView(Viewer):
    """Source, tree and upload selectors, a per-feature summary with small histograms, and the
    feature choice. Listing a file's trees, loading and drawing the histograms run in worker
    threads: a large file does not freeze this page, nor the server's other pages."""

    state = param.ClassSelector(class_=Session)
    max_upload_mb = param.Integer(default=200, bounds=(1, None), constant=True,
                                  doc="Largest file the page accepts (MB): refused in the browser, and here.")

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
        # sent in chunks, checked in the browser before any byte is: one FileInput message held a whole file
        self.upload = CappedFileDropper(max_mb=self.max_upload_mb, multiple=False, layout="compact", previews=[],
                                        css_classes=["recogan-upload"])
        self.upload.param.watch(self._upload, "value")
        self.upload.param.watch(lambda event: state.tell(event.new, "danger"), "refused")
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
        self.histogram_slot = pn.Column(sizing_mode="stretch_width", css_classes=["recogan-histograms"])
        self._drawn = 0
        self.layout = pn.Row(
            pn.Column("### MC sample", self.source, self.refresh, self.tree, uploads, self.upload,
                      self.drop_invalid, self.load_button, self.max_rows, width=340),
            pn.Column(pn.pane.Markdown(self.loaded, disable_math=True, css_classes=["recogan-loaded"]),
                      self.features,  # the table escapes the names (Panel's escape=True)
                      pn.pane.DataFrame(state.param.summary, float_format="{:.5g}".format,
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

    def _offer_features(self, *_):
        self.features.options = {escape_html(name): name for name in self.state.param.features.objects}

    async def load(self, *_):
        """Read the chosen source in a thread, then use it on the UI thread."""
        self.layout.loading = True
        try:
            if self.source.value != self.state.source:  # picked a moment ago: its trees are still being listed
                await self._choose(self.source.value)
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

    def histograms(self) -> list[hv.Histogram]:
        """Small normalised histograms of the chosen features (numbers only: safe in a worker thread)."""
        frame = self.state.sample.frame
        return [density_histogram(preview_rows(frame[f]).to_numpy(np.float64), label=f).opts(
            width=230, height=150, toolbar=None, xticks=4, yticks=4) for f in self.state.features]

    async def draw_histograms(self) -> None:
        """Show :meth:`histograms`, computed in a thread, then drawn one figure at a time with a pause
        between (~50 ms each), the latest request winning when features change faster than they draw.

        Bokeh figures are built on this thread only: one built in a worker missed Bokeh's conversions
        whenever HoloViews turned property validation off here meanwhile (a traceback in the served
        log). Each is built for a document of its own: HoloViews would theme the page's otherwise.
        Each plot is cleaned up at once: HoloViews keeps every plot it made, and so its Bokeh models,
        until then (8 data sources per draw of the 8 toy features, a closed page's included).
        """
        self._drawn += 1
        request = self._drawn
        if self.state.sample is None or not self.state.features:
            self.histogram_slot[:] = [pn.pane.Markdown("No data loaded")]
            return
        figures = []
        for element in await asyncio.to_thread(self.histograms):
            await asyncio.sleep(0)
            if request != self._drawn:
                return
            plot = hv.renderer("bokeh").get_plot(element, doc=Document())
            plot.cleanup()
            figures.append(pn.pane.Bokeh(plot.state))
        self.histogram_slot[:] = [pn.GridBox(*figures, ncols=4)]

    def __panel__(self):
        return self.layout
