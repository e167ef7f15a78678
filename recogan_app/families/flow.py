"""The normalizing-flow family: tabular rows by maximum likelihood (:mod:`recogan_app.models.flow`).

Everything but the module is the tabular GAN's (:mod:`recogan_app.families.tabular`): the same
columns, preprocessing (quantile-to-normal output: what a spline flow expects), run files,
generation, validation and export. What differs is how it learns and picks its checkpoint:

- the loss is the negative log-likelihood of the preprocessed rows; the snapshot's score is the
  monitor rows' (exact and smooth, where the GAN's bar on sampled metrics is noisy), beside the
  same KS / WS / correlation figures;
- the learning rate follows a cosine to the end of the time limit (:class:`CosineSchedule`), so
  with a time limit it trains to it without early stopping: the low-rate end is where the flow
  gains most (issue 15's 300 s runs: the two seeds that early stopping ended at 101 and 163 s
  missed the KS bars that the seeds trained to the limit met); the best epoch is still kept;
- a conditional flow (``conditions`` set) is the density of the targets given the conditions;
- integer features are dequantised by the preprocessing (``integer``: uniform noise within each
  integer's cell before the quantile map, rounding after), so the flow's continuous likelihood
  bounds the integers' discrete one; bounded features come back within the training range, which
  the quantile map's inverse clips to.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from recogan_app.config import FlowConfig
from recogan_app.data.sources import MCSample
from recogan_app.families.recipe import Prepared, fit_to_run
from recogan_app.families.tabular import SnapshotValidation, TabularFamily, TabularRun
from recogan_app.models.flow import SplineFlow
from recogan_app.training.callbacks import CosineSchedule


class LikelihoodSnapshot(SnapshotValidation):
    """The tabular snapshot scored by the monitor rows' mean negative log-likelihood (``nll``,
    nats per row in the preprocessed space, given their conditions for a conditional flow and
    weighted for a weighted MC; lower is better)."""

    def __init__(self, monitor: MCSample, pipeline, rows: int, seed: int, given=None):
        super().__init__(monitor, pipeline, rows, seed, given)
        self.matrix = torch.from_numpy(pipeline.transform(self.reference))

    def __call__(self, module: SplineFlow):
        _, metrics, details, size = super().__call__(module)
        nll = module.nll(self.matrix, weights=self.weights, **self.given)
        return (nll if math.isfinite(nll) else math.inf), {"nll": nll, **metrics}, details, size


class FlowRun(TabularRun):
    """A trained flow run: everything a tabular run does (generate, validate, export)."""

    kind = "flow"
    config_class = FlowConfig

    def _module(self, n_features: int) -> SplineFlow:
        return SplineFlow(n_features, self.config, len(self.conditions))


class FlowFamily(TabularFamily):
    """A neural spline flow of the preprocessed features (coupling transforms, zuko)."""

    kind = "flow"
    config_class = FlowConfig
    run_class = FlowRun

    def refusal(self) -> tuple[str, str] | None:
        if len(self.free) < 2:
            return (f"has {len(self.free)} feature to generate: a coupling flow needs at least 2",
                    "use the GAN (--model gan) for a single feature")
        return None

    def prepare(self, train, monitor, test, folder, device, deadline) -> Prepared:
        config = self.config
        data = self.fit_pipeline(train)
        generated, given = self.pipelines()
        n_conditions = data[1].shape[1] if given is not None else 0
        snapshot = LikelihoodSnapshot(monitor, generated, config.snapshot_rows, config.seed, given)
        return Prepared(module=SplineFlow(data[0].shape[1], config, n_conditions), data=data, snapshot=snapshot,
                        announce=self.announce(train, monitor, test), info={"snapshot": snapshot.record()},
                        callbacks=[CosineSchedule()], early_stopping=config.time_limit is None)

    def evaluate(self, run: FlowRun, test: MCSample, deadline) -> dict:
        """The tabular figures plus ``test_nll``: the test rows' mean negative log-likelihood
        (nats per row, preprocessed space; given their conditions for a conditional flow, weighted
        for a weighted MC)."""
        given = {} if not run.conditions else {
            "conditions": torch.from_numpy(run.condition_pipeline.transform(test.frame))}
        nll = run.module.nll(torch.from_numpy(run.pipeline.transform(test.frame)), weights=test.weights, **given)
        return {**super().evaluate(run, test, deadline), "test_nll": nll}


def train_flow(sample: MCSample | pd.DataFrame, config: FlowConfig, out, **options) -> FlowRun:
    """Train a normalizing flow on ``sample`` and write the run directory ``out``; as
    :func:`~recogan_app.families.tabular.train_tabular` otherwise."""
    return fit_to_run(FlowFamily(config), sample, out, **options)
