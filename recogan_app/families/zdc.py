"""The ZDC GAN family (seed 001): one proton-ZDC (ZP) response, 56 × 30 photon counts, per
particle's conditions.

Training (:func:`train_zdc`) goes through :func:`~recogan_app.families.recipe.fit_to_run` on the
events with at least ``min_photon_sum`` photons: the training split fits the condition
standardisation, the diversity and hottest-pixel targets, the aux regressor and the GAN; the
monitor split scores every epoch with a fixed noise; the test split is kept in the run
(``heldout.npz``) and gives the final figures, averaged over several noise draws.

A ZDC run directory holds, beside the common files (:mod:`recogan_app.run`), ``conditions.json``
(the fitted :class:`~recogan_app.data.zdc.ConditionScaler`) and ``heldout.npz`` (the test split).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from recogan_app import streams
from recogan_app.config import ZDC_PROFILES, ZDCConfig
from recogan_app.data.zdc import CONDITIONS, IMAGE_SHAPE, ConditionScaler, ZDCSample, diversity_targets, load_zdc
from recogan_app.files import write_atomic, write_json
from recogan_app.metrics.zdc import channel_sums, empty_count, five_channel_ws, hottest_pixel, hottest_pixel_error
from recogan_app.models.zdc import CHANNELS_LAST, AuxRegressor, Generator, ZDCGAN
from recogan_app.run import Run, load_weights
from recogan_app.families.recipe import TOO_SHORT, ModelFamily, Prepared, fit_to_run
from recogan_app.splits import snapshot_positions
from recogan_app.training.control import EVALUATION_SHARE, PRETRAINING_SHARE
from recogan_app.training.device import resolve_device
from recogan_app.training.trainer import Trainer

GALLERY = 8  # real/generated pairs each snapshot carries for the dashboard
EVALUATION_MARGIN = 1.5
"""How much slower than measured at the start the held-out draws may run (a machine shared with other jobs)."""
WRITING_S = 1.0
"""Seconds kept for writing the run (weights, the test split, the figures) and loading it back."""


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
    """Per-epoch snapshot: the five-channel WS of the monitor events averaged over
    ``snapshot_draws`` noise draws, the same draws every epoch (common random numbers), so that
    the score follows the generator, not the noise, and picks the checkpoint the run keeps.

    ``details`` carries a gallery (the first real/generated pairs, same conditions, and those
    conditions in their units) and the channel sums of both (the first draw), for the dashboard.
    """

    def __init__(self, events: ZDCSample, scaler: ConditionScaler, config: ZDCConfig):
        self.images, self.conditions = events.images, torch.from_numpy(scaler.transform(events.conditions))
        self.gallery_conditions, self.convention = events.conditions[:GALLERY], config.channels
        self.seeds = draw_seeds(config.seed, config.snapshot_draws, "snapshot")

    def __call__(self, module):
        generator = module.generator.fused()  # the network a run generates with, and faster
        device = next(generator.parameters()).device
        conditions = self.conditions.to(device)
        draws = [generator.counts(conditions, generator=torch.Generator(device).manual_seed(seed))
                 for seed in self.seeds]
        metrics = compare_zdc(self.images, draws, self.convention)
        details = {"gallery_real": self.images[:GALLERY], "gallery_generated": draws[0][:GALLERY],
                   "gallery_conditions": self.gallery_conditions,
                   "channels_real": channel_sums(self.images, self.convention),
                   "channels_generated": channel_sums(draws[0], self.convention)}
        score = metrics["ws_mean"] if math.isfinite(metrics["ws_mean"]) else math.inf
        return score, metrics, details, len(self.images)


def generation_rate(generator, conditions: torch.Tensor, probe: int = 256) -> float:
    """Events per second ``generator`` gives here (the images and their figures), timed on
    ``probe`` rows of standardised ``conditions`` after a warm-up chunk: the first call pays for
    setting up the convolutions and would make the estimate several times too slow."""
    conditions = conditions[:probe]
    generator.counts(conditions[:32], generator=torch.Generator(conditions.device))
    started = time.monotonic()
    images = generator.counts(conditions, generator=torch.Generator(conditions.device))
    compare_zdc(images, [images])
    return len(conditions) / max(time.monotonic() - started, 1e-6)


class HottestPixelFit(torch.nn.Module):
    """The aux regressor as a module the Trainer steps: one optimiser, and the MSE of (row, col) in
    units of the image size as its loss, so both coordinates count alike."""

    def __init__(self, lr: float):
        super().__init__()
        self.aux, self.lr = AuxRegressor(), lr

    def configure_optimizers(self):
        return torch.optim.Adam(self.aux.parameters(), lr=self.lr)

    def loss(self, images, hottest) -> dict[str, torch.Tensor]:
        return {"loss": (((self.aux(images) - hottest) / self.aux.scale) ** 2).sum(dim=1).mean()}


def pretrain_aux_regressor(images: torch.Tensor, hottest: torch.Tensor, *, epochs: int, lr: float,
                           batch_size: int, seed: int, device="cpu",
                           seconds: float = math.inf) -> tuple[AuxRegressor, float]:
    """Fit the aux regressor to the hottest pixel of REAL images (log1p, (N, 1, 56, 30)) on
    ``device`` with the Trainer; returns it with the epochs trained, fewer than ``epochs`` when
    ``seconds`` ran out first.

    Trained on real images only, so that as a frozen penalty it measures where a generated shower
    sits by the standard of the data (the published TF code trained it on generated images).
    """
    fit = HottestPixelFit(lr).to(memory_format=CHANNELS_LAST)
    result = Trainer(device=device, max_epochs=epochs, batch_size=batch_size, time_limit=seconds).fit(
        fit, (images, hottest), lambda module: (0.0, {}, {}, 0), shuffle=streams.torch_generator(seed, "batches"))
    return fit.aux.eval(), result.steps / (len(images) // min(batch_size, len(images)))


class ZDCRun(Run):
    """A trained ZDC run: one generated ZP response per row of conditions.

    Example
    -------
    >>> run = ZDCRun.load("runs/zdc")                                  # doctest: +SKIP
    >>> images = run.generate(run.heldout().conditions, seed=1)        # doctest: +SKIP
    """

    kind = "zdc"
    config_class = ZDCConfig
    files = ("conditions.json",)

    def _load(self, weights: dict) -> None:
        self.scaler = ConditionScaler.from_dict(json.loads((self.path / "conditions.json").read_text()))
        generator = self._generator()
        generator.load_state_dict(weights)
        self.module = generator.fused()

    def _generator(self) -> Generator:
        return Generator(self.config.latent_dim, self.config.generator_channels)

    @property
    def features(self) -> list[str]:
        """The conditions a generation needs, in order."""
        return list(CONDITIONS)

    def iter_generate(self, conditions, *, seed: int | None = None,
                      chunk_rows: int = 4096) -> Iterator[np.ndarray]:
        """Photon-count images (int32, (rows, 56, 30)) for consecutive chunks of ``conditions`` (N, 9)."""
        device = next(self.module.parameters()).device
        noise = torch.Generator(device=device).manual_seed(
            seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0]))
        standard = torch.from_numpy(self.scaler.transform(conditions)).to(device)
        for chunk in standard.split(chunk_rows):
            yield self.module.counts(chunk, generator=noise)

    def generate(self, conditions, *, seed: int | None = None) -> np.ndarray:
        """One photon-count image per row of ``conditions`` (N, 9): (N, 56, 30) int32."""
        chunks = list(self.iter_generate(conditions, seed=seed))
        return np.concatenate(chunks) if chunks else np.zeros((0, *IMAGE_SHAPE), np.int32)

    def heldout(self) -> ZDCSample:
        """The test split: never trained on, never used to pick a checkpoint."""
        return load_zdc(self.path / "heldout.npz")


class ZDCFamily(ModelFamily):
    """Seed 001's conditional GAN with its diversity, intensity and aux-regressor penalties."""

    kind = "zdc"
    config_class = ZDCConfig
    run_class = ZDCRun
    min_train = 16
    headline = ("ws_mean", "hottest_pixel_error")

    def __init__(self, config: ZDCConfig):
        super().__init__(sized(config))

    def usable(self, sample: ZDCSample) -> ZDCSample:
        return sample.subset(sample.photon_sums >= self.config.min_photon_sum)

    def counted(self, n: int) -> str:
        return f"{n:,} events with at least {self.config.min_photon_sum} photons"

    def prepare(self, train, monitor, test, folder, device, deadline) -> Prepared:
        config = self.config
        self.scaler = ConditionScaler().fit(train.conditions)
        log_images = np.log1p(train.images).astype(np.float32)
        data = tuple(torch.from_numpy(a) for a in (
            log_images[:, None], self.scaler.transform(train.conditions), diversity_targets(train.conditions, log_images),
            hottest_pixel(train.images).astype(np.float32)))
        aux = self.aux_info = None
        if config.lambda_aux > 0:
            aux, self.aux_info = self._pretrained_aux(folder, data, test, device, deadline.until(PRETRAINING_SHARE))
        module = ZDCGAN(config, aux).to(device, memory_format=CHANNELS_LAST)
        snapshot, evaluation_s = self.snapshot(module, monitor, test, device, deadline)
        aux_text = ""
        if self.aux_info:
            cut = " (its share of the time limit ran out)" if self.aux_info["epochs"] < config.aux_epochs else ""
            aux_text = (f"; aux regressor pretrained {self.aux_info['epochs']:g} of {config.aux_epochs} epochs{cut}, "
                        f"hottest-pixel error {self.aux_info['test_error_px']:.2f} px on the test split")
        return Prepared(module=module, data=data, snapshot=snapshot, info={"aux_regressor": self.aux_info, "profile": {
                            "name": config.profile, **{k: getattr(config, k) for k in ZDC_PROFILES[config.profile]}}},
                        snapshot_s=self.snapshot_s, evaluation_s=evaluation_s,
                        announce=f"profile {profile_text(config)}; {self.splits_text(train, monitor, test)}{aux_text}")

    def snapshot(self, module, monitor: ZDCSample, test: ZDCSample, device, deadline) -> tuple[ZDCValidation, float]:
        """The per-epoch snapshot of ``module`` on up to ``snapshot_rows`` monitor events, and the
        seconds the held-out evaluation needs, both from the generator's rate measured here."""
        config = self.config
        shown = monitor.subset(snapshot_positions(len(monitor), config.snapshot_rows, config.seed))
        snapshot = ZDCValidation(shown, self.scaler, config)
        rate = generation_rate(module.generator.fused(), snapshot.conditions.to(device))
        self.snapshot_s = config.snapshot_draws * len(shown) / rate
        self.monitor_events = len(shown)
        return snapshot, self.evaluation_seconds(len(test) / rate, deadline)

    def splits_text(self, train: ZDCSample, monitor: ZDCSample, test: ZDCSample) -> str:
        return (f"training on {len(train):,} ZP events (photon sum ≥ {self.config.min_photon_sum}); "
                f"monitor split {len(monitor):,}, test split {len(test):,}")

    def evaluation_seconds(self, draw_s: float, deadline) -> float:
        """The time :meth:`evaluate` and the writing of the run need when one noise draw of the
        test split takes ``draw_s`` here: all ``eval_draws`` with a margin for a busier machine,
        but never more than the larger of one draw and the usual share of the time limit (fewer
        draws are made then)."""
        needed = lambda draws: EVALUATION_MARGIN * draws * draw_s + WRITING_S  # noqa: E731
        return min(needed(self.config.eval_draws), max(needed(1), deadline.share(EVALUATION_SHARE)))

    def _pretrained_aux(self, folder: Path, data: tuple, test: ZDCSample, device,
                        seconds: float) -> tuple[AuxRegressor, dict]:
        """The aux regressor pretrained within ``seconds`` and what it achieved on the test split,
        kept in ``folder/aux.pt`` so that a resumed training does not pretrain again."""
        config, saved = self.config, folder / "aux.pt"
        if saved.is_file():
            state = load_weights(saved, device)
            aux = AuxRegressor().to(device)  # built all the same: the same draws of the global RNG
            aux.load_state_dict(state["model"])
            return aux.eval(), state["info"]
        aux, epochs = pretrain_aux_regressor(data[0], data[3], epochs=config.aux_epochs, lr=config.aux_lr,
                                             batch_size=config.batch_size, seed=config.seed, device=device,
                                             seconds=seconds)
        with torch.inference_mode():
            test_log = torch.from_numpy(np.log1p(test.images).astype(np.float32)[:, None]).to(device)
            predicted = torch.cat([aux(x) for x in test_log.split(1024)]).cpu().numpy()
        info = {"epochs": round(epochs, 2), "epochs_requested": config.aux_epochs, "test_error_px": float(
            np.linalg.norm(predicted - hottest_pixel(test.images), axis=1).mean())}
        state = {"model": {k: v.detach().cpu() for k, v in aux.state_dict().items()}, "info": info}
        write_atomic(saved, lambda tmp: torch.save(state, tmp))
        return aux, info

    def data_info(self, sample: ZDCSample, usable: ZDCSample) -> dict:
        return {"note": sample.note, "n_events": len(sample), "n_kept": len(usable),
                "min_photon_sum": self.config.min_photon_sum}

    def failure_hint(self, result, train, prepared: Prepared) -> str | None:
        if result.reason != "time_limit":
            return None
        return (f"{TOO_SHORT}; a snapshot of the {self.monitor_events:,} monitor events takes about "
                f"{self.snapshot_s:.0f} s here (snapshot_rows sets how many)")

    def save(self, folder: Path, test: ZDCSample) -> None:
        write_json(folder / "conditions.json", self.scaler.to_dict())
        test.save(folder / "heldout.npz")

    def evaluate(self, run: ZDCRun, test: ZDCSample, deadline) -> dict:
        """The figures on the test split, averaged over ``eval_draws`` noise draws, or over as many
        as fit before ``deadline`` (at least one; ``draws_requested`` says how many were asked)."""
        generated = []
        for seed in draw_seeds(self.config.seed, self.config.eval_draws):
            started = time.monotonic()
            generated.append(run.generate(test.conditions, seed=seed))
            if deadline.left() < 2 * (time.monotonic() - started):  # a draw, then its figures
                break
        return {"sample_size": len(test), "draws": len(generated), "draws_requested": self.config.eval_draws,
                "channels": self.config.channels, **compare_zdc(test.images, generated, self.config.channels)}


def sized(config: ZDCConfig) -> ZDCConfig:
    """``config`` with the sizes of its profile for the device it names (auto: gpu with CUDA)."""
    return config.for_device(resolve_device(config.device).type == "cuda")


def profile_text(config: ZDCConfig) -> str:
    """The sizes a training runs with, for its summary: "cpu (generator 16 channels, batch 32, …)"."""
    return (f"{config.profile} (generator {config.generator_channels} channels, batch {config.batch_size}, "
            f"learning rates {config.lr_generator:g}/{config.lr_discriminator:g}, aux pretraining "
            f"{config.aux_epochs} epochs, {config.eval_draws} evaluation draws)")


def draw_seeds(seed: int, draws: int, stream: str = "evaluation") -> list[int]:
    """Seeds of ``draws`` independent noise draws from stream ``stream`` of ``seed``."""
    return [int(child.generate_state(1)[0]) for child in streams.sequence(seed, stream).spawn(draws)]


def train_zdc(sample: ZDCSample, config: ZDCConfig, out, **options) -> ZDCRun:
    """Train seed 001's conditional GAN on ZP events (:func:`recogan_app.data.zdc.load_zdc` or the
    toy) and write the run directory ``out``. Under a time limit the aux pretraining takes at
    most a quarter of it and the held-out evaluation as many noise draws as fit. ``options``: see
    :func:`~recogan_app.families.recipe.fit_to_run`. Returns the run with its best-by-monitor
    generator."""
    return fit_to_run(ZDCFamily(config), sample, out, **options)
