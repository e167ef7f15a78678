"""The model families: each one module fulfilling :class:`~recogan_app.families.recipe.ModelFamily`.

- ``recipe``   the contract and :func:`~recogan_app.families.recipe.fit_to_run`, the one training recipe
- ``tabular``  the tabular GAN of seed 000 (:func:`train_tabular`, :class:`TabularRun`)
- ``flow``     a normalizing flow of the same tabular data (:func:`train_flow`, :class:`FlowRun`)
- ``quantile`` quantile regression of targets given conditions (seed 003's mean + quantile as a setting) (:func:`train_quantile`)
- ``zdc``      the ZDC image GAN of seed 001 (:func:`train_zdc`, :class:`ZDCRun`)
- ``zdc_vae``  ZDC images by likelihood: a Poisson VAE (:func:`train_zdc_vae`, :class:`ZDCVAERun`)

A new family is one new module here and one line in :data:`FAMILIES` (see docs/architecture.md).
"""

from __future__ import annotations

from pathlib import Path

import torch

from recogan_app.families.flow import FlowFamily, FlowRun, train_flow
from recogan_app.families.quantile import QuantileFamily, QuantileRun, train_quantile
from recogan_app.families.tabular import TabularFamily, TabularRun, train_tabular
from recogan_app.families.zdc import ZDCFamily, ZDCRun, train_zdc
from recogan_app.families.zdc_vae import ZDCVAEFamily, ZDCVAERun, train_zdc_vae
from recogan_app.run import Run, read_info

FAMILIES = {family.kind: family for family in (TabularFamily, FlowFamily, QuantileFamily, ZDCFamily, ZDCVAEFamily)}
"""Every family by its run kind."""

__all__ = ["FAMILIES", "FlowRun", "QuantileRun", "TabularRun", "ZDCRun", "ZDCVAERun", "load_run", "run_kind",
           "train_flow", "train_quantile", "train_tabular", "train_zdc", "train_zdc_vae", "family_for"]


def family_for(config):
    """The family that trains with ``config`` (found by its settings class)."""
    return next(family for family in FAMILIES.values() if type(config) is family.config_class)(config)


def run_kind(path) -> str:
    """The family of the run at ``path``, from its run.json (a folder without one counts as
    tabular, whose loading then says what is missing)."""
    if not (Path(path) / "run.json").is_file():
        return "tabular"
    return read_info(path, kinds=FAMILIES)["kind"]


def load_run(path, *, device: str | torch.device = "cpu") -> Run:
    """The run at ``path``, loaded by its family (from the ``kind`` in its run.json)."""
    return FAMILIES[run_kind(path)].run_class.load(path, device=device)
