"""The Data tab: choose the MC (embedded toy, a file under the data root, an upload), select its
events (the syntax of ``--cut``, counted as it is typed), choose its event weights and accept the
derived columns it satisfies, see its features and pick the ones to model."""

from __future__ import annotations

import asyncio
from functools import partial

import holoviews as hv
import numpy as np
from bokeh.document import Document
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.data.sources import FORMATS, named_like_weight
from recogan_app.errors import InputError
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


def column_choice(state, name: str, label: str, **options) -> pn.widgets.MultiChoice:
    """A multiple choice among the columns the list parameter ``name`` of ``state`` offers, kept in
    step both ways. Not ``from_param``: Bokeh's MultiChoice (Choices.js) renders its labels as HTML,
    so its labels are the escaped names (a column named like a tag ran script in the page)."""
    choice = pn.widgets.MultiChoice(label=label, value=list(getattr(state, name)), **options)

    def offer(*_) -> None:
        choice.options = {escape_html(column): column for column in state.param[name].objects}

    offer()
    state.param.watch(offer, name, what="objects")
    state.param.watch(lambda event: setattr(choice, "value", list(event.new)), name)
    choice.param.watch(lambda event: setattr(state, name, list(event.new)), "value")
    return choice


async def choose_file(state: Session, name: str, source: str | None) -> None:
    """List the trees of the file ``source`` in a thread (opening a large file is slow), then make it
    the state's choice ``name``, whose watcher finds them remembered (None: no file)."""
    if source is not None:
        with state.reporting():
            await asyncio.to_thread(state.keys, source)
    setattr(state, name, source)


async def settle_choice(state: Session, name: str, shown: str | None) -> None:
    """Make ``shown``, the file a selector shows, the state's choice ``name`` before an action reads
    it: picked a moment ago, its trees may still be being listed (:func:`choose_file`)."""
    if shown != getattr(state, name):
        await choose_file(state, name, shown)


class DataView(Viewer):
    """Source, tree and upload selectors; the selection, weights and derived columns (the keys
    ``cut``, ``weights``, ``derive`` of ``recogan train``), applied by loading again; a per-feature
    summary with small histograms, and the feature choice. Listing a file's trees, counting a cut,
    loading and drawing the histograms run in worker threads: a large file does not freeze this
    page, nor the server's other pages."""

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
        self.features = column_choice(state, "features", "Features to model", sizing_mode="stretch_width")
        self.max_rows = pn.widgets.IntInput.from_param(state.param.max_rows, label="Rows to train on (0: all)",
                                                       step=1000)
        self.drop_invalid = pn.widgets.Checkbox.from_param(state.param.drop_invalid, label="Drop rows with NaN/inf")
        self.cut = pn.widgets.TextInput(label="Selection (the syntax of --cut; Enter applies it)", value=state.cut,
                                        placeholder="pt > 2 and abs(eta) < 0.8", css_classes=["recogan-cut"],
                                        sizing_mode="stretch_width")
        self.cut.param.watch(lambda event: pn.state.execute(partial(self.count, event.new)), "value_input")
        self.cut.param.watch(lambda event: pn.state.execute(partial(self.apply, cut=event.new)), "value")
        state.param.watch(self._follow_cut, "cut")
        self.cut_count = pn.pane.Markdown("", disable_math=True, css_classes=["recogan-cut-count"])
        self._counted = 0
        # a Select shows its labels as text; its value "" is the state's None (unweighted): Panel sends
        # the value None to the browser as "", which matches no option and showed a blank choice
        self.weights = pn.widgets.Select(label="Event weights (--weights: never modelled)",
                                         css_classes=["recogan-weights"], sizing_mode="stretch_width")
        self._offer_weights()
        state.param.watch(self._offer_weights, "weights", what="objects")
        state.param.watch(lambda event: setattr(self.weights, "value", event.new or ""), "weights")
        self.weights.param.watch(
            lambda event: pn.state.execute(partial(self.apply, weights=event.new or None)), "value")
        self.derived_slot = pn.Column(sizing_mode="stretch_width", css_classes=["recogan-derived"])
        self._offer_derived()
        state.param.watch(self._offer_derived, ["suggestions", "derive"])
        uploads = pn.pane.Markdown(f"or upload a file ({', '.join(FORMATS)}; up to {self.max_upload_mb:,} MB):")
        self.histogram_slot = pn.Column(sizing_mode="stretch_width", css_classes=["recogan-histograms"])
        self._drawn = 0
        self.layout = pn.Row(
            pn.Column("### MC sample", self.source, self.refresh, self.tree, uploads, self.upload,
                      self.drop_invalid, self.load_button, self.max_rows, "#### Events", self.cut, self.cut_count,
                      self.weights, self.derived_slot, width=340),
            pn.Column(pn.pane.Markdown(self.loaded, disable_math=True, css_classes=["recogan-loaded"]),
                      self.features,  # the table escapes the names (Panel's escape=True)
                      pn.pane.DataFrame(state.param.summary, float_format="{:.5g}".format,
                                        css_classes=["recogan-summary"]),
                      self.histogram_slot, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        state.param.watch(lambda *_: pn.state.execute(self.draw_histograms), ["sample", "features"])

    def _follow_cut(self, event) -> None:
        """Show the state's cut (another file clears it: its columns were the previous file's)."""
        self.cut.value = event.new
        if not event.new.strip():
            self._counted += 1  # a count still running answers nobody
            self.cut_count.param.update(object="", css_classes=["recogan-cut-count"])

    def _offer_weights(self, *_) -> None:
        options = {"none (unweighted)": ""}
        for name in self.state.param.weights.objects[1:]:
            options[f"{name} (named like a weight)" if named_like_weight(name) else name] = name
        self.weights.options = options
        self.weights.value = self.state.weights or ""

    def _offer_derived(self, *_) -> None:
        """One button per suggested identity (one click derives it), and the derived columns chosen."""
        rows = []
        for suggestion in self.state.suggestions:
            button = pn.widgets.Button(label=f"Derive {suggestion.derive}", css_classes=["recogan-derive"],
                                       sizing_mode="stretch_width")
            button.on_click(lambda _, s=suggestion: pn.state.execute(partial(self.apply, derive=s)))
            rows.append(button)
        if rows:
            rows.insert(0, pn.pane.Markdown("Identities the MC satisfies in every event: derive them exactly "
                                            "instead of modelling them", disable_math=True))
        if self.state.derive:
            shown = "; ".join(escape_markdown(f"{name} = {formula}") for name, formula in self.state.derive.items())
            clear = pn.widgets.Button(label="Model them again", css_classes=["recogan-underive"])
            clear.on_click(lambda _: pn.state.execute(partial(self.apply, derive={})))
            rows += [pn.pane.Markdown(f"Derived (computed after generation): {shown}", disable_math=True), clear]
        self.derived_slot[:] = rows

    async def count(self, cut: str) -> None:
        """Count the rows the cut keeps as it is typed (in a thread; the latest text wins), or say
        what is wrong with it."""
        self._counted += 1
        request = self._counted
        text, problem = "", False
        if cut.strip():
            try:
                n, kept = await asyncio.to_thread(self.state.count_cut, cut)
                text = f"keeps {kept:,} of {n:,} rows" + (f" ({kept / n:.1%})" if n else "")
            except InputError as exc:
                text, problem = f"⚠ {escape_markdown(str(exc))}", True
        if request == self._counted:
            self.cut_count.param.update(object=text, css_classes=["recogan-cut-count"] + ["bad"] * problem)

    async def apply(self, **chosen) -> None:
        """Take a new cut, weight column or derived column (a :class:`Suggestion`, or ``{}`` for none)
        and load the MC with them: what is loaded is what trains."""
        state = self.state
        if any(name in chosen and chosen[name] == getattr(state, name) for name in ("cut", "weights")):
            return  # the page following the state, not the user
        derive = chosen.pop("derive", None)
        if derive:
            state.accept(derive)
        elif derive is not None:
            state.derive = {}
        state.param.update(**chosen)
        if state.sample is not None:
            await self.load()

    async def _choose(self, source: str) -> None:
        await choose_file(self.state, "source", source)

    async def load(self, *_):
        """Read the chosen source in a thread, then use it on the UI thread."""
        self.layout.loading = True
        try:
            await settle_choice(self.state, "source", self.source.value)
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
        said = [sample.selected()] if sample.cut else []
        if sample.weights is not None:
            said.append(f"weighted by '{sample.weight_column}': effective sample size (Σw)²/Σw² "
                        f"{sample.n_effective:,.0f}")
        said = "".join(f"; {escape_markdown(line)}" for line in said)
        return f"**Loaded:** {escape_markdown(sample.source)}{tree}, {len(sample.frame):,} rows{said}"

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
