"""Files the page hands to the browser, served from disk by the server, never through the websocket.

``recogan serve`` serves its work folder's ``exports`` and ``reports`` folders as static files at
``exports/`` and ``reports/`` beside the page (Panel's ``static_dirs``; with ``--basic-auth`` they
need the login too), and the page links to a file there with a plain ``<a download>``. A download
used to base64-encode a whole export into one websocket message. Only these folders are served
(not uploads, not runs), and the file handler refuses any path that leaves its folder.
"""

from __future__ import annotations

from pathlib import Path

from recogan_app.markup import download_link

__all__ = ["FOLDERS", "served_link", "static_dirs"]

FOLDERS = ("exports", "reports")
"""Folders of the work folder that are served, each at the route of its name."""


def static_dirs(workdir) -> dict[str, str]:
    """Route → folder for ``pn.serve(static_dirs=...)`` (the folders are made: Panel serves only
    existing ones)."""
    served = {name: Path(workdir) / name for name in FOLDERS}
    for folder in served.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {name: str(folder) for name, folder in served.items()}


def served_link(path, workdir) -> str:
    """An HTML link that downloads ``path``, a file directly in a served folder of ``workdir``."""
    path, workdir = Path(path), Path(workdir)
    if path.parent.name not in FOLDERS or path.parent.parent.resolve() != workdir.resolve():
        raise ValueError(f"{path} is not in a served folder of {workdir}")
    return download_link(path.parent.name, path.name, f"Download {path.name}")
