"""``train --model auto``: the tabular family chosen by a short trial on the user's own data.

Each candidate (the GAN, the flow) trains for the same short time on the training split, then
generates as many rows as the monitor split holds (at most :data:`C2ST_ROWS`), and a classifier
two-sample test (the BDT of the final evaluation) tries to tell them from the monitor rows: the
lower AUC wins. One criterion for both families, measured on rows neither trained on (a GAN's
losses and a flow's likelihood are not comparable), and never the test split: the chosen run's
test figures stay an unbiased judgement of it. The trials split the data as the final training
does (same fractions and seed), so its monitor and test rows are the ones the trials used and
left alone.

Which family wins depends on the data and the budget (issue 15's probe: the flow reached AUC 0.53
where the GAN reached 0.65 on 12 reconstruction-level features; the flow needs two features at
least), so the trial measures instead of assuming.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from recogan_app import streams
from recogan_app.config import MODELS
from recogan_app.errors import InputError
from recogan_app.families.recipe import ModelFamily, fit_to_run
from recogan_app.metrics.c2st import classifier_two_sample_test
from recogan_app.run import Run
from recogan_app.training.callbacks import Callback
from recogan_app.training.control import Deadline, TrainingControl
from recogan_app.training.events import Message

TRIAL_S = 30.0
"""Seconds of each candidate's trial (the whole trial: preparing, fitting, generating)."""
TRIAL_SHARE = 1 / 6
"""Most of a training's time limit that each trial takes (the two trials: a third)."""
C2ST_ROWS = 20_000
"""Most monitor rows the trial's classifier compares (and as many generated rows)."""


@dataclass(frozen=True)
class Choice:
    """The trial's outcome: the winning family's ``kind``, each candidate's monitor AUC (None with
    the reason when it could not train), the seconds each trial had and took (its classifier test
    comes after its time is up) and the monitor rows scored."""

    kind: str
    auc: dict[str, float | None]
    refused: dict[str, str]
    trial_s: float
    elapsed_s: dict[str, float]
    monitor_rows: int

    def summary(self) -> str:
        """One line for a person: each candidate's AUC (or why it refused) and the winner."""
        names = {kind: model for model, kind in MODELS.items()}
        scores = ", ".join(f"{names[kind]} {auc:.3f}" if auc is not None else f"{names[kind]} refused "
                           f"({self.refused[kind]})" for kind, auc in self.auc.items())
        took = " and ".join(f"{seconds:.0f}" for seconds in self.elapsed_s.values())
        return (f"{scores} (classifier AUC against {self.monitor_rows:,} monitor rows, lower wins, after a "
                f"{self.trial_s:.0f} s trial of each: {took} s with the test); training the {names[self.kind]}")

    def record(self) -> dict:
        """What run.json keeps under ``model_choice``."""
        return {"chosen": self.kind, "criterion": "classifier two-sample AUC on the monitor split (lower wins)",
                "monitor_auc": self.auc, "refused": self.refused, "trial_s": self.trial_s,
                "elapsed_s": self.elapsed_s, "monitor_rows": self.monitor_rows}


def auto_models(conditional: bool) -> dict[str, str]:
    """The models ``--model auto`` tries (name → family kind): all of :data:`MODELS`, seed 003's
    regression only given conditions (it cannot train without)."""
    return {name: kind for name, kind in MODELS.items() if conditional or kind != "quantile"}


def trial_seconds(time_limit: float | None) -> float:
    """Each trial's time: :data:`TRIAL_S`, or :data:`TRIAL_SHARE` of a shorter time limit."""
    return TRIAL_S if time_limit is None else min(TRIAL_S, TRIAL_SHARE * time_limit)


def trial(family: ModelFamily, trial_s: float) -> ModelFamily:
    """``family`` (the same class and settings) for a trial of ``trial_s`` seconds, whose final
    figure is the monitor AUC: the test split is neither generated for nor scored."""

    class Trial(type(family)):
        def prepare(self, train, monitor, test, *rest):
            self.monitor = monitor
            return super().prepare(train, monitor, test, *rest)

        def evaluate(self, run, test, deadline) -> dict:
            seed, rows = streams.stream_seed(self.config.seed, "evaluation"), min(len(self.monitor), C2ST_ROWS)
            given = self.monitor.frame.sample(rows, random_state=seed) if run.conditions else rows  # their conditions
            synthetic = run.generate(given, seed=seed)
            auc = classifier_two_sample_test(given if run.conditions else self.monitor.frame, synthetic, n_max=rows,
                                             seed=seed, weights=self.monitor.weights,  # none with conditions
                                             paired=bool(run.conditions)).auc  # twins in one fold
            return {"monitor_auc": auc, "monitor_rows": rows}

    return Trial(family.config.updated(time_limit=trial_s))


def choose_family(sample, candidates: list[ModelFamily], trial_s: float, *,
                  control: TrainingControl | None = None) -> Choice:
    """Train each of ``candidates`` (families with their configs) on ``sample`` for ``trial_s``
    seconds (:func:`trial`) and pick the one whose rows a classifier tells least from the monitor
    rows.

    A candidate that refuses the data (a flow given one feature) scores None with its message;
    when every candidate refuses, the first one's :class:`InputError` is raised. ``control``
    pauses and stops the trials as it does a training.
    """
    auc, refused, elapsed, errors, rows = {}, {}, {}, [], 0
    with tempfile.TemporaryDirectory(prefix="recogan-auto-") as folder:
        for family in candidates:
            start = time.monotonic()
            try:
                figures = fit_to_run(trial(family, trial_s), sample, Path(folder) / family.kind,
                                     control=control, deadline=Deadline(trial_s)).metrics()
            except InputError as exc:
                auc[family.kind], refused[family.kind] = None, exc.problem
                errors.append(exc)
                continue
            finally:
                elapsed[family.kind] = round(time.monotonic() - start, 1)
            auc[family.kind], rows = figures["monitor_auc"], figures["monitor_rows"]
    scored = {kind: value for kind, value in auc.items() if value is not None}
    if not scored:
        raise errors[0]
    return Choice(kind=min(scored, key=scored.get), auc=auc, refused=refused, trial_s=trial_s, elapsed_s=elapsed,
                  monitor_rows=rows)


def fit_chosen(candidates: list[ModelFamily], sample, out, *, callbacks: Sequence[Callback] = (),
               control: TrainingControl | None = None) -> Run:
    """``--model auto`` in one call (the dashboard's, in its training process): the trials, the
    choice told to ``callbacks`` as a message, then the winner's training into ``out``, the
    whole bounded by the candidates' time limit."""
    time_limit = candidates[0].config.time_limit
    deadline = Deadline(time_limit)
    for callback in callbacks:
        callback.on_message(None, Message(f"choosing the family: a trial of {trial_seconds(time_limit):.0f} s of "
                                          f"each of {len(candidates)}, scored on the monitor split"))
    picked = choose_family(sample, candidates, trial_seconds(time_limit), control=control)
    for callback in callbacks:
        callback.on_message(None, Message(f"auto: {picked.summary()}"))
    family = next(c for c in candidates if c.kind == picked.kind)
    return fit_to_run(family, sample, out, callbacks=callbacks, control=control, deadline=deadline,
                      choice=picked.record())
