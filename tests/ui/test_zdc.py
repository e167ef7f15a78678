"""The ZDC tab at the param level, without a browser: a real training on 200 toy events (a few
seconds), its live WS history, the gallery of real and generated responses to the same
conditions, pause / resume / stop, and refused files."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from pyviz_comms import Comm

from recogan_app.data import toy_zdc
from recogan_app.families.zdc import ZDCRun
from recogan_app.ui import Dashboard
from recogan_app.ui.plots import (CHANNEL_COLORS, Gallery, channel_ws_rows, condition_title, gallery_canvas,
                                  zdc_ws_curves)
from recogan_app.ui.zdc import ZDCView
from recogan_app.ui.zdc_state import TOY, ZDCSession
from recogan_app.validation import compare_histograms
from recogan_app.zdc_validation import GALLERY_EVENTS, compare_heldout

SHARED = dict(batch_size=32, snapshot_rows=50, eval_draws=2, max_epochs=3, time_limit=None, device="cpu")
TINY = {"vae": dict(SHARED, decoder_width=4), "gan": dict(SHARED, generator_channels=4, aux_epochs=1)}


def render(viewable) -> None:
    pn.panel(viewable).get_root(Document(), comm=Comm())


def tiny_session(tmp_path, model="vae", **overrides) -> ZDCSession:
    session = ZDCSession(workdir=tmp_path / "work", toy_events=200, model=model)
    session.config.param.update({**TINY[model], **overrides})  # in place: the widgets stay bound
    return session


def follow(view: ZDCView, timeout: float = 120) -> None:
    """Call the view's periodic callback as the server would, until it stops itself."""
    deadline = time.monotonic() + timeout
    while view.polling:
        assert time.monotonic() < deadline, "the training did not end"
        view.poll()
        time.sleep(0.05)


def poll_until(session: ZDCSession, condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        session.poll()
        time.sleep(0.05)


@pytest.fixture(scope="module")
def followed(tmp_path_factory):
    """A ZDC view that followed a 3-epoch training of the default model (the Poisson VAE) on the toy
    to its end, as a page would."""
    session = tiny_session(tmp_path_factory.mktemp("zdc"))
    view = ZDCView(state=session)
    render(view)
    view.start()  # loads the toy itself
    follow(view)
    assert isinstance(session.run, ZDCRun), session.notice
    return view


# -- the state ----------------------------------------------------------------------------------------


def test_training_records_the_ws_history_and_the_toy_floor(followed):
    session = followed.state
    assert session.sample is not None and len(session.sample) == 200 and session.simulated
    history = session.history
    assert list(history["epoch"]) == [1, 2, 3]
    assert np.allclose(history["ws_mean"], history[[f"ws_ch{k}" for k in range(1, 6)]].mean(axis=1))
    assert (history["sample_size"] > 0).all() and history["hottest_pixel_error"].notna().all()
    assert session.floor.shape == (5,) and (session.floor > 0).all() and np.isfinite(session.floor).all()
    assert session.status == "finished" and "run saved" in session.notice


def test_snapshot_gallery_pairs_real_and_generated_for_the_same_conditions(followed):
    session = followed.state
    snapshot = session.snapshot.details
    comparison = session.comparison
    assert len(snapshot["gallery_conditions"]) == len(snapshot["gallery_real"]) >= GALLERY_EVENTS
    for image, conditions in zip(snapshot["gallery_real"], snapshot["gallery_conditions"]):
        # the real image is an event of exactly these conditions in the loaded sample
        same = np.flatnonzero((session.sample.conditions == conditions).all(axis=1))
        assert any(np.array_equal(session.sample.images[i], image) for i in same)
    assert comparison is not None


def test_the_saved_run_switches_the_gallery_to_heldout_events(followed):
    """The engine's comparison (tests/test_zdc_validation.py) of the run, for the gallery's seed."""
    session = followed.state
    comparison = session.comparison  # switched to held-out events when the run was saved
    seed = session.gallery_seed
    expected = compare_heldout(session.run, seed)
    assert comparison.label == expected.label and comparison.label.startswith("held-out events")
    for name in ("real", "generated", "conditions", "channels_real", "channels_generated"):
        assert np.array_equal(getattr(comparison, name), getattr(expected, name)), name

    asyncio.run(followed.other_events())
    assert session.gallery_seed == seed + 1 and session.comparison is not comparison
    shown = followed.figures["gallery"].image.data["image"][0]
    assert np.array_equal(np.flipud(shown), gallery_canvas(session.comparison.real, session.comparison.generated)[0],
                          equal_nan=True)


def test_view_draws_every_live_plot_from_the_training(followed):
    view = followed
    assert set(view.figures) >= {"ws", "gallery", "channels"}
    ws = view.figures["ws"]
    assert set(ws.columns) == {"ch1", "ch2", "ch3", "ch4", "ch5", "mean"} and list(ws.source.data["epoch"]) == [1, 2, 3]
    history = view.state.history
    assert np.allclose(ws.source.data[ws.columns["ch1"]], np.maximum(history["ws_ch1"], 1e-3))
    assert ws.spans["ch1"].location == pytest.approx(view.state.floor[0])
    comparison = view.state.comparison
    labels = view.figures["gallery"].labels.data["text"]
    assert sum("GeV" in text for text in labels) == len(comparison.conditions)
    for name in ("ws", "gallery", "channels"):
        assert isinstance(view.slots[name][0], pn.pane.Bokeh)
    text = view.status_text()
    assert text.startswith("**finished** · epoch 3") and "toy floor" in text and "held-out test" in text
    assert "Poisson VAE" in text and session_kind(view) == "zdc-vae"
    assert not view.other_button.disabled
    view.channel = "ch2"  # the histogram follows the chosen channel
    histogram = view.figures["channels"]
    expected = compare_histograms(comparison.channels_real[:, 1], comparison.channels_generated[:, 1], integer=True)
    np.testing.assert_array_equal(histogram.sources["reference"].data["top"], expected.reference)
    np.testing.assert_allclose(histogram.sources["generated"].data["top"], expected.synthetic_scaled)
    assert histogram.figure.title.text.startswith("ch2 photon sum: real vs generated")
    render(view)


def session_kind(view: ZDCView) -> str:
    return view.state.run.kind


def test_pause_resume_stop_drive_the_worker(tmp_path):
    session = tiny_session(tmp_path, "gan", max_epochs=10_000, patience=10_000)
    session.use_aux = False
    session.start()
    with pytest.raises(Exception, match="running already"):
        session.start()
    poll_until(session, lambda: session.history is not None and len(session.history) >= 1)
    session.pause()
    assert session.status == "pausing"
    poll_until(session, lambda: session.status == "paused")
    frozen = len(session.history)
    time.sleep(0.8)
    session.poll()
    assert len(session.history) == frozen
    session.resume()
    assert session.status == "running"
    poll_until(session, lambda: len(session.history) > frozen)  # the WS history grows
    session.stop()
    assert session.status == "stopping"
    session.wait(timeout=60)
    assert session.status == "stopped" and session.result.reason == "stopped"
    assert isinstance(session.run, ZDCRun)


def test_model_selector_switches_the_settings_and_the_controls(tmp_path):
    """The Poisson VAE first (the CLI's default); the GAN's λs and profile show only for the GAN, and
    each model keeps its own settings while the other is chosen."""
    session = ZDCSession(workdir=tmp_path / "work", toy_events=200)
    view = ZDCView(state=session)
    render(view)
    model, = [w for w in view.layout.select(pn.widgets.Select) if w.name == "Model"]
    assert model.value == "vae" and type(session.config).__name__ == "ZDCVAEConfig"
    profile, = [w for w in view.layout.select(pn.widgets.Select) if w.name == "Profile"]
    around = [c for c in view.layout.select(pn.Column) if any(w is profile for w in c.select(pn.widgets.Select))]
    hidden = [c for c in around if not c.visible]
    assert len(hidden) == 1  # the GAN's controls
    session.config.time_limit = 33.0
    model.value = "gan"  # as a click in the page does
    assert session.model == "gan" and type(session.config).__name__ == "ZDCConfig" and hidden[0].visible
    assert session.config.time_limit == 120.0 and session.job_settings().profile == "cpu"
    model.value = "vae"
    assert session.config.time_limit == 33.0 and session.job_settings().to_dict() == session.config.to_dict()


def test_profile_selector_sizes_the_next_training(tmp_path):
    session = ZDCSession(workdir=tmp_path / "work", toy_events=200, model="gan")
    view = ZDCView(state=session)
    render(view)
    select, = [w for w in view.layout.select(pn.widgets.Select) if w.name == "Profile"]
    assert select.value == "auto" and list(select.options) == ["auto", "cpu", "gpu", "seed001"]
    assert session.job_settings().profile == "cpu"  # no CUDA on the test machine
    select.value = "seed001"  # as a click in the page does
    assert session.config.profile == "seed001"
    settings = session.job_settings()
    assert (settings.generator_channels, settings.batch_size, settings.lr_generator, settings.lr_discriminator) == (
        128, 128, 1e-4, 1e-5)  # seed 001's published sizes
    session.config.batch_size = 64  # a size typed in the settings wins over the profile's
    assert session.job_settings().batch_size == 64 and session.job_settings().generator_channels == 128


def test_switched_off_penalties_train_with_lambda_zero(tmp_path):
    session = tiny_session(tmp_path, "gan")
    session.use_diversity = session.use_aux = False
    settings = session.job_settings()
    assert (settings.lambda_diversity, settings.lambda_aux) == (0, 0)
    assert settings.lambda_intensity == session.config.lambda_intensity > 0
    assert session.config.lambda_diversity > 0  # the chosen value is kept for when it is switched on again


# -- files ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zp")
    toy_zdc.generate(120, seed=3).save(folder / "good.npz")
    (folder / "broken.npz").write_bytes(b"not an npz file")
    (folder / "table.parquet").write_bytes(b"tabular MC, not offered here")
    return folder


def test_files_under_the_root_load_and_a_bad_one_gives_a_notice(root, tmp_path):
    session = ZDCSession(data_root=root, workdir=tmp_path)
    assert list(session.param.source.objects.values()) == [TOY, "broken.npz", "good.npz"]
    sample = session.load("good.npz")
    assert len(sample) == 120 and not session.simulated and session.notice_level == "success"
    with session.reporting():
        session.load("broken.npz")
    assert session.notice_level == "danger" and "broken.npz" in session.notice and "\n" not in session.notice
    assert session.sample is sample  # the failed load changed nothing
    with session.reporting():
        session.load("../outside.npz")
    assert "outside the data root" in session.notice


def test_without_a_data_root_only_the_toy_is_read(tmp_path, root):
    session = ZDCSession(workdir=tmp_path)
    with session.reporting():
        session.load(str(root / "good.npz"))
    assert session.notice_level == "danger" and "reads no files" in session.notice and session.sample is None


def test_the_dashboard_has_a_zdc_tab_and_one_notice_line(tmp_path):
    dashboard = Dashboard(workdir=tmp_path)
    assert list(dashboard.views)[-1] == "ZDC" and dashboard.views["ZDC"].state is dashboard.zdc
    assert dashboard.zdc.workdir == dashboard.state.workdir
    with dashboard.zdc.reporting():
        dashboard.zdc.load("nowhere.npz")
    assert dashboard.state.notice == dashboard.zdc.notice and dashboard.state.notice_level == "danger"
    render(dashboard)


# -- plots ------------------------------------------------------------------------------------------------


def test_ws_curves_sit_over_their_floors_in_their_colours(followed):
    rows = channel_ws_rows(followed.state.snapshot, followed.state.floor)
    curves = zdc_ws_curves(rows)
    lines = [(span.location, span.line_color, span.visible) for span in curves.spans.values()]
    floor = followed.state.floor
    assert lines == [*((f, CHANNEL_COLORS[f"ch{k + 1}"], True) for k, f in enumerate(floor)),
                     (pytest.approx(floor.mean()), "black", True)]
    assert min(curves.floor_points.data["floor"]) == floor.min()  # the floors stay in range
    ticks = curves.log_ticks.ticks  # and the log axis labels them: a tick at or below the lowest floor
    assert ticks[0] <= floor.min() and ticks[-1] >= rows["ws"].max() and len(ticks) >= 3
    assert not any(span.visible for span in zdc_ws_curves(channel_ws_rows(followed.state.snapshot)).spans.values())


def test_gallery_frames_share_one_colour_scale_and_name_the_conditions():
    sample = toy_zdc.generate(40, seed=1)
    sample = sample.subset(sample.photon_sums > 0)
    real, conditions = sample.images[:4], sample.conditions[:4]
    generated = np.stack([toy_zdc.simulate(conditions, seed=2), toy_zdc.simulate(conditions, seed=3)], axis=1)
    canvas, corners, tops = gallery_canvas(real, generated, cols=3)
    for (y, x), top, image, fakes in zip(corners, tops, real, generated):
        assert top == max(image.max(), fakes.max())
        pictures = [canvas[y:y + 56, left:left + 30] * top for left in (x, x + 32, x + 64)]  # 2 columns apart
        assert all(np.allclose(a, b) for a, b in zip(pictures, [image, *fakes]))
    assert np.nanmax(canvas) == 1.0 and np.isnan(canvas).any()
    gallery = Gallery(SimpleNamespace(real=real, generated=generated, conditions=conditions), cols=3)
    titles = [text for text in gallery.labels.data["text"] if "GeV" in text]
    assert titles == [f"{condition_title(c)}\nmax {top} photons" for c, top in zip(conditions, tops)]
    assert condition_title([2512.0, 0, 0, 0, 0, 0, 2512.0, 938.272, 1]) == "p 2,512 GeV (938.3 MeV, +1)"
