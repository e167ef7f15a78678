"""Event selections (``--cut "pt > 2 and abs(eta) < 0.8"``) and the expressions of derived columns
(``--derive "pt = hypot(px, py)"``, :mod:`recogan_app.data.derived`), evaluated without running user code.

An expression comes from the user (the command line, a config file, later the dashboard), so it is never
given to ``eval``, ``DataFrame.query``/``eval`` or uproot's expression language: it is parsed with
:mod:`ast` and only a whitelist is evaluated, on numpy columns: column names, numbers,
comparisons (chained too), ``and``/``or``/``not`` (and pandas' ``&``/``|``/``~``), ``+ - * / // % **``,
unary minus and the numpy functions of :data:`FUNCTIONS`; a column whose name is no Python name
(``Jet.pt``, ``d/fD64``) is quoted in backticks, as in pandas. Anything else (attribute access,
subscripts, calls of other names, strings, lambdas…) is refused before any file is read.

Example
-------
>>> cut = Selection("pt > 2 and abs(eta) < 0.8")
>>> sorted(cut.columns)
['eta', 'pt']
>>> cut.mask({"pt": np.array([1.0, 3.0, 3.0]), "eta": np.array([0.1, 0.5, 1.2])}).tolist()
[False, True, False]
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

import numpy as np

from recogan_app.errors import InputError, closest

__all__ = ["FUNCTIONS", "Expression", "Selection"]


def mass(energy, px, py, pz):
    """The invariant mass of the four-vector (E, px, py, pz): sqrt(E² - p²), 0 where rounding makes
    E² - p² negative (a massless particle)."""
    return np.sqrt(np.maximum(energy * energy - (px * px + py * py + pz * pz), 0))


FUNCTIONS = {
    "abs": np.absolute, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10, "log2": np.log2,
    "log1p": np.log1p, "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin, "arccos": np.arccos,
    "arctan": np.arctan, "arctan2": np.arctan2, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh, "hypot": np.hypot,
    "minimum": np.minimum, "maximum": np.maximum, "floor": np.floor, "ceil": np.ceil, "sign": np.sign,
    "isfinite": np.isfinite, "isnan": np.isnan, "mass": mass,
}
"""The functions an expression may call: numpy ufuncs and :func:`mass` (the number of arguments is checked)."""
_ARITY = {name: getattr(f, "nin", None) or f.__code__.co_argcount for name, f in FUNCTIONS.items()}
CONSTANTS = {"pi": np.pi}

_ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
               ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power}
_LOGICAL = {ast.And: np.logical_and, ast.Or: np.logical_or, ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or}
_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
            ast.Eq: np.equal, ast.NotEq: np.not_equal}
_SYMBOL = {ast.And: "and", ast.Or: "or", ast.BitAnd: "&", ast.BitOr: "|", ast.Not: "not", ast.Invert: "~"}
_BACKTICKS = re.compile(r"`([^`]+)`")
MAX_LENGTH = 2000
"""Longest expression accepted, in characters: a selection or a formula, not a program."""


class Expression:
    """A parsed, checked expression of columns: :attr:`columns` it reads, :meth:`values` on numpy columns.

    ``what`` names it in messages ("the cut", "the derived column 'pt'"); ``example`` is the hint of an
    empty one.

    Raises
    ------
    InputError
        A syntax error, or a construct outside the whitelist, naming the expression and the problem.
    """

    kind = "expression"

    def __init__(self, expression: str, what: str = "the expression", example: str = "pt > 2"):
        self.what = what
        self.expression = expression = str(expression).strip()
        if not expression:
            raise InputError(f"{what} is empty", hint=f"e.g. {example}")
        if len(expression) > MAX_LENGTH:
            raise self._refused(f"is {len(expression):,} characters long; a {self.kind} takes at most {MAX_LENGTH:,}")
        try:
            self._quoted: dict[str, str] = {}  # placeholder name -> the column quoted in backticks
            self._tree = ast.parse(_BACKTICKS.sub(self._placeholder, expression), mode="eval").body
        except SyntaxError as exc:
            where = f" at character {exc.offset}" if exc.offset else ""
            raise self._refused(f"is not a valid expression ({exc.msg}{where})") from None
        except (RecursionError, MemoryError, ValueError):
            raise self._refused("is too deeply nested") from None
        self.columns: list[str] = []
        try:
            self._check(self._tree)
        except RecursionError:
            raise self._refused("is too deeply nested") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r})"

    def _placeholder(self, quoted: re.Match) -> str:
        name = f"_quoted_column_{len(self._quoted)}"
        self._quoted[name] = quoted.group(1)
        return name

    def _column(self, node: ast.Name) -> str | None:
        """The column a name stands for; None for a constant such as ``pi``."""
        return self._quoted.get(node.id, None if node.id in CONSTANTS else node.id)

    def _refused(self, problem: str, hint: str | None = None) -> InputError:
        return InputError(f"{self.what} '{self.shown}' {problem}", hint=hint)

    @property
    def shown(self) -> str:
        """The expression as messages quote it (a long one shortened)."""
        text = self.expression
        return text if len(text) <= 120 else f"{text[:117]}..."

    def _check(self, node: ast.AST) -> None:
        """Refuse any node outside the whitelist; collect the column names."""
        if isinstance(node, ast.Name):
            if (column := self._column(node)) is not None and column not in self.columns:
                self.columns.append(column)
            return
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self._refused(f"holds {node.value!r}: only numbers and column names are values in a {self.kind}")
            return
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS:
                called = name or ast.unparse(node.func)
                raise self._refused(f"calls '{called}', which is not allowed",
                                    hint=f"the functions a {self.kind} may use: {', '.join(FUNCTIONS)}")
            if node.keywords or len(node.args) != _ARITY[name] or any(
                    isinstance(a, ast.Starred) for a in node.args):
                raise self._refused(f"calls {name} with {len(node.args)} argument(s); it takes {_ARITY[name]}")
        elif not isinstance(node, (ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare)):
            raise self._refused(f"uses {_construct(node)} ('{ast.unparse(node)}'), which a {self.kind} does not allow",
                                hint=f"a {self.kind} combines columns, numbers, comparisons, and/or/not, "
                                     "+ - * / ** % and numpy functions such as abs, sqrt, hypot")
        elif isinstance(node, ast.BinOp) and type(node.op) not in _ARITHMETIC and type(node.op) not in _LOGICAL:
            raise self._refused(f"uses the operator '{_operator(node)}', which a {self.kind} does not allow")
        elif isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
            raise self._refused(f"compares with 'in' or 'is'; a {self.kind} compares with < <= > >= == !=")
        for child in (node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)):
            if isinstance(child, (ast.operator, ast.boolop, ast.unaryop, ast.cmpop)):
                continue
            self._check(child)

    def check_columns(self, available, path=None) -> None:
        """Refuse a column the expression reads that ``available`` does not hold: names, or a table's
        columns (name to why it is not a flat numeric column, None when it is). The one message of
        every front end: ``train --cut``, ``load_mc`` and the dashboard's count as a cut is typed."""
        for name in self.columns:
            if name not in available:
                raise InputError(f"is read by {self.what} '{self.shown}' but is not a column", path=path,
                                 column=name, hint=closest(name, available))
            if isinstance(available, Mapping) and (why := available[name]) is not None:
                raise InputError(f"{why}: {self.what} '{self.shown}' cannot read it", path=path, column=name)

    def values(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The expression's value in every row of ``columns`` (log(-1), 1/0: NaN and inf)."""
        n = len(next(iter(columns.values()))) if columns else 0
        try:
            with np.errstate(all="ignore"):
                values = self._value(self._tree, columns)
        except RecursionError:
            raise self._refused("is too deeply nested") from None
        return np.broadcast_to(values, (n,)).copy()

    @property
    def called(self) -> str | None:
        """The function the whole expression calls (``mass`` for ``mass(E1 + E2, …)``), or None."""
        return self._tree.func.id if isinstance(self._tree, ast.Call) else None

    def argument(self, index: int, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The value of argument ``index`` of the call the expression is (see :attr:`called`)."""
        with np.errstate(all="ignore"):
            return np.asarray(self._value(self._tree.args[index], columns))

    def _value(self, node: ast.AST, columns: Mapping[str, np.ndarray]):
        if isinstance(node, ast.Name):
            column = self._column(node)
            return CONSTANTS[node.id] if column is None else np.asarray(columns[column])
        if isinstance(node, ast.Constant):
            return np.float64(node.value)  # never a Python int: 10**10**10 would take forever
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](*(self._value(a, columns) for a in node.args))
        if isinstance(node, ast.Compare):
            values = [self._value(node.left, columns), *(self._value(c, columns) for c in node.comparators)]
            kept = True
            for op, left, right in zip(node.ops, values, values[1:]):
                kept = np.logical_and(kept, _COMPARE[type(op)](left, right))
            return kept
        if isinstance(node, ast.BoolOp):
            values = [self._condition(v, node.op, columns) for v in node.values]
            return _LOGICAL[type(node.op)].reduce(np.broadcast_arrays(*values))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.Not, ast.Invert)):
                return np.logical_not(self._condition(node.operand, node.op, columns))
            value = self._value(node.operand, columns)
            return -value if isinstance(node.op, ast.USub) else value
        if type(node.op) in _LOGICAL:
            return _LOGICAL[type(node.op)](self._condition(node.left, node.op, columns),
                                           self._condition(node.right, node.op, columns))
        return _ARITHMETIC[type(node.op)](self._value(node.left, columns), self._value(node.right, columns))

    def _condition(self, node: ast.AST, op: ast.AST, columns) -> np.ndarray:
        """A true/false operand of and/or/not: ``pt and eta`` is a mistake, not a cut."""
        value = self._value(node, columns)
        if np.asarray(value).dtype != bool:
            raise self._refused(f"applies '{_SYMBOL[type(op)]}' to '{ast.unparse(node)}', a number, not a "
                                "true/false condition", hint="compare it, e.g. 'pt > 2'")
        return value


class Selection(Expression):
    """A parsed, checked cut: :attr:`columns` it reads, :meth:`mask` of the rows it keeps."""

    kind = "cut"

    def __init__(self, expression: str):
        super().__init__(expression, "the cut", "--cut 'pt > 2 and abs(eta) < 0.8'")

    def mask(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The rows the cut keeps (booleans, one per row of ``columns``); NaN fails every comparison."""
        kept = self.values(columns)
        if kept.dtype != bool:
            raise self._refused("gives numbers, not true/false", hint="compare them, e.g. 'pt > 2'")
        return kept


def _construct(node: ast.AST) -> str:
    names = {ast.Attribute: "attribute access", ast.Subscript: "a subscript", ast.Lambda: "a lambda",
             ast.IfExp: "an if-expression", ast.NamedExpr: "an assignment"}
    return names.get(type(node), f"a {type(node).__name__} expression")


def _operator(node: ast.BinOp) -> str:
    return {ast.LShift: "<<", ast.RShift: ">>", ast.BitXor: "^", ast.MatMult: "@"}.get(type(node.op), "?")
