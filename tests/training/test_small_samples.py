"""Rare channels: a few hundred rows train for more than a handful of steps with the default
settings, sparse integer counts do not make the losses non-finite, and the held-out figures say
when the test split is too small to judge."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from recogan_app import losses
from recogan_app.data.sources import load_mc
from recogan_app.families.tabular import train_tabular
from recogan_app.config import TabularConfig

TINY_NETWORKS = dict(latent_dim=8, generator_widths=[32, 32], discriminator_widths=[32, 32], device="cpu")


def sparse_counts(n: int, seed: int = 0) -> pd.DataFrame:
    """Electron and photon counts (integers 0–3, each 0 in 94–95 % of events) beside a missing ET."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"nElectron": rng.choice(4, n, p=[.94, .04, .015, .005]),
                         "nPhoton": rng.choice(4, n, p=[.95, .035, .01, .005]),
                         "MET_pt": rng.exponential(30.0, n).astype(np.float32)})


def test_a_batch_with_a_constant_column_has_finite_correlations_and_gradients():
    x = torch.cat([torch.full((64, 1), -0.5), torch.randn(64, 2)], dim=1).requires_grad_(True)
    corr = losses.batch_correlation(x)
    assert torch.isfinite(corr).all() and corr[0, 1:].abs().max() == 0
    assert torch.allclose(corr[1:, 1:], torch.corrcoef(x[:, 1:].T), atol=1e-5)
    corr.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_two_sparse_counts_train_with_finite_losses(tmp_path):
    """Each count is 0 in 94–95 % of events: a young generator's batch maps to 0 in both, whose
    Pearson coefficient was 0/0, and every step was rolled back until 'diverged'."""
    path = tmp_path / "counts.csv"
    sparse_counts(1200).to_csv(path, index=False)
    run = train_tabular(load_mc(path), TabularConfig(max_epochs=2, **TINY_NETWORKS), tmp_path / "run")
    fit = run.info["fit"]
    assert fit["reason"] == "max_epochs" and fit["best_epoch"] is not None
    steps = pd.read_parquet(run.path / "steps.parquet")
    assert len(steps) and np.isfinite(steps.drop(columns=["step", "epoch"]).to_numpy()).all()
