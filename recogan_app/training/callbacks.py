"""Callbacks: checkpointing, early stopping and progress, each with its own state.

The trainer calls the hooks of :class:`Callback` in a fixed order (``on_fit_start``, then per step
``on_step_end``, per epoch ``on_snapshot``, plus ``on_message`` / ``on_status`` when they happen,
and ``on_fit_end``). Observers such as the dashboard's event queue are callbacks too: the loop
does not know who listens. A callback with state a resumed fit needs (counters, the best score)
returns it from ``state_dict`` (tensors and plain values) and takes it back in ``load_state_dict``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from recogan_app.files import write_atomic
from recogan_app.training.events import FitResult, Message, Snapshot, StatusChange, StepEnd


class Callback:
    """Base class: override the hooks you need; ``resumable`` names the attributes a resumed fit needs back."""

    resumable: tuple[str, ...] = ()

    def on_fit_start(self, trainer) -> None: ...

    def on_step_end(self, trainer, event: StepEnd) -> None: ...

    def on_snapshot(self, trainer, snapshot: Snapshot) -> None: ...

    def on_message(self, trainer, message: Message) -> None: ...

    def on_status(self, trainer, status: StatusChange) -> None: ...

    def on_fit_end(self, trainer, result: FitResult) -> None: ...

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.resumable}

    def load_state_dict(self, state: dict) -> None:
        for name in self.resumable:
            setattr(self, name, state.get(name, getattr(self, name)))


KEEP = ("best", "last")
"""Which epoch a fit keeps: the lowest snapshot score, or the last one with finite figures."""


def replaces(score: float, kept: float, keep: str) -> bool:
    """Whether a snapshot of ``score`` replaces the one kept so far (of score ``kept``) under the rule
    ``keep``: ``"best"`` keeps the lowest score; ``"last"`` the latest finite one, for a fit whose
    learning rate anneals to its end (its last epoch is the settled one, and a monitor loss picks a
    mid-run epoch that validates worse: issue 18's fifth round). Never a snapshot without finite figures."""
    return math.isfinite(score) and (keep == "last" or score < kept)


class Checkpoint(Callback):
    """Keeps the weights of the epoch the trainer's rule keeps (its ``keep``: by default the best
    by validation); writes them to ``best.pt`` when given a folder.

    At the end of the fit the module gets the kept weights back, so whatever is saved or sampled
    afterwards is the epoch the rule chose, whatever the fit's last steps did. (The trainer writes ``last.pt``.)
    """

    resumable = ("best_score", "best_epoch", "best_step", "best_state")

    def __init__(self, directory=None):
        self.directory = None if directory is None else Path(directory)
        self.best_score = math.inf
        self.best_epoch: int | None = None
        self.best_step: int | None = None
        self.best_state: dict | None = None

    def on_snapshot(self, trainer, snapshot: Snapshot) -> None:
        if replaces(snapshot.score, self.best_score, trainer.keep):
            self.best_score, self.best_epoch, self.best_step = float(snapshot.score), snapshot.epoch, snapshot.step
            self.best_state = trainer.module_state()
            self._save()

    def _save(self) -> None:
        if self.directory is not None and self.best_state is not None:
            payload = {"epoch": self.best_epoch, "step": self.best_step, "score": self.best_score,
                       "model": self.best_state}
            write_atomic(self.directory / "best.pt", lambda tmp: torch.save(payload, tmp))

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._save()  # best.pt may be of the epoch the interruption lost

    def on_fit_end(self, trainer, result: FitResult) -> None:
        if self.best_state is not None:
            trainer.module.load_state_dict(self.best_state)


class EarlyStopping(Callback):
    """Stops when the validation score has not improved by ``min_delta`` for ``patience`` snapshots."""

    resumable = ("best", "waited")

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.waited = 0

    def on_snapshot(self, trainer, snapshot: Snapshot) -> None:
        if snapshot.score < self.best - self.min_delta:
            self.best, self.waited = float(snapshot.score), 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            trainer.request_stop("early_stop", f"no better validation score for {self.patience} epochs")


class CosineSchedule(Callback):
    """Every optimiser's learning rate from its initial value down a half cosine to 0 at the end
    of the fit: of its time limit (the schedule knows the budget, so the rate is low when the time
    is up whatever the machine's speed) or of its last epoch, whichever comes first. Set at every
    logged step; paused time does not count, a resumed fit goes on from the seconds trained."""

    def __init__(self):
        self.total_steps = 1
        self.before = 0.0  # seconds trained by the interrupted fit this one resumes
        self.active, self.since = 0.0, None

    def on_fit_start(self, trainer) -> None:
        self.total_steps = max(trainer.max_epochs * trainer.steps_per_epoch, 1)

    def on_status(self, trainer, status) -> None:
        if status.status == "running":
            self.since = time.perf_counter()
        elif self.since is not None:
            self.active, self.since = self.active + time.perf_counter() - self.since, None

    def trained_s(self) -> float:
        return self.before + self.active + (0.0 if self.since is None else time.perf_counter() - self.since)

    def progress(self, trainer, step: int) -> float:
        """Share of the fit done after ``step`` steps: of its steps or of its time limit, whichever is further."""
        progress = step / self.total_steps
        if trainer.time_limit:
            progress = max(progress, self.trained_s() / (self.before + trainer.time_limit))
        return min(progress, 1.0)

    def on_step_end(self, trainer, event: StepEnd) -> None:
        factor = 0.5 * (1.0 + math.cos(math.pi * self.progress(trainer, event.step)))
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])  # kept in the optimiser's state: a resume finds it
                group["lr"] = group["initial_lr"] * factor

    def state_dict(self) -> dict:
        return {"trained_s": self.trained_s()}

    def load_state_dict(self, state: dict) -> None:
        self.before = state.get("trained_s", 0.0)


class InverseEpochSchedule(Callback):
    """Seed 003's learning rate: every optimiser's initial one divided by 1 + the epochs done
    (set after each epoch's snapshot; a resumed fit counts the epochs of its history)."""

    def on_snapshot(self, trainer, snapshot) -> None:
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] / (1 + len(trainer.history))


class ProgressBar(Callback):
    """tqdm bar over wall-clock time (with a time limit) or epochs, showing the latest KS."""

    def __init__(self, total_epochs: int, time_limit: float | None = None, file=None):
        self.total_epochs, self.time_limit, self.file = total_epochs, time_limit, file
        self.bar = None

    def on_fit_start(self, trainer) -> None:
        from tqdm.auto import tqdm

        total, unit = (round(self.time_limit), "s") if self.time_limit else (self.total_epochs, "epoch")
        self.bar = tqdm(total=total, unit=unit, desc="training", file=self.file)

    def on_snapshot(self, trainer, snapshot: Snapshot) -> None:
        self.bar.n = min(round(snapshot.elapsed_s), self.bar.total) if self.time_limit else snapshot.epoch + 1
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in snapshot.metrics.items()
                              if k in ("mean_ks", "max_ks", "max_corr_residual")}, refresh=False)
        self.bar.refresh()

    def on_message(self, trainer, message: Message) -> None:
        self.bar.write(f"[{message.level}] {message.text}")

    def on_fit_end(self, trainer, result: FitResult) -> None:
        self.bar.close()


class StepLog(Callback):
    """Collects the averaged step losses for the run's ``steps.parquet``."""

    resumable = ("rows",)

    def __init__(self):
        self.rows: list[dict] = []

    def on_step_end(self, trainer, event) -> None:
        self.rows.append({"step": event.step, "epoch": event.epoch, **event.losses})
