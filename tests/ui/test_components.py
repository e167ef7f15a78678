"""The dashboard's state and views at the param level, without a browser.

Views are rendered to Bokeh models with ``get_root(Document(), comm=Comm())``; the training runs
for real on a tiny sample (one shared run for the validation and export tests).
"""

from __future__ import annotations

import asyncio
import gc
import html
import json
import queue
import re
import time
from types import SimpleNamespace
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import pytest
from scipy import stats
import torch
from bokeh.document import Document
from bokeh.models import BoxAnnotation, ColumnDataSource, LinearColorMapper
from panel.io.state import set_curdoc
from pyviz_comms import Comm

from recogan_app.cli import main
from recogan_app.data.sources import MCSample
from recogan_app.data.toy_xic import generate
from recogan_app.errors import InputError
from recogan_app.metrics.distributions import ks_floor
from recogan_app.metrics.verdict import EXCELLENT, GOOD, RESIDUAL_TOLERANCE
from recogan_app.report import efficiency_verdict
from recogan_app.training.events import Snapshot
from recogan_app.ui import Dashboard, Session
from recogan_app.ui import app as app_module
from recogan_app.ui.app import create_app, settle_stylesheets
from recogan_app.ui.data import DataView
from recogan_app.ui.live import OFF, ON, REDRAW_S
from recogan_app.ui.export import ExportView
from recogan_app.ui.plots import Heatmap, HistogramComparison, ks_curves, log_ticks, loss_curves, snapshot_rows
from recogan_app.ui.preprocessing import PreprocessingView
from recogan_app.ui.state import AUTO_SETTINGS, files_under, inside
from recogan_app.ui.training import TrainingView
from recogan_app.ui.validation import ValidationView
from recogan_app.validation import compare_histograms, validate

FEATURES = ["pt", "decay_length", "cos_pa"]


def shrink(session: Session, tiny_config, **overrides) -> None:
    """Give a session the shared tiny training settings (in place: the widgets stay bound)."""
    session.config.param.update(tiny_config(**overrides).to_dict())


def render(viewable) -> None:
    """Build the Bokeh models of a viewable, as a notebook would."""
    pn.panel(viewable).get_root(Document(), comm=Comm())


def shown(markdown: str) -> str:
    """The text a Markdown pane shows for ``markdown`` (escapes and markup rendered)."""
    rendered = html.unescape(pn.pane.Markdown(markdown)._transform_object(markdown)["object"])
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root with one small MC file, a hidden one and an unreadable one."""
    folder = tmp_path_factory.mktemp("data")
    generate(n=1500, seed=0)[FEATURES].to_parquet(folder / "small.parquet")
    (folder / ".hidden").mkdir()
    generate(n=100, seed=1)[FEATURES].to_parquet(folder / ".hidden" / "secret.parquet")
    (folder / "broken.parquet").write_bytes(b"not a parquet file")
    (folder / "notes.txt").write_text("not MC")
    return folder


@pytest.fixture
def session(root, tmp_path) -> Session:
    session = Session(data_root=root, workdir=tmp_path / "work")
    session.load("small.parquet")
    return session


@pytest.fixture(scope="module")
def trained(root, tmp_path_factory, tiny_config) -> Session:
    """A session that trained a tiny run to the end."""
    session = Session(data_root=root, workdir=tmp_path_factory.mktemp("work"))
    session.load("small.parquet")
    shrink(session, tiny_config, max_epochs=3)
    session.start()
    session.wait(timeout=300)
    assert session.run is not None, session.notice
    fit = session.run.info["fit"]  # the CLI's words, epochs counted from 1
    assert f"after 3 epochs ({fit['steps']} steps); best epoch {fit['best_epoch'] + 1} (the one kept)" in session.notice
    return session


# -- files: only under the data root ------------------------------------------------------------


def test_inside_refuses_paths_leaving_the_root(root, tmp_path):
    assert inside(root, "small.parquet") == (root / "small.parquet").resolve()
    for escape in ("../x.parquet", "/etc/passwd", str(tmp_path)):
        with pytest.raises(Exception, match="outside the data root"):
            inside(root, escape)
    (root / "link.parquet").symlink_to(tmp_path)
    try:
        with pytest.raises(Exception, match="outside the data root"):
            inside(root, "link.parquet")
    finally:
        (root / "link.parquet").unlink()


def test_sources_list_toys_and_visible_mc_files(root):
    assert files_under(root) == ["broken.parquet", "small.parquet"]
    session = Session(data_root=root)
    assert list(session.param.source.objects)[:2] == ["toy-xic", "toy-xic-12"]
    assert "small.parquet" in session.param.source.objects


def test_listing_the_data_root_skips_hidden_folders_and_links_and_is_bounded(tmp_path, monkeypatch):
    from recogan_app.ui import state as state_module

    for folder in ("a", "a/b", ".hidden", "z"):
        (tmp_path / folder).mkdir()
    for name in ("a/one.csv", "a/b/two.parquet", ".hidden/three.csv", "a/.four.csv", "z/five.csv", "a/notes.txt"):
        (tmp_path / name).write_text("x\n1\n")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # a folder link (here a loop) is not entered
    assert files_under(tmp_path) == ["a/b/two.parquet", "a/one.csv", "z/five.csv"]
    assert files_under(tmp_path, suffixes=(), names={"notes.txt"}) == ["a/notes.txt"]
    monkeypatch.setattr(state_module, "MAX_WALKED", 7)  # root: a, z; a: b, loop and 3 files; then it gives up
    assert files_under(tmp_path) == ["a/one.csv"]


def test_without_a_data_root_files_are_refused_with_a_notice(root):
    session = Session()
    with session.reporting():
        session.load(str(root / "small.parquet"))
    assert session.notice_level == "danger" and "reads no files" in session.notice
    assert session.sample is None


# -- data --------------------------------------------------------------------------------------


def test_load_chooses_every_feature_and_suggests_transforms(session):
    assert session.features == FEATURES
    assert session.suggested["cos_pa"] == "arccos+quantile"
    assert session.transforms == session.suggested
    assert session.summary.loc["pt", "invalid"] == 0
    assert session.notice_level == "success" and "1,500 rows × 3 features" in session.notice


def test_bad_file_gives_one_line_notice_and_keeps_the_sample(session):
    before = session.sample
    with session.reporting():
        session.load("broken.parquet")
    assert session.notice_level == "danger"
    assert "broken.parquet: could not be read as Parquet" in session.notice and "\n" not in session.notice
    assert session.sample is before


def test_new_files_are_listed_on_refresh_and_left_out_columns_named(tmp_path):
    session = Session(data_root=tmp_path, workdir=tmp_path / "work")
    view = DataView(state=session)
    (tmp_path / "mc.csv").write_text("a,label,b\n1,x,2\n2,y,5\n3,z,1\n")  # after the page opened
    assert "mc.csv" not in session.param.source.objects
    view.refresh.clicks += 1
    assert "mc.csv" in session.param.source.objects
    session.load("mc.csv")
    assert session.features == ["a", "b"]
    assert session.notice_level == "warning" and "left out column 'label'" in session.notice


def test_upload_is_written_to_the_workdir_and_loaded(session, root):
    with pytest.raises(Exception, match="unsupported extension"):
        session.upload("notes.txt", b"x")
    path = session.upload("mine.parquet", (root / "small.parquet").read_bytes())
    assert Path(path).is_relative_to(Path(session.workdir).resolve())
    assert session.source == path
    assert session.load().frame.shape == (1500, 3)


def test_trees_are_offered_when_a_file_holds_several(root, tmp_path):
    frame = generate(n=50, seed=0)[FEATURES]
    frame.to_hdf(root / "two.h5", key="a")
    frame.to_hdf(root / "two.h5", key="b")
    try:
        session = Session(data_root=root, workdir=tmp_path)
        session.source = "two.h5"
        assert session.param.tree.objects == ["a", "b"] and session.tree == "a"
        session.tree = "b"
        assert session.load().tree == "b"
    finally:
        (root / "two.h5").unlink()


def test_data_histograms_keep_no_bokeh_model_of_a_figure_no_longer_shown(session):
    def sources() -> int:
        gc.collect()
        return sum(type(o) is ColumnDataSource for o in gc.get_objects())

    view = DataView(state=session)
    before = sources()
    for _ in range(3):  # each draw replaces the last: HoloViews kept every one (a closed page's too)
        asyncio.run(view.draw_histograms())
    assert sources() - before == len(FEATURES)  # the figure shown: one data source per feature
    assert len(view.histogram_slot[0]) == len(FEATURES)  # one figure per feature


def test_data_view_loads_in_a_thread_and_lists_features(root, tmp_path):
    session = Session(data_root=root, workdir=tmp_path)
    view = DataView(state=session)
    session.source = "small.parquet"
    asyncio.run(view.load())
    assert session.features == FEATURES
    assert list(view.features.options) == FEATURES
    assert view.loaded().startswith("**Loaded:**")
    assert "small.parquet" in shown(view.loaded()) and "1,500 rows" in view.loaded()
    asyncio.run(view.draw_histograms())  # one figure per feature, drawn from all its rows (fewer than a preview)
    figures = [pane.object for pane in view.histogram_slot[0]]
    assert [figure.title.text for figure in figures] == FEATURES
    for feature, figure in zip(FEATURES, figures):
        bars = figure.renderers[0].data_source.data
        edges = np.append(bars["left"], bars["right"][-1])
        counts, _ = np.histogram(session.sample.frame[feature], edges)
        np.testing.assert_allclose(bars["top"], counts / counts.sum() / np.diff(edges))
    session.source = "broken.parquet"  # a failed load: the previous sample stays, and the page says which
    asyncio.run(view.load())
    assert session.notice_level == "danger" and "small.parquet" in shown(view.loaded())
    with param.discard_events(view.source):  # picked, its trees not listed yet: Load clicked at once
        view.source.value = "small.parquet"
    asyncio.run(view.load())
    assert session.source == "small.parquet" and session.notice_level != "danger"
    render(view)


def test_row_subset_is_seeded(session):
    session.max_rows = 200
    first, second = session.training_sample().frame, session.training_sample().frame
    assert len(first) == 200 and first.equals(second)
    session.features = ["pt"]
    assert list(session.training_sample().frame.columns) == ["pt"]


# -- preprocessing ------------------------------------------------------------------------------


def test_preprocessing_view_changes_a_spec_and_previews_it(session):
    view = PreprocessingView(state=session)
    assert [s.label.split(" ")[0] for s in view.selectors] == FEATURES
    view.selectors[0].value = "log1p+quantile"
    assert session.transforms["pt"] == "log1p+quantile" and session.preview_feature == "pt"
    raw, transformed = session.preview()
    assert raw.shape == transformed.shape and abs(np.median(transformed)) < 0.1
    render(view)


def test_a_spec_that_does_not_fit_shows_a_notice(session):
    view = PreprocessingView(state=session)
    session.choose_transform("pt", "arccos+quantile")  # momenta are not cosines
    view.preview()
    assert session.notice_level == "danger" and "arccos" in session.notice


def test_a_column_named_like_a_title_field_is_previewed_as_named(tmp_path):
    """HoloViews fills ``{...}`` in plot titles: a column named ``{x}`` raised KeyError and lost the preview."""
    session = Session(workdir=tmp_path)
    session.use(MCSample(frame=generate(n=500, seed=0)[["pt"]].rename(columns={"pt": "{x}"}), source="t.csv",
                         tree=None, n_dropped=0, invalid_counts={}, skipped={}))
    plot = hv.render(PreprocessingView(state=session).preview())
    assert [child.title.text for child, *_ in plot.children] == ["{x} (MC)", f"after {session.transforms['{x}']}"]


# -- training -------------------------------------------------------------------------------------


def fake_snapshot(epoch: int, features=FEATURES) -> Snapshot:
    rng = np.random.default_rng(epoch)
    table = pd.DataFrame({"ks": rng.uniform(0, 0.2, len(features)), "wasserstein": rng.uniform(0.01, 1, len(features))},
                         index=features)
    residual = pd.DataFrame(rng.uniform(-0.1, 0.1, (len(features),) * 2), index=features, columns=features)
    sample = pd.DataFrame(rng.normal(size=(100, len(features))), columns=features)
    return Snapshot(epoch=epoch, step=10 * (epoch + 1), elapsed_s=epoch + 1.0, score=1.0,
                    metrics={"mean_ks": 0.1, "max_ks": 0.2, "max_corr_residual": 0.1}, sample_size=100,
                    details={"per_feature": table, "corr_residual": residual, "reference": sample, "synthetic": sample})


def test_a_transform_that_does_not_fit_is_refused_at_start(session):
    session.choose_transform("pt", "arccos")  # pt runs to 24: no cosine
    with pytest.raises(InputError, match="column 'pt'.*arccos"):
        session.start()
    assert session.status == "idle" and not (Path(session.workdir) / "runs").exists()
    raw, transformed = session.preview("cos_pa")
    assert transformed.shape == raw.shape and np.isfinite(transformed).all()
    with pytest.raises(InputError, match="column 'pt'"):  # the preview names the feature too
        session.preview("pt")


def test_start_answers_starting_at_once_and_a_refused_start_goes_back(session):
    """The page's Start says "starting" before any preparation (the load test's click answer);
    a start refused there restores the status, says why and leaves Start enabled."""
    view = TrainingView(state=session)
    seen = []
    view.prepare = lambda: seen.append((session.status, view.buttons["Start"].styles == OFF))
    session.choose_transform("pt", "arccos")
    asyncio.run(view.press_start())
    assert seen == [("starting", True)]
    assert session.status == "idle" and view.buttons["Start"].styles == ON
    assert session.notice_level == "danger" and "column 'pt'" in session.notice


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_training_that_fails_says_why_and_leaves_no_run_folder(session, tiny_config):
    shrink(session, tiny_config, max_epochs=1, device="cuda")  # the worker finds no GPU
    folder = session.start()
    session.wait(timeout=300)
    assert session.status == "failed" and session.run is None
    assert session.notice_level == "danger" and "cuda" in session.notice.lower()
    assert not folder.exists() and not any(folder.parent.iterdir())


def test_a_curve_of_one_point_is_drawn_as_a_dot():
    curves = loss_curves(pd.DataFrame({"step": [10, 10], "term": ["g_loss", "d_loss"], "value": [1.0, 0.5]}))
    for item in curves.figure.legend[0].items:  # one legend entry per term: its line and its dots
        assert sorted(type(r.glyph).__name__ for r in item.renderers) == ["Line", "Scatter"]


def test_log_axis_ticks_cover_the_values_one_step_beyond():
    assert log_ticks([3.1, 160]) == [2, 5, 10, 20, 50, 100, 200]  # under 2.5 decades: 1-2-5
    assert log_ticks([2e-5, 7, np.nan, 0, -1]) == [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10]  # wider: decades
    assert log_ticks([3.3, 3.4]) == [2, 5] and log_ticks([np.nan]) == []


def test_training_view_figures_start_with_the_first_data(session):
    view = TrainingView(state=session)
    session.status = "running"  # between Start and the first epoch the status line says what happens
    assert view.status_text() == "**running** · preparing (worker, data, networks): figures come with the first epoch"
    session.status = "idle"
    view.param.feature.objects = FEATURES
    view.feature = "pt"
    assert set(view.figures) == {"ks", "ws", "heatmap", "histogram", "losses"}  # blank: axes and curves known
    assert len(view.figures["ks"].source.data["epoch"]) == 0
    session.snapshots = [fake_snapshot(0)]
    session.param.update(snapshots=[fake_snapshot(1), fake_snapshot(2)], snapshot=fake_snapshot(2))
    session.losses = [{"step": 10, "epoch": 0, "g_loss": 1.0, "d_loss": 0.5}]
    ks = view.figures["ks"]
    assert list(ks.source.data["epoch"]) == [1, 2, 3]
    assert list(ks.source.data[ks.columns["pt"]]) == [fake_snapshot(e).details["per_feature"].loc["pt", "ks"]
                                                      for e in range(3)]
    assert view.figures["heatmap"].figure.title.text.endswith("epoch 3")  # the latest epoch, counted from 1
    assert list(view.figures["losses"].source.data["step"]) == [10]
    assert isinstance(view.slots["ks"][0], pn.pane.Bokeh)
    assert "MC (monitor split)" in [item.label.value for item in view.figures["histogram"].figure.legend[0].items]

    # max |Δρ| beside what chance gives 100 monitor against 100 generated rows, in the summary's words:
    # 1σ a pair √(1/99 + 1/99); the largest of K = 28 pairs below x with 68 %: (2Φ(x/σ) − 1)^K = 0.68
    pair, pairs = np.sqrt(2 / 99), len(FEATURES) * (len(FEATURES) - 1) // 2
    largest = pair * stats.norm.ppf((1 + 0.68 ** (1 / pairs)) / 2)
    assert (f"max |Δρ| 0.100 (noise {pair:.3f} a pair, up to {largest:.3f} over {pairs} pairs (68%)) at n = 100"
            in view.status_text())
    render(view)


def test_queued_plots_are_drawn_at_the_next_poll_at_most_every_redraw_s(session):
    view = TrainingView(state=session)
    view._poller = SimpleNamespace(running=True, stop=lambda: None)  # as during a training
    session.job = SimpleNamespace(running=True, events=queue.Queue(), result=None, drain=list)
    view.feature = None
    session.param.update(snapshots=[fake_snapshot(0)], snapshot=fake_snapshot(0))
    session.param.update(snapshots=[fake_snapshot(1)], snapshot=fake_snapshot(1))
    assert list(view.stale) == ["ks", "ws", "heatmap"] and len(view.stale["ks"]) == 2 * len(FEATURES)
    blank = dict(view.figures)
    assert len(blank["ks"].source.data["epoch"]) == 0
    view.poll()  # drawn on the blank figures: no new figure
    assert view.figures == blank and not view.stale
    assert list(view.figures["ws"].source.data["epoch"]) == [1, 2]
    assert view.figures["heatmap"].figure.title.text.endswith("epoch 2")
    session.param.update(snapshots=[fake_snapshot(2)], snapshot=fake_snapshot(2))
    view.poll()  # within REDRAW_S of the last redraw: the new epoch waits
    assert list(view.figures["ks"].source.data["epoch"]) == [1, 2] and "ks" in view.stale
    view.drawn_at = {name: at - REDRAW_S for name, at in view.drawn_at.items()}
    view.poll()  # then it is streamed onto the same figure
    assert list(view.figures["ks"].source.data["epoch"]) == [1, 2, 3] and not view.stale


def test_buttons_follow_the_status(session):
    view = TrainingView(state=session)
    enabled = lambda: {name for name, b in view.buttons.items() if b.styles != OFF}  # noqa: E731
    assert enabled() == {"Start"}
    session.status = "running"
    assert enabled() == {"Pause", "Stop"}
    session.status = "paused"
    assert enabled() == {"Resume", "Stop"}
    session.status = "finished"
    assert enabled() == {"Start"}


def test_a_trained_session_has_its_run_and_history(trained):
    assert trained.status == "finished" and trained.progress == 1.0
    assert trained.result.reason == "max_epochs" and trained.snapshot.epoch == 2
    assert trained.run.features == FEATURES and len(trained.run.history()) == 3
    assert not trained.polling
    assert "run saved" in trained.notice


def test_pause_resume_stop_drive_the_worker(session, tiny_config):
    shrink(session, tiny_config, max_epochs=10_000)
    session.start()
    with pytest.raises(Exception, match="running already"):
        session.start()
    session.pause()
    assert session.status == "pausing"
    wait_until(session, lambda: session.status == "paused")
    session.resume()
    assert session.status == "running"
    wait_until(session, lambda: session.snapshot is not None)  # an epoch to save (none: nothing is saved)
    session.stop()
    session.wait(timeout=300)
    assert session.status == "stopped" and session.result.reason == "stopped"


def wait_until(session: Session, condition, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        session.poll()
        time.sleep(0.05)


# -- validation and export --------------------------------------------------------------------------


def test_validation_view_validates_the_run(trained):
    view = ValidationView(state=trained, downloads=True)
    on = lambda button: button.styles != {**button.styles, **OFF}  # noqa: E731  (off by style: never Bokeh's disabled)
    assert on(view.validate_button) and not on(view.report_button)
    assert view.results().object.startswith("Press **Validate**")  # a run is there: not "Train a run"
    with pytest.raises(InputError, match="no validation yet"):  # its handler refuses out of turn too
        trained.save_report(None)
    view.rows = 300
    asyncio.run(view.run_validation())
    validation = trained.validation
    assert validation is not None and validation.features == FEATURES and validation.n_synthetic == 300
    assert (view.x, view.y) == ("pt", "decay_length") and on(view.report_button)
    assert not (view.validate_button.disabled or view.report_button.disabled)
    table = view.results()[1].object
    assert table.loc["pt", "ks_lo"] < table.loc["pt", "ks"] < table.loc["pt", "ks_hi"]  # the interval holds the KS
    assert view.results()[1].formatters["ks"](0.06) == "0.0600"  # KS in fixed decimals, beside its interval
    asyncio.run(view.save_report())
    report = next(Path(trained.workdir, "reports").glob("*.html"))  # linked, to be served from disk
    assert f'href="reports/{report.name}" download="{report.name}"' in view.report.object
    render(view)


def test_validation_view_shows_names_from_the_data_as_text(tmp_path):
    """The summary and the per-feature table of a validation whose features are named with markup: the
    names are escaped text in the HTML the page receives, no element comes from them."""
    names = {"pt": "<img src=x onerror=alert(1)>", "decay_length": "```\n<script>alert(2)</script>"}
    frame = generate(n=1200, seed=0)[list(names)].rename(columns=names)
    session = Session(workdir=tmp_path)
    session.validation = validate(frame.iloc[:600], frame.iloc[600:], baseline_train=None, n_boot=5,
                                  c2st_options={"n_estimators": 5, "max_depth": 2})
    summary, table = ValidationView(state=session).results()[:2]
    for pane in (summary, table):
        sent = html.unescape(pane._transform_object(pane.object)["object"])  # what the browser's pane shows
        assert "<img" not in sent and "<script" not in sent
        assert "&lt;img src=x onerror=alert(1)&gt;" in sent and "&lt;script&gt;alert(2)&lt;/script&gt;" in sent


def test_export_view_writes_a_file_and_refuses_below_the_gate(trained):
    view = ExportView(state=trained, rows=500, require="none", downloads=True)
    asyncio.run(view.run_export())
    exported = pd.read_parquet(trained.exported)
    name = Path(trained.exported).name  # linked, to be served from disk (no longer sent through the websocket)
    assert view.download.visible and f'href="exports/{name}" download="{name}"' in view.download.object
    assert exported.shape == (500, 3) and view.percent == 100
    assert trained.notice_level == "success"
    assert Path(str(trained.exported) + ".provenance.json").is_file()
    where = shown(view.where())  # the gate's verdict beside the MC's own KS noise, and what the sample is for
    assert "Last export" in where and "Validation against the run's held-out MC" in where and "differ by KS" in where
    assert "trained on" in where and "MC events" in where
    Path(str(trained.exported) + ".provenance.json").rename(Path(str(trained.exported) + ".moved.json"))
    assert shown(view.where()) == f"Last export: {trained.exported}"  # a sidecar moved away: no error on the page

    view.rows = 200  # fewer rows after an export: the bar measures the new one
    asyncio.run(view.run_export())
    assert view.percent == 100 and len(pd.read_parquet(trained.exported)) == 200

    view = ExportView(state=trained, rows=400, require="excellent", suffix=".h5")
    asyncio.run(view.run_export())  # a 3-epoch model is far from 'excellent'
    assert trained.notice_level == "warning" and trained.notice.startswith("export refused")
    assert not any(Path(trained.workdir, "exports").glob("*-400.h5"))
    view.force = True  # forced: written, and the notice warns that it is below the level asked for
    asyncio.run(view.run_export())
    assert trained.notice_level == "warning" and "FORCED" in trained.notice
    assert len(pd.read_hdf(trained.exported)) == 400

    for rows in (0, -10):  # a typed 0 or negative count: a notice, nothing written
        view.rows = rows
        asyncio.run(view.run_export())
        assert trained.notice_level == "danger" and "at least 1" in trained.notice
    assert not any(Path(trained.workdir, "exports").glob("*-0.*"))


# -- the dashboard and the app -------------------------------------------------------------------------


def test_dashboard_renders_trains_and_exposes_the_run(root, tmp_path, tiny_config):
    dashboard = Dashboard(str(root / "small.parquet"), workdir=tmp_path)
    assert dashboard.state.features == FEATURES and dashboard.run is None
    assert list(dashboard.views) == ["Data", "Preprocessing", "Training", "Validation", "Export", "Scan", "ZDC"]
    render(dashboard)
    shrink(dashboard.state, tiny_config, max_epochs=1)
    run = dashboard.train()
    assert run is dashboard.run and run.features == FEATURES


def test_create_app_opens_the_embedded_toy(monkeypatch, tmp_path):
    loaded = []
    monkeypatch.setattr(Session, "load", lambda self: loaded.append(self.source))
    page = create_app(workdir=tmp_path)
    assert isinstance(page, pn.template.BaseTemplate) and loaded == ["toy-xic"]


def test_serve_refuses_a_missing_data_root(tmp_path, capsys):
    assert main(["serve", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# -- plots ---------------------------------------------------------------------------------------------


def test_plots_carry_their_yardsticks():
    snapshot = fake_snapshot(0)
    rows = snapshot_rows(snapshot)
    assert rows["floor"].iloc[0] == pytest.approx(ks_floor(100, 100))
    ks = ks_curves(rows)
    assert [(span.location, span.visible) for span in ks.spans.values()] == [(rows["floor"].iloc[0], True)]
    bands = [box for box in ks.figure.select(type=BoxAnnotation) if box.level == "underlay"]  # not the zoom box
    assert sorted((band.bottom, band.top) for band in bands) == [(0, EXCELLENT[1]), (EXCELLENT[1], GOOD[1])]
    heatmap = Heatmap((snapshot.details["corr_residual"], 1))
    mapper = heatmap.figure.select_one(LinearColorMapper)
    assert (mapper.low, mapper.high) == (-RESIDUAL_TOLERANCE, RESIDUAL_TOLERANCE)
    residual = snapshot.details["corr_residual"]
    cells = dict(zip(zip(heatmap.source.data["x"], heatmap.source.data["y"]), heatmap.source.data["residual"]))
    assert cells[("pt", "cos_pa")] == residual.loc["cos_pa", "pt"]  # column x, row y, as Pearson(gen) - Pearson(MC)
    histogram = HistogramComparison((np.arange(100.0), np.arange(100.0), "pt"))
    assert "χ²/ndf 0.00" in histogram.figure.title.text and histogram.figure.xaxis.axis_label == "pt"
    expected = compare_histograms(np.arange(100.0), np.arange(100.0))
    np.testing.assert_array_equal(histogram.sources["reference"].data["top"], expected.reference)
    np.testing.assert_allclose(histogram.sources["generated"].data["high"] - histogram.sources["generated"].data["top"],
                               expected.synthetic_error)  # both carry error bars


def test_a_loaded_page_changes_its_texts_without_walking_its_model_graph(monkeypatch):
    """Panel gives a templated page's panes one more stylesheet (a new model) at their first
    update, and Bokeh then walks the page's whole model graph; settle_stylesheets does that once
    when the page loads, so that a status line, a notice or a list row later changes only text."""
    doc = Document()
    walks = []
    monkeypatch.setattr(doc.models, "recompute", lambda walk=doc.models.recompute: walks.append(1) or walk())
    made = []
    monkeypatch.setattr(app_module, "Dashboard", lambda *args, **kw: made.append(Dashboard(*args, **kw)) or made[-1])
    with set_curdoc(doc):
        page = create_app(data="toy-xic")
        page.server_doc(doc)
        dashboard = made[0]
        walks.clear()
        settle_stylesheets(dashboard.layout)
        assert len(walks) == 1
        view = dashboard.views["Training"]
        dashboard.state.param.update(status="running", notice="a notice <b>escaped</b>", log=[])
        dashboard.trainings.refresh()
        assert walks == [1]
        assert "**running**" in view.status_text()


def test_the_training_tab_trains_the_chosen_model_with_its_own_settings(session):
    view = TrainingView(state=session)
    shown = lambda: {name for card in view.settings if isinstance(card, pn.Card) for name in card[0].parameters}  # noqa: E731
    assert "lr_generator" in shown() and "coupling_transforms" not in shown()
    session.config.lambda_corr = 5.0
    session.model = "flow"
    assert "coupling_transforms" in shown() and "lr_generator" not in shown()
    session.config.param.update(max_epochs=2, batch_size=256, snapshot_rows=200, coupling_transforms=2,
                                hidden_widths=[16], device="auto")
    session.device_label = ""
    session.config.device = "cpu"  # the device line follows the flow's own settings
    assert session.device_label.startswith("CPU")
    view.start()
    session.wait(timeout=300)
    assert session.run is not None, session.notice
    assert session.run.kind == "flow" and json.loads((session.run.path / "run.json").read_text())["kind"] == "flow"
    assert session.training.label.startswith("training the flow on 1,500 rows × 3 features")
    assert set(session.run.generate(50).columns) == set(FEATURES)
    session.model = "gan"
    assert session.config.lambda_corr == 5.0  # each model keeps what was typed for it


def test_a_conditional_model_trains_validates_and_exports_from_the_tabs(tmp_path, monkeypatch):
    """The Training tab's Conditions: the quantile model (listed, with its own settings) trains the
    other features given them; the run generates given conditions; the Validation tab validates
    it, one generated row per held-out row, drawing the report's efficiency-ratio and relative-residual
    figures under their verdict; the Export tab takes a conditions file instead of Rows: a file that
    lacks a condition or cannot be read gets a notice naming it, and nothing is written; a file picked
    a moment before Export is the one exported."""
    from recogan_app.data import toy_wjet

    conditions, targets = ["gen_mu_px", "gen_jet_px"], ["reco_mu_px", "reco_jet_px"]
    toy_wjet.generate(3000, seed=0)[conditions + targets].to_parquet(tmp_path / "wjet.parquet")
    session = Session(data_root=tmp_path, workdir=tmp_path / "work")
    session.load("wjet.parquet")
    view = TrainingView(state=session)
    assert "quantile" in view.layout.select(pn.widgets.RadioButtonGroup)[0].options
    assert list(view.conditions.options) == conditions + targets and view.conditions.value == []
    session.model = "quantile"
    assert {name for card in view.settings if isinstance(card, pn.Card) for name in card[0].parameters} >= {
        "hidden_widths", "learning_rate"}
    view.conditions.value = conditions  # as a user picks them in the widget
    assert session.conditions == conditions and session.targets == targets
    session.config.param.update(max_epochs=2, snapshot_rows=300, hidden_widths=[16], device="cpu")
    view.start()
    session.wait(timeout=300)
    run = session.run
    assert run is not None, session.notice
    assert run.kind == "quantile" and run.conditions == conditions and run.features == targets
    assert session.training.label.startswith("training the quantile on 3,000 rows × 2 features given 2 conditions")
    assert view.param.feature.objects == targets
    given = toy_wjet.generate(20, seed=5)[conditions]
    assert run.generate(given, seed=1)[conditions].equals(given)

    validation = ValidationView(state=session, downloads=True)
    asyncio.run(validation.run_validation())
    assert session.validation is not None, session.notice
    assert session.validation.n_synthetic == run.info["data"]["n_test"]
    assert session.validation.conditional.figures()["efficiency_bins"] > 0
    verdict, efficiency, residuals = validation.conditional().objects  # the report's figures, here
    assert html.unescape(verdict.object) == f"<b>{efficiency_verdict(session.validation)}</b>"
    assert {axis.get_title() for axis in efficiency.object.axes} == {f"{t} vs {c}" for t in targets for c in conditions}
    assert [axis.get_title().split(":")[0] for axis in residuals.object.axes if axis.get_visible()] == [
        "(reco_mu_px − gen_mu_px) / gen_mu_px", "(reco_jet_px − gen_jet_px) / gen_jet_px"]

    export = ExportView(state=session, require="none", downloads=True)
    assert not export.rows_input.visible and export.given.visible
    assert "Export writes a row per row of the conditions file chosen" in shown(export.what())
    given = toy_wjet.generate(300, seed=6)[conditions]
    given.to_parquet(tmp_path / "given.parquet")
    given[conditions[:1]].to_parquet(tmp_path / "lacking.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"not a parquet file")
    session.refresh_sources()  # written after the page opened (its Refresh)
    asyncio.run(export.run_export())
    assert session.notice.startswith("no conditions file chosen")
    export.conditions_file.value = "lacking.parquet"  # as a user picks it (its trees listed in a thread)
    wait_until(session, lambda: session.conditions_source == "lacking.parquet", timeout=10)
    asyncio.run(export.run_export())
    assert session.notice_level == "danger" and session.notice.startswith(
        f"{tmp_path / 'lacking.parquet'}: column 'gen_jet_px': not found: it is a condition of the run")
    session.conditions_source = "broken.parquet"
    asyncio.run(export.run_export())
    assert session.notice_level == "danger" and session.notice.startswith(str(tmp_path / "broken.parquet"))
    assert not (tmp_path / "work" / "exports").exists()
    listed = session.keys  # a slow file: its trees are still being listed when Export is clicked
    monkeypatch.setattr(session, "keys", lambda source=None: (time.sleep(1), listed(source))[1])

    async def pick_and_export():  # on a running loop, as on the served page: the pick's listing is a task
        export.conditions_file.value = "given.parquet"
        await export.run_export()  # the file the selector shows, not the state's previous one

    asyncio.run(pick_and_export())
    assert session.notice_level == "success", session.notice
    assert f"exported 300 rows given the conditions of {tmp_path / 'given.parquet'}" in session.notice
    exported = pd.read_parquet(session.exported)
    assert list(exported.columns) == conditions + targets and exported[conditions].equals(given)
    provenance = json.loads(Path(f"{session.exported}.provenance.json").read_text())
    assert provenance["conditional"]["source"] == str(tmp_path / "given.parquet")
    assert f"(300 rows, one per row of {tmp_path / 'given.parquet'};" in shown(export.where())
    render(view), render(validation), render(export)


def test_auto_in_the_training_tab_trains_the_family_its_trial_picks_within_the_time_limit(session):
    view = TrainingView(state=session)
    session.model = "auto"
    shown = {name for card in view.settings if isinstance(card, pn.Card) for name in card[0].parameters}
    assert shown == set(AUTO_SETTINGS)  # what both families share; each keeps its own defaults otherwise
    session.config.param.update(max_epochs=2, time_limit=24.0, device="cpu")  # trials of 4 s each
    started = time.monotonic()
    view.start()
    session.wait(timeout=300)
    assert session.run is not None, session.notice
    choice = session.run.info["model_choice"]
    assert set(choice["monitor_auc"]) == {"tabular", "flow"} and choice["trial_s"] == 4.0
    assert session.run.kind == choice["chosen"] == min(choice["monitor_auc"], key=choice["monitor_auc"].get)
    assert session.run.info["fit"]["epochs"] <= 2 and time.monotonic() - started < 24 + 30  # + starting torch
    said = [message.text for message in session.log]
    assert any(re.match(r"auto: gan \d\.\d{3}, flow \d\.\d{3} .*; training the (gan|flow)$", text) for text in said), said
    assert session.training.label.startswith("training the family a trial picks (gan or flow) on 1,500 rows")
    assert set(session.run.generate(20).columns) == set(FEATURES)


def test_blank_figures_are_built_with_the_page_emptied_at_start_and_filled_by_the_first_epoch(session, monkeypatch):
    view = TrainingView(state=session)  # the features are known: the KS / WS curves and the heatmap's axes too
    built = dict(view.figures)
    assert set(built) == {"ks", "ws", "heatmap", "histogram", "losses"}  # the losses' curves unnamed yet
    assert built["losses"].columns == {} and not built["losses"].legend.visible
    assert list(built["ks"].columns) == FEATURES and len(built["ks"].source.data["epoch"]) == 0
    assert np.isnan(built["heatmap"].source.data["residual"]).all()
    assert all(isinstance(view.slots[name][0], pn.pane.Bokeh) for name in built)
    monkeypatch.setattr(session, "start", lambda: session.param.update(status="running"))
    job = SimpleNamespace(running=True, events=queue.Queue(), result=None, drain=list)

    def train() -> set[str]:
        """A training's start and first epoch; the figures its Start emptied (sent their data anew)."""
        before = {name: id(figure.source.data) for name, figure in built.items() if hasattr(figure, "source")}
        view.start()
        emptied = {name for name, data in before.items() if id(built[name].source.data) != data}
        view._poller = SimpleNamespace(running=True, stop=lambda: None)
        session.job = job
        view.feature = "pt"
        session.param.update(snapshots=[fake_snapshot(0)], snapshot=fake_snapshot(0))
        session.losses = [{"step": 10, "epoch": 0, "g_loss": 1.0, "d_loss": 0.5}]
        view.drawn_at = {}
        view.poll()
        return emptied

    assert train() == set()  # blank figures are left alone at Start; the first epoch only fills them: no new
    # figure, no new model in the page
    assert view.figures == built
    losses = built["losses"]
    assert list(losses.columns) == ["g_loss", "d_loss"] and [item.label.value for item in losses.items[:3]] == [
        "g_loss", "d_loss", ""]
    assert [item.visible for item in losses.items[:3]] == [True, True, False] and losses.legend.visible
    assert list(built["ks"].source.data["epoch"]) == [1]
    assert built["ks"].source.data[built["ks"].columns["pt"]][0] == fake_snapshot(0).details["per_feature"].loc["pt", "ks"]
    assert built["histogram"].figure.title.text.startswith("pt: MC vs generated")
    view._poller = None
    before = {name: id(figure.source.data) for name, figure in built.items() if hasattr(figure, "source")}
    view.start()  # a second training: the filled figures are emptied in place, the loss terms unnamed
    assert {name for name, data in before.items() if id(built[name].source.data) != data} >= {"ks", "ws", "heatmap",
                                                                                             "losses"}
    assert view.figures == built and losses.columns == {} and not any(item.visible for item in losses.items)
    assert train() == set()  # emptied by the view.start() above, so not again
    assert view.figures == built and list(built["ks"].source.data["epoch"]) == [1]
    session.losses = [{"step": 20, "epoch": 0, "nll": 2.0}]  # another family's terms name the freed curves
    view.drawn_at = {}
    view.poll()
    assert list(losses.columns) == ["nll"] and list(losses.source.data["step"]) == [20]
    assert list(losses.source.data[losses.columns["nll"]]) == [2.0]
    view._poller = None
    session.features = FEATURES[:2]  # idle, other features: blank figures of the new features
    assert list(view.figures["ks"].columns) == FEATURES[:2] and view.figures["ks"] is not built["ks"]
