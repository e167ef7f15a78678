"""The whole dashboard: one state per kind of training (tabular MC, ZDC), one view per tab, one
notice line above them."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.data.sources import EMBEDDED
from recogan_app.markup import escape_markdown
from recogan_app.ui.data import DataView
from recogan_app.ui.export import ExportView
from recogan_app.ui.preprocessing import PreprocessingView
from recogan_app.ui.running import RunningTrainings
from recogan_app.ui.scan import ScanView
from recogan_app.ui.server import SERVER_OWNER, in_served_page
from recogan_app.ui.state import Session
from recogan_app.ui.training import TrainingView
from recogan_app.ui.validation import ValidationView
from recogan_app.ui.zdc import ZDCView
from recogan_app.ui.zdc_state import ZDCSession

TABS = {"Data": DataView, "Preprocessing": PreprocessingView, "Training": TrainingView,
        "Validation": ValidationView, "Export": ExportView, "Scan": ScanView, "ZDC": ZDCView}
"""Tab name: view; each view gets the state its ``state`` parameter asks for."""
NOTICE_STYLES = {level: {"background-color": back, "color": text, "border": f"1px solid {edge}", "border-radius": "6px",
                         "padding": "0 12px"}
                 for level, (back, text, edge) in {"info": ("#cff4fc", "#055160", "#b6effb"),
                                                   "success": ("#d1e7dd", "#0f5132", "#badbcc"),
                                                   "warning": ("#fff3cd", "#664d03", "#ffecb5"),
                                                   "danger": ("#f8d7da", "#842029", "#f5c2c7")}.items()}
"""The notice line's colours per level, as styles: an Alert's level is a CSS class, and a change
of a model's classes made the browser's Bokeh lay the whole page out again (0.5-1 s per page at
each Start under the load test); a style change is the browser's own reflow."""
SERVER_OPTIONS = ("downloads", "max_upload_mb")
"""The server's settings, handed to every view that has a parameter of that name."""


class Dashboard(Viewer):
    """Load MC, tune preprocessing and λ, train with live plots, validate and export.

    The same object works served (``recogan serve``) and inline in a notebook, where it renders
    when it is the value of a cell and hands its results to the next cells.

    Parameters
    ----------
    data : str or path, optional
        MC to load at once (an embedded toy name or a file, which is trusted: the caller chose it).
    data_root : path, optional
        Files under it can be picked in the page; nothing else is read.
    workdir : path, optional
        Where runs, uploads, reports and exports go (default: a fresh temporary folder).
    downloads : bool
        The server serves the work folder's exports and reports (:mod:`recogan_app.ui.downloads`):
        the page links to them. Otherwise (a notebook) it says where they are.
    max_upload_mb : int
        The largest upload accepted.
    limits : Limits, optional
        The server's limits on what the page may ask (default: none, as in a notebook).
    owner : str, optional
        Whose trainings this page starts, lists and may stop (the user name on a server with
        authentication; by default every page's).

    Example
    -------
    >>> dash = Dashboard("toy-xic")          # doctest: +SKIP
    >>> dash                                 # renders inline  # doctest: +SKIP
    >>> run = dash.train()                   # or press Start in the page  # doctest: +SKIP
    >>> run.generate(1000)                   # doctest: +SKIP
    """

    state = param.ClassSelector(class_=Session, doc="Everything this dashboard has loaded, chosen and trained.")
    zdc = param.ClassSelector(class_=ZDCSession, doc="The ZDC tab's events, settings, training and run.")
    downloads = param.Boolean(default=False, constant=True, doc="Link to exports and reports served from disk.")
    max_upload_mb = param.Integer(default=DataView.param.max_upload_mb.default, bounds=(1, None), constant=True,
                                  doc="Largest upload accepted (MB).")

    def __init__(self, data=None, *, data_root=None, workdir=None, limits=None, owner=SERVER_OWNER, **params):
        params.setdefault("state", Session(data_root=data_root, workdir=workdir, limits=limits, owner=owner))
        params.setdefault("zdc", ZDCSession(data_root=data_root, workdir=params["state"].workdir, limits=limits,
                                           owner=owner))
        super().__init__(**params)
        state = self.state
        states = {Session: state, ZDCSession: self.zdc}
        options = {name: getattr(self, name) for name in SERVER_OPTIONS}
        self.views = {name: view(state=states[view.param.state.class_],
                                 **{key: value for key, value in options.items() if key in view.param})
                      for name, view in TABS.items()}
        self.zdc.param.watch(lambda _: state.tell(self.zdc.notice, self.zdc.notice_level), "notice",
                             onlychanged=False)  # one notice line for every tab
        if data is not None:
            state.source = str(data) if str(data) in EMBEDDED else state.trust(data)
            self._load_first()
        # every tab in the page from the start: a dynamic tab is redrawn when shown again, after which its
        # settings cards, once opened, open empty (Panel 1.9); the classes name each tab's content
        self.tabs = pn.Tabs(*((name, pn.Column(view, css_classes=[f"recogan-tab-{name.lower()}"],
                                               sizing_mode="stretch_width"))
                              for name, view in self.views.items()), sizing_mode="stretch_width")
        self.trainings = RunningTrainings(rows=limits.trainings if limits else 1, owner=owner)
        self.layout = pn.Column(
            pn.pane.Markdown(state.param.notice.rx().rx.pipe(escape_markdown), disable_math=True,
                             styles=state.param.notice_level.rx().rx.pipe(NOTICE_STYLES.get),
                             css_classes=["recogan-notice"], visible=state.param.notice.rx.pipe(bool),
                             sizing_mode="stretch_width"),
            self.tabs, self.trainings, sizing_mode="stretch_width")

    def _load_first(self) -> None:
        """Served, load after the page shows (with a spinner); in a notebook, before the cell
        returns, so that the next cell can use the data."""
        if in_served_page():
            pn.state.onload(self.views["Data"].load)
        else:
            with self.state.reporting():
                self.state.load()

    def train(self, wait: bool = True):
        """Press Start; with ``wait``, block until the run is written and return it (notebooks, scripts).

        Returns None when the training could not start (the notice says why) or ``wait`` is False.
        """
        before = self.state.job
        self.views["Training"].start()
        return self.state.wait().run if wait and self.state.job is not before else None

    @property
    def run(self):
        """The last trained :class:`~recogan_app.run.Run` (None before training ends)."""
        return self.state.run

    def close(self) -> None:
        """The page went away: stop the trainings that were not detached (the others go on,
        listed under "Trainings on this server") and cancel its scan's pending trainings."""
        self.state.close()
        self.zdc.close()
        self.views["Scan"].stop()

    def __panel__(self):
        return self.layout
