"""Pause, resume and stop a training from another thread or process (dashboard, notebook cell,
signal)."""

from __future__ import annotations

import threading


class TrainingControl:
    """Switches the training loop checks between steps.

    Parameters
    ----------
    context : multiprocessing context, optional
        Build the switches from its ``Event`` so that a child process started in that context
        can be controlled (the object is then picklable to it); threads only by default.
    """

    def __init__(self, context=None):
        event = context.Event if context is not None else threading.Event
        self._run = event()
        self._run.set()
        self._stop = event()

    def pause(self) -> None:
        self._run.clear()

    def resume(self) -> None:
        self._run.set()

    def stop(self) -> None:
        self._stop.set()
        self._run.set()  # wake a paused loop so that it can see the stop

    @property
    def paused(self) -> bool:
        return not self._run.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True once running again (or stopping)."""
        return self._run.wait(timeout)
