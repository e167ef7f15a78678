"""Training stand-ins run in a real child process by the resource tests (importable by name in
the spawned child, and light: no torch, no Panel)."""

import signal
import time

from recogan_app.errors import InputError
from recogan_app.files import process_tag


def stubborn(out, callbacks, control):
    """Half-writes a run, as a training interrupted in the middle would, then never looks at Stop
    and ignores SIGTERM: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    building = out.parent / f".{out.name}.partial-{process_tag()}"  # as run.building names it
    building.mkdir()
    (building / "generator.pt").write_bytes(b"half a checkpoint")
    (out / "history.parquet").write_bytes(b"half a history")
    while True:
        time.sleep(0.05)


def patient(out, callbacks, control):
    """Runs until asked to stop, then ends without a run."""
    while not control.stop_requested:
        time.sleep(0.05)
    raise InputError("stopped before any epoch")
