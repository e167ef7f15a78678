"""Rare channels: a few hundred rows train for more than a handful of steps with the default
settings, sparse integer counts do not make the losses non-finite, and the held-out figures say
when the test split is too small to judge."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from recogan_app import losses
from recogan_app.cli import main as recogan
from recogan_app.config import FlowConfig, TabularConfig
from recogan_app.data.sources import load_mc
from recogan_app.families import load_run
from recogan_app.families.flow import train_flow
from recogan_app.families.tabular import compare, heldout_summary, noise_floors, train_tabular
from recogan_app.training.callbacks import Callback
from recogan_app.training.schedule import Schedule

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


def toy(n: int, seed: int) -> pd.DataFrame:
    """A correlated pair and an exponential: a rare channel's few hundred candidates."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 0.6 * x + 0.8 * rng.normal(size=n),
                         "e": rng.exponential(1.0, n)}).astype(np.float32)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """``recogan train`` on 400 rows with the default schedule, bound to 120 epochs (600 steps)."""
    folder = tmp_path_factory.mktemp("small")
    toy(400, 0).to_csv(folder / "mc.csv", index=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        done = recogan(["train", "--data", str(folder / "mc.csv"), "--out", str(folder / "run"), "--set",
                        "max_epochs=120", *(f"--set={k}={v}" for k, v in TINY_NETWORKS.items())])
    assert done == 0
    return load_run(folder / "run"), printed.getvalue()


def test_a_few_hundred_rows_train_for_hundreds_of_steps_with_the_defaults(small_run):
    """320 training rows: batches of 64 (5 steps an epoch, not 1 of 320) and a patience of
    1,000 steps (200 epochs, not 30 one-step epochs that stopped it in seconds)."""
    run, printed = small_run
    assert run.info["schedule"] == {"batch_size": 64, "steps_per_epoch": 5, "patience": 200, "scaled": True,
                                    "patience_steps": 1000, "early_stopping": True}
    assert run.info["fit"]["reason"] == "max_epochs" and run.info["fit"]["steps"] == 600
    assert "600 steps" in printed and "batches of 64 rows" in printed and "patience 200 epochs = 1,000 steps" in printed
    truth, generated = toy(20_000, 99), run.generate(20_000, seed=5)
    ks = np.mean([stats.ks_2samp(truth[c], generated[c]).statistic for c in truth])
    assert ks < 0.16  # the old defaults stopped after 68 one-row-batch steps: KS 0.24 against the truth


def test_the_flow_takes_the_same_schedule_and_its_learning_rate_ends_with_the_last_epoch(tmp_path):
    class Rates(Callback):
        def __init__(self):
            self.at = {}

        def on_step_end(self, trainer, event):
            self.at[event.step] = trainer.optimizers[0].param_groups[0]["lr"]

    config, rates = FlowConfig(max_epochs=20, hidden_widths=[16], coupling_transforms=2, device="cpu"), Rates()
    run = train_flow(toy(400, 0), config, tmp_path / "flow", callbacks=[rates])
    assert run.info["schedule"]["batch_size"] == 64 and run.info["fit"]["steps"] == 100  # 5 steps an epoch
    # half-way down the cosine at step 50 of 100 (one 320-row batch an epoch would have ended it at step 20)
    assert rates.at[50] == pytest.approx(0.5e-3) and rates.at[100] == pytest.approx(0.0, abs=1e-12)


def test_a_large_sample_keeps_the_settings_epochs_and_batches():
    for n_train in (100_000, 425_000):
        schedule = Schedule.for_rows(n_train, batch_size=2048, patience=30)
        assert (schedule.batch_size, schedule.patience, schedule.scaled) == (2048, 30, False)
    assert Schedule.for_rows(1840, batch_size=2048, patience=30).batch_size == 230  # 2,300 events: 8 batches


def test_a_small_test_split_says_it_cannot_judge_and_shows_the_noise_beside_each_figure(small_run):
    run, printed = small_run
    metrics = run.metrics()
    assert metrics["sample_size"] == 40 and metrics["generated_rows"] == 20_000
    noise = metrics["noise"]
    assert noise["ks"] == pytest.approx(stats.kstwobign.ppf(0.68) * math.sqrt(1 / 40 + 1 / 20_000))
    assert noise["c2st_auc"] == pytest.approx(math.sqrt(41 / (12 * 20 * 20)))  # 2 × 20 classifier test rows
    line = next(text for text in printed.splitlines() if text.startswith("held-out test"))
    assert f"noise {noise['ks']:.4f} a feature" in line and f"chance 0.5 ± {noise['c2st_auc']:.3f}" in line
    assert "held-out split (40 rows) is too small to judge the model" in printed


def test_a_residual_that_cannot_be_computed_is_said_so_not_printed_as_zero():
    reference = pd.DataFrame({"a": np.arange(50.0), "b": np.r_[np.zeros(49), 1.0]})
    metrics, details = compare(reference, reference.assign(b=0.0))  # b constant in the generated rows
    assert math.isnan(metrics["max_corr_residual"]) and "column 'b' is constant" in details["corr_undefined"]
    one = compare(reference[["a"]], reference[["a"]] + 1)
    assert math.isnan(one[0]["max_corr_residual"]) and one[1]["corr_undefined"] == "one feature: no pair to correlate"
    summary = heldout_summary({**metrics, "max_corr_residual": None, "max_corr_residual_undefined":
                               details["corr_undefined"], "sample_size": 50, "generated_rows": 50,
                               "verdict": "poor", "noise": noise_floors(50, 50, 50), "c2st_auc": 0.9})
    assert "max |Pearson residual| not computable (column 'b' is constant" in summary
