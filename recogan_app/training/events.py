"""What the trainer tells its observers. Plain data: safe to put on a queue for another thread."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class StepEnd:
    """One optimisation step (a generator update and its discriminator updates) is done."""

    step: int
    epoch: int
    losses: dict[str, float]


@dataclass(frozen=True)
class Snapshot:
    """Validation of the current generator on held-out MC, taken at the end of an epoch.

    ``score`` is lower-is-better and drives best-checkpoint selection and early stopping;
    ``metrics`` are flat floats (a history row); ``details`` holds what plots need (per-feature
    tables, the correlation residual matrix, the compared samples) and is not persisted.
    """

    epoch: int
    step: int
    elapsed_s: float
    score: float
    metrics: dict[str, float]
    sample_size: int
    details: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Message:
    """Something a person should read: a rollback after a NaN loss, why training stopped…"""

    text: str
    level: str = "info"  # "info" | "warning" | "error"


@dataclass(frozen=True)
class StatusChange:
    """The training changed state: 'running', 'paused', 'stopping', and at its end 'stopped' (asked
    to), 'finished' (by its epochs, time limit or early stopping) or 'failed'."""

    status: str


@dataclass(frozen=True)
class FitResult:
    """How a fit ended."""

    reason: str  # 'max_epochs' | 'time_limit' | 'early_stop' | 'stopped' | 'diverged'
    epochs: int
    steps: int
    elapsed_s: float
    best_score: float | None
    best_epoch: int | None
    history: pd.DataFrame
