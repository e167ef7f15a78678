"""The "Trainings on this server" list: every training its user runs on this server, each with a
Stop button, whichever page started it (one kept training after its page closed included)."""

from __future__ import annotations

import time

import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.markup import escape_html
from recogan_app.ui.server import SERVER_OWNER, TRAININGS, Training

REFRESH_MS = 1000
"""How often a served page looks for trainings started or ended elsewhere."""


class RunningTrainings(Viewer):
    """The owner's running trainings (:data:`~recogan_app.ui.server.TRAININGS`), refreshed every
    :data:`REFRESH_MS` on a served page and by :meth:`refresh` elsewhere."""

    owner = param.String(default=SERVER_OWNER, constant=True, doc="Whose trainings are listed.")

    def __init__(self, **params):
        super().__init__(**params)
        self.rows = pn.Column(sizing_mode="stretch_width", css_classes=["recogan-trainings"])
        self.card = pn.Card(self.rows, title="Trainings on this server", collapsed=False, sizing_mode="stretch_width")
        self._listed: list[tuple] | None = None
        self.refresh()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.add_periodic_callback(self.refresh, period=REFRESH_MS)

    def refresh(self) -> None:
        """Redraw the list when trainings started, ended or were asked to stop since the last look."""
        trainings = TRAININGS.of(self.owner)
        listed = [(id(t), t.job.control.stop_requested) for t in trainings]
        if listed == self._listed:
            return
        self._listed = listed
        self.card.title = f"Trainings on this server ({len(trainings)})"
        self.rows[:] = [self._row(t) for t in trainings] or [pn.pane.HTML("<i>none running</i>")]

    def _row(self, training: Training) -> pn.Row:
        stopping = training.job.control.stop_requested
        text = (f"{escape_html(training.label)}<br><small><code>{escape_html(training.folder)}</code>, "
                f"since {time.strftime('%H:%M:%S', time.localtime(training.started))}"
                f"{' · stopping' if stopping else ''}</small>")
        stop = pn.widgets.Button(label="Stop", color="danger", disabled=stopping, width=80,
                                 css_classes=["recogan-trainings-stop"])
        stop.on_click(lambda _: self.stop(training))
        return pn.Row(pn.pane.HTML(text, sizing_mode="stretch_width"), stop, sizing_mode="stretch_width")

    def stop(self, training: Training) -> None:
        """Stop ``training`` (killed when it has not stopped after its grace period)."""
        training.stop()
        self.refresh()

    def __panel__(self):
        return self.card
