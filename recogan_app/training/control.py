"""Pause, resume and stop a training from another thread or process (dashboard, notebook cell,
signal), and the deadline of a whole training command."""

from __future__ import annotations

import math
import multiprocessing
import time

from recogan_app.training.callbacks import Callback

POLL_S = 0.05
"""How often a paused loop looks whether it may go on."""


class TrainingControl:
    """Switches the training loop checks between steps.

    The switches are two bytes of shared memory, read and written without a lock: a lock shared
    with a training process that the scheduler left waiting (it runs at a lower priority) held
    the page's Pause for seconds (``benchmarks/load.py``); a paused loop polls every
    :data:`POLL_S` instead of waiting on an event.

    Parameters
    ----------
    context : multiprocessing context, optional
        Allocate the switches from it, so that a child process started in that context can be
        controlled (the object is then picklable to it); the default context otherwise.
    """

    def __init__(self, context=None):
        context = context or multiprocessing
        self._paused = context.RawValue("b", 0)
        self._stop = context.RawValue("b", 0)

    def pause(self) -> None:
        self._paused.value = 1

    def resume(self) -> None:
        self._paused.value = 0

    def stop(self) -> None:
        self._stop.value = 1  # a paused loop sees it at its next poll

    @property
    def paused(self) -> bool:
        return bool(self._paused.value)

    @property
    def stop_requested(self) -> bool:
        return bool(self._stop.value)

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True once running again (or stopping), False after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.paused and not self.stop_requested:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True


EVALUATION_SHARE = 0.15
"""Share of a command's time limit kept for the held-out evaluation and the writing of the run."""
PRETRAINING_SHARE = 0.25
"""Share of a command's time limit that pretraining (the ZDC aux regressor) may take at most."""


class Deadline(Callback):
    """The wall-clock end of a whole command (``train --time-limit``): pretraining, the fit and
    the held-out evaluation all take their time from this one clock, so the command ends on time.

    ``start`` (a :func:`time.monotonic` reading) lets a caller count from earlier, e.g. from the
    moment the command began reading its data. As a callback of the fit it moves the end later by
    the time the training spends paused (the dashboard's Pause), which does not count.
    """

    def __init__(self, seconds: float | None, *, start: float | None = None):
        self.seconds = seconds
        self.end = None if seconds is None else (time.monotonic() if start is None else start) + seconds
        self._paused_at: float | None = None

    def on_status(self, trainer, status) -> None:
        if status.status == "paused":
            self._paused_at = time.monotonic()
        elif self._paused_at is not None and self.end is not None:
            self.end += time.monotonic() - self._paused_at
            self._paused_at = None

    def left(self) -> float:
        """Seconds left, never below 0; infinite without a limit."""
        return math.inf if self.end is None else max(0.0, self.end - time.monotonic())

    def share(self, fraction: float) -> float:
        """``fraction`` of the whole limit in seconds (infinite without a limit)."""
        return math.inf if self.seconds is None else fraction * self.seconds

    def until(self, fraction: float) -> float:
        """Seconds from now until ``fraction`` of the limit has passed (never below 0; infinite without a limit)."""
        return math.inf if self.seconds is None else max(0.0, self.left() - self.share(1 - fraction))

    def fit_seconds(self, evaluation_s: float | None = None) -> float | None:
        """The time limit of a fit starting now: what is left but the evaluation's time, which is
        ``evaluation_s`` when the family measured it, the :data:`EVALUATION_SHARE` of the limit
        otherwise (None: no limit)."""
        if self.seconds is None:
            return None
        return max(0.0, self.left() - (self.share(EVALUATION_SHARE) if evaluation_s is None else evaluation_s))
