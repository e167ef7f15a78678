"""The contract a model family fulfils, and the one training recipe every family goes through.

A family (:class:`ModelFamily`) knows its data, networks and figures: which part of a sample it
can train on, how to prepare the training split (preprocessing fitted, tensors, the module with its
losses, the per-epoch snapshot), which files its run holds beside the common ones, and its final
figures on the test split. :func:`fit_to_run` does everything else, the same way for every
family: the destination checks, the split (:mod:`recogan_app.splits`, recorded in the run), the
random streams (:mod:`recogan_app.streams`), the time budget, the partial folder and resume, the
training loop with checkpoints and early stopping (batch size and patience scaled to a small
sample: :mod:`recogan_app.training.schedule`), the run directory, the final evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch

from recogan_app import streams
from recogan_app.data.sources import is_remote
from recogan_app.errors import InputError
from recogan_app.files import file_sha256
from recogan_app.run import Run, building, check_destination, write_run
from recogan_app.splits import draw_split, heldout_sizes
from recogan_app.training.callbacks import Callback, Checkpoint, EarlyStopping, StepLog
from recogan_app.training.control import Deadline, TrainingControl
from recogan_app.training.device import describe_device, resolve_device
from recogan_app.training.events import FitResult
from recogan_app.training.schedule import Schedule
from recogan_app.training.trainer import Trainer, Validation

TOO_SHORT = "allow more time: --time-limit counts the whole command, reading and preparing the data included"


@dataclass
class Prepared:
    """What a family hands the training loop.

    ``module`` provides ``configure_optimizers``, ``discriminator_loss(*batch)`` and
    ``generator_loss(*batch)`` (adversarial) or ``loss(*batch)`` (likelihood), and ``generator``
    (the network the run keeps); ``data`` are the
    training tensors a batch is cut from (on any device: the Trainer moves them and the module);
    ``snapshot`` scores the module on the monitor rows after every epoch.
    """

    module: torch.nn.Module
    data: tuple[torch.Tensor, ...]
    snapshot: Validation
    announce: str
    """What is trained on what, for the observers (the recipe adds the device)."""
    info: dict = field(default_factory=dict)
    """The family's own entries of run.json besides ``data`` and ``fit``."""
    snapshot_s: float = 0.0
    """Expected seconds of one snapshot before one is measured."""
    evaluation_s: float | None = None
    """Seconds the final evaluation and the writing of the run need, measured by the family: the
    fit leaves them (None: a fixed share of the time limit, :data:`~recogan_app.training.control.EVALUATION_SHARE`)."""
    callbacks: list[Callback] = field(default_factory=list)
    """The family's own callbacks of the fit (a learning-rate schedule…), before the observers."""
    early_stopping: bool = True
    """False when the family's schedule needs the whole time limit."""
    keep: str = "best"
    """The epoch the run keeps: the ``"best"`` snapshot score, or the ``"last"`` of a fit annealed to
    its end (:func:`~recogan_app.training.callbacks.replaces`)."""


class ModelFamily:
    """The contract of a model family (subclass it; see docs/architecture.md).

    An instance holds the config of one training and what :meth:`prepare` fitted (the
    preprocessing) until :meth:`save` writes it into the run.
    """

    kind: ClassVar[str]
    """run.json's ``kind``: how :func:`recogan_app.families.load_run` finds the family."""
    config_class: ClassVar[type]
    run_class: ClassVar[type[Run]]
    min_train: ClassVar[int]
    """Fewest training rows the family can learn anything from."""
    headline: ClassVar[tuple[str, ...]] = ()
    """Final figures (metrics.json) a scan's summary shows beside the monitor score."""

    def __init__(self, config):
        self.config = config

    def usable(self, sample):
        """The part of ``sample`` this family trains on (columns chosen, events selected), checked:
        its ``source`` names it in messages, its ``files`` (if any) are the files and URLs read, each
        recorded in run.json (a file with its SHA-256)."""
        raise NotImplementedError

    def size(self, sample) -> int:
        return len(sample)

    def take(self, sample, rows):
        """The rows at sorted positions ``rows`` of ``sample`` (one with a ``subset`` method by default)."""
        return sample.subset(rows)

    def counted(self, n: int) -> str:
        """``n`` usable rows in the family's words, for the "too few" message."""
        return f"{n:,} rows"

    def prepare(self, train, monitor, test, folder: Path, device: torch.device, deadline: Deadline) -> Prepared:
        """Fit the preprocessing on ``train`` and build the module, its data and its snapshot.
        ``folder`` is the run's partial folder (for state that a resumed training reuses)."""
        raise NotImplementedError

    def data_info(self, sample, usable) -> dict:
        """The family's entries of run.json's ``data``."""
        return {}

    def failure_hint(self, result: FitResult, train, prepared: Prepared) -> str | None:
        """What to change when the fit ended before any epoch gave finite figures."""
        return TOO_SHORT if result.reason == "time_limit" else None

    def save(self, folder: Path, test) -> None:
        """Write the family's files (fitted preprocessing, the test split) into the run ``folder``."""
        raise NotImplementedError

    def evaluate(self, run: Run, test, deadline: Deadline) -> dict:
        """The final figures of the written ``run`` on ``test`` (metrics.json), within ``deadline``."""
        raise NotImplementedError


def fit_to_run(family: ModelFamily, sample, out, *, callbacks: Sequence[Callback] = (),
               control: TrainingControl | None = None, overwrite: bool = False, deadline: Deadline | None = None,
               origin: dict | None = None, resume: Path | None = None, choice: dict | None = None) -> Run:
    """Train ``family`` on ``sample`` and write the run directory ``out``; returns the loaded run.

    The run is built in a partial folder of this process beside ``out`` (checkpoints land there
    while it trains) and renamed to ``out`` only when complete (:func:`~recogan_app.run.building`).

    Parameters
    ----------
    family : ModelFamily
        The family with the training's config.
    sample
        The checked data the family takes (an MCSample, a ZDCSample…).
    out : path
        The run directory to create; an existing non-empty one needs ``overwrite=True``.
    callbacks : sequence of Callback
        Observers (progress bar, dashboard queue…), called after the built-in checkpointing
        and early stopping.
    control : TrainingControl, optional
        Pause/resume/stop from another thread.
    deadline : Deadline, optional
        The end of the whole call (default: ``config.time_limit`` from now): the fit stops early
        enough to leave the evaluation its share.
    origin : dict, optional
        How to read the data again (the CLI's options and the files' SHA-256), for ``--resume``.
    resume : path, optional
        A killed training's partial folder to continue (:func:`~recogan_app.run.take_over`).
    choice : dict, optional
        How the family was chosen (:meth:`~recogan_app.families.choice.Choice.record`), kept in
        run.json as ``model_choice``.
    """
    config = family.config
    deadline = deadline or Deadline(config.time_limit)
    out = check_destination(out, overwrite) if resume is None else Path(out)
    usable = family.usable(sample)
    source, n = usable.source, family.size(usable)
    n_monitor, n_test = heldout_sizes(n, config.monitor_fraction, config.test_fraction)
    if n - n_monitor - n_test < family.min_train:
        needed = math.ceil(family.min_train / (1 - config.monitor_fraction - config.test_fraction)) + 4
        raise InputError(f"has {family.counted(n)}; training needs at least {needed:,}", path=source)
    bootstrap = config.bootstrap_of is not None  # an ensemble member: its ensemble's split, its own resample
    split = draw_split(n, n_monitor, n_test, config.bootstrap_of if bootstrap else config.seed,
                       resample=config.seed if bootstrap else None)
    train, monitor, test = (family.take(usable, rows) for rows in (split.train, split.monitor, split.test))

    torch.manual_seed(streams.stream_seed(config.seed, "training"))  # initial weights, then the training noise
    device = resolve_device(config.device)
    schedule = Schedule.for_rows(len(split.train), config.batch_size, config.patience)
    record = {"kind": family.kind, "config": config.to_dict(), "overwrite": overwrite, "origin": origin,
              "model_choice": choice}
    with building(out, overwrite=overwrite, record=record, resume=resume) as partial:
        prepared = family.prepare(train, monitor, test, partial, device, deadline)
        steps = StepLog()
        trainer = Trainer(device=device, max_epochs=config.max_epochs, batch_size=schedule.batch_size,
                          time_limit=deadline.fit_seconds(prepared.evaluation_s),
                          discriminator_steps=getattr(config, "discriminator_steps", 1),  # a likelihood family has none
                          checkpoints=partial / "checkpoints",
                          callbacks=[Checkpoint(partial / "checkpoints"),
                                     *([EarlyStopping(schedule.patience)] if prepared.early_stopping else []), deadline,
                                     *prepared.callbacks, *callbacks, steps], control=control, snapshot_s=prepared.snapshot_s,
                          keep=prepared.keep)
        result = trainer.fit(prepared.module, prepared.data, prepared.snapshot,
                             shuffle=streams.torch_generator(config.seed, "batches"),
                             announce=f"{prepared.announce} on {describe_device(device)}", resume=resume is not None)
        if result.best_epoch is None:  # no epoch gave finite figures: a run would hold an unjudged generator
            when = "its first epoch" if not result.epochs else "any epoch gave finite figures"
            raise InputError(f"training ended ({result.reason}) before {when}: nothing to save", path=source,
                             hint=family.failure_hint(result, train, prepared))
        sources = _recorded_sources(getattr(usable, "files", None) or [source], (origin or {}).get("sha256", {}))
        info = {
            "kind": family.kind,
            "data": {"source": source, "n_train": len(split.train), "n_monitor": len(split.monitor),
                     "n_test": len(split.test),
                     "sha256": sources[0]["sha256"] if len(sources) == 1 else None, "sources": sources,
                     **family.data_info(sample, usable)},
            "split": split.record(),
            "schedule": {**schedule.record(), "early_stopping": prepared.early_stopping},
            "random": streams.record(config.seed),
            "device": describe_device(device),
            **prepared.info,
            **({"model_choice": choice} if choice else {}),
            "fit": {"reason": result.reason, "epochs": result.epochs, "steps": result.steps,
                    "elapsed_s": result.elapsed_s, "best_epoch": result.best_epoch, "best_score": result.best_score,
                    "keep": prepared.keep},
        }
        write_run(partial, config=config, info=info, generator=prepared.module.generator, history=result.history,
                  steps=pd.DataFrame(steps.rows))
        family.save(partial, test)
        run = family.run_class.load(partial, device=device)
        run.write_metrics(family.evaluate(run, test, deadline))
    return family.run_class.load(out, device=device)


def _recorded_sources(paths, known: dict) -> list[dict]:
    """run.json's ``data.sources``: every file read, in order, for the run to read them again. A local
    file by its absolute path and SHA-256 (``known``: those the CLI hashed for ``--resume``), a URL as
    given and without one (hashing it would download the whole file); an embedded toy is no file."""
    return [{"path": path, "sha256": None} if is_remote(path) else
            {"path": (where := str(Path(path).resolve())), "sha256": known.get(where) or file_sha256(path)}
            for path in map(str, paths) if is_remote(path) or Path(path).is_file()]
