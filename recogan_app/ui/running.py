"""The "Trainings on this server" list: every training its user runs on this server, each with a
Stop button, whichever page started it (one kept training after its page closed included)."""

from __future__ import annotations

import time

import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.markup import escape_html
from recogan_app.ui.live import switch
from recogan_app.ui.server import SERVER_OWNER, TRAININGS, Training, every, in_served_page

REFRESH_MS = 1000
"""How often a served page looks for trainings started or ended elsewhere."""
SHOWN, HIDDEN = {"display": "flex"}, {"display": "none"}
"""A row's styles when listed and when not. Not ``visible``: a change of a model's visibility
makes the browser's Bokeh lay the whole page out again (0.1-2.5 s of its main thread per page
under the load test, once per row as four trainings started on every page); a style is the
browser's own (cheap) reflow."""
NONE = "<i>none running</i>"


class RunningTrainings(Viewer):
    """The owner's running trainings (:data:`~recogan_app.ui.server.TRAININGS`), refreshed every
    :data:`REFRESH_MS` on a served page and by :meth:`refresh` elsewhere.

    The rows are built once (``rows``: the server's limit of trainings) and then only change their
    text, button and visibility, under a fixed title: when four pages each rebuilt their list (or
    retitled its card) as four trainings started, Bokeh models were built and the page's model
    graph recomputed for every row of every page, on the server's one thread, while those pages'
    clicks waited (load test). Rows are shown and hidden by their style (see :data:`SHOWN`)."""

    owner = param.String(default=SERVER_OWNER, constant=True, doc="Whose trainings are listed.")

    def __init__(self, rows: int = 1, **params):
        super().__init__(**params)
        self._none = pn.pane.HTML(NONE)
        self._shown: list[Training] = []
        self.rows = pn.Column(self._none, *(self._row(i) for i in range(rows)), sizing_mode="stretch_width",
                              css_classes=["recogan-trainings"])
        self.card = pn.Card(self.rows, title="Trainings on this server", collapsed=False, sizing_mode="stretch_width")
        self._listed: list[tuple] | None = None
        self.refresh()
        if in_served_page():
            every(REFRESH_MS, self.refresh)

    def refresh(self) -> None:
        """Update the list when trainings started, ended or were asked to stop since the last look."""
        trainings = TRAININGS.of(self.owner)
        listed = [(id(t), t.job.control.stop_requested) for t in trainings]
        if listed == self._listed:
            return
        self._listed, self._shown = listed, trainings
        with pn.io.hold():
            if len(trainings) >= len(self.rows):  # more than ever before on this page (a notebook has no limit)
                self.rows.extend(self._row(i) for i in range(len(self.rows) - 1, len(trainings)))
            self._none.object = "" if trainings else NONE
            for i, row in enumerate(self.rows[1:]):
                row.styles = SHOWN if i < len(trainings) else HIDDEN
                if i < len(trainings):
                    stopping = trainings[i].job.control.stop_requested
                    row[0].object = self._text(trainings[i], stopping)
                    switch(row[1], not stopping)

    @staticmethod
    def _text(training: Training, stopping: bool) -> str:
        return (f"{escape_html(training.label)}<br><small><code>{escape_html(training.folder)}</code>, "
                f"since {time.strftime('%H:%M:%S', time.localtime(training.started))}"
                f"{' · stopping' if stopping else ''}</small>")

    def _row(self, i: int) -> pn.Row:
        """Row ``i`` of the list (hidden), whose Stop stops the ``i``-th training listed."""
        stop = pn.widgets.Button(label="Stop", color="danger", width=80, css_classes=["recogan-trainings-stop"])
        stop.on_click(lambda _: self.stop(self._shown[i]))
        return pn.Row(pn.pane.HTML("", sizing_mode="stretch_width"), stop, styles=HIDDEN, sizing_mode="stretch_width")

    def stop(self, training: Training) -> None:
        """Stop ``training`` (killed when it has not stopped after its grace period)."""
        training.stop()
        self.refresh()

    def __panel__(self):
        return self.card
