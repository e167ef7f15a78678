"""Bounded resources of the served dashboard: the server's limits, Stop that escalates to a kill,
trainings listed across pages, closed pages that let go, and slow work kept off the event loop.

The trainings here are real child processes running the stand-ins of ``children.py``.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
import weakref

import numpy as np
import pandas as pd
import pytest
from children import patient, stubborn

from recogan_app.data import toy_zdc
from recogan_app.data.sources import load_mc
from recogan_app.data.toy_xic import generate
from recogan_app.errors import InputError
from recogan_app.training.background import KILL_AFTER_S, BackgroundTraining
from recogan_app.ui import Dashboard, Session, ZDCSession
from recogan_app.ui import state as state_module
from recogan_app.ui.data import DataView
from recogan_app.ui.running import HIDDEN, SHOWN, RunningTrainings
from recogan_app.ui.server import TRAININGS, Limits
from recogan_app.ui.validation import ValidationView
from recogan_app.ui.zdc import ZDCView

SLOW_S = 1.0
"""How long the slowed-down operations take: far longer than a click may wait."""


def wait_for(condition, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- Stop escalates ----------------------------------------------------------------------------------


def test_a_training_that_ignores_stop_is_killed_and_its_unfinished_run_removed(tmp_path):
    out = tmp_path / "runs" / "run-1"
    out.mkdir(parents=True)
    job = BackgroundTraining(stubborn, out=out)
    job.start()
    wait_for(lambda: any((tmp_path / "runs").glob(".run-1.partial-*")), what="the child to half-write its run")
    grace = 1.0
    asked = time.monotonic()
    job.stop(grace)
    job.join(grace + KILL_AFTER_S + 10)
    took = time.monotonic() - asked
    assert not job.running, "the stubborn child was not killed"
    assert grace <= took < grace + KILL_AFTER_S + 5  # SIGTERM is ignored: SIGKILL after KILL_AFTER_S
    assert job._process.exitcode == -9
    assert "did not stop within 1 s of Stop and was killed" in job.error
    assert list((tmp_path / "runs").iterdir()) == []  # neither the half run nor its .partial is left


# -- the server's limits -----------------------------------------------------------------------------


def test_trainings_beyond_the_server_limit_are_refused_and_listed_for_the_owner(tmp_path):
    limits = Limits(trainings=1, stop_grace_s=5)
    first, second = (Session(workdir=tmp_path / name, limits=limits, owner="alice") for name in "ab")
    first.launch(patient, first.config, "waiting for Stop")
    with second.reporting():
        second.launch(patient, second.config, "never starts")
    assert "runs 1 training(s) already" in second.notice and second.job is None
    assert list((tmp_path / "b" / "runs").iterdir()) == []  # the refused training made no folder
    listing, empty = RunningTrainings(owner="alice", rows=0), RunningTrainings(owner="bob", rows=1)
    _, row = listing.rows  # a row is added when more trainings run than the page has rows for
    assert row.styles == SHOWN and "waiting for Stop" in row[0].object and listing.rows[0].object == ""
    assert empty.rows[0].object.startswith("<i>none") and empty.rows[1].styles == HIDDEN
    row[1].clicks += 1  # the list's Stop button, as on another page
    first.wait(timeout=30)
    assert first.status == "failed" and TRAININGS.of("alice") == []
    listing.refresh()
    assert row.styles == HIDDEN and listing.rows[0].object.startswith("<i>none")


def test_time_limit_above_the_server_limit_is_refused_and_none_gets_it(tmp_path):
    generate(n=500, seed=0).to_parquet(tmp_path / "mc.parquet")
    session = Session(data_root=tmp_path, workdir=tmp_path, limits=Limits(time_limit_s=60))
    assert session.bounded(session.config.updated(time_limit=None)).time_limit == 60
    assert session.bounded(session.config.updated(time_limit=30)).time_limit == 30
    session.load("mc.parquet")
    session.config.time_limit = 61
    with session.reporting():
        session.start()
    assert "time limit 61 s is above this server's limit of 60 s" in session.notice and session.job is None


def test_rows_to_validate_and_export_beyond_the_limits_get_a_notice(tmp_path):
    from recogan_app.ui.export import ExportView

    session = Session(workdir=tmp_path, limits=Limits(validate_rows=1000, export_rows=5000))
    validation = ValidationView(state=session)
    validation.rows = 1001
    asyncio.run(validation.run_validation())
    assert "Generated rows: 1,001 rows is above this server's limit of 1,000" in session.notice
    assert "--max-validate-rows" in session.notice
    export = ExportView(state=session)
    export.rows = 5001
    asyncio.run(export.run_export())
    assert "Export: 5,001 rows is above this server's limit of 5,000" in session.notice
    conditions = load_mc(pd.DataFrame({"p": np.linspace(1, 2, 5001)}))  # a conditional run's: a row per row
    with pytest.raises(InputError, match="Export: 5,001 rows is above this server's limit of 5,000"):
        session.export(conditions)
    assert not (tmp_path / "exports").exists()


def test_serve_refuses_a_bad_limit_with_exit_2():
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", "serve", "--max-trainings", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--max-trainings (RECOGAN_MAX_TRAININGS) must be a positive finite number, got 0" in done.stderr


# -- closing a page ----------------------------------------------------------------------------------


def test_a_closed_page_stops_its_training_unless_kept_and_is_released(tmp_path):
    limits = Limits(stop_grace_s=5)
    kept, closed = (Dashboard(workdir=tmp_path / name, limits=limits, owner="carol") for name in ("kept", "closed"))
    for dashboard, detached in ((kept, True), (closed, False)):
        dashboard.state.detached = detached
        dashboard.state.launch(patient, dashboard.state.config, "detached" if detached else "attached")
    jobs = [kept.state.job, closed.state.job]
    states = [weakref.ref(d.state) for d in (kept, closed)]
    for dashboard in (kept, closed):
        dashboard.close()
    del kept, closed, dashboard
    gc.collect()
    assert [ref() for ref in states] == [None, None], "a closed page's state is still held"
    jobs[1].join(30)
    assert not jobs[1].running  # not kept: stopped with its page
    assert [t.label for t in TRAININGS.of("carol")] == ["detached"]  # kept: listed on any page, and stoppable
    assert jobs[0].events.empty()  # nobody reads its events any more: not collected
    TRAININGS.of("carol")[0].stop()
    jobs[0].join(30)
    assert TRAININGS.of("carol") == []


# -- slow work off the event loop --------------------------------------------------------------------


def slowed(function):
    """``function`` taking :data:`SLOW_S` longer, without using the CPU: a sleep on the event
    loop would hold every page up for that long."""

    def slow(*args, **kwargs):
        time.sleep(SLOW_S)
        return function(*args, **kwargs)

    return slow


async def longest_gap_during(work) -> float:
    """Run ``work`` (a coroutine) while a 20 ms ticker, standing for the other pages' clicks, runs
    on the same event loop; the longest the ticker waited between two ticks."""
    gaps, running = [0.0], True

    async def tick():
        last = time.monotonic()
        while running:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last - 0.02)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)  # ticking
    started = time.monotonic()
    await work
    await asyncio.sleep(0.1)  # what work scheduled (the histograms) runs too
    while time.monotonic() - started < SLOW_S:
        await asyncio.sleep(0.05)
    running = False
    await ticker
    return max(gaps)


def test_loading_listing_histograms_and_the_zdc_toy_leave_the_event_loop_free(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    frame = generate(n=2000, seed=0)
    np.savez(root / "two.npz", a=frame.to_records(index=False), b=frame.to_records(index=False))
    monkeypatch.setattr(state_module, "list_keys", slowed(state_module.list_keys))
    monkeypatch.setattr(state_module, "load_mc", slowed(state_module.load_mc))
    monkeypatch.setattr(toy_zdc, "generate", slowed(toy_zdc.generate))
    session = Session(data_root=root, workdir=tmp_path / "work")
    view = DataView(state=session)

    async def choose_and_load(listed):
        started = time.monotonic()
        view.source.value = "two.npz"  # the page's selector: its keys are listed in a thread
        while session.source != "two.npz":
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        await view.load()
        while not view.histogram_slot.objects:
            await asyncio.sleep(0.02)
        listed.append(took)

    async def zdc_start(zdc_view):
        started = []
        zdc_view.start = lambda: started.append(zdc_view.state.sample)  # the preparation is what is measured
        await zdc_view.press_start()
        assert started and started[0] is None  # the toy is remembered, to be loaded by start itself

    async def main():
        listed = []
        gap = await longest_gap_during(choose_and_load(listed))
        zdc = ZDCView(state=ZDCSession(workdir=tmp_path / "zdc", toy_events=321))
        zdc_gap = await longest_gap_during(zdc_start(zdc))
        return listed[0], gap, zdc_gap, zdc

    listed, gap, zdc_gap, zdc = asyncio.run(main())
    assert listed >= SLOW_S and session.param.tree.objects == ["a", "b"] and session.tree == "a"
    assert session.sample is not None and len(session.sample.frame) == 2000, session.notice
    assert view.histogram_slot.objects, "the histograms were not drawn"
    assert gap < 0.25, f"the event loop was held {gap:.2f} s while loading"
    assert zdc_gap < 0.25, f"the event loop was held {zdc_gap:.2f} s while simulating the ZDC toy"
    tick = time.monotonic()
    zdc.state.load()  # simulated at Start in the thread: now remembered
    assert time.monotonic() - tick < SLOW_S
