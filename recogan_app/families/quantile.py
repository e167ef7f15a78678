"""Seed 003's mean + quantile regression family: targets given conditions (:mod:`recogan_app.models.quantile`).

Everything but the module is the tabular family's (:mod:`recogan_app.families.tabular`): the
columns (conditions, then targets), the one preprocessing fitted on both, the run files,
generation given a conditions table, validation and export. What differs:

- each reco target ``reco_<f>`` starts from its gen-level condition ``gen_<f>``
  (:class:`~recogan_app.models.quantile.QuantileRegressor`'s ``pairs``);
- the loss is seed 003's L1 of the mean plus the pinball loss of the +1σ quantile; the snapshot's
  score is the monitor rows' loss (seed 003 keeps the epoch where it is smallest), beside the
  targets' KS / WS / correlation figures;
- the learning rate is divided by 1 + the epochs done (:class:`InverseEpochSchedule`);
- it needs conditions: an unconditional model of this kind would be one Gaussian per target.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from recogan_app.config import QuantileConfig
from recogan_app.data.sources import MCSample
from recogan_app.families.recipe import Prepared, fit_to_run
from recogan_app.families.tabular import SnapshotValidation, TabularFamily, TabularRun
from recogan_app.metrics.conditional import residual_pairs
from recogan_app.models.quantile import QuantileModel
from recogan_app.training.callbacks import InverseEpochSchedule


class LossSnapshot(SnapshotValidation):
    """The tabular snapshot scored by the monitor rows' loss (``monitor_loss``, lower is better)."""

    def __init__(self, monitor: MCSample, pipeline, rows: int, seed: int, given):
        super().__init__(monitor, pipeline, rows, seed, given)
        self.targets = torch.from_numpy(pipeline.transform(self.reference))

    def __call__(self, module: QuantileModel):
        _, metrics, details, size = super().__call__(module)
        loss = module.monitor_loss(self.targets, self.given["conditions"])
        return (loss if math.isfinite(loss) else math.inf), {"monitor_loss": loss, **metrics}, details, size


class QuantileRun(TabularRun):
    """A trained mean + quantile regression run: everything a conditional tabular run does."""

    kind = "quantile"
    config_class = QuantileConfig

    def _module(self, n_features: int) -> QuantileModel:
        return QuantileModel(n_features, len(self.conditions), self.config)


class QuantileFamily(TabularFamily):
    """Seed 003's regression of each target's mean and +1σ quantile on the conditions."""

    kind = "quantile"
    config_class = QuantileConfig
    run_class = QuantileRun

    def refusal(self) -> tuple[str, str] | None:
        if not self.config.conditions:
            return ("needs conditions: the quantile regression generates targets given other columns",
                    "name them with --conditions (and the targets with --targets)")
        return None

    def prepare(self, train, monitor, test, folder, device, deadline) -> Prepared:
        config = self.config
        targets, conditions = self.fit_pipeline(train)
        generated, given = self.pipelines()
        snapshot = LossSnapshot(monitor, generated, config.snapshot_rows, config.seed, given)
        pairs = [(generated.columns_.index(t), given.columns_.index(c))
                 for t, c in residual_pairs(generated.columns_, given.columns_)]  # reco_<f> starts at gen_<f>
        module = QuantileModel(targets.shape[1], conditions.shape[1], config, pairs)
        return Prepared(module=module, data=(targets, conditions),
                        snapshot=snapshot, announce=self.announce(train, monitor, test),
                        info={"snapshot": snapshot.record()}, callbacks=[InverseEpochSchedule()])


def train_quantile(sample: MCSample | pd.DataFrame, config: QuantileConfig, out, **options) -> QuantileRun:
    """Train seed 003's regression on ``sample`` (``config.conditions`` given, ``config.features``
    generated) and write the run directory ``out``; as :func:`~recogan_app.families.tabular.train_tabular` otherwise."""
    return fit_to_run(QuantileFamily(config), sample, out, **options)
