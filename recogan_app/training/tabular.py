"""Train the tabular GAN on an MC sample and write a run directory.

This is the one engine entry point for tabular training: the CLI, the dashboard and notebooks
all call :func:`train_tabular`. The MC is split once, by the seed, into

- a training split (fits the preprocessing and the networks),
- a *monitor* split (per-epoch snapshots: curves, best checkpoint, early stopping),
- a *test* split, never used for any choice, saved in the run as ``heldout.parquet`` and used
  for the final metrics, so that the reported figures carry no selection bias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recogan_app.config import TabularConfig
from recogan_app.data.sources import MCSample, load_mc
from recogan_app.errors import InputError
from recogan_app.files import file_sha256
from recogan_app.losses import MarginalTargets
from recogan_app.metrics.correlations import correlation_residual, max_abs_residual
from recogan_app.metrics.c2st import classifier_two_sample_test
from recogan_app.metrics.distributions import feature_metrics, ks_summary
from recogan_app.metrics.verdict import bar_score
from recogan_app.models.tabular import TabularGAN
from recogan_app.preprocessing import FeaturePipeline
from recogan_app.run import Run, building, check_destination, write_run
from recogan_app.splits import split_mc
from recogan_app.training.callbacks import Callback, Checkpoint, EarlyStopping
from recogan_app.training.control import Deadline, TrainingControl
from recogan_app.training.device import describe_device, resolve_device
from recogan_app.training.trainer import ShuffledBatches, Trainer

MIN_TRAINING_ROWS = 50
TOO_SHORT = "allow more time: --time-limit counts the whole command, reading and preparing the data included"



def compare(reference: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[dict, dict]:
    """Per-feature KS and Wasserstein plus the Pearson residual: the snapshot metrics.

    Returns flat ``metrics`` (floats, one history row) and ``details`` (tables for plots).
    """
    per_feature = feature_metrics(reference, synthetic)
    residual = correlation_residual(reference, synthetic)
    metrics = {"mean_ks": float(per_feature["ks"].mean()), "max_ks": float(per_feature["ks"].max()),
               "max_corr_residual": float(np.nan_to_num(max_abs_residual(residual), nan=0.0))}
    metrics.update({f"ks_{f}": float(v) for f, v in per_feature["ks"].items()})
    metrics.update({f"ws_{f}": float(v) for f, v in per_feature["wasserstein"].items()})
    return metrics, {"per_feature": per_feature, "corr_residual": residual}


class SnapshotValidation:
    """Compares a fixed-noise generated sample with the monitor split after every epoch.

    The same noise is used at every snapshot so that the curves show the generator changing,
    not the noise; the sample size is stated with every snapshot.
    """

    def __init__(self, monitor: pd.DataFrame, pipeline: FeaturePipeline, rows: int, seed: int):
        self.reference = monitor.sample(n=min(rows, len(monitor)), random_state=seed).reset_index(drop=True)
        self.pipeline = pipeline
        self.seed = seed

    def __call__(self, module: TabularGAN):
        synthetic = self.pipeline.inverse_transform(module.sample(len(self.reference), seed=self.seed).cpu().numpy())
        metrics, details = compare(self.reference, synthetic)
        details.update(reference=self.reference, synthetic=synthetic)
        score = bar_score(metrics["mean_ks"], metrics["max_ks"], metrics["max_corr_residual"])
        return (score if all(map(math.isfinite, metrics.values())) else math.inf), metrics, details, len(self.reference)


def train_tabular(sample: MCSample | pd.DataFrame, config: TabularConfig, out, *, callbacks: Sequence[Callback] = (),
                  control: TrainingControl | None = None, overwrite: bool = False, deadline: Deadline | None = None,
                  origin: dict | None = None, resume: Path | None = None) -> Run:
    """Train a tabular GAN on ``sample`` and write the run directory ``out``.

    The run is built in a partial folder of this process beside ``out`` (checkpoints land there
    while it trains) and renamed to ``out`` only when complete (:func:`~recogan_app.run.building`).

    Parameters
    ----------
    sample : MCSample or DataFrame
        The checked MC (see :func:`recogan_app.data.sources.load_mc`); a DataFrame is checked here.
    config : TabularConfig
        All settings; ``config.features`` (if set) selects and orders the columns.
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

    Returns
    -------
    Run
        The written run, with its best-by-validation generator.
    """
    deadline = deadline or Deadline(config.time_limit)
    out = check_destination(out, overwrite) if resume is None else Path(out)
    if isinstance(sample, pd.DataFrame):
        sample = load_mc(sample, features=config.features)
    features = config.features or list(sample.frame.columns)
    missing = [f for f in features if f not in sample.frame.columns]
    if missing:
        raise InputError("not among the loaded columns", path=sample.source, column=missing[0])
    frame = sample.frame[features]
    train, monitor, test = split_mc(frame, config.validation_fraction, config.seed)
    if len(train) < MIN_TRAINING_ROWS:
        raise InputError(f"has {len(frame)} rows; training needs at least "
                         f"{math.ceil(MIN_TRAINING_ROWS / (1 - config.validation_fraction)) + 4}",
                         path=sample.source)

    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    try:
        pipeline = FeaturePipeline(config.transforms, random_state=config.seed).fit(train)
    except InputError as exc:
        raise exc.in_file(sample.source) from None
    data = torch.from_numpy(pipeline.transform(train)).to(device)
    shuffle = torch.Generator().manual_seed(config.seed)
    module = TabularGAN(data.shape[1], config, MarginalTargets.from_data(
        data, inverse=pipeline.inverse_transform, generator=shuffle)).to(device)

    record = {"kind": "tabular", "config": config.to_dict(), "overwrite": overwrite, "origin": origin}
    with building(out, overwrite=overwrite, record=record, resume=resume) as partial:
        steps = StepLog()
        trainer = Trainer(max_epochs=config.max_epochs, time_limit=deadline.fit_seconds(),
                          discriminator_steps=config.discriminator_steps, checkpoints=partial / "checkpoints",
                          callbacks=[Checkpoint(partial / "checkpoints"), EarlyStopping(config.patience), deadline,
                                     *callbacks, steps], control=control)
        result = trainer.fit(module, ShuffledBatches(data, batch_size=config.batch_size, generator=shuffle),
                             SnapshotValidation(monitor, pipeline, config.snapshot_rows, config.seed),
                             announce=f"training {len(train):,} rows × {len(features)} features on "
                                      f"{describe_device(device)}; monitor split {len(monitor):,}, "
                                      f"test split {len(test):,}", resume=resume is not None)
        if result.best_epoch is None:  # no epoch gave finite figures: a run would hold an unjudged generator
            largest = frame.abs().max().idxmax()
            when = "its first epoch" if not result.epochs else "any epoch gave finite figures"
            hint = (TOO_SHORT if result.reason == "time_limit" else
                    f"after non-finite losses, check the features' scales (largest: column '{largest}', up to "
                    f"{frame[largest].abs().max():.3g}) or lower the learning rates")
            raise InputError(f"training ended ({result.reason}) before {when}: nothing to save",
                             path=sample.source, hint=hint)

        info = {
            "kind": "tabular",
            "data": {"source": sample.source, "tree": sample.tree, "features": features,
                     "n_rows": len(frame), "n_train": len(train), "n_monitor": len(monitor),
                     "n_test": len(test), "n_dropped_invalid": sample.n_dropped,
                     "sha256": file_sha256(sample.source) if Path(sample.source).is_file() else None},
            "device": describe_device(device),
            "fit": {"reason": result.reason, "epochs": result.epochs, "steps": result.steps,
                    "elapsed_s": result.elapsed_s, "best_epoch": result.best_epoch,
                    "best_score": result.best_score},
        }
        write_run(partial, config=config, info=info, pipeline=pipeline, generator=module.generator,
                  history=result.history, steps=pd.DataFrame(steps.rows), heldout=test)
        run = Run.load(partial)
        run.write_metrics(heldout_metrics(run, test, seed=config.seed, deadline=deadline))
    return Run.load(out)


def heldout_metrics(run: Run, test: pd.DataFrame, *, seed: int, deadline: Deadline | None = None) -> dict:
    """The run's figures on the untouched test split: KS/WS per feature, the Pearson residual and a
    classifier two-sample AUC, each with the sample size it was measured on. The classifier (the
    slowest part) is left out, and ``c2st_skipped`` says why, when ``deadline`` has passed."""
    synthetic = run.generate(len(test), seed=seed + 1)
    metrics, details = compare(test, synthetic)
    summary = ks_summary(details["per_feature"]["ks"].to_numpy())
    figures = {"sample_size": len(test), "verdict": summary["verdict"], **metrics}
    if deadline is not None and deadline.left() <= 0:
        return {**figures, "c2st_skipped": f"the time limit ({deadline.seconds:g} s) was reached"}
    c2st = classifier_two_sample_test(test, synthetic, n_max=50_000, seed=seed)
    return {**figures, "c2st_auc": c2st.auc, "c2st_auc_interval": list(c2st.auc_interval), "c2st_rows": c2st.n_test}


class StepLog(Callback):
    """Collects the averaged step losses for ``steps.parquet``."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_step_end(self, trainer, event) -> None:
        self.rows.append({"step": event.step, "epoch": event.epoch, **event.losses})

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state.get("rows", []))
