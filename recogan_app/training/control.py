"""Pause, resume and stop a training from another thread (dashboard, notebook cell, signal)."""

from __future__ import annotations

import threading


class TrainingControl:
    """Thread-safe switches the training loop checks between steps."""

    def __init__(self):
        self._run = threading.Event()
        self._run.set()
        self._stop = threading.Event()

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
