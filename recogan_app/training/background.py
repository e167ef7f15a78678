"""Training in a child process, observed through a queue: what dashboards and notebooks drive.

The training runs in its own (spawned) process, so it never competes with the page for the
server's interpreter lock: on a 2-core machine clicks on a thread-trained page waited up to
0.4 s and loss plots up to 8 s (README, dashboard benchmark). The child puts the trainer's events
on a process queue; a relay thread here moves them to :attr:`BackgroundTraining.events` (a plain
:class:`queue.Queue` that the UI drains on its own thread, e.g. from a Panel periodic
callback) and keeps the pipe empty, so the child never blocks on a page that stopped reading.
Pause, resume and stop go through a :class:`TrainingControl` built on process-shared events.
When the child ends, the run it wrote is loaded here as :attr:`BackgroundTraining.result`.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from recogan_app.errors import InputError
from recogan_app.training.callbacks import Callback
from recogan_app.training.control import TrainingControl
from recogan_app.training.events import FitResult, Message, Snapshot, StatusChange, StepEnd

CONTEXT = multiprocessing.get_context("spawn")
"""``spawn``: forking a server that runs threads (tornado, torch's pools) can deadlock the child."""


class EventQueue(Callback):
    """Puts every trainer event on a queue, for another thread or process to drain."""

    def __init__(self, events):
        self.events = events

    def on_step_end(self, trainer, event: StepEnd) -> None:
        self.events.put(event)

    def on_snapshot(self, trainer, snapshot: Snapshot) -> None:
        self.events.put(snapshot)

    def on_message(self, trainer, message: Message) -> None:
        self.events.put(message)

    def on_status(self, trainer, status: StatusChange) -> None:
        self.events.put(status)

    def on_fit_end(self, trainer, result: FitResult) -> None:
        self.events.put(result)


@dataclass(frozen=True)
class _Ended:
    """The child's last event: where its run was written, or why it failed."""

    path: str | None = None
    device: str = "cpu"
    error: str | None = None


def _exit_with_parent() -> None:
    """End this child as soon as its parent is gone (killed server, closed kernel): nobody can
    follow or stop the training any more, and it would hold a core forever."""
    multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])
    os._exit(1)


def _train_in_child(train: Callable, events, control: TrainingControl, threads: int | None) -> None:
    threading.Thread(target=_exit_with_parent, name="recogan-parent-watch", daemon=True).start()
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        run = train(callbacks=[EventQueue(events)], control=control)
        ended = _Ended(path=str(run.path), device=str(next(run.module.parameters()).device))
    except InputError as exc:  # the user's input: shown as a notice
        ended = _Ended(error=str(exc))
    except Exception as exc:  # a bug: still tell the user, with the exception's type
        traceback.print_exc()
        ended = _Ended(error=f"internal error: {type(exc).__name__}: {exc}")
    events.put(ended)


class BackgroundTraining:
    """Runs ``train(callbacks=[EventQueue], control=TrainingControl)`` in a child process.

    Parameters
    ----------
    train : callable
        Picklable (a module-level function or a ``functools.partial`` of one), called in the
        child, e.g. ``functools.partial(train_tabular, sample, config, out)``; it returns the
        written run, which is loaded here as :attr:`result`.
    threads : int, optional
        CPU threads of the child's torch (default: torch's own choice).

    Example
    -------
    >>> job = BackgroundTraining(partial(train_tabular, sample, config, "runs/a"))  # doctest: +SKIP
    >>> job.start(); job.pause(); job.resume(); job.stop(); job.join()               # doctest: +SKIP
    """

    def __init__(self, train: Callable, *, threads: int | None = None):
        self.train = train
        self.threads = threads
        self.control = TrainingControl(CONTEXT)
        self.events: queue.Queue = queue.Queue()
        self.result = None
        self.error: str | None = None
        self._process = None
        self._relay: threading.Thread | None = None

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("this training was started already; create a new one")
        child_events = CONTEXT.Queue()
        self._process = CONTEXT.Process(target=_train_in_child, args=(self.train, child_events, self.control, self.threads),
                                        name="recogan-training", daemon=True)
        self._process.start()
        self._relay = threading.Thread(target=self._forward, args=(child_events,), name="recogan-relay",
                                       daemon=True)
        self._relay.start()

    def _forward(self, child_events) -> None:
        """Move the child's events here until its last one, or until it died without one."""
        while True:
            try:
                event = child_events.get(timeout=0.5)
            except queue.Empty:
                if self._process.is_alive():
                    continue
                try:  # it exited: whatever it flushed before dying is still readable
                    event = child_events.get(timeout=0.5)
                except queue.Empty:
                    self._fail(f"internal error: the training process ended with exit code "
                               f"{self._process.exitcode} and no result")
                    return
            if isinstance(event, _Ended):
                self._end(event)
                return
            self.events.put(event)

    def _end(self, ended: _Ended) -> None:
        self._process.join()
        if ended.error is not None:
            self._fail(ended.error)
            return
        from recogan_app.run import load_run

        try:
            self.result = load_run(ended.path, device=ended.device)
        except InputError as exc:
            self._fail(f"the trained run could not be read back: {exc}")

    def _fail(self, text: str) -> None:
        self.error = text
        self.events.put(Message(text, "error"))
        self.events.put(StatusChange("failed"))

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def stop(self) -> None:
        self.control.stop()

    @property
    def running(self) -> bool:
        """Whether the training or the delivery of its events is still going on."""
        return self._relay is not None and self._relay.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the training ended and all its events are in :attr:`events`."""
        if self._relay is not None:
            self._relay.join(timeout)

    def drain(self, limit: int = 10_000) -> list:
        """Every event queued since the last call (at most ``limit``), oldest first."""
        out = []
        while len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out
