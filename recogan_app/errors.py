"""Errors a user can act on.

Every problem with user input is an :class:`InputError`: it names the file, the column and the
problem in one sentence, so the CLI can print it and exit 2 and the dashboard can show it as a
notice. Anything else escaping the engine is a bug (CLI exit 1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad user input: a file, column or option the engine cannot use.

    Parameters
    ----------
    problem : str
        What is wrong, as a short sentence fragment ("has 3 NaN values").
    path : str, optional
        The file concerned.
    column : str, optional
        The column (feature, tree, key) concerned.
    hint : str, optional
        What the user can do about it.
    """

    def __init__(self, problem: str, *, path=None, column: str | None = None, hint: str | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.column = column
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = (": ".join(where) + ": " if where else "") + self.problem
        if self.hint:
            text += f" ({self.hint})"
        return text


def closest(name: str, options: Iterable[str], n: int = 3) -> str:
    """A hint listing the valid options closest to a mistyped ``name``."""
    options = list(options)
    near = difflib.get_close_matches(name, options, n=n, cutoff=0.3) or options[:n]
    return "closest: " + ", ".join(f"'{o}'" for o in near) if near else "no options available"
