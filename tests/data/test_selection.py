"""Tests for recogan_app.data.selection: cuts evaluated as numpy computes them, and every construct
outside the whitelist refused before anything runs."""

import numpy as np
import pytest

from recogan_app.data.selection import Selection
from recogan_app.errors import InputError

RNG = np.random.default_rng(3)
COLUMNS = {"pt": RNG.exponential(3, 500), "eta": RNG.normal(0, 1.5, 500), "px": RNG.normal(0, 2, 500),
           "py": RNG.normal(0, 2, 500), "q": RNG.choice([-1, 1], 500).astype(np.int32)}
pt, eta, px, py, q = (COLUMNS[k] for k in ("pt", "eta", "px", "py", "q"))


@pytest.mark.parametrize(("expression", "expected"), [
    ("pt > 2 and abs(eta) < 0.8", (pt > 2) & (np.abs(eta) < 0.8)),
    ("(pt > 2) & ~(eta > 1) | (q == -1)", ((pt > 2) & ~(eta > 1)) | (q == -1)),
    ("0.5 < eta <= 1.5 or not pt >= 1", ((eta > 0.5) & (eta <= 1.5)) | ~(pt >= 1)),
    ("hypot(px, py) ** 2 % 7 > 3 - -1", np.hypot(px, py) ** 2 % 7 > 4),
    ("log(pt) / 2 > arctan2(py, px) * pi / 10", np.log(pt) / 2 > np.arctan2(py, px) * np.pi / 10),
    ("sqrt(eta) > 0.5", np.sqrt(np.where(eta >= 0, eta, np.nan)) > 0.5),  # NaN (eta < 0) fails the comparison
    ("10 ** 10 ** 10 > pt", np.ones(500, bool)),  # float power: inf at once, never a huge integer
    ("`Jet.pt` > 2 and `pi` < pi", (pt > 2) & (eta < np.pi)),  # backticks quote any column name
])
def test_a_cut_keeps_what_numpy_keeps(expression, expected):
    np.testing.assert_array_equal(Selection(expression).mask({**COLUMNS, "Jet.pt": pt, "pi": eta}), expected)


@pytest.mark.parametrize(("expression", "words"), [
    ("pt > 2 and", "is not a valid expression"),
    ("__import__('os').system('true')", "calls '__import__('os').system', which is not allowed"),
    ("__import__('os')", "calls '__import__', which is not allowed"),
    ("pt.__class__.__mro__", "uses attribute access"),
    ("eval('1') > 0", "calls 'eval', which is not allowed"),
    ("pt[0] > 1", "uses a subscript"),
    ("(lambda: 1)() > 0", "calls 'lambda: 1', which is not allowed"),
    ("(lambda: 1) > 0", "uses a lambda"),
    ("[x for x in pt]", "uses a ListComp expression"),
    ("pt > 'a'", "holds 'a': only numbers and column names"),
    ("pt in (1, 2)", "compares with 'in' or 'is'"),
    ("pt << 2 > 1", "uses the operator '<<'"),
    ("sqrt(pt, eta) > 1", "calls sqrt with 2 argument(s); it takes 1"),
    ("(" * 400 + "pt" + ")" * 400, "too many nested parentheses"),
    ("-" * 1900 + "pt > 0", "too deeply nested"),
    ("pt > 0 or " * 300 + "pt > 1", "at most 2,000"),
])
def test_a_construct_outside_the_whitelist_is_refused_when_parsed(expression, words):
    with pytest.raises(InputError) as info:
        Selection(expression)
    assert words in str(info.value) and str(info.value).startswith("the cut '")


@pytest.mark.parametrize(("expression", "words"), [
    ("pt", "gives numbers, not true/false"),
    ("pt > 2 & eta < 1", "applies '&' to '2', a number"),
    ("pt and eta > 1", "applies 'and' to 'pt', a number"),
])
def test_a_cut_that_is_not_a_condition_is_refused(expression, words):
    with pytest.raises(InputError, match=words):
        Selection(expression).mask(COLUMNS)


def test_an_unknown_or_unreadable_column_is_named_with_the_closest():
    with pytest.raises(InputError) as info:
        Selection("pt > 1 and etta < 2").check_columns(list(COLUMNS), path="mc.root")
    assert str(info.value) == ("mc.root: column 'etta': is read by the cut 'pt > 1 and etta < 2' but is not a column "
                               "(closest: 'eta', 'pt')")
    table = {**dict.fromkeys(COLUMNS), "hits": "is not a flat numeric branch (type std::vector<double>)"}
    with pytest.raises(InputError) as info:  # a table's columns: name to why it cannot be read (None: it can)
        Selection("pt > 1 and hits > 0").check_columns(table, path="mc.root")
    assert str(info.value) == ("mc.root: column 'hits': is not a flat numeric branch (type std::vector<double>): "
                               "the cut 'pt > 1 and hits > 0' cannot read it")


def test_the_readme_lists_the_functions_a_cut_may_call():
    """The README's list is the whitelist's: a function added to the code is added to the docs."""
    import re
    from pathlib import Path

    from recogan_app.data.selection import FUNCTIONS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"`pi`\s+and `([a-z0-9\s]+)`", readme)
    assert listed is not None and sorted(listed.group(1).split()) == sorted(FUNCTIONS)
