"""Errors a user can act on.

Every problem with user input is an :class:`InputError`: it names the file, the column and the
problem in one sentence, so the CLI can print it and exit 2 and the dashboard can show it as a
notice. :class:`ExportRefused` (exit 3) is a validation gate saying no; anything else escaping
the engine is a bug (CLI exit 1).
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

    def in_file(self, path) -> "InputError":
        """This error naming ``path``, for a check that knew the column but not the file."""
        return self if self.path else InputError(self.problem, path=path, column=self.column, hint=self.hint)

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


class NotFittedError(ValueError, AttributeError):
    """A fitted object (preprocessing, condition scaler, copula baseline) used before ``fit``: a
    programming error, not bad input. A ValueError and an AttributeError, as scikit-learn's."""

    @classmethod
    def check(cls, obj, fitted: bool, call: str = "fit()") -> None:
        """Raise for ``obj`` unless ``fitted``: the one wording of every fitted object."""
        if not fitted:
            raise cls(f"this {type(obj).__name__} is not fitted yet; call {call} first")


class ExportRefused(Exception):
    """A run below the required validation level was asked to export (CLI exit 3).

    Not an :class:`InputError`: the input is readable, the model is not good enough for the
    level asked. The message names the failing features with their KS values; ``--force``
    exports anyway and records that it was forced.

    Parameters
    ----------
    message : str
        The verdict, the bars it missed and the failing features.
    failing : dict of str to float
        KS distance of each failing feature.
    """

    def __init__(self, message: str, *, failing: dict[str, float]):
        self.failing = dict(failing)
        super().__init__(message)


def closest(name: str, options: Iterable[str], n: int = 3) -> str:
    """A hint listing the valid options closest to a mistyped ``name``, case aside (``PT`` finds
    ``pt``, where a case-sensitive match ranked it below unrelated names)."""
    options = list(options)
    folded = {}
    for option in options:
        folded.setdefault(option.casefold(), []).append(option)
    near = [option for match in difflib.get_close_matches(name.casefold(), folded, n=n, cutoff=0.3)
            for option in folded[match]][:n] or options[:n]
    return "closest: " + ", ".join(f"'{o}'" for o in near) if near else "no options available"
