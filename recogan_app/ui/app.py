"""The served dashboard: ``recogan serve`` or ``panel serve recogan_app/ui/app.py``.

Each browser session gets its own :class:`~recogan_app.ui.dashboard.Dashboard` (and so its own
trainings); closing the page stops them unless the user detached them. The server's limits
(:class:`~recogan_app.ui.server.Limits`) apply to every page.

``recogan serve`` listens on 127.0.0.1 and serves the work folder's exports and reports for
download (:mod:`recogan_app.ui.downloads`). Under a plain ``panel serve`` give the same yourself::

    mkdir -p DIR/exports DIR/reports
    RECOGAN_WORKDIR=DIR panel serve recogan_app/ui/app.py --address 127.0.0.1 \\
        --static-dirs exports=DIR/exports reports=DIR/reports
"""

from __future__ import annotations

import os
from functools import partial

import panel as pn
from panel.pane.markup import HTMLBasePane

from recogan_app.data.sources import EMBEDDED
from recogan_app.ui.dashboard import Dashboard
from recogan_app.ui.server import (SERVER_OWNER, Limits, in_served_page, quiet_closed_websockets, release_memory_later,
                                   share_malloc_arenas)
from recogan_app.ui.wire import guard_decoder

TITLE = "recogan: synthetic MC you can check"
ENV = {"data": "RECOGAN_DATA", "data_root": "RECOGAN_DATA_ROOT", "workdir": "RECOGAN_WORKDIR",
       "max_upload_mb": "RECOGAN_MAX_UPLOAD_MB"}
"""Environment variables that configure the app under a plain ``panel serve`` of this file (with
:data:`~recogan_app.ui.server.ENV`, the limits)."""


def closed(dashboard: Dashboard) -> None:
    """A page went away: its trainings stop (unless kept), and the memory its session held goes
    back to the system once Bokeh has let go of the session."""
    dashboard.close()
    release_memory_later()


def settle_stylesheets(content: pn.viewable.Viewable) -> None:
    """Give every text pane of a loaded page (``content``) the stylesheets its updates will carry, in one batch.

    Panel 1.9 renders a templated page's panes with the template's stylesheets and adds the
    design's theme sheet at each pane's first update: a new Bokeh model, after which Bokeh walks the
    page's whole model graph (~700 models: 0.1 s on an idle core, 0.2-0.8 s under the load test)
    at the first change of every status line, notice and list row, while clicks wait (load test).
    Sending each pane's text once when the page loads (one walk) leaves later updates only text."""
    panes = content.select(HTMLBasePane)
    with pn.io.hold(), pn.state.curdoc.models.freeze():
        for pane in panes:
            pane.param.trigger("object")


class Fast(pn.theme.Fast):
    """Panel's Fast design without its web font: the page loaded Open Sans from Google's servers,
    which fails offline and tells Google every page a user opens (the system's sans-serif is used).
    Named as Panel's: Panel finds a design's own files under its class name."""

    _resources = {kind: value for kind, value in pn.theme.Fast._resources.items() if kind != "font"}


def create_app(data=None, data_root=None, workdir=None, max_upload_mb=None,
               limits: Limits | None = None) -> pn.template.BaseTemplate:
    """A page with a fresh dashboard for one browser session.

    Parameters
    ----------
    data : str or path, optional
        MC loaded when the page opens; the embedded Ξc+ toy by default, ready to press Start.
    data_root : path, optional
        Folder whose files can be chosen in the page; nothing outside it is read.
    workdir : path, optional
        Where runs, uploads, reports and exports go; its ``exports`` and ``reports`` are served for
        download (the page links to them). By default a temporary folder per session, without links.
    max_upload_mb : int, optional
        The largest upload accepted (default: the dashboard's).
    limits : Limits, optional
        What a page may ask of the server; by default the ``RECOGAN_MAX_*`` variables' or the defaults.
    """
    options = {"max_upload_mb": int(max_upload_mb)} if max_upload_mb else {}
    dashboard = Dashboard(data or EMBEDDED[0], data_root=data_root, workdir=workdir, downloads=workdir is not None,
                          limits=limits or Limits.from_env(), owner=pn.state.user or SERVER_OWNER, **options)
    if in_served_page():
        quiet_closed_websockets()
        pn.state.onload(partial(settle_stylesheets, dashboard.layout))
        pn.state.on_session_destroyed(lambda _context: closed(dashboard))
    return pn.template.FastListTemplate(title=TITLE, main=[dashboard], main_max_width="1800px", design=Fast)


if pn.state.served:
    guard_decoder()  # before this page sends a message: see recogan_app/ui/wire.py
    share_malloc_arenas()
    create_app(**{key: os.environ.get(name) or None for key, name in ENV.items()}).servable()
