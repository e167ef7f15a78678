"""The quantile regression family: targets given conditions (:mod:`recogan_app.models.quantile`),
by default each target's quantiles at K levels, or seed 003's mean + the +1σ quantile.

Everything but the module is the tabular family's (:mod:`recogan_app.families.tabular`): the
columns (conditions, then targets), the one preprocessing fitted on both, the run files,
generation given a conditions table, validation and export. What differs:

- each reco target ``reco_<f>`` starts from its gen-level condition ``gen_<f>``
  (:class:`~recogan_app.models.quantile.QuantileRegressor`'s ``pairs``);
- the loss is the pinball loss at the levels (seed 003: the L1 of the mean plus the pinball loss
  of the +1σ quantile) and the copula's likelihood; the snapshot's score is the monitor rows'
  pinball loss, beside the targets' KS / WS / correlation figures. Seed 003 keeps the epoch where
  it is smallest, and so does a fit that stops early; a fit annealed to its time limit keeps its
  last epoch: on W+jet (300 s, 2 threads) the smallest monitor loss was at epoch 22 of 46 and
  validated worse (worst efficiency ratio 0.088, 1.2 % of pulls beyond 3σ, residual KS 0.033)
  than the last (0.052, 0.2 %, 0.026; README, issue 18's fifth round);
- the targets (and the gen-level conditions paired with them) are mapped to a normal by the square
  root of their density (``target_map``, :class:`~recogan_app.preprocessing.FlatQuantile`), not by
  the density itself (:meth:`QuantileFamily.transforms`);
- integer conditions are mapped without dequantisation noise (:meth:`QuantileFamily.transforms`),
  and those of at most ``one_hot`` values (a species) reach the network one-hot as well
  (:func:`categories`);
- the batch is 1,024 rows at a rate of 4e-3 (seed 003's: 128 at 1e-3): twice the epochs in a time
  limit on two CPU cores, and the PID pulls beyond 3σ from 5.2–6.0 % to 3.5–5.9 % (README, issue
  18's sixth round). A small sample's batch is cut to an eighth of it
  (:class:`~recogan_app.training.schedule.Schedule`), and the rate in proportion (the linear scaling
  rule): on 2,000 toy-pid rows at the full 4e-3 the worst efficiency ratio was 0.41 against 0.33 at
  the scaled 1e-3 (mean of three seeds);
- seed 003's learning rate is divided by 1 + the epochs done (:class:`InverseEpochSchedule`), the
  quantiles response's follows the flow's cosine to the end of the time limit (:class:`CosineSchedule`;
  early stopping only without a time limit): a few epochs at 1e-3/(1 + epoch) leave the tail
  levels unsettled (on toy-pid, shared CPU: 45 % of the efficiency pulls beyond 3σ after 200 s
  and 7 epochs, 34 % on the cosine after 240 s and 9 epochs);
- it needs conditions: an unconditional model of this kind would be one distribution per target.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from recogan_app.config import QuantileConfig
from recogan_app.data.sources import MCSample
from recogan_app.families.recipe import Prepared, fit_to_run
from recogan_app.families.tabular import SnapshotValidation, TabularFamily, TabularRun
from recogan_app.metrics.conditional import residual_pairs
from recogan_app.models.quantile import QuantileModel
from recogan_app.preprocessing import FeaturePipeline, suggest_transform
from recogan_app.training.callbacks import CosineSchedule, InverseEpochSchedule
from recogan_app.training.schedule import Schedule


def categories(given: FeaturePipeline, most: int) -> dict[int, np.ndarray]:
    """{condition index: its values' points} of the conditions of at most ``most`` values, which the
    network reads one-hot (:meth:`~recogan_app.preprocessing.FeaturePipeline.categories`)."""
    return {given.columns_.index(c): points for c, points in given.categories(most).items()}


class LossSnapshot(SnapshotValidation):
    """The tabular snapshot scored by the monitor rows' pinball loss (``monitor_loss``, lower is better)."""

    def __init__(self, monitor: MCSample, pipeline, rows: int, seed: int, given):
        super().__init__(monitor, pipeline, rows, seed, given)
        self.targets = torch.from_numpy(pipeline.transform(self.reference))

    def __call__(self, module: QuantileModel):
        _, metrics, details, size = super().__call__(module)
        loss = module.monitor_loss(self.targets, self.given["conditions"])
        return (loss if math.isfinite(loss) else math.inf), {"monitor_loss": loss, **metrics}, details, size


class QuantileRun(TabularRun):
    """A trained quantile regression run: everything a conditional tabular run does."""

    kind = "quantile"
    config_class = QuantileConfig

    @classmethod
    def saved_config(cls, values, source: str):
        """A run saved before the K-level response was seed 003's (its config.json names no ``response``)."""
        if isinstance(values, dict) and "response" not in values:
            values = {**values, "response": "seed003"}
        if isinstance(values, dict) and "one_hot" not in values:  # saved before the one-hot conditions
            values = {**values, "one_hot": 0}
        if isinstance(values, dict) and "target_map" not in values:  # saved before the flattened quantile map
            values = {**values, "target_map": "quantile"}
        if isinstance(values, dict) and "increments" not in values:  # saved before the exponential increments
            values = {**values, "increments": "softplus"}
        if isinstance(values, dict) and "jumps" not in values:  # saved before the jumps
            values = {**values, "jumps": 0}
        return super().saved_config(values, source)

    def _module(self, n_features: int) -> QuantileModel:
        return QuantileModel(n_features, len(self.conditions), self.config,
                             categories=categories(self.condition_pipeline, self.config.one_hot))


class QuantileFamily(TabularFamily):
    """Regression of each target's quantiles on the conditions (seed 003's: its mean and +1σ quantile)."""

    kind = "quantile"
    config_class = QuantileConfig
    run_class = QuantileRun

    def refusal(self) -> tuple[str, str] | None:
        if not self.config.conditions:
            return ("needs conditions: the quantile regression generates targets given other columns",
                    "name them with --conditions (and the targets with --targets)")
        return None

    def transforms(self, train: MCSample) -> dict[str, str]:
        """An integer condition (a species, a multiplicity) is mapped by its quantiles alone, each
        value to one point: it is given, never generated, so it needs no dequantisation noise,
        which would only blur the network's view of where one species ends and the next begins.
        The targets, and the gen-level conditions their reco values start from (a pair shares its
        map), end in the ``target_map`` (:class:`~recogan_app.preprocessing.FlatQuantile`).
        A spec the settings give wins."""
        config, given = self.config, self.config.transforms
        integral = {c: "quantile" for c in config.conditions
                    if c not in given and suggest_transform(c, train.frame[c].to_numpy()).startswith("integer")}
        mapped = [*self.free, *(c for _, c in residual_pairs(self.free, config.conditions))]
        suggested = {c: suggest_transform(c, train.frame[c].to_numpy()) for c in mapped if c not in given}
        targets = {c: spec.removesuffix("quantile") + config.target_map for c, spec in suggested.items()}
        return {**integral, **targets, **given}

    def prepare(self, train, monitor, test, folder, device, deadline) -> Prepared:
        config = self.config
        targets, conditions = self.fit_pipeline(train)
        generated, given = self.pipelines()
        snapshot = LossSnapshot(monitor, generated, config.snapshot_rows, config.seed, given)
        pairs = [(generated.columns_.index(t), given.columns_.index(c))
                 for t, c in residual_pairs(generated.columns_, given.columns_)]  # reco_<f> starts at gen_<f>
        batch = Schedule.for_rows(len(targets), config.batch_size, config.patience).batch_size
        rate = config.learning_rate * batch / config.batch_size  # a small sample's smaller batch: a smaller rate
        module = QuantileModel(targets.shape[1], conditions.shape[1], config, pairs, categories(given, config.one_hot),
                               learning_rate=rate)
        stops = config.response == "seed003" or config.time_limit is None  # seed 003's schedule, or no limit to anneal to
        return Prepared(module=module, data=(targets, conditions),
                        snapshot=snapshot, announce=self.announce(train, monitor, test),
                        info={"snapshot": snapshot.record(), "learning_rate": rate},
                        callbacks=[InverseEpochSchedule() if config.response == "seed003" else CosineSchedule()],
                        early_stopping=stops, keep="best" if stops else "last")


def train_quantile(sample: MCSample | pd.DataFrame, config: QuantileConfig, out, **options) -> QuantileRun:
    """Train the quantile regression on ``sample`` (``config.conditions`` given, ``config.features``
    generated) and write the run directory ``out``; as :func:`~recogan_app.families.tabular.train_tabular` otherwise."""
    return fit_to_run(QuantileFamily(config), sample, out, **options)
