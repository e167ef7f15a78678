"""The batch size and patience a training uses, scaled to its number of training rows.

The settings' defaults were chosen on hundreds of thousands of rows, where an epoch is hundreds
of optimiser steps. On a rare channel's few hundred or thousand candidates an epoch is one step
(a batch of 2,048 holds them all), so a patience of 30 epochs stopped the training after 30
steps, seconds in (2,300 events: 3 s, mean KS 0.33). Here a small sample is cut into at least
:data:`BATCHES_PER_EPOCH` batches (never under :data:`MIN_BATCH` rows), and the patience is
never shorter than :data:`PATIENCE_STEPS` optimiser steps. A large sample keeps its settings:
``batch_size`` rows a batch and ``patience`` epochs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

BATCHES_PER_EPOCH = 8
"""Fewest batches an epoch is cut into while batches stay above :data:`MIN_BATCH` rows."""
MIN_BATCH = 64
"""Fewest rows of a scaled-down batch: batch norm's statistics and the KS penalty's soft ECDF
need that many."""
PATIENCE_STEPS = 1000
"""Fewest optimiser steps without a better monitor score before early stopping (the toy's
100k rows at the defaults: 30 epochs of 39 steps)."""


@dataclass(frozen=True)
class Schedule:
    """The effective batch size and patience of one training (run.json ``schedule``)."""

    batch_size: int
    steps_per_epoch: int
    patience: int
    """Snapshots (one per epoch) without a better score before early stopping."""
    scaled: bool
    """Whether the sample was small enough to change the settings' values."""

    @classmethod
    def for_rows(cls, n_train: int, batch_size: int, patience: int) -> "Schedule":
        """The schedule of ``n_train`` training rows under the settings ``batch_size`` and ``patience``."""
        batch = min(batch_size, max(MIN_BATCH, n_train // BATCHES_PER_EPOCH), n_train)
        steps = max(n_train // batch, 1)  # the trainer drops the last incomplete batch
        epochs = max(patience, math.ceil(PATIENCE_STEPS / steps))
        return cls(batch, steps, epochs, scaled=(batch, epochs) != (min(batch_size, n_train), patience))

    @property
    def patience_steps(self) -> int:
        return self.patience * self.steps_per_epoch

    def record(self) -> dict:
        return {**asdict(self), "patience_steps": self.patience_steps}


def describe(record: dict) -> str:
    """The schedule of run.json in words, for the summary line."""
    scaled = "; scaled to the small sample" if record["scaled"] else ""
    patience = (f"patience {record['patience']:,} epochs = {record['patience_steps']:,} steps"
                if record.get("early_stopping", True) else "no early stop (the learning rate anneals to the time limit)")
    return f"batches of {record['batch_size']:,} rows ({record['steps_per_epoch']:,} steps an epoch), {patience}{scaled}"


def plural(n: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``, ``1,079 rows``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def describe_fit(fit: dict, steps_per_epoch: int) -> str:
    """How a fit ended (run.json ``fit``, or a :class:`~recogan_app.training.events.FitResult`'s
    fields) in words that add up: a time limit or a stop cuts the last epoch short, so its steps
    are counted apart. Epochs are counted from 1 in words, as the dashboard's plots count them;
    run.json's ``best_epoch`` is the 0-based index of the history's ``epoch`` column."""
    epochs, steps = fit["epochs"], fit["steps"]
    last = steps - (epochs - 1) * steps_per_epoch  # the steps of the last epoch
    if 0 < last < steps_per_epoch:
        whole = f"{plural(epochs - 1, 'full epoch')} and " if epochs > 1 else ""
        done = f"{plural(steps, 'step')}: {whole}{last:,} of the {steps_per_epoch:,} of epoch {epochs}"
    else:
        done = f"{plural(epochs, 'epoch')} ({plural(steps, 'step')})"
    best = "none" if fit["best_epoch"] is None else fit["best_epoch"] + 1
    kept = "best epoch" if fit.get("keep", "best") == "best" else "kept the last finite epoch,"  # saved before ``keep``: best
    how = "stopped on request" if fit["reason"] == "stopped" else f"stopped by {fit['reason']}"
    return f"{how} after {done}; {kept} {best}"

