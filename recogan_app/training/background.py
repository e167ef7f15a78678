"""Training in a child process, observed through a queue: what dashboards and notebooks drive.

The training runs in its own (spawned) process, so it never competes with the page for the
server's interpreter lock: on a 2-core machine clicks on a thread-trained page waited up to
0.4 s and loss plots up to 8 s (README, dashboard benchmark). The child puts the trainer's events
on a process queue; a relay thread here moves them to :attr:`BackgroundTraining.events` (a plain
:class:`queue.Queue` that the UI drains on its own thread, e.g. from a Panel periodic
callback) and keeps the pipe empty, so the child never blocks on a page that stopped reading.
Pause, resume and stop go through a :class:`TrainingControl` built on process-shared events.
When the child ends, the run it wrote is loaded here as :attr:`BackgroundTraining.result`.

Starting the child (spawning an interpreter and sending it the MC) takes up to a second and
happens on the relay thread, so :meth:`~BackgroundTraining.start` returns at once: a page's
Start never waits for it. :meth:`~BackgroundTraining.stop` asks the loop to stop and, when the
child ignores it, terminates and then kills it; what a killed child left in its run folder goes.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import queue
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from recogan_app.errors import InputError
from recogan_app.families import load_run
from recogan_app.run import clean_stale
from recogan_app.training.callbacks import Callback
from recogan_app.training.control import TrainingControl
from recogan_app.training.events import FitResult, Message, Snapshot, StatusChange, StepEnd

CONTEXT = multiprocessing.get_context("spawn")
"""``spawn``: forking a server that runs threads (tornado, torch's pools) can deadlock the child."""
STOP_GRACE_S = 10.0
"""Seconds a training has to end its loop after Stop before its process is terminated."""
SAVING_S = 60.0
"""Further seconds for a training whose loop has ended to write its run (a ZDC run is evaluated
on its held-out events first) before it is terminated all the same."""
KILL_AFTER_S = 3.0
"""Seconds between SIGTERM and SIGKILL."""
NICENESS = 10
"""Scheduling niceness of a training process: when trainings take every core, the server (or
notebook kernel) that drives them still gets the CPU at once for a click (at niceness 10 a
process weighs a tenth of one at 0). Four trainings on two cores held clicks for up to 55 s
without it (``benchmarks/load.py``)."""


class EventQueue(Callback):
    """Puts every trainer event on a queue, for another thread or process to drain."""

    def __init__(self, events):
        self.events = events

    def _put(self, trainer, event: StepEnd | Snapshot | Message | StatusChange | FitResult) -> None:
        self.events.put(event)

    on_step_end = on_snapshot = on_message = on_status = on_fit_end = _put


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
    out : path, optional
        The run folder, passed to ``train`` as ``out=``: when the training fails or is killed,
        the folder (unless it holds a complete run) and its ``.partial`` siblings are removed.
    threads : int, optional
        CPU threads of the child's torch (default: torch's own choice).

    Example
    -------
    >>> job = BackgroundTraining(partial(train_tabular, sample, config, "runs/a"))  # doctest: +SKIP
    >>> job.start(); job.pause(); job.resume(); job.stop(); job.join()               # doctest: +SKIP
    """

    def __init__(self, train: Callable, *, out=None, threads: int | None = None):
        self.train = train if out is None else partial(train, out=out)
        self.out = None if out is None else Path(out)
        self.threads = threads
        self.control = TrainingControl(CONTEXT)
        self.events: queue.Queue = queue.Queue()
        self.result = None
        self.error: str | None = None
        self.followed = True
        self._process = None
        self._relay: threading.Thread | None = None
        self._fit_ended = threading.Event()
        self._killed: float | None = None

    def start(self) -> None:
        """Start the child from the relay thread and return at once."""
        if self._relay is not None:
            raise RuntimeError("this training was started already; create a new one")
        self._relay = threading.Thread(target=self._forward, name="recogan-relay", daemon=True)
        self._relay.start()

    def _forward(self) -> None:
        """Start the child, then move its events here until its last one, or until it died without one."""
        child_events = CONTEXT.Queue()
        self._process = CONTEXT.Process(target=_train_in_child, args=(self.train, child_events, self.control, self.threads),
                                        name="recogan-training", daemon=True)
        try:
            self._process.start()
        except Exception as exc:  # no process could be made (out of memory, too many processes)
            self._fail(f"the training process could not start: {type(exc).__name__}: {exc}")
            return
        finally:
            self.train = None  # the MC it holds lives in the child now
        if hasattr(os, "setpriority"):  # before it imports torch, which it does on reading what start() sent
            with suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self._process.pid, NICENESS)
        while True:
            try:
                event = child_events.get(timeout=0.5)
            except queue.Empty:
                if self._process.is_alive():
                    continue
                try:  # it exited: whatever it flushed before dying is still readable
                    event = child_events.get(timeout=0.5)
                except queue.Empty:
                    self._fail(f"the training did not stop within {self._killed:g} s of Stop and was killed; its "
                               f"unfinished run was removed" if self._killed is not None else
                               f"internal error: the training process ended with exit code "
                               f"{self._process.exitcode} and no result")
                    return
            if isinstance(event, _Ended):
                self._end(event)
                return
            if isinstance(event, FitResult):
                self._fit_ended.set()
            if self.followed:
                self.events.put(event)

    def unfollow(self) -> None:
        """Nobody reads the events any more (the page closed, the training goes on): drop them,
        and the run the training writes is not loaded here."""
        self.followed = False
        self.drain(limit=None)

    def _end(self, ended: _Ended) -> None:
        self._process.join()
        if ended.error is not None:
            self._fail(ended.error)
            return
        if not self.followed:
            return
        try:
            self.result = load_run(ended.path, device=ended.device)
        except InputError as exc:
            self._fail(f"the trained run could not be read back: {exc}")

    def _fail(self, text: str) -> None:
        self.error = text
        self._discard_unfinished()
        if self.followed:
            self.events.put(Message(text, "error"))
            self.events.put(StatusChange("failed"))

    def _discard_unfinished(self) -> None:
        """Remove what a failed or killed training left: the build folders of processes that are
        gone (:func:`~recogan_app.run.clean_stale`) and the run folder itself unless a complete run
        (its ``run.json``) is in it."""
        if self.out is None:
            return
        clean_stale(self.out)
        if not (self.out / "run.json").is_file():
            shutil.rmtree(self.out, ignore_errors=True)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ask the loop to stop; a child still there ``grace_s`` later (plus :data:`SAVING_S` when
        its loop has ended and it is writing the run) is terminated, then killed."""
        self.control.stop()
        threading.Thread(target=self._escalate, args=(grace_s,), name="recogan-stop", daemon=True).start()

    def _escalate(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        self.join(grace_s)  # the process exists once the relay runs and has started it
        while self.running and time.monotonic() < deadline + (SAVING_S if self._fit_ended.is_set() else 0):
            self.join(0.2)
        process = self._process
        if process is None or not process.is_alive():
            return
        self._killed = grace_s
        process.terminate()
        process.join(KILL_AFTER_S)
        if process.is_alive():
            process.kill()

    @property
    def running(self) -> bool:
        """Whether the training or the delivery of its events is still going on."""
        return self._relay is not None and self._relay.is_alive()

    @property
    def ended(self) -> bool:
        """Whether it was started and everything is over (not :attr:`running` before the start)."""
        return self._relay is not None and not self._relay.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the training ended and all its events are in :attr:`events`."""
        if self._relay is not None:
            self._relay.join(timeout)

    def drain(self, limit: int | None = 10_000) -> list:
        """Every event queued since the last call (at most ``limit``), oldest first."""
        out = []
        while limit is None or len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out
