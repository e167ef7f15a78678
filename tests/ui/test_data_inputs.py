"""The Data tab's selection box (live count, problems shown as text), event-weight selector and
derived-column suggestions, and that all three reach the training as ``train --cut --weights
--derive`` would give them."""

import asyncio
import html
import json
import re

import numpy as np
import pandas as pd
import panel as pn
import pytest

from recogan_app.data.sources import load_mc
from recogan_app.errors import InputError
from recogan_app.ui.data import DataView
from recogan_app.ui.state import Session

N = 1500


def shown(markdown: str) -> str:
    """The text a Markdown pane shows for ``markdown``."""
    rendered = html.unescape(pn.pane.Markdown(markdown)._transform_object(markdown)["object"])
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Muons with exact pt, weights that depend on pt, and a column whose name reads as HTML."""
    rng = np.random.default_rng(7)
    px, py, pz = rng.normal(0, 3, (3, N))
    frame = pd.DataFrame({"px": px, "py": py, "pz": pz, "pt": np.hypot(px, py), "eta": rng.normal(0, 1.5, N),
                          "<b>q</b>": rng.normal(size=N), "w": 0.5 + rng.random(N)})
    folder = tmp_path_factory.mktemp("data")
    frame.to_parquet(folder / "muons.parquet", index=False)
    return folder, frame


@pytest.fixture
def view(root, tmp_path):
    session = Session(data_root=root[0], workdir=tmp_path / "work")
    session.load("muons.parquet")
    return DataView(state=session)


def test_a_weight_is_suggested_never_modelled_and_applied_by_the_selector(view, root):
    session, frame = view.state, root[1]
    assert "w" not in session.features and "left out column 'w' looks like an event weight" in session.notice
    assert list(view.weights.options.items())[:2] == [("none (unweighted)", ""), ("w (named like a weight)", "w")]
    asyncio.run(view.apply(weights="w"))
    sample = session.sample
    assert sample.weight_column == "w" and "w" not in session.features
    np.testing.assert_array_equal(sample.weights, frame["w"].to_numpy())
    effective = frame["w"].sum() ** 2 / (frame["w"] ** 2).sum()
    assert f"weighted by 'w': effective sample size (Σw)²/Σw² {effective:,.0f}" in shown(view.loaded())


@pytest.mark.parametrize(("cut", "words"), [
    ("pt > 2 and abs(eta) < 1", None),
    ("pt > 2 and etaa < 1", "muons.parquet: column 'etaa': is read by the cut 'pt > 2 and etaa < 1' but is not a "
                            "column (closest: 'eta'"),
    ("pt > (2", "is not a valid expression"),
    ("`<b>q</b>` > 0 and pt.real > 1", "uses attribute access"),
])
def test_the_cut_is_counted_as_typed_and_its_problem_shown_as_text(view, root, cut, words):
    frame = root[1]
    asyncio.run(view.count(cut))
    text = shown(view.cut_count.object)
    if words is None:
        kept = int(((frame["pt"] > 2) & (frame["eta"].abs() < 1)).sum())
        assert text == f"keeps {kept:,} of {N:,} rows ({kept / N:.1%})" and "bad" not in view.cut_count.css_classes
    else:
        assert text.startswith("⚠") and words in text and "bad" in view.cut_count.css_classes
        with pytest.raises(InputError) as refused:  # what train --cut says, word for word
            load_mc(root[0] / "muons.parquet", cut=cut)
        assert text == f"⚠ {refused.value}"
        assert "<b>" not in view.cut_count.object  # escaped: the cut's text is shown, never markup
        assert "`<b>q</b>`" in text or "<b>" not in cut
    asyncio.run(view.count(""))
    assert view.cut_count.object == ""


def test_a_suggested_identity_is_derived_in_one_click(view):
    session = view.state
    assert [s.derive for s in session.suggestions] == ["pt = hypot(px, py)"]
    button = next(w for w in view.derived_slot if isinstance(w, pn.widgets.Button))
    assert button.label == "Derive pt = hypot(px, py)"
    asyncio.run(view.apply(derive=session.suggestions[0]))
    assert session.sample.derived == {"pt": "hypot(px, py)"} and "pt" not in session.features
    assert session.suggestions == [] and "Derived (computed after generation): pt = hypot(px, py)" in shown(
        view.derived_slot[0].object)
    asyncio.run(view.apply(derive={}))
    assert session.sample.derived == {} and "pt" in session.features


def test_selection_weights_and_derived_columns_reach_the_training(view, tiny_config):
    session = view.state
    asyncio.run(view.apply(cut="pt > 1"))
    asyncio.run(view.apply(weights="w"))
    asyncio.run(view.apply(derive=session.suggestions[0]))
    session.features = ["px", "py", "pz", "eta"]
    session.config.param.update(tiny_config(max_epochs=2).to_dict())
    session.cut = "pt > 3"  # typed, not applied: what trains must be what was loaded
    with pytest.raises(InputError, match="not those of the loaded MC.*press Load"):
        session.start()
    session.cut = "pt > 1"
    session.start()
    session.wait(timeout=300)
    assert session.run is not None, session.notice
    config = json.loads((session.run.path / "config.json").read_text())
    assert (config["cut"], config["weights"], config["derive"]) == ("pt > 1", "w", {"pt": "hypot(px, py)"})
    data = session.run.info["data"]
    assert data["cut"] == "pt > 1" and data["weights"]["column"] == "w" and list(data["derived"]) == ["pt"]
    generated = session.run.generate(200)
    np.testing.assert_allclose(generated["pt"], np.hypot(generated["px"], generated["py"]), rtol=1e-6)


def test_another_file_starts_without_the_previous_files_cut_weights_and_count(view, root):
    """The cut, weights and derived columns name the previous file's columns: another file starts
    without them (its Load failed on a cut of columns it does not have, beside the old file's count)."""
    session = view.state
    other = root[1][["eta", "w"]].rename(columns={"eta": "y"})
    other.to_parquet(root[0] / "other.parquet", index=False)
    session.refresh_sources()
    asyncio.run(view.apply(cut="pt > 1"))
    asyncio.run(view.apply(weights="w"))
    asyncio.run(view.count("pt > 1"))
    assert view.cut_count.object.startswith("keeps")
    session.source = "other.parquet"
    assert (session.cut, session.weights, session.derive) == ("", None, {})
    assert (view.cut.value, view.weights.value, view.cut_count.object) == ("", "", "")
    session.load()
    assert len(session.sample.frame) == N and session.sample.cut is None, session.notice
