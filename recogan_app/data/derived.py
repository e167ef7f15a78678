"""Derived columns: exact physics relations (``pt = hypot(px, py)``, an invariant mass) that survive generation.

No generator of independent columns keeps pt = hypot(px, py) or a pair's mass consistent with its
four-vectors. A derived column is therefore not modelled: the model learns the free columns, and each
derived column is computed from them after generation (:meth:`Derivations.complete`), in every output.
Its formula is the expression language of cuts (:mod:`recogan_app.data.selection`: parsed, never run)
plus ``mass(E, px, py, pz)``; it may read free columns and other derived ones (any order, no cycle).

:func:`suggest` finds the common kinematic identities that a sample satisfies to float precision, by
column names (``px1``, ``Muon_pt``, ``pz_mu2``…) checked on the numbers, so that the user confirms
instead of typing.

Example
-------
>>> derived = Derivations({"pt": "hypot(px, py)"})
>>> derived.complete(pd.DataFrame({"px": [3.0], "py": [4.0]}), {"pt": "float64"})["pt"].tolist()
[5.0]
"""

from __future__ import annotations

import graphlib
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recogan_app.data.selection import Expression
from recogan_app.errors import InputError

__all__ = ["Derivations", "Suggestion", "disagreements", "parse_derive", "suggest"]

RTOL = 1e-4
"""Relative precision to which an identity must hold for :func:`suggest`: float32 keeps 6e-8, public
CSV files print 4-5 decimals (pt = 2.0001 GeV, phi = 0.1234 rad); a relation that does not hold is off
by far more."""
SHARE = 0.999
"""Share of the rows in which an identity must hold to be suggested (a few pathological rows may not)."""


class Formula(Expression):
    kind = "formula"


class Derivations:
    """Derived columns, name to formula, checked: each formula parsed, no cycle; :attr:`order` is
    the order of computation (a column after those it reads).

    Raises
    ------
    InputError
        A formula that does not parse or uses what the language does not allow, a column derived
        from itself through others (the cycle named).
    """

    def __init__(self, derive: Mapping[str, str] | None = None):
        self.formulas = {str(name).strip(): Formula(text, f"the derived column '{name}' =", "pt = hypot(px, py)")
                         for name, text in (derive or {}).items()}
        if "" in self.formulas:
            raise InputError("a derived column needs a name", hint="e.g. --derive 'pt = hypot(px, py)'")
        graph = {name: [c for c in f.columns if c in self.formulas] for name, f in self.formulas.items()}
        try:
            self.order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            raise InputError(f"the derived columns depend on each other in a cycle ({' -> '.join(cycle)}, each "
                             "read by the next): each must be computable from the modelled columns") from None

    def __bool__(self) -> bool:
        return bool(self.formulas)

    @property
    def names(self) -> list[str]:
        return list(self.formulas)

    @property
    def inputs(self) -> list[str]:
        """The modelled columns the formulas read."""
        read = (c for f in self.formulas.values() for c in f.columns)
        return list(dict.fromkeys(c for c in read if c not in self.formulas))

    def record(self) -> dict[str, str]:
        """Name to formula, in the order of computation (run.json, config)."""
        return {name: self.formulas[name].expression for name in self.order}

    def check(self, free: Iterable[str], path=None) -> None:
        """Refuse a formula reading a column that is neither modelled (``free``) nor derived."""
        free = list(free)
        for name in self.order:
            formula = self.formulas[name]
            for column in formula.columns:
                if column not in free and column not in self.formulas:
                    raise InputError(f"is read by the derived column '{name} = {formula.shown}' but is not "
                                     "a modelled column, so it is never generated", path=path, column=column,
                                     hint="model it (add it to --features), or derive it too")

    def complete(self, frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
        """``frame`` (the free columns) with every derived column added, computed in float64 from the
        generated values and stored in its ``dtypes`` (the MC's): exact to that precision."""
        columns = {name: frame[name].to_numpy() for name in self.inputs}
        for name in self.order:
            columns[name] = self.formulas[name].values(
                {c: np.asarray(columns[c], dtype=np.float64) for c in self.formulas[name].columns})
        added = {}
        for name in self.formulas:
            dtype = np.dtype(dtypes[name])
            values = columns[name]
            added[name] = np.rint(values).astype(dtype) if dtype.kind in "iub" else values.astype(dtype)
        return frame.assign(**added)


def parse_derive(entries: Iterable[str]) -> dict[str, str]:
    """``["pt = hypot(px, py)", ...]`` (the CLI's --derive) as name to formula; a name given twice is refused."""
    derive: dict[str, str] = {}
    for entry in entries:
        name, equals, formula = str(entry).partition("=")
        name = name.strip()
        if not equals or not name or formula.startswith("="):
            raise InputError(f"--derive takes NAME = FORMULA, got {entry!r}", hint="e.g. --derive 'pt = hypot(px, py)'")
        if name in derive:
            raise InputError(f"is derived twice (--derive {entry!r})", column=name)
        derive[name] = formula.strip()
    return derive


# --- suggestions ----------------------------------------------------------------------------------

_QUANTITIES = {"px": "px", "py": "py", "pz": "pz", "pt": "pt", "e": "E", "energy": "E", "eta": "eta",
               "phi": "phi", "p": "p", "m": "M", "mass": "M"}
"""Column-name tokens of kinematic quantities (lower case) and the quantity each names."""
_TOKEN = re.compile(r"(?<![A-Za-z])(" + "|".join(sorted(_QUANTITIES, key=len, reverse=True)) + r")(?![A-Za-z])",
                    re.IGNORECASE)


@dataclass(frozen=True)
class Suggestion:
    """A derived column the sample satisfies: ``name = formula`` holds in every event (to :data:`RTOL`)."""

    name: str
    formula: str

    @property
    def derive(self) -> str:
        return f"{self.name} = {self.formula}"

    def notice(self) -> str:
        return (f"{self.derive} holds in every event: pass --derive '{self.derive}' to keep it exact "
                "(it is modelled as a free column otherwise)")


def suggest(frame: pd.DataFrame, derived: Iterable[str] = ()) -> list[Suggestion]:
    """The kinematic identities ``frame`` satisfies to float precision (:data:`RTOL` in :data:`SHARE`
    of the rows), for the columns not already ``derived``: pt = hypot(px, py), p = |p⃗|,
    eta = arcsinh(pz / pt), phi = arctan2(py, px) of each particle, and a mass column equal to the
    invariant mass of one particle's or two particles' four-vectors (E, px, py, pz).

    Particles are found by column names: the same name around a quantity token (``px1``/``pt1``,
    ``Muon_px``/``Muon_pt``, ``px_mu2``…) makes one particle."""
    derived = set(derived)
    particles: dict[tuple[str, str], dict[str, str]] = {}
    for column in frame.columns:
        if column in derived or frame[column].dtype.kind != "f":
            continue
        for token in _TOKEN.finditer(str(column)):
            tag = (column[:token.start()], column[token.end():])
            particles.setdefault(tag, {}).setdefault(_QUANTITIES[token.group(1).lower()], column)
    candidates = []
    for q in particles.values():
        f = {quantity: _quoted(column) for quantity, column in q.items()}  # as a formula names them
        if {"px", "py"} <= q.keys():
            if "pt" in q:
                candidates.append((q["pt"], f"hypot({f['px']}, {f['py']})"))
            if "phi" in q:
                candidates.append((q["phi"], f"arctan2({f['py']}, {f['px']})"))
            if "pz" in q and "eta" in q:
                candidates.append((q["eta"], f"arcsinh({f['pz']} / hypot({f['px']}, {f['py']}))"))
            if "pz" in q and "p" in q:
                candidates.append((q["p"], f"sqrt({f['px']}**2 + {f['py']}**2 + {f['pz']}**2)"))
    vectors = [q for q in particles.values() if {"E", "px", "py", "pz"} <= q.keys()]
    for q in vectors:  # a particle of fixed mass (a muon, a photon): E = sqrt(p² + m²), m from the data
        f = {quantity: _quoted(column) for quantity, column in q.items()}
        squared = frame[q["E"]].to_numpy() ** 2 - (frame[[q["px"], q["py"], q["pz"]]].to_numpy() ** 2).sum(axis=1)
        m = np.sqrt(max(float(np.median(squared)), 0.0))
        mass_term = f" + {m:.4g}**2" if m else ""
        candidates.append((q["E"], f"sqrt({f['px']}**2 + {f['py']}**2 + {f['pz']}**2{mass_term})"))
    for q in particles.values():
        if "M" not in q:
            continue
        for combined in [*([v] for v in vectors), *itertools.combinations(vectors, 2)]:
            if q in combined and len(combined) == 2:
                continue
            parts = [" + ".join(_quoted(v[c]) for v in combined) for c in ("E", "px", "py", "pz")]
            candidates.append((q["M"], f"mass({', '.join(parts)})"))
    found, named = [], set()
    for name, formula in candidates:
        if name not in named and _agreement(frame, name, formula) >= SHARE:
            found.append(Suggestion(name, formula))
            named.add(name)
    return found


def _quoted(column: str) -> str:
    """A column as a formula names it: in backticks unless it is a Python name (``Muon.px``)."""
    return column if column.isidentifier() else f"`{column}`"


def disagreements(frame: pd.DataFrame, derived: Mapping[str, str]) -> list[str]:
    """A warning per derived column whose MC values (in ``frame``) differ from its formula beyond float
    precision in more than 1 - :data:`SHARE` of the rows: the generated column follows the formula, so
    validation will find it unlike the MC."""
    warnings = []
    for name, formula in derived.items():
        differ = 1 - _agreement(frame, name, formula)
        if differ > 1 - SHARE:
            warnings.append(f"the MC's {name} differs from {formula} in {differ:.1%} of the events (beyond a relative "
                            f"{RTOL:g}): the generated {name} follows the formula, not the MC")
    return warnings


def _agreement(frame: pd.DataFrame, name: str, formula: str) -> float:
    """The share of rows in which column ``name`` equals ``formula`` to :data:`RTOL` (of the value plus
    the column's median magnitude, so that values near 0 such as phi are judged on the column's scale).
    A mass is compared through its square against E² (E² - p² cancels: rounded inputs give a small mass
    a large relative error)."""
    expression = Formula(formula)
    stored = frame[name].to_numpy(dtype=np.float64)
    columns = {c: frame[c].to_numpy(dtype=np.float64) for c in expression.columns}
    computed = expression.values(columns)
    scale = np.abs(stored) + np.median(np.abs(stored))
    if expression.called == "mass":
        scale = expression.argument(0, columns) ** 2
        stored, computed = stored ** 2, computed ** 2
    with np.errstate(invalid="ignore"):
        return float(np.mean(np.abs(computed - stored) <= RTOL * scale))
