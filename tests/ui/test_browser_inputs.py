"""The Data tab's selection box, event-weight selector and derived-column suggestion in a real
headless Chromium against ``recogan serve``: the count follows the typing, a bad cut is shown as
text naming its problem, and each choice is what the loaded sample then holds; ``serve --data URL``
reads a ROOT file over http."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import uproot
from browser import ARGS, CHROMIUM, open_tab, served

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"),
]
N = 2000


@contextmanager
def page_of(folder, *options: str):
    """``recogan serve OPTIONS`` and a Chromium page on it; at a failure, a screenshot and the server log;
    at the end, the page asked nothing of another host than the server, and
    once it closed, no traceback in the server's log."""
    playwright = pytest.importorskip("playwright.sync_api")
    with served(folder, *options) as server, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_context(viewport={"width": 1600, "height": 1250}).new_page()
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        try:
            page.goto(server.url)
            yield page
            allowed = (server.url.rstrip("/"), "data:", "blob:")
            assert [url for url in requests if not url.startswith(allowed)] == []  # no web font, no CDN
            page.close()
            time.sleep(2)  # the server notices the closed websocket
            assert "Traceback" not in server.log.read_text(), server.log.read_text()
        except BaseException:
            if not page.is_closed():  # closed: the failure is the server log's, printed below
                page.screenshot(path=str(folder / "failure.png"), full_page=True)
            print(f"page at the failure: {folder / 'failure.png'}\nserver log:\n{server.log.read_text()}")
            raise
        finally:
            browser.close()


def test_cut_weights_and_derived_columns_from_the_page(tmp_path):
    rng = np.random.default_rng(5)
    px, py = rng.normal(0, 3, (2, N))
    frame = pd.DataFrame({"px": px, "py": py, "pt": np.hypot(px, py), "eta": rng.normal(0, 1.5, N),
                          "EventWeight": 0.5 + rng.random(N)})
    (tmp_path / "mc").mkdir()
    frame.to_parquet(tmp_path / "mc" / "muons.parquet", index=False)
    kept = int(((frame["pt"] > 2) & (frame["eta"].abs() < 1)).sum())
    with page_of(tmp_path, "--data-root", str(tmp_path / "mc")) as page:
        page.locator(".recogan-summary table").wait_for(timeout=90_000)
        data = open_tab(page, "Data")
        data.get_by_label("MC source").select_option(label="muons.parquet")
        page.locator(".recogan-load button").click()
        loaded = page.locator(".recogan-loaded")
        loaded.get_by_text(f"muons.parquet, {N:,} rows", exact=False).wait_for(timeout=30_000)

        cut = page.locator(".recogan-cut input")
        cut.press_sequentially("pt > 2 and etaa < 1")
        page.locator(".recogan-cut-count").get_by_text(
            "column 'etaa': is read by the cut 'pt > 2 and etaa < 1' but is not a column (closest: 'eta'",
            exact=False).wait_for(timeout=20_000)
        cut.fill("pt > 2 and abs(eta) < 1")
        page.locator(".recogan-cut-count").get_by_text(f"keeps {kept:,} of {N:,} rows",
                                                       exact=False).wait_for(timeout=20_000)
        cut.press("Enter")
        loaded.get_by_text(f"{kept:,} rows; the cut 'pt > 2 and abs(eta) < 1' kept {kept:,} of {N:,} rows",
                           exact=False).wait_for(timeout=30_000)

        weights = data.get_by_label("Event weights (--weights: never modelled)")
        shown = "el => el.options[el.selectedIndex] ? el.options[el.selectedIndex].text : ''"
        assert weights.evaluate(shown) == "none (unweighted)"  # it showed a blank choice
        weights.select_option(label="EventWeight (named like a weight)")
        loaded.get_by_text("weighted by 'EventWeight': effective sample size", exact=False).wait_for(
            timeout=30_000)

        page.locator(".recogan-derive button").get_by_text("Derive pt = hypot(px, py)").click()
        page.get_by_text("Derived (computed after generation): pt = hypot(px, py)",
                         exact=False).wait_for(timeout=30_000)


def test_serve_opens_on_a_url_and_counts_a_cut_on_it(tmp_path, web_folder):
    """``recogan serve --data URL`` (a ROOT file on a web server): the page loads it as train --data
    reads it, and the live cut count reads its branches over http."""
    rng = np.random.default_rng(6)
    columns = {"pt": rng.exponential(3.0, 700), "eta": rng.normal(0, 1.2, 700)}
    with uproot.recreate(tmp_path / "mc.root") as file:
        file["events"] = columns
    url = f"{web_folder(tmp_path)}/mc.root"
    kept = int(((columns["pt"] > 2) & (np.abs(columns["eta"]) < 1)).sum())
    with page_of(tmp_path, "--data", url) as page:
        open_tab(page, "Data")
        page.locator(".recogan-loaded").get_by_text(f"{url} (tree events), 700 rows",
                                                    exact=False).wait_for(timeout=90_000)
        page.locator(".recogan-cut input").press_sequentially("pt > 2 and abs(eta) < 1")
        page.locator(".recogan-cut-count").get_by_text(f"keeps {kept:,} of 700 rows",
                                                       exact=False).wait_for(timeout=30_000)
