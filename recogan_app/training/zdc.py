"""Train the ZDC GAN (seed 001) on ZP events and write a run directory of kind "zdc".

The one engine entry point for ZDC training: the CLI, the dashboard and the benchmark call
:func:`train_zdc`. The events kept (photon sum ≥ ``min_photon_sum``) are split once, by the seed,
80/20 as in seed 001:

- the training split fits the condition standardisation, the diversity and hottest-pixel
  targets, the aux regressor and the GAN; a fixed subset of it, compared with a fixed noise,
  gives the per-epoch snapshots (curves, best checkpoint, early stopping);
- the test split is never used for a choice; it is saved in the run (``heldout.npz``) and gives
  the final figures, averaged over several noise draws.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recogan_app.config import ZDCConfig
from recogan_app.data.zdc import ConditionScaler, ZDCSample, counts_from_log1p, diversity_targets
from recogan_app.errors import InputError
from recogan_app.files import file_sha256, write_atomic
from recogan_app.metrics.zdc import channel_sums, empty_count, five_channel_ws, hottest_pixel, hottest_pixel_error
from recogan_app.models.zdc import AuxRegressor, ZDCGAN
from recogan_app.run import ZDCRun, building, check_destination, write_zdc_run
from recogan_app.training.callbacks import Callback, Checkpoint, EarlyStopping
from recogan_app.training.control import PRETRAINING_SHARE, Deadline, TrainingControl
from recogan_app.training.device import describe_device, resolve_device
from recogan_app.training.tabular import TOO_SHORT, StepLog
from recogan_app.training.trainer import ShuffledBatches, Trainer

MIN_TRAINING_EVENTS = 16
GALLERY = 8  # real/generated pairs each snapshot carries for the dashboard


def split_events(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted positions of a seeded random split."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, math.ceil(test_fraction * n))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def compare_zdc(real: np.ndarray, draws: Sequence[np.ndarray], convention: str = "published") -> dict:
    """The ZDC figures of generated draws against real events with the same conditions.

    Returns a flat dict: ``ws_mean`` and ``ws_ch1``…``ws_ch5`` (five-channel Wasserstein, photons,
    averaged over draws), ``ws_draw_std`` (spread of the five-channel mean between draws),
    ``empty_real``, ``empty_generated`` (mean over draws) and ``hottest_pixel_error`` (pixels,
    mean over draws).
    """
    ws = five_channel_ws(real, draws, convention)
    return {"ws_mean": ws["mean"], **{f"ws_ch{k + 1}": float(v) for k, v in enumerate(ws["per_channel"])},
            "ws_draw_std": float(np.std(ws["per_draw"])),
            "empty_real": float(empty_count(real)),
            "empty_generated": float(np.mean([empty_count(d) for d in draws])),
            "hottest_pixel_error": float(np.mean([hottest_pixel_error(real, d) for d in draws]))}


class ZDCValidation:
    """Per-epoch snapshot: one image per monitor event, always from the same noise, so that the
    curves show the generator changing, not the noise.

    ``details`` carries a gallery (the first real/generated pairs, same conditions, and those
    conditions in their units when given as ``gallery_conditions``) and the channel sums of both,
    for the dashboard.
    """

    def __init__(self, images: np.ndarray, conditions: torch.Tensor, convention: str, seed: int,
                 gallery_conditions: np.ndarray | None = None):
        self.images, self.conditions, self.convention, self.seed = images, conditions, convention, seed
        self.gallery_conditions = None if gallery_conditions is None else gallery_conditions[:GALLERY]

    def __call__(self, module: ZDCGAN):
        noise = torch.Generator(device=self.conditions.device).manual_seed(self.seed)
        generated = counts_from_log1p(module.generator.sample(self.conditions, generator=noise).cpu().numpy()[:, 0])
        metrics = compare_zdc(self.images, [generated], self.convention)
        details = {"gallery_real": self.images[:GALLERY], "gallery_generated": generated[:GALLERY],
                   "gallery_conditions": self.gallery_conditions,
                   "channels_real": channel_sums(self.images, self.convention),
                   "channels_generated": channel_sums(generated, self.convention)}
        score = metrics["ws_mean"] if math.isfinite(metrics["ws_mean"]) else math.inf
        return score, metrics, details, len(self.images)

    def expected_seconds(self, module: ZDCGAN, probe: int = 64) -> float:
        """A measured guess of one snapshot's time: ``probe`` monitor events generated, scaled to all."""
        started = time.monotonic()
        module.generator.sample(self.conditions[:probe], generator=torch.Generator(self.conditions.device))
        return (time.monotonic() - started) * len(self.conditions) / min(probe, len(self.conditions))


def pretrain_aux_regressor(images: torch.Tensor, hottest: torch.Tensor, *, epochs: int, lr: float,
                           batch_size: int, seed: int, seconds: float = math.inf) -> tuple[AuxRegressor, float]:
    """Fit the aux regressor to the hottest pixel of REAL images (log1p, (N, 1, 56, 30)); returns it
    with the epochs trained, fewer than ``epochs`` when ``seconds`` ran out first (at least one step).

    Trained on real images only, so that as a frozen penalty it measures where a generated shower
    sits by the standard of the data (the published TF code trained it on generated images).
    The loss is the MSE of (row, col) in units of the image size, so both coordinates count alike.
    """
    stop_at = time.monotonic() + seconds
    aux = AuxRegressor().to(images.device)
    optimizer = torch.optim.Adam(aux.parameters(), lr=lr)
    batches = ShuffledBatches(images, hottest, batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
    done = 0
    for _ in range(epochs):
        for x, target in batches:
            if done and time.monotonic() >= stop_at:
                return aux.eval(), done / len(batches)
            loss = (((aux(x) - target) / aux.scale) ** 2).sum(dim=1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
    return aux.eval(), float(epochs)


def pretrained_aux(folder: Path, tensors: tuple, test: ZDCSample, config: ZDCConfig,
                   seconds: float) -> tuple[AuxRegressor, dict]:
    """The aux regressor pretrained within ``seconds`` and what it achieved on the test split,
    kept in ``folder/aux.pt`` so that a resumed training does not pretrain again."""
    saved = folder / "aux.pt"
    if saved.is_file():
        state = torch.load(saved, map_location=tensors[0].device, weights_only=True)
        aux = AuxRegressor().to(tensors[0].device)  # built all the same: the same draws of the global RNG
        aux.load_state_dict(state["model"])
        return aux.eval(), state["info"]
    aux, epochs = pretrain_aux_regressor(tensors[0], tensors[3], epochs=config.aux_epochs, lr=config.aux_lr,
                                         batch_size=config.batch_size, seed=config.seed, seconds=seconds)
    with torch.inference_mode():
        test_log = torch.from_numpy(np.log1p(test.images).astype(np.float32)[:, None]).to(tensors[0].device)
        predicted = torch.cat([aux(x) for x in test_log.split(1024)]).cpu().numpy()
    info = {"epochs": round(epochs, 2), "epochs_requested": config.aux_epochs, "test_error_px": float(
        np.linalg.norm(predicted - hottest_pixel(test.images), axis=1).mean())}
    state = {"model": {k: v.detach().cpu() for k, v in aux.state_dict().items()}, "info": info}
    write_atomic(saved, lambda tmp: torch.save(state, tmp))
    return aux, info


def train_zdc(sample: ZDCSample, config: ZDCConfig, out, *, callbacks: Sequence[Callback] = (),
              control: TrainingControl | None = None, overwrite: bool = False, deadline: Deadline | None = None,
              origin: dict | None = None, resume: Path | None = None) -> ZDCRun:
    """Train seed 001's conditional GAN on ZP events and write the run directory ``out``.

    The run is built in a partial folder of this process beside ``out`` and renamed to ``out``
    when complete (:func:`~recogan_app.run.building`). Under a time limit the aux pretraining
    takes at most a quarter of it and the held-out evaluation as many noise draws as fit.

    Parameters
    ----------
    sample : ZDCSample
        Checked events (:func:`recogan_app.data.zdc.load_zdc` or the toy).
    config : ZDCConfig
        All settings.
    out : path
        The run directory to create; an existing non-empty one needs ``overwrite=True``.
    callbacks : sequence of Callback
        Observers, called after the built-in checkpointing and early stopping.
    control : TrainingControl, optional
        Pause/resume/stop from another thread.
    deadline, origin, resume
        As for :func:`~recogan_app.training.tabular.train_tabular`.

    Returns
    -------
    ZDCRun
        The written run, with its best-by-snapshot generator.
    """
    deadline = deadline or Deadline(config.time_limit)
    out = check_destination(out, overwrite) if resume is None else Path(out)
    kept = sample.subset(sample.photon_sums >= config.min_photon_sum)
    train_idx, test_idx = split_events(len(kept), config.test_fraction, config.seed)
    if len(train_idx) < MIN_TRAINING_EVENTS:
        raise InputError(f"has {len(kept)} events with at least {config.min_photon_sum} photons; training needs "
                         f"at least {math.ceil(MIN_TRAINING_EVENTS / (1 - config.test_fraction)) + 1}",
                         path=sample.source)
    train, test = kept.subset(train_idx), kept.subset(test_idx)

    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    scaler = ConditionScaler().fit(train.conditions)
    log_images = np.log1p(train.images).astype(np.float32)
    tensors = tuple(torch.from_numpy(a).to(device) for a in (
        log_images[:, None], scaler.transform(train.conditions), diversity_targets(train.conditions, log_images),
        hottest_pixel(train.images).astype(np.float32)))

    monitor = np.sort(np.random.default_rng(config.seed + 1).permutation(len(train))[:config.snapshot_rows])
    validation = ZDCValidation(train.images[monitor], tensors[1][torch.from_numpy(monitor).to(device)],
                               config.channels, config.seed, gallery_conditions=train.conditions[monitor])
    record = {"kind": "zdc", "config": config.to_dict(), "overwrite": overwrite, "origin": origin}
    with building(out, overwrite=overwrite, record=record, resume=resume) as partial:
        aux, aux_info = None, None
        if config.lambda_aux > 0:
            aux, aux_info = pretrained_aux(partial, tensors, test, config, deadline.until(PRETRAINING_SHARE))
        module = ZDCGAN(config, aux).to(device)
        steps = StepLog()
        snapshot_s = validation.expected_seconds(module)
        draw_s = snapshot_s * len(test) / len(monitor)  # the evaluation's one noise draw at least
        trainer = Trainer(max_epochs=config.max_epochs, time_limit=deadline.fit_seconds(draw_s),
                          discriminator_steps=config.discriminator_steps, checkpoints=partial / "checkpoints",
                          callbacks=[Checkpoint(partial / "checkpoints"), EarlyStopping(config.patience), deadline,
                                     *callbacks, steps],
                          control=control, snapshot_s=snapshot_s)
        aux_text = ""
        if aux_info:
            cut = " (its share of the time limit ran out)" if aux_info["epochs"] < aux_info["epochs_requested"] else ""
            aux_text = (f"; aux regressor pretrained {aux_info['epochs']:g} of {aux_info['epochs_requested']} epochs"
                        f"{cut}, hottest-pixel error {aux_info['test_error_px']:.2f} px on the test split")
        result = trainer.fit(module, ShuffledBatches(*tensors, batch_size=config.batch_size,
                                                     generator=torch.Generator().manual_seed(config.seed)),
                             validation,
                             announce=f"training on {len(train):,} ZP events (photon sum ≥ "
                                      f"{config.min_photon_sum}) on "
                                      f"{describe_device(device)}; test split {len(test):,}{aux_text}",
                             resume=resume is not None)
        if result.best_epoch is None:  # no epoch gave finite figures: a run would hold an unjudged generator
            when = "its first epoch" if not result.epochs else "any epoch gave finite figures"
            raise InputError(f"training ended ({result.reason}) before {when}: nothing to save", path=sample.source,
                             hint=f"{TOO_SHORT}; a snapshot of the {len(monitor):,} monitor events takes about "
                                  f"{snapshot_s:.0f} s here (snapshot_rows sets how many)"
                             if result.reason == "time_limit" else None)

        source = sample.source
        info = {
            "kind": "zdc",
            "data": {"source": source, "note": sample.note, "n_events": len(sample), "n_kept": len(kept),
                     "min_photon_sum": config.min_photon_sum, "n_train": len(train), "n_test": len(test),
                     "sha256": file_sha256(source) if source and Path(source).is_file() else None},
            "device": describe_device(device),
            "aux_regressor": aux_info,
            "fit": {"reason": result.reason, "epochs": result.epochs, "steps": result.steps,
                    "elapsed_s": result.elapsed_s, "best_epoch": result.best_epoch, "best_score": result.best_score},
        }
        write_zdc_run(partial, config=config, info=info, scaler=scaler, generator=module.generator,
                      history=result.history, steps=pd.DataFrame(steps.rows), heldout=test)
        run = ZDCRun.load(partial, device=device)
        run.write_metrics(heldout_metrics(run, test, draws=config.eval_draws, seed=config.seed, deadline=deadline))
    return ZDCRun.load(out, device=device)


def heldout_metrics(run: ZDCRun, test: ZDCSample, *, draws: int, seed: int, deadline: Deadline | None = None) -> dict:
    """The run's figures on the untouched test split, averaged over ``draws`` noise draws, or over
    as many as fit before ``deadline`` (at least one; ``draws_requested`` says how many were asked)."""
    generated = []
    for k in range(draws):
        started = time.monotonic()
        generated.append(run.generate(test.conditions, seed=seed + 1 + k))
        if deadline is not None and deadline.left() < 2 * (time.monotonic() - started):  # a draw, then its figures
            break
    return {"sample_size": len(test), "draws": len(generated), "draws_requested": draws,
            "channels": run.config.channels, **compare_zdc(test.images, generated, run.config.channels)}
