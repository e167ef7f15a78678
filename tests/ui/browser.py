"""What the browser tests and ``benchmarks/load.py`` share: a ``recogan serve`` subprocess and
helpers that read and drive its page in Debian's chromium through playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
STATUS_JS = "element => element.shadowRoot.querySelector('div').innerText"
"""The status line's text: Panel renders a pane's content in the pane's shadow root."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    """Until the server ``process`` accepts connections on ``port`` (its ``log`` said if it died)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the server did not open its port: {log.read_text()}"
            time.sleep(0.2)


@contextmanager
def served(folder: Path, *options: str):
    """``recogan serve`` with ``options`` in a subprocess on a free port, its work folder and log in
    ``folder``; yields its ``url``, ``log``, ``process`` and ``workdir``, and ends it afterwards."""
    port = free_port()
    log_path = Path(folder) / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "recogan_app.cli", "serve", "--port", str(port),
                                    "--address", "localhost", "--workdir", str(Path(folder) / "work"), "--no-show",
                                    *options], stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})  # tiny networks: threads only thrash
        try:
            wait_until_listening(process, port, log_path)
            yield SimpleNamespace(url=f"http://localhost:{port}/", log=log_path, process=process,
                                  workdir=Path(folder) / "work")
        finally:
            process.terminate()
            process.wait(timeout=30)


def status(page, tab: str = "recogan") -> str:
    return page.locator(f".{tab}-status").evaluate(STATUS_JS)


def wait_for(predicate, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def open_tab(page, name: str):
    """Click the tab ``name`` and return its content (every tab is in the page, and the ZDC tab has
    settings of the same names as the Training tab's)."""
    page.locator(".bk-tab").get_by_text(name, exact=True).click()
    return page.locator(f".recogan-tab-{name.lower()}")


def fill(tab, label: str, value) -> None:
    """Type into the input labelled ``label`` in ``tab`` and commit it (Panel updates on change)."""
    field = tab.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")


def small_training(page, *, max_epochs: int, snapshot_rows: int):
    """Open the Training tab and set small settings that do not stop early (Patience 10,000);
    returns the tab's content."""
    training = open_tab(page, "Training")
    training.get_by_text("Optimiser", exact=True).click()
    fill(training, "Batch size", 256)
    training.get_by_text("Schedule", exact=True).click()
    fill(training, "Max epochs", max_epochs)
    fill(training, "Snapshot rows", snapshot_rows)
    fill(training, "Patience", 10_000)
    return training
