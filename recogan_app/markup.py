"""Text from files and users, made safe to put into HTML or Markdown.

A file name, a column or tree name or a text cell is data: shown, it must read literally and never
act as markup. A CSV column named ``<img src=x onerror=...>`` would otherwise run script in the
dashboard's page (on SWAN, the Jupyter origin) or in a mailed HTML report. Every place that puts
such a string into a page goes through this module: :func:`escape_html` for HTML (the report, HTML
panes, attributes), :func:`escape_markdown` for Markdown panes (notices, status lines), and
:func:`download_link` for a link to a served file.
"""

from __future__ import annotations

import html
import re
import string
from urllib.parse import quote

__all__ = ["download_link", "escape_html", "escape_markdown"]

_MARKDOWN_PUNCTUATION = frozenset(string.punctuation) - set("<>&\"'")
"""ASCII punctuation (CommonMark lets a backslash escape any of it) that is not also HTML's: those
five become entities instead, which Markdown decodes back to the literal character."""
_LINE_BREAKS = re.compile(r"\s*[\r\n]\s*")


def escape_html(text) -> str:
    """``str(text)`` with ``& < > " '`` as entities: safe as HTML text and in quoted attributes."""
    return html.escape(str(text), quote=True)


def escape_markdown(text) -> str:
    """``str(text)`` for a Markdown pane: shown literally, neither HTML nor Markdown.

    HTML's special characters become entities and every other ASCII punctuation character is
    backslash-escaped, so ``*``, ``_``, backticks, ``[x](javascript:...)``, ``#`` or ``|`` stay
    characters; line breaks become one space (a new line could open a Markdown block, in which
    escapes do not apply). A pane showing such text also needs ``disable_math=True``: Panel renders
    ``$$...$$`` in the resulting HTML as TeX, escaped or not.
    """
    text = _LINE_BREAKS.sub(" ", str(text))
    return "".join("\\" + c if c in _MARKDOWN_PUNCTUATION else html.escape(c, quote=True) for c in text)


def download_link(route: str, name: str, text: str | None = None) -> str:
    """``<a href="ROUTE/NAME" download="NAME">TEXT</a>``: a link, relative to the page, to the file
    ``name`` of a folder the server serves at ``route`` (the name percent-encoded in the address,
    escaped in the attributes and text; ``text`` defaults to the name)."""
    href = f"{quote(route)}/{quote(name, safe='')}"
    return (f'<a href="{escape_html(href)}" download="{escape_html(name)}">'
            f"{escape_html(name if text is None else text)}</a>")
