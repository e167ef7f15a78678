"""The ZDC Poisson-VAE family: ZP responses by likelihood (:mod:`recogan_app.models.zdc_poisson`),
each pixel's photons Poisson given the conditions and a latent z of the shower.

Everything but the module is the ZDC GAN family's (:mod:`recogan_app.families.zdc`): the events
kept, the split, the condition standardisation, the per-epoch snapshot (five-channel WS of the
monitor events, the same draws every epoch) that picks the checkpoint, the run files, generation
and the held-out figures. What differs is how it learns:

- the loss is the negative evidence lower bound of the photon counts; no aux regressor, no
  diversity or intensity penalty (the Poisson likelihood already scores every photon);
- the learning rate follows a cosine to the end of the time limit, so with a time limit it trains
  to it without early stopping (the best epoch is still kept);
- the KL term's weight starts at ``kl_start`` and falls to 1 over the first ``kl_warm_up`` of the
  fit (:class:`KLWarmUp`): with the weight at 1 from the start, the encoder passes the shower's
  position to z before the decoder has learnt it from the conditions, and responses drawn with z
  from the prior land in the wrong place (README, "A second ZDC family": 40 × the toy's floor
  instead of 1.6 ×);
- z is drawn at generation from the posteriors of training events with nearby conditions
  (:meth:`~recogan_app.models.zdc_poisson.ExpectedLight.latents`), a library refreshed before
  every snapshot and kept with the decoder's weights.
"""

from __future__ import annotations

import numpy as np
import torch

from recogan_app.config import ZDCVAEConfig
from recogan_app.data.zdc import ConditionScaler, ZDCSample
from recogan_app.families.recipe import ModelFamily, Prepared, fit_to_run
from recogan_app.families.zdc import ZDCFamily, ZDCRun
from recogan_app.models.zdc import CHANNELS_LAST
from recogan_app.models.zdc_poisson import LIBRARY_ROWS, ExpectedLight, PoissonVAE
from recogan_app.training.callbacks import CosineSchedule


class KLWarmUp(CosineSchedule):
    """The cosine learning rate, and the KL weight from ``kl_start`` down to 1 over the first
    ``kl_warm_up`` of the fit (by the same measure of progress: steps or the time limit)."""

    def on_step_end(self, trainer, event) -> None:
        super().on_step_end(trainer, event)
        config = trainer.module.config
        left = 1.0 - self.progress(trainer, event.step) / max(config.kl_warm_up, 1e-9)
        trainer.module.kl_weight = 1.0 + (config.kl_start - 1.0) * max(left, 0.0)


class ZDCVAERun(ZDCRun):
    """A trained Poisson-VAE run: generates as a ZDC GAN run does (:class:`~recogan_app.families.zdc.ZDCRun`)."""

    kind = "zdc-vae"
    config_class = ZDCVAEConfig

    def _generator(self) -> ExpectedLight:
        return ExpectedLight(self.config.latent_dim, self.config.decoder_width, exemplars=self.config.exemplars)


class ZDCVAEFamily(ZDCFamily):
    """A conditional VAE with a Poisson likelihood of each pixel's photon count."""

    kind = "zdc-vae"
    config_class = ZDCVAEConfig
    run_class = ZDCVAERun

    def __init__(self, config: ZDCVAEConfig):
        ModelFamily.__init__(self, config)  # no profile to size

    def prepare(self, train, monitor, test, folder, device, deadline) -> Prepared:
        config = self.config
        self.scaler = ConditionScaler().fit(train.conditions)
        data = (torch.from_numpy(train.images.astype(np.float32)[:, None]),
                torch.from_numpy(self.scaler.transform(train.conditions)))
        module = PoissonVAE(config).to(device, memory_format=CHANNELS_LAST)
        module.exemplar_events = tuple(t[:LIBRARY_ROWS].to(device) for t in data)
        snapshot, evaluation_s = self.snapshot(module, monitor, test, device, deadline)

        def refreshed_snapshot(module):
            module.refresh_library()
            return snapshot(module)

        return Prepared(module=module, data=data, snapshot=refreshed_snapshot, snapshot_s=self.snapshot_s,
                        evaluation_s=evaluation_s, announce=f"Poisson VAE; {self.splits_text(train, monitor, test)}",
                        callbacks=[KLWarmUp()], early_stopping=config.time_limit is None)


def train_zdc_vae(sample: ZDCSample, config: ZDCVAEConfig, out, **options) -> ZDCVAERun:
    """Train the Poisson VAE on ZP events and write the run directory ``out``; as
    :func:`~recogan_app.families.zdc.train_zdc` otherwise."""
    return fit_to_run(ZDCVAEFamily(config), sample, out, **options)
