"""The served dashboard: ``panel serve recogan_app/ui/app.py`` or ``recogan serve``.

Each browser session gets its own :class:`~recogan_app.ui.dashboard.Dashboard` (and so its own
trainings); closing the page stops them unless the user detached them. The server's limits
(:class:`~recogan_app.ui.server.Limits`) apply to every page.
"""

from __future__ import annotations

import os

import panel as pn

from recogan_app.data.sources import EMBEDDED
from recogan_app.ui.dashboard import Dashboard
from recogan_app.ui.server import SERVER_OWNER, Limits, release_memory

TITLE = "recogan: synthetic MC you can check"
ENV = {"data": "RECOGAN_DATA", "data_root": "RECOGAN_DATA_ROOT", "workdir": "RECOGAN_WORKDIR"}
"""Environment variables that configure the app under a plain ``panel serve`` of this file (with
:data:`~recogan_app.ui.server.ENV`, the limits)."""


def closed(dashboard: Dashboard) -> None:
    """A page went away: its trainings stop (unless kept), and the memory its session held goes
    back to the system."""
    dashboard.close()
    release_memory()


def create_app(data=None, data_root=None, workdir=None, limits: Limits | None = None) -> pn.template.BaseTemplate:
    """A page with a fresh dashboard for one browser session.

    Parameters
    ----------
    data : str or path, optional
        MC loaded when the page opens; the embedded Ξc+ toy by default, ready to press Start.
    data_root : path, optional
        Folder whose files can be chosen in the page; nothing outside it is read.
    workdir : path, optional
        Where runs, uploads, reports and exports go; a temporary folder per session by default.
    limits : Limits, optional
        What a page may ask of the server; by default the ``RECOGAN_MAX_*`` variables' or the defaults.
    """
    dashboard = Dashboard(data or EMBEDDED[0], data_root=data_root, workdir=workdir,
                          limits=limits or Limits.from_env(), owner=pn.state.user or SERVER_OWNER)
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.on_session_destroyed(lambda _context: closed(dashboard))
    return pn.template.FastListTemplate(title=TITLE, main=[dashboard], main_max_width="1800px")


if pn.state.served:
    create_app(**{key: os.environ.get(name) or None for key, name in ENV.items()}).servable()
