"""Load test of the served dashboard (not a CI test): several browser sessions training at once.

Serves the app (``recogan serve --max-trainings N``), opens ``--sessions`` pages in headless
Debian chromium (one browser each, as each user has: one server session each), gives each page a
different number of rows to train on, then on every page at once presses Start, and later Pause /
Resume (``--cycles`` times) and Stop, and measures:

- **click latency**: from each click to the page's status line answering (``starting``/``running``,
  ``paus…``, ``running``, ``stopping``/``finished``); and apart, from Start to ``running`` (the
  training launched). Measured inside the page: the click is dispatched by
  script and the status line checked every 2 ms, so that playwright's own waiting is not counted.
  All pages are clicked within a few milliseconds of each other. Target: median and worst ≤ 500 ms.
- **isolation**: each page's saved run (the path its status line shows) must be its own: distinct
  folders, each trained on the rows that page asked for.
- **server memory**: the server process's RSS (``/proc``) when idle, after a warm-up page trained
  and closed (the MC cache filled), after a warm-up round of every page training at once and
  closing (the starting level: what serving this load once leaves, e.g. the allocator's high-water
  mark of that many pages at once), sampled during the trainings, and after the measured rounds'
  pages closed and the server discarded their sessions (Bokeh does that some 15-35 s after a
  page's connection closes). "Back" means within ``--back-mb`` of the starting level: closing the
  pages gives back what they took. The training processes' RSS is reported apart.

Usage::

    python benchmarks/load.py                       # 4 sessions, 3 Pause/Resume cycles
    python benchmarks/load.py --floor 2             # the machine's floor: a bare page, 2 live figures

``--floor F`` measures what the machine itself allows, without recogan: the same browsers click
Pause / Resume on a page of two buttons and a status line (and ``F`` live figures streamed every
2 s, as the Training tab's are), served by ``panel serve``, while as many busy processes at the
trainings' niceness take the cores as trainings would. Clicks slower than 500 ms there cannot be
made faster by the dashboard.

Writes ``benchmarks/results/load.json`` (``--out``) with the load average before and after, and
prints Markdown tables: per kind of click, per page. On a shared 2-core machine the numbers are
pessimistic: the browser's 4 pages, the server and 4 trainings share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "ui"))
from browser import (ARGS, CHROMIUM, STATUS_JS, fill, free_port, open_tab, served, small_training, status,  # noqa: E402
                     wait_for, wait_until_listening)

RESULTS = Path(__file__).parent / "results"
FOREGROUND = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding",
              "--disable-backgrounding-occluded-windows"]
"""Every page is run as a foreground page, each in a browser of its own: each stands for a user's
own browser, where the page is the window in front. Four pages of one browser are background pages
but one, whose timers Chromium slows to one a second and whose renderers it deprioritises and may
share: a click then took seconds to leave the page (one page's Start reached the server 7 s after
the click, with the server idle; traced)."""
CLICK_JS = f"""(button, [line, answers, reached, key]) => {{
  // record in window.__answers[key] the ms from the click to the status line starting with one of
  // `answers`, and in window.__answers[key + '/reached'] the ms to it starting with one of `reached`
  const text = {STATUS_JS};
  window.__answers = window.__answers || {{}};
  const clicked = performance.now();
  button.click();
  const check = () => {{
    const now = text(line), took = performance.now() - clicked;
    if (!(key in window.__answers) && answers.some(a => now.startsWith(a))) window.__answers[key] = took;
    if (reached.some(a => now.startsWith(a))) window.__answers[key + "/reached"] = took;
    else if (reached.length || !(key in window.__answers)) setTimeout(check, 2);
  }};
  check();
}}"""
CLICKS = {"start": ["starting", "running"], "pause": ["paus"], "resume": ["running"], "stop": ["stopping", "finished"]}
"""Each button and the status lines that answer it."""
REACHED = {"start": ["running"]}
"""The status a button leads to when that is not its answer, timed from the same click and reported
apart: Start answers with "starting" at once, then prepares and launches the training."""


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmRSS:\s+(\d+) kB", text)  # none in a zombie's
    return int(found.group(1)) / 1024 if found else 0.0


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (the trainings, multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class Sampler(threading.Thread):
    """Samples the server's RSS and its children's summed RSS every 0.25 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.running = pid, [], True

    def run(self):
        while self.running:
            self.samples.append((time.monotonic(), rss_mb(self.pid), sum(rss_mb(c) for c in children(self.pid))))
            time.sleep(0.25)


def settle(pid: int, seconds: float) -> float:
    """The server's RSS after ``seconds`` (the sessions of closed pages are discarded meanwhile)."""
    time.sleep(seconds)
    return rss_mb(pid)


def open_page(browser, url: str):
    page = browser.new_context(viewport={"width": 1600, "height": 1250}).new_page()
    page.goto(url)
    page.locator(".recogan-summary table").wait_for(timeout=180_000)  # the default toy has loaded
    return page


def prepare(page, rows: int) -> None:
    """Small, endless settings (Stop ends them) on ``rows`` rows of the toy."""
    fill(open_tab(page, "Data"), "Rows to train on (0: all)", rows)
    small_training(page, max_epochs=10_000, snapshot_rows=300)


def warm_up(page) -> None:
    """One short training from a page that then closes: what a server does once only (the MC
    cache filled, torch's allocator and threads set up by the first run it loads) is in the
    starting level."""
    prepare(page, 2000)
    page.locator(".recogan-start button").click()
    wait_for(lambda: re.search(r"epoch \d", status(page)), timeout=180, what="the warm-up's first epoch")
    page.locator(".recogan-stop button").click()
    wait_for(lambda: "run:" in status(page), timeout=180, what="the warm-up's run")
    page.context.close()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def click_all(pages, name: str, round_: str, timeout: float = 60) -> list[tuple[float, float | None]]:
    """Click ``name`` on every page at once; the seconds each page took to answer, and to reach
    the button's :data:`REACHED` status (None when it has none)."""
    key = f"{name}-{round_}"
    reached = REACHED.get(name, [])
    for page in pages:
        page.locator(f".recogan-{name} button").evaluate(CLICK_JS, [page.locator(".recogan-status").element_handle(),
                                                                    CLICKS[name], reached, key])
    keys = [key, f"{key}/reached"] if reached else [key]
    answers = [None] * len(pages)
    deadline = time.monotonic() + timeout
    while None in answers:
        assert time.monotonic() < deadline, (f"{name}: not every page answered within {timeout} s: "
                                             + " | ".join(status(page) for page in pages))
        for i, page in enumerate(pages):
            if answers[i] is None:
                got = page.evaluate("keys => keys.map(key => (window.__answers || {})[key] ?? null)", keys)
                answers[i] = None if None in got else [ms / 1000 for ms in got] + [None] * (2 - len(got))
        time.sleep(0.05)
    return [tuple(seconds) for seconds in answers]


def train_at_once(pages, cycles: int, latencies: list, round_: str, server) -> list[str]:
    """Start, Pause / Resume ``cycles`` times and Stop on every page at once, adding each page's
    (button, seconds to answer) to ``latencies``; returns the run each page then shows."""
    clicks = [("start", 0)] + [(name, k) for k in range(cycles) for name in ("pause", "resume")] + [("stop", 0)]
    for name, k in clicks:
        if name == "pause":
            for page in pages:
                wait_for(lambda page=page: re.search(r"epoch \d", status(page)), timeout=180,
                         what="an epoch before Pause")
        for i, (took, reached) in enumerate(click_all(pages, name, f"{round_}-{k}")):
            latencies[i].append((name, took))
            if reached is not None:
                latencies[i].append((f"{name}_to_{REACHED[name][0]}", reached))
        time.sleep(1.0)
    try:
        for page in pages:
            wait_for(lambda page=page: "run:" in status(page), timeout=180, what="the run saved after Stop")
    except AssertionError:
        print("\n".join(status(page) for page in pages), server.log.read_text()[-3000:], sep="\n", file=sys.stderr)
        raise
    return [re.search(r"run: (\S+)", status(page)).group(1) for page in pages]


FLOOR_APP = """
import os
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

status = pn.pane.Markdown("running", css_classes=["recogan-status"])
pause = pn.widgets.Button(name="Pause", css_classes=["recogan-pause"])
resume = pn.widgets.Button(name="Resume", css_classes=["recogan-resume"])
pause.on_click(lambda _: setattr(status, "object", "paused"))
resume.on_click(lambda _: setattr(status, "object", "running"))
sources, figures = [], []
for k in range(int(os.environ["FLOOR_FIGURES"])):
    source = ColumnDataSource({"x": [], **{f"y{i}": [] for i in range(4)}})
    fig = figure(height=300, sizing_mode="stretch_width", title=f"live {k}")
    for i in range(4):
        fig.line("x", f"y{i}", source=source, line_width=2)
        fig.scatter("x", f"y{i}", source=source, size=4)
    sources.append(source)
    figures.append(pn.pane.Bokeh(fig, sizing_mode="stretch_width"))
step = [0]

def stream():
    step[0] += 1
    for source in sources:
        source.stream({"x": [step[0]], **{f"y{i}": [1.0 / (step[0] + i)] for i in range(4)}})

pn.state.add_periodic_callback(stream, 2000)
pn.Column(status, pn.Row(pause, resume), *figures).servable()
"""
"""The floor's page (``--floor``): what a click needs and what the Training tab repaints, nothing else."""


def floor(args) -> dict:
    """Pause / Resume clicks on :data:`FLOOR_APP` in ``args.sessions`` browsers, with as many busy
    processes at the trainings' niceness: the click latency this machine allows."""
    from playwright.sync_api import sync_playwright

    from recogan_app.training.background import NICENESS

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        app, port = Path(tmp) / "floor.py", free_port()
        app.write_text(FLOOR_APP)
        log = Path(tmp) / "server.log"
        server = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(app), "--port", str(port),
                                   "--address", "localhost"], stdout=log.open("w"), stderr=subprocess.STDOUT,
                                  env={**os.environ, "FLOOR_FIGURES": str(args.floor)})
        busy = [subprocess.Popen([sys.executable, "-c", f"import os\nos.nice({NICENESS})\nwhile True: pass"])
                for _ in range(args.sessions)]
        try:
            wait_until_listening(server, port, log)
            with sync_playwright() as p:
                browsers = [p.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, *FOREGROUND])
                            for _ in range(args.sessions)]
                pages = [b.new_context(viewport={"width": 1600, "height": 1250}).new_page() for b in browsers]
                for page in pages:
                    page.goto(f"http://localhost:{port}/floor")
                    page.locator(".recogan-status").wait_for(timeout=60_000)
                by_click = {}
                for round_ in range(args.rounds * args.cycles):
                    for name in ("pause", "resume"):
                        for took, _ in click_all(pages, name, str(round_)):
                            by_click.setdefault(name, []).append(1000 * took)
                        time.sleep(1.0)
                for browser in browsers:
                    browser.close()
        finally:
            for process in [*busy, server]:
                process.terminate()
                process.wait(timeout=30)
    clicks = {name: {"n": len(ms), "median_ms": round(statistics.median(ms)), "worst_ms": round(max(ms))}
              for name, ms in by_click.items()}
    return {"floor_figures": args.floor, "clicks": clicks, "target_ms": 500, "load_average_before": load_before}


def measure(args, server) -> dict:
    from playwright.sync_api import sync_playwright

    pid = server.process.pid
    load_before = os.getloadavg()
    memory = {"idle_mb": settle(pid, 2)}
    sampler = Sampler(pid)
    with sync_playwright() as p:
        launch = lambda: p.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, *FOREGROUND])  # noqa: E731
        browser = launch()
        warm_up(open_page(browser, server.url))
        memory["one_page_mb"] = settle(pid, args.linger)
        rows = [2000 + 100 * i for i in range(args.sessions)]
        users = [browser, *(launch() for _ in rows[1:])]  # one browser per user, as in life

        def train_round(round_: str, cycles: int, latencies: list) -> tuple[list[str], float]:
            pages = [open_page(user, server.url) for user in users]
            for page, n in zip(pages, rows):
                prepare(page, n)
            opened = rss_mb(pid)
            runs = train_at_once(pages, cycles, latencies, round_, server)
            for page in pages:
                page.context.close()
            return runs, opened

        train_round("warm-up", 1, [[] for _ in rows])  # neither its clicks nor its runs are counted
        memory["start_mb"] = settle(pid, args.linger)
        sampler.start()
        cpu_before, wall_before = cpu_s(pid), time.monotonic()
        latencies, shown, rounds = [[] for _ in rows], [], []
        for round_ in range(args.rounds):
            runs, opened = train_round(str(round_), args.cycles, latencies)
            shown += runs
            rounds.append({"pages_open_mb": opened, "after_close_mb": settle(pid, args.linger)})
        server_cpu = (cpu_s(pid) - cpu_before) / (time.monotonic() - wall_before)
        for user in users:
            user.close()
    sampler.running = False
    sampler.join()
    memory |= {"rounds": rounds, "peak_mb": max(s[1] for s in sampler.samples),
               "trainings_peak_mb": max(s[2] for s in sampler.samples)}
    memory["back"] = all(r["after_close_mb"] - memory["start_mb"] <= args.back_mb for r in rounds)

    trained_rows = [json.loads((Path(path) / "run.json").read_text())["data"]["n_rows"] for path in shown]
    own = [n == rows[i % len(rows)] for i, n in enumerate(trained_rows)]
    sessions = []
    for i, clicked in enumerate(latencies):
        seconds = [took for name, took in clicked if name in CLICKS]
        by_button = {}
        for name, took in clicked:
            by_button.setdefault(name, []).append(round(1000 * took))
        sessions.append({"rows_asked": rows[i], "runs": shown[i::len(rows)], "own_runs": all(own[i::len(rows)]),
                         "clicks_ms": by_button,
                         "median_ms": round(1000 * statistics.median(seconds)), "worst_ms": round(1000 * max(seconds))})
    by_click = {}
    for clicked in latencies:
        for name, took in clicked:
            by_click.setdefault(name, []).append(1000 * took)
    clicks = {name: {"n": len(ms), "median_ms": round(statistics.median(ms)), "worst_ms": round(max(ms))}
              for name, ms in by_click.items()}
    log = server.log.read_text()
    ours = "/recogan_app/" in log  # tornado's "WebSocketClosedError" of a page closed mid-write names no file of ours
    if "Traceback" in log:
        print(f"the server logged a traceback:\n{log}", file=sys.stderr)
    return {"clicks": clicks, "sessions": sessions, "distinct_runs": len(set(shown)) == len(shown), "memory_mb": memory,
            "clicks_per_session": len(latencies[0]), "target_ms": 500, "server_cpu_share": server_cpu,
            "traceback_from_recogan": ours, "load_average_before": load_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--cycles", type=int, default=3, help="Pause / Resume cycles per page and round")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times the pages open, train and close (memory must come back after each)")
    parser.add_argument("--linger", type=float, default=45,
                        help="seconds to wait after pages close, for the server to discard their sessions")
    parser.add_argument("--back-mb", type=float, default=50, help="how close to the starting RSS counts as back")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json", help="where the results go")
    parser.add_argument("--floor", type=int, metavar="FIGURES",
                        help="measure the machine's floor instead: a bare page with FIGURES live figures")
    args = parser.parse_args()
    if args.floor is not None:
        result = floor(args) | {"cpus": os.cpu_count(), "load_average_after": os.getloadavg(), "args": vars(args)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(result["clicks"]), f"load average {result['load_average_before'][0]:.1f} → "
              f"{result['load_average_after'][0]:.1f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        with served(Path(tmp), "--max-trainings", str(args.sessions)) as server:
            result = measure(args, server)
    result |= {"cpus": os.cpu_count(), "load_average_after": os.getloadavg(), "args": vars(args)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print("| click | clicks | median | worst |\n|---|---|---|---|")
    for name, c in result["clicks"].items():
        print(f"| {name} | {c['n']} | {c['median_ms']} ms | {c['worst_ms']} ms |")
    print()
    print("| session | rows | own runs | click median | click worst | Start to running |\n|---|---|---|---|---|---|")
    for i, s in enumerate(result["sessions"]):
        print(f"| {i + 1} | {s['rows_asked']:,} | {'yes' if s['own_runs'] else 'NO'} | {s['median_ms']} ms | "
              f"{s['worst_ms']} ms | {', '.join(map(str, s['clicks_ms']['start_to_running']))} ms |")
    m = result["memory_mb"]
    rounds = "; ".join(f"round {k + 1}: pages open {r['pages_open_mb']:.0f}, after close {r['after_close_mb']:.0f}"
                       for k, r in enumerate(m["rounds"]))
    print(f"\nserver RSS (MB): idle {m['idle_mb']:.0f}, after a warm-up page {m['one_page_mb']:.0f}, start (after a "
          f"warm-up round of {args.sessions} pages) {m['start_mb']:.0f}; {rounds}; "
          f"peak {m['peak_mb']:.0f} ({'back' if m['back'] else 'NOT back'} within {args.back_mb:g} MB of the start "
          f"after each round); trainings' processes peak {m['trainings_peak_mb']:.0f} MB together")
    print(f"distinct runs: {result['distinct_runs']}; traceback from recogan code: {result['traceback_from_recogan']}; "
          f"server used {result['server_cpu_share']:.2f} core on average; load average before "
          f"{result['load_average_before'][0]:.1f}, after {result['load_average_after'][0]:.1f} on {result['cpus']} cores")


if __name__ == "__main__":
    main()
