"""Training in a daemon thread, observed through a queue: what dashboards and notebooks drive.

The worker thread never touches a UI: it puts the trainer's events on a :class:`queue.Queue`;
the UI drains it on its own thread (Panel: a periodic callback) and draws. Pause, resume and stop
go through the shared :class:`TrainingControl`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from recogan_app.errors import InputError
from recogan_app.training.callbacks import Callback
from recogan_app.training.control import TrainingControl
from recogan_app.training.events import FitResult, Message, Snapshot, StatusChange, StepEnd


class EventQueue(Callback):
    """Puts every trainer event on a queue, for another thread to drain."""

    def __init__(self, events: queue.Queue):
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


class BackgroundTraining:
    """Runs ``train(callbacks=[...], control=...)`` in a daemon thread.

    Parameters
    ----------
    train : callable
        Called as ``train(callbacks=[EventQueue], control=TrainingControl)`` in the worker thread,
        e.g. ``functools.partial(train_tabular, sample, config, out)``; its return value (a Run)
        becomes :attr:`result`.

    Example
    -------
    >>> job = BackgroundTraining(partial(train_tabular, sample, config, "runs/a"))  # doctest: +SKIP
    >>> job.start(); job.pause(); job.resume(); job.stop(); job.join()               # doctest: +SKIP
    """

    def __init__(self, train: Callable):
        self.train = train
        self.control = TrainingControl()
        self.events: queue.Queue = queue.Queue()
        self.result = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this training was started already; create a new one")
        self._thread = threading.Thread(target=self._work, name="recogan-training", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self.result = self.train(callbacks=[EventQueue(self.events)], control=self.control)
        except InputError as exc:  # the user's input: show it as a notice
            self.error = str(exc)
            self.events.put(Message(self.error, "error"))
            self.events.put(StatusChange("failed"))
        except Exception as exc:  # a bug: still tell the user, with the exception's type
            self.error = f"internal error: {type(exc).__name__}: {exc}"
            self.events.put(Message(self.error, "error"))
            self.events.put(StatusChange("failed"))

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def stop(self) -> None:
        self.control.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self, limit: int = 10_000) -> list:
        """Every event queued since the last call (at most ``limit``), oldest first."""
        out = []
        while len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out
