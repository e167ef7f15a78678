"""Pause, resume and stop a training from another thread or process (dashboard, notebook cell,
signal)."""

from __future__ import annotations

import multiprocessing
import time

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
